//! Sessions and actions: login, roles, CSRF, and the actor in the task's events.

use axum::http::{header, StatusCode};
use chrono::Utc;
use serde_json::json;

use super::*;
use crate::scheduler::ScheduleSpec;
use crate::store::{EventKind, TaskFilter};
use crate::TaskState;

/// Every action route, for a system with task `id`, queue `held`, schedule `nightly`.
fn every_action(id: TaskId) -> Vec<String> {
    let mut paths: Vec<String> = ["cancel", "pause", "resume", "restart", "complete"]
        .iter()
        .map(|a| format!("/ui/tasks/{id}/{a}"))
        .collect();
    paths.extend(
        ["pause", "resume"]
            .iter()
            .map(|a| format!("/ui/queues/held/{a}")),
    );
    paths.extend(
        ["pause", "resume", "fire"]
            .iter()
            .map(|a| format!("/ui/schedules/nightly/{a}")),
    );
    paths
}

async fn with_schedule(system: &TaskSystem) {
    let task = NewTask::new("noop", json!({})).queue("held");
    system
        .put_schedule(ScheduleSpec::new("nightly", "0 0 3 * * *", task))
        .await
        .unwrap();
}

#[tokio::test]
async fn without_a_session_pages_send_to_the_login_form_and_the_rest_is_refused() {
    let system = start().await;
    let app = guarded(&system);
    let a = get(&app, "/ui/tasks", None).await;
    assert_eq!(
        (a.status, a.header(header::LOCATION)),
        (StatusCode::SEE_OTHER, "/ui/login")
    );
    assert_eq!(
        get(&app, "/ui/live", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let id = held(&system).await;
    let a = post(&app, &format!("/ui/tasks/{id}/cancel"), None, "confirm=yes").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let forged = "taskmesh_session=b3BlcmF0b3J8OTk5OTk5OTk5OXx4fGV2ZQ.AAAA";
    assert_eq!(
        get(&app, "/ui", Some(forged)).await.status,
        StatusCode::SEE_OTHER
    );
    let login = get(&app, "/ui/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("type=\"password\""), "{}", login.body);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_ones_give_their_roles() {
    let system = start().await;
    let app = guarded(&system);
    let a = post(&app, "/ui/login", None, "token=nope&name=eve").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.header(header::SET_COOKIE).is_empty());
    let viewer = login(&app, VIEWER, "val").await;
    let page = get(&app, "/ui", Some(&viewer)).await;
    assert!(page.body.contains("ui:val · viewer"), "{}", page.body);
    let operator = login(&app, OPERATOR, "olga").await;
    let page = get(&app, "/ui", Some(&operator)).await;
    assert!(page.body.contains("ui:olga · operator"), "{}", page.body);
}

#[tokio::test]
async fn a_viewer_is_refused_every_action_even_with_its_csrf_token() {
    let system = start().await;
    with_schedule(&system).await;
    let id = held(&system).await;
    let app = guarded(&system);
    let viewer = login(&app, VIEWER, "val").await;
    let csrf = get(&app, "/ui", Some(&viewer)).await.csrf();
    for path in every_action(id) {
        let a = post(
            &app,
            &path,
            Some(&viewer),
            &format!("csrf={csrf}&confirm=yes"),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(a.body.contains("read-only"), "{path}: {}", a.body);
    }
    assert_eq!(
        system.status(id).unwrap().state,
        TaskState::Pending,
        "nothing changed"
    );
    let page = get(&app, &format!("/ui/tasks/{id}"), Some(&viewer)).await;
    assert!(
        !page.body.contains("/cancel\""),
        "a viewer sees no action form"
    );
}

#[tokio::test]
async fn an_operator_without_the_right_csrf_token_is_refused_every_action() {
    let system = start().await;
    with_schedule(&system).await;
    let id = held(&system).await;
    let app = guarded(&system);
    let olga = login(&app, OPERATOR, "olga").await;
    for (app, cookie) in [(app, Some(olga)), (open(&system), None)] {
        for path in every_action(id) {
            for form in [
                "confirm=yes",
                "csrf=&confirm=yes",
                "csrf=forged&confirm=yes",
            ] {
                let a = post(&app, &path, cookie.as_deref(), form).await;
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {form}");
                assert!(a.body.contains("CSRF token is missing"), "{}", a.body);
            }
        }
    }
    assert_eq!(
        system.status(id).unwrap().state,
        TaskState::Pending,
        "nothing changed"
    );
}

#[tokio::test]
async fn an_operators_actions_apply_and_are_written_with_who_did_them() {
    let system = start().await;
    with_schedule(&system).await;
    let id = held(&system).await;
    let app = guarded(&system);
    let olga = login(&app, OPERATOR, "olga").await;
    let csrf = get(&app, "/ui", Some(&olga)).await.csrf();
    let act = |path: String, extra: &'static str| {
        let (app, olga, csrf) = (app.clone(), olga.clone(), csrf.clone());
        async move { post(&app, &path, Some(&olga), &format!("csrf={csrf}{extra}")).await }
    };
    let a = act(format!("/ui/tasks/{id}/pause"), "").await;
    assert_eq!(
        (a.status, a.header(header::LOCATION)),
        (
            StatusCode::SEE_OTHER,
            &*format!("/ui/tasks/{id}?done=pause")
        )
    );
    assert_eq!(system.status(id).unwrap().state, TaskState::Paused);
    act(format!("/ui/tasks/{id}/resume"), "").await;
    let confirm = act(format!("/ui/tasks/{id}/cancel"), "").await;
    assert_eq!(confirm.status, StatusCode::OK, "cancel asks first");
    assert!(
        confirm.body.contains("name=\"confirm\" value=\"yes\""),
        "{}",
        confirm.body
    );
    assert_eq!(system.status(id).unwrap().state, TaskState::Pending);
    act(
        format!("/ui/tasks/{id}/cancel"),
        "&confirm=yes&reason=stale",
    )
    .await;
    let view = system.get(id).await.unwrap();
    assert_eq!(view.status.state, TaskState::Cancelled);
    let by: Vec<(&str, Option<&str>)> = view
        .events
        .iter()
        .map(|e| (e.event.kind.name(), e.event.actor_id.as_deref()))
        .collect();
    assert!(by.contains(&("paused", Some("ui:olga"))), "{by:?}");
    assert!(by.contains(&("cancelled", Some("ui:olga"))), "{by:?}");
    assert!(view.events.iter().any(|e| e.event.kind
        == EventKind::Cancelled {
            reason: "stale".into()
        }));
    let again = act(format!("/ui/tasks/{id}/cancel"), "&confirm=yes").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    act("/ui/queues/held/resume".into(), "").await;
    assert!(
        !system
            .queues()
            .iter()
            .find(|q| q.name == "held")
            .unwrap()
            .paused
    );
    act("/ui/queues/held/pause".into(), "").await;
    assert!(
        system
            .queues()
            .iter()
            .find(|q| q.name == "held")
            .unwrap()
            .paused
    );
    act("/ui/schedules/nightly/pause".into(), "").await;
    assert!(system.schedule("nightly").await.unwrap().record.spec.paused);
    act("/ui/schedules/nightly/resume".into(), "").await;
    let a = act("/ui/schedules/nightly/fire".into(), "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let next = system.schedule("nightly").await.unwrap().next.unwrap();
    let tasks = system
        .list(TaskFilter::default(), 10, 0)
        .await
        .unwrap()
        .tasks;
    let key = format!("cron:nightly:{}", next.to_rfc3339());
    let keys: Vec<_> = tasks.iter().filter_map(|t| t.unique_key.clone()).collect();
    assert!(
        next > Utc::now() && tasks.len() == 2,
        "the next slot fired ahead: {keys:?} ({key})"
    );
}

#[tokio::test]
async fn complete_takes_a_json_result_and_names_a_bad_one() {
    let system = start().await;
    let id = held(&system).await;
    let app = open(&system);
    let csrf = get(&app, "/ui", None).await.csrf();
    let bad = post(
        &app,
        &format!("/ui/tasks/{id}/complete"),
        None,
        &format!("csrf={csrf}&result=%7Bnope"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("result: expected JSON"), "{}", bad.body);
    let ok = post(
        &app,
        &format!("/ui/tasks/{id}/complete"),
        None,
        &format!("csrf={csrf}&result=%7B%22ok%22%3A1%7D"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let done = system.get(id).await.unwrap().status;
    assert_eq!(
        (done.state, done.result),
        (TaskState::Succeeded, Some(json!({"ok": 1})))
    );
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_login_included() {
    let system = start().await;
    let app = guarded(&system);
    let fetch_site = header::HeaderName::from_static("sec-fetch-site");
    for (name, value) in [
        (header::ORIGIN, "http://evil.example"),
        (header::ORIGIN, "null"),
        (header::ORIGIN, "http://127.0.0.1:9999"),
        (fetch_site.clone(), "cross-site"),
        (fetch_site.clone(), "same-site"),
    ] {
        let req = axum::http::Request::post("/ui/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "127.0.0.1:7700")
            .header(name, value)
            .body(axum::body::Body::from(format!("token={OPERATOR}")))
            .unwrap();
        let a = send(&app, req).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{value}");
        assert!(a.header(header::SET_COOKIE).is_empty());
    }
    let req = axum::http::Request::post("/ui/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:7700")
        .header(header::ORIGIN, "null")
        .header(fetch_site, "same-origin")
        .body(axum::body::Body::from(format!("token={OPERATOR}")))
        .unwrap();
    assert_eq!(
        send(&app, req).await.status,
        StatusCode::SEE_OTHER,
        "same origin passes"
    );
}

#[tokio::test]
async fn login_attempts_beyond_the_burst_are_refused_with_retry_after() {
    let system = start().await;
    let app = guarded(&system);
    for _ in 0..5 {
        let a = post(&app, "/ui/login", None, "token=nope&name=eve").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = post(
        &app,
        "/ui/login",
        None,
        &format!("token={OPERATOR}&name=eve"),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(!a.header(header::RETRY_AFTER).is_empty());
    assert!(a.header(header::SET_COOKIE).is_empty(), "no session");
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_tls_or_when_configured() {
    let system = start().await;
    let app = guarded(&system);
    let plain = login(&app, OPERATOR, "olga").await;
    assert!(!plain.is_empty());
    let req = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .uri("/ui/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(format!("token={OPERATOR}&name=olga")))
        .unwrap();
    let a = send(&app, req).await;
    assert!(
        a.header(header::SET_COOKIE).contains("; Secure"),
        "over TLS"
    );
    let a = post(&app, "/ui/login", None, &format!("token={OPERATOR}&name=o")).await;
    assert!(
        !a.header(header::SET_COOKIE).contains("Secure"),
        "plain HTTP"
    );
    let config = UiConfig {
        operator_token: Some(Secret::new(OPERATOR)),
        secure_cookie: true,
        ..UiConfig::default()
    };
    let app = Dashboard::new(system.clone(), config).router();
    let a = post(&app, "/ui/login", None, &format!("token={OPERATOR}&name=o")).await;
    assert!(
        a.header(header::SET_COOKIE).contains("; Secure"),
        "configured"
    );
}

#[tokio::test]
async fn an_operator_adds_and_edits_a_schedule_and_a_viewer_cannot() {
    let system = start().await;
    let app = guarded(&system);
    let viewer = login(&app, VIEWER, "val").await;
    let vcsrf = get(&app, "/ui/schedules", Some(&viewer)).await.csrf();
    let form = "name=hourly&cron=0+0+*+*+*+*&timezone=&kind=noop&queue=held&args=%7B%7D";
    let a = post(
        &app,
        "/ui/schedules/save",
        Some(&viewer),
        &format!("csrf={vcsrf}&{form}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let olga = login(&app, OPERATOR, "olga").await;
    let csrf = get(&app, "/ui/schedules", Some(&olga)).await.csrf();
    let a = post(&app, "/ui/schedules/save", Some(&olga), form).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no CSRF token");
    let a = post(
        &app,
        "/ui/schedules/save",
        Some(&olga),
        &format!("csrf={csrf}&{form}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let spec = system.schedule("hourly").await.unwrap().record.spec;
    assert_eq!(
        (spec.cron.as_str(), spec.timezone.as_str()),
        ("0 0 * * * *", "UTC")
    );
    system.pause_schedule("hourly").await.unwrap();
    let edit = "name=hourly&cron=0+30+2+*+*+*&timezone=Europe%2FBerlin&kind=noop&queue=held&args=";
    let a = post(
        &app,
        "/ui/schedules/save",
        Some(&olga),
        &format!("csrf={csrf}&{edit}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let spec = system.schedule("hourly").await.unwrap().record.spec;
    assert_eq!(spec.timezone, "Europe/Berlin");
    assert!(spec.paused, "an edit keeps the other settings");
    let page = get(&app, "/ui/schedules", Some(&olga)).await;
    assert!(page.body.contains("at 02:30 every day"), "{}", page.body);
    let bad = "name=x&cron=nope&kind=noop";
    let a = post(
        &app,
        "/ui/schedules/save",
        Some(&olga),
        &format!("csrf={csrf}&{bad}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("role=\"alert\""), "{}", a.body);
    let form_page = get(&app, "/ui/schedules/edit?name=hourly", Some(&olga)).await;
    assert!(
        form_page.body.contains("value=\"Europe/Berlin\""),
        "{}",
        form_page.body
    );
}

#[tokio::test]
async fn an_operator_fires_a_chosen_slot_once_and_its_task_says_who_fired_it() {
    let system = start().await;
    with_schedule(&system).await;
    let app = guarded(&system);
    let olga = login(&app, OPERATOR, "olga").await;
    let page = get(&app, "/ui/schedules", Some(&olga)).await;
    assert_eq!(
        page.body.matches("aria-label=\"Fire the slot of ").count(),
        5,
        "a fire button per next slot"
    );
    assert!(
        page.body.contains("name=\"slot\" required"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let yesterday = (Utc::now() - chrono::Duration::days(1)).date_naive();
    let slot = yesterday.and_hms_opt(3, 0, 0).unwrap().and_utc();
    let fire = |raw: String| {
        let (app, olga, csrf) = (app.clone(), olga.clone(), csrf.clone());
        async move {
            let form = format!(
                "csrf={csrf}&slot={}",
                raw.replace(':', "%3A").replace('+', "%2B")
            );
            post(&app, "/ui/schedules/nightly/fire", Some(&olga), &form).await
        }
    };
    let first = fire(slot.to_rfc3339()).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let location = first.header(header::LOCATION).to_string();
    let id: TaskId = location
        .strip_prefix("/ui/tasks/")
        .and_then(|l| l.strip_suffix("?done=fire"))
        .expect("the new task's page")
        .parse()
        .unwrap();
    let view = system.get(id).await.unwrap();
    assert_eq!(
        view.status.unique_key.as_deref(),
        Some(&*format!(
            "cron:nightly:{}",
            slot.format("%Y-%m-%dT%H:%M:%SZ")
        ))
    );
    let created = &view.events[0].event;
    assert_eq!(
        (created.kind.name(), created.actor_id.as_deref()),
        ("created", Some("ui:olga"))
    );

    let again = fire(slot.format("%Y-%m-%dT%H:%M:%S").to_string()).await;
    assert_eq!(
        (again.status, again.header(header::LOCATION)),
        (
            StatusCode::SEE_OTHER,
            &*format!("/ui/tasks/{id}?done=fired-before")
        ),
        "the same slot, written as the form's UTC input, is the same task"
    );
    let total = system.count(TaskFilter::default()).await.unwrap();
    assert_eq!(total, 1, "one task for the slot");
    let shown = get(
        &app,
        &format!("/ui/tasks/{id}?done=fired-before"),
        Some(&olga),
    )
    .await;
    assert!(
        shown.body.contains("That slot had fired before"),
        "{}",
        shown.body
    );

    let off = fire((slot + chrono::Duration::seconds(1)).to_rfc3339()).await;
    assert_eq!(off.status, StatusCode::BAD_REQUEST, "{}", off.body);
    assert!(
        off.body.contains("is not a slot of schedule"),
        "{}",
        off.body
    );
    let junk = fire("yesterday".into()).await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    assert!(junk.body.contains("slot: expected a time"), "{}", junk.body);
    assert_eq!(system.count(TaskFilter::default()).await.unwrap(), 1);
}
