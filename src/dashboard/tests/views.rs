//! Views: hostile values come out escaped; pages carry the CSP; assets are the vendored
//! bytes, cached, and within the size budget.

use std::io::Write;

use axum::http::{header, StatusCode};
use serde_json::json;

use super::super::assets::Assets;
use super::super::auth::Auth;
use super::super::{schedules, task, tasks};
use super::*;
use crate::scheduler::{ScheduleInfo, ScheduleRecord, ScheduleSpec};
use crate::AttemptError;

const XSS: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

fn assert_escaped(html: &str) {
    assert!(!html.contains("<script>alert"), "raw script in {html}");
    assert!(!html.contains("<img src=x"), "raw img in {html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

#[tokio::test]
async fn hostile_args_errors_and_kinds_are_escaped_on_the_task_page_and_list() {
    let system = start().await;
    let task = NewTask::new("noop", json!({ "x": XSS }))
        .queue("held")
        .title(XSS);
    let id = system.submit(task).await.unwrap().id;
    let mut view = system.get(id).await.unwrap();
    view.status.kind = XSS.into();
    view.status.error = Some(AttemptError {
        attempt: 1,
        kind: crate::FailureKind::Failed,
        message: XSS.into(),
    });
    view.crashes.push(crate::store::Crash {
        task_id: id,
        at: std::time::SystemTime::now(),
        attempt: 1,
        kind: crate::FailureKind::Panicked,
        reason: XSS.into(),
    });
    let session = Auth::new(None, None).open_session();
    let page = task::body(&view, &session, false, None).into_string();
    assert_escaped(&page);
    assert!(page.contains("Crash history"), "{page}");
    assert_eq!(
        page.matches("&lt;script&gt;alert(1)").count(),
        5,
        "args, kind, title, error, crash: {page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(2)&gt;&quot;'&amp;"),
        "{page}"
    );
    let list = tasks::table(&[view.status], true).into_string();
    assert_escaped(&list);
}

#[tokio::test]
async fn a_hostile_schedule_name_and_zone_are_escaped_and_its_action_urls_encoded() {
    let mut spec = ScheduleSpec::new(XSS, "0 * * * * *", NewTask::new("noop", json!(null)));
    spec.timezone = XSS.into();
    let now = chrono::Utc::now();
    let info = ScheduleInfo {
        record: ScheduleRecord {
            spec,
            last_slot: None,
            last_task: None,
            created_at: now,
            updated_at: now,
            version: 0,
        },
        next: None,
    };
    let session = Auth::new(None, None).open_session();
    let html = schedules::schedule(&info, &[now], &session).into_string();
    assert_escaped(&html);
    assert!(
        html.contains("action=\"/ui/schedules/%3Cscript%3E"),
        "{html}"
    );
}

#[tokio::test]
async fn every_page_renders_with_a_strict_csp_and_no_store() {
    let system = start().await;
    let id = held(&system).await;
    let app = open(&system);
    for path in [
        "/ui",
        "/ui/tasks",
        &format!("/ui/tasks/{id}"),
        "/ui/queues",
        "/ui/schedules",
        "/ui/cluster",
    ] {
        let a = get(&app, path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        let csp = a.header(header::CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(a.header(header::CACHE_CONTROL), "no-store", "{path}");
        assert!(
            !a.body.contains("<script>") && !a.body.contains(" style="),
            "inline code on {path}"
        );
        assert!(
            !a.body.contains("http://") && !a.body.contains("https://"),
            "an outside URL on {path}"
        );
    }
}

#[tokio::test]
async fn a_bad_filter_is_an_error_page_naming_the_parameter_not_an_empty_list() {
    let system = start().await;
    let a = get(&open(&system), "/ui/tasks?state=bogus", None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("parameter state: expected one of"),
        "{}",
        a.body
    );
    let a = get(&open(&system), "/ui/tasks?from=yesterday", None).await;
    assert!(a.body.contains("parameter from"), "{}", a.body);
}

#[tokio::test]
async fn assets_are_served_with_a_year_of_cache_and_an_etag_that_answers_304() {
    let system = start().await;
    let app = open(&system);
    let a = get(&app, "/ui/assets/vendor/htmx.min.js", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header(header::CACHE_CONTROL).contains("immutable"));
    assert!(a
        .header(header::CONTENT_TYPE)
        .starts_with("text/javascript"));
    let etag = a.header(header::ETAG).to_string();
    let req = axum::http::Request::get("/ui/assets/vendor/htmx.min.js")
        .header(header::IF_NONE_MATCH, &etag)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        get(&app, "/ui/assets/nope.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_embedded_vendored_files_match_their_checksums() {
    let sums = include_str!("../../../assets/ui/CHECKSUMS");
    let mut checked = 0;
    for line in sums.lines() {
        let (want, path) = line.split_once("  ").unwrap();
        let file = Assets::get(path).unwrap_or_else(|| panic!("{path} is not embedded"));
        let have: String = file
            .metadata
            .sha256_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            have, want,
            "{path} differs from CHECKSUMS: run scripts/vendor-ui.sh"
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "htmx, its sse extension and idiomorph are listed"
    );
}

#[test]
fn all_assets_together_stay_within_100_kb_gzipped() {
    let mut total = 0;
    for path in Assets::iter() {
        let data = Assets::get(&path).unwrap().data;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data).unwrap();
        total += gz.finish().unwrap().len();
    }
    assert!(total <= 100 * 1024, "assets are {total} bytes gzipped");
}

#[test]
fn the_gates_table_shows_each_breaker_state_the_next_probe_the_rate_limit_and_its_tokens() {
    use crate::breaker::BreakerState;
    use crate::ratelimit::RateLimit;
    use crate::system::KindGates;
    let gate = |kind: &str, breaker, next_probe| KindGates {
        kind: kind.into(),
        breaker,
        next_probe,
        rate_limit: None,
        tokens: None,
    };
    let gates = [
        gate(
            "a",
            Some(BreakerState::Open),
            Some(std::time::Duration::from_secs(12)),
        ),
        gate("b", Some(BreakerState::HalfOpen), None),
        KindGates {
            rate_limit: Some(RateLimit::per_second(std::num::NonZeroU32::new(5).unwrap())),
            tokens: Some(3),
            ..gate("<c>", None, None)
        },
    ];
    let html = super::super::queues::gates_table(&gates).into_string();
    assert!(
        html.contains("badge open") && html.contains("in 12 s"),
        "{html}"
    );
    assert!(html.contains("half-open: probing"), "{html}");
    assert!(
        html.contains("5/s, burst 5") && html.contains("&lt;c&gt;"),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="num">3</td>"#),
        "the tokens left: {html}"
    );
}

#[tokio::test]
async fn the_queue_table_shows_a_queues_rate_limit_and_the_tokens_it_has_left() {
    use crate::ratelimit::RateLimit;
    let limit = RateLimit::per_second(std::num::NonZeroU32::new(7).unwrap());
    let builder = TaskSystem::builder()
        .namespace(format!("ui-{}", TaskId::new()))
        .queue(QueueConfig::new("limited").rate_limit(limit));
    let system = builtin::register(builder, ExecConfig::default())
        .start()
        .await
        .expect("system starts");
    let stats = system.queues();
    let limited = stats.iter().find(|q| q.name == "limited").unwrap();
    assert_eq!(limited.rate_limit, Some(limit));
    assert_eq!(limited.tokens, Some(7), "a new limiter has its whole burst");
    let a = get(&open(&system), "/ui/queues", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let row = a
        .body
        .split("<tr>")
        .find(|r| r.contains(">limited<"))
        .unwrap();
    assert!(row.contains("7/s, burst 7"), "{row}");
    assert!(row.contains(r#"<td class="num">7</td>"#), "{row}");
    let default = a
        .body
        .split("<tr>")
        .find(|r| r.contains(">default<"))
        .unwrap();
    assert!(
        default.contains("none"),
        "a queue without a limit says so: {default}"
    );
    system.shutdown(std::time::Duration::from_secs(5)).await;
}
