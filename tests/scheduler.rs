//! The cron scheduler on paused time: firing at slot times, persistence and catch-up
//! across restarts, exactly one task per slot, overlap, management, leadership.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{next_start, unique_ns};
use taskmesh::cron::CronError;
use taskmesh::scheduler::{CatchUp, Leadership, Overlap, ScheduleError, ScheduleSpec, TokioClock};
use taskmesh::store::{MemoryStore, TaskFilter};
use taskmesh::testing::{script, Script, ScriptHandler};
use taskmesh::{NewTask, TaskStatus, TaskSystem, TaskSystemBuilder};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, h, m, s).unwrap()
}

fn system(ns: &str, h: ScriptHandler, store: MemoryStore, now: DateTime<Utc>) -> TaskSystemBuilder {
    TaskSystem::builder()
        .namespace(ns)
        .clock(TokioClock::starting_at(now))
        .store(store)
        .handler(h)
}

fn ok_task() -> NewTask {
    NewTask::new("script", script(Script::Ok { value: 1.into() }))
}

/// The slots (from their unique keys) of the tasks a schedule created, oldest first.
async fn slots_of(sys: &TaskSystem, name: &str) -> Vec<DateTime<Utc>> {
    let filter = TaskFilter {
        created_by: Some(format!("cron:{name}")),
        ..Default::default()
    };
    let page = sys.list(filter, 1000, 0).await.unwrap();
    let mut slots: Vec<DateTime<Utc>> = page.tasks.iter().map(|t| slot_of(name, t)).collect();
    slots.sort();
    slots
}

fn slot_of(name: &str, t: &TaskStatus) -> DateTime<Utc> {
    let key = t
        .unique_key
        .as_deref()
        .expect("a cron task has a unique key");
    let slot = key
        .strip_prefix(&format!("cron:{name}:"))
        .expect("cron:{name}:{slot}");
    DateTime::parse_from_rfc3339(slot).unwrap().to_utc()
}

#[tokio::test(start_paused = true)]
async fn the_timer_fires_each_slot_at_its_time() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = system(&unique_ns("tick"), h, MemoryStore::new(), at(0, 0, 5))
        .start()
        .await
        .unwrap();
    let info = sys
        .put_schedule(ScheduleSpec::new("tick", "*/10 * * * * *", ok_task()))
        .await
        .unwrap();
    assert_eq!(info.next, Some(at(0, 0, 10)));
    let t0 = tokio::time::Instant::now();
    for expected in [5, 15, 25] {
        next_start(&mut rx).await;
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_secs(expected), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(expected) + Duration::from_millis(10),
            "late: {elapsed:?}"
        );
    }
    let page = sys
        .list(
            TaskFilter {
                created_by: Some("cron:tick".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let info = sys.schedule("tick").await.unwrap();
    assert_eq!(info.record.last_slot, Some(at(0, 0, 30)));
    assert_eq!(info.next, Some(at(0, 0, 40)));
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Fires 00:05 in a first system, then starts a second on the same store at `restart`,
/// and returns the slots of the tasks the second created at start.
async fn after_downtime(policy: CatchUp, restart: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let store = MemoryStore::new();
    let ns = unique_ns("catchup");
    let (h, mut rx) = ScriptHandler::new();
    let first = system(&ns, h, store.clone(), at(0, 4, 30))
        .start()
        .await
        .unwrap();
    let spec = ScheduleSpec::new("five", "0 */5 * * * *", ok_task()).catch_up(policy);
    first.put_schedule(spec).await.unwrap();
    next_start(&mut rx).await;
    first.shutdown(Duration::from_secs(1)).await;

    let (h2, _rx2) = ScriptHandler::new();
    let second = system(&ns, h2, store, restart).start().await.unwrap();
    let info = second.schedule("five").await.unwrap();
    assert_eq!(
        info.record.spec.catch_up, policy,
        "the schedule was persisted"
    );
    let slots = slots_of(&second, "five").await;
    second.shutdown(Duration::from_secs(1)).await;
    assert_eq!(slots[0], at(0, 5, 0), "the slot fired before the restart");
    slots[1..].to_vec()
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_missed_slots_follow_the_catch_up_policy() {
    let restart = at(0, 21, 10); // 00:10, 00:15 and 00:20 were missed; 00:20 by 70 s
    assert!(after_downtime(CatchUp::Skip, restart).await.is_empty());
    assert_eq!(
        after_downtime(CatchUp::Latest, restart).await,
        vec![at(0, 20, 0)]
    );
    assert_eq!(
        after_downtime(CatchUp::All, restart).await,
        vec![at(0, 10, 0), at(0, 15, 0), at(0, 20, 0)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slot_fired_twice_creates_one_task() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = system(&unique_ns("twice"), h, MemoryStore::new(), at(0, 0, 5))
        .start()
        .await
        .unwrap();
    sys.put_schedule(ScheduleSpec::new("t", "*/10 * * * * *", ok_task()))
        .await
        .unwrap();
    next_start(&mut rx).await; // the timer fired 00:00:10
    let again = sys.fire_schedule("t", at(0, 0, 10)).await.unwrap();
    assert!(again.duplicate, "firing a fired slot returns its task");
    let by_hand = sys.fire_schedule("t", at(0, 0, 50)).await.unwrap();
    let twice = sys.fire_schedule("t", at(0, 0, 50)).await.unwrap();
    assert!(!by_hand.duplicate && twice.duplicate);
    assert_eq!(by_hand.id, twice.id);
    let not_a_slot = sys.fire_schedule("t", at(0, 0, 51)).await;
    assert!(matches!(not_a_slot, Err(ScheduleError::Invalid(e)) if e.field == "slot"));
    assert_eq!(slots_of(&sys, "t").await, vec![at(0, 0, 10), at(0, 0, 50)]);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_slot_is_skipped_while_the_previous_run_still_runs_when_overlap_is_skip() {
    for (overlap, expected) in [(Overlap::Skip, 1), (Overlap::Allow, 3)] {
        let (h, _rx) = ScriptHandler::new();
        let sys = system(
            &unique_ns("overlap"),
            h.clone(),
            MemoryStore::new(),
            at(0, 0, 5),
        )
        .start()
        .await
        .unwrap();
        let gate = NewTask::new("script", script(Script::Gate { gate: "g".into() }));
        sys.put_schedule(ScheduleSpec::new("slow", "*/10 * * * * *", gate).overlap(overlap))
            .await
            .unwrap();
        common::advance_and_settle(&sys, Duration::from_secs(26)).await; // 00:00:31: slots 10, 20, 30
        assert_eq!(slots_of(&sys, "slow").await.len(), expected, "{overlap:?}");
        h.open("g", 3);
        sys.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn schedules_are_paused_resumed_listed_and_removed() {
    let (h, _rx) = ScriptHandler::new();
    let sys = system(&unique_ns("manage"), h, MemoryStore::new(), at(0, 0, 5))
        .start()
        .await
        .unwrap();
    sys.put_schedule(ScheduleSpec::new("m", "*/10 * * * * *", ok_task()))
        .await
        .unwrap();
    assert_eq!(
        sys.next_fires("m", 3).await.unwrap(),
        vec![at(0, 0, 10), at(0, 0, 20), at(0, 0, 30)]
    );
    let paused = sys.pause_schedule("m").await.unwrap();
    assert_eq!(paused.next, None);
    common::advance_and_settle(&sys, Duration::from_secs(30)).await; // 00:00:35
    assert!(
        slots_of(&sys, "m").await.is_empty(),
        "a paused schedule fires nothing"
    );
    let resumed = sys.resume_schedule("m").await.unwrap();
    assert_eq!(
        resumed.next,
        Some(at(0, 0, 40)),
        "slots passed while paused are skipped"
    );
    common::advance_and_settle(&sys, Duration::from_secs(6)).await; // 00:00:41
    assert_eq!(slots_of(&sys, "m").await, vec![at(0, 0, 40)]);
    assert_eq!(sys.schedules().await.unwrap().len(), 1);
    sys.remove_schedule("m").await.unwrap();
    assert!(sys.schedules().await.unwrap().is_empty());
    assert!(matches!(
        sys.remove_schedule("m").await,
        Err(ScheduleError::NotFound(_))
    ));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn bad_schedules_and_schedules_that_never_fire_are_refused_with_the_reason() {
    let (h, _rx) = ScriptHandler::new();
    let sys = system(&unique_ns("badsched"), h, MemoryStore::new(), at(0, 0, 0))
        .start()
        .await
        .unwrap();
    let put = |spec: ScheduleSpec| sys.put_schedule(spec);
    let bad_hour = put(ScheduleSpec::new("a", "0 0 25 * * *", ok_task()))
        .await
        .unwrap_err();
    assert!(
        bad_hour.to_string().contains("invalid hour field \"25\""),
        "{bad_hour}"
    );
    let zone = put(ScheduleSpec::new("a", "@daily", ok_task()).timezone("Moon/Base"))
        .await
        .unwrap_err();
    assert!(
        zone.to_string().contains("unknown time zone \"Moon/Base\""),
        "{zone}"
    );
    for never in ["0 0 0 30 2 *", "0 0 0 1 1 * 2020"] {
        let err = put(ScheduleSpec::new("a", never, ok_task()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ScheduleError::Cron(CronError::NeverFires { .. })),
            "{never}: {message}"
        );
        assert!(
            message.starts_with(&format!("expression {never:?} never fires: ")),
            "{message}"
        );
    }
    let kind = put(ScheduleSpec::new(
        "a",
        "@daily",
        NewTask::new("nope", serde_json::Value::Null),
    ))
    .await;
    assert!(matches!(kind, Err(ScheduleError::Invalid(e)) if e.field == "task.kind"));
    let keyed = put(ScheduleSpec::new("a", "@daily", ok_task().unique_key("k"))).await;
    assert!(matches!(keyed, Err(ScheduleError::Invalid(e)) if e.field == "task.unique_key/run_at"));
    let name = put(ScheduleSpec::new("has space", "@daily", ok_task())).await;
    assert!(matches!(name, Err(ScheduleError::Invalid(e)) if e.field == "name"));
    assert!(
        sys.schedules().await.unwrap().is_empty(),
        "nothing was stored"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Never the leader.
struct Follower;

impl Leadership for Follower {
    fn is_leader(&self) -> bool {
        false
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_without_leadership_fires_nothing() {
    let (h, _rx) = ScriptHandler::new();
    let sys = system(&unique_ns("follower"), h, MemoryStore::new(), at(0, 0, 5))
        .leadership(Follower)
        .start()
        .await
        .unwrap();
    sys.put_schedule(ScheduleSpec::new("f", "*/10 * * * * *", ok_task()))
        .await
        .unwrap();
    common::advance_and_settle(&sys, Duration::from_secs(30)).await;
    assert!(slots_of(&sys, "f").await.is_empty());
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn over_http_a_schedule_that_never_fires_is_a_400_that_says_so() {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    let (h, _rx) = ScriptHandler::new();
    let sys = system(&unique_ns("never"), h, MemoryStore::new(), at(0, 0, 0))
        .start()
        .await
        .unwrap();
    let app = taskmesh::http::router(sys.clone(), taskmesh::http::HttpConfig::default(), None);
    for (cron, says) in [
        ("0 0 0 30 2 *", "never fires: no date matches"),
        ("0 0 0 1 1 * 2020", "never fires: its last slot"),
        (
            "0 0 24 * * *",
            "invalid hour field \"24\" at column 5: expected a value in 0-23, got 24",
        ),
    ] {
        let body = serde_json::json!({"cron": cron, "task": {"kind": "script", "args": {}}});
        let req = Request::builder()
            .method(Method::PUT)
            .uri("/v1/schedules/never")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let answer = app.clone().oneshot(req).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{cron}");
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{cron}: {json}");
    }
    assert!(sys.schedules().await.unwrap().is_empty());
    sys.shutdown(Duration::from_secs(1)).await;
}
