//! A cluster-wide circuit breaker on a store several processes share (a shared memory
//! store, paused time): it opens on every node within a second of opening on one, its
//! half-open probe runs on one node only while the others' tasks wait, and the probe's
//! success closes it everywhere.

mod common;

use std::time::Duration;

use common::{gate, task, unique_ns};
use taskmesh::breaker::{BreakerConfig, BreakerState};
use taskmesh::config::{KindConfig, SystemConfig};
use taskmesh::store::MemoryStore;
use taskmesh::system::HandlerOptions;
use taskmesh::testing::{Script, ScriptEvent, ScriptHandler};
use taskmesh::{QueueConfig, TaskSystem};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

const COOLDOWN: Duration = Duration::from_secs(5);
/// The coordinators' poll, which mirrors the shared breakers.
const POLL: Duration = Duration::from_millis(250);

struct Node {
    sys: TaskSystem,
    handler: ScriptHandler,
    events: UnboundedReceiver<ScriptEvent>,
}

async fn node(store: &MemoryStore, name: &str) -> Node {
    let (handler, events) = ScriptHandler::new();
    let breaker = BreakerConfig {
        failure_threshold: 3,
        cooldown: COOLDOWN,
        ..BreakerConfig::default()
    }
    .cluster_wide();
    let sys = TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(2, 4))
        .liveness(Duration::from_secs(60), Duration::from_millis(500), POLL)
        .store(store.clone())
        .handler_with(
            handler.clone().with_max_attempts(1),
            HandlerOptions::default().breaker(breaker),
        )
        .start()
        .await
        .unwrap();
    Node {
        sys,
        handler,
        events,
    }
}

fn breaker(sys: &TaskSystem) -> BreakerState {
    let gates = sys.kind_gates();
    let script = gates.iter().find(|g| g.kind == "script").unwrap();
    script.breaker.unwrap()
}

/// Steps paused time by 10 ms until `sys`'s breaker is `state`; the time it took.
async fn until_breaker(sys: &TaskSystem, state: BreakerState, within: Duration) -> Duration {
    let began = Instant::now();
    while breaker(sys) != state {
        assert!(
            began.elapsed() <= within,
            "the breaker is still {:?} after {within:?}",
            breaker(sys)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    began.elapsed()
}

/// Starts and ends seen on `events` since the last call.
fn seen(events: &mut UnboundedReceiver<ScriptEvent>) -> (usize, usize) {
    let (mut starts, mut ends) = (0, 0);
    while let Ok(e) = events.try_recv() {
        if e.started {
            starts += 1;
        } else {
            ends += 1;
        }
    }
    (starts, ends)
}

#[tokio::test(start_paused = true)]
async fn a_cluster_wide_breaker_opens_everywhere_probes_once_and_closes_everywhere() {
    let store = MemoryStore::shared();
    let mut a = node(&store, "a").await;
    let mut b = node(&store, "b").await;

    // Three failures on a open the breaker there; b follows within a second.
    for _ in 0..3 {
        let fail = Script::Fail {
            message: "down".into(),
        };
        a.sys.submit(task(fail)).await.unwrap();
    }
    let (mut opened_a, mut opened_b) = (None, None);
    let began = Instant::now();
    while opened_a.is_none() || opened_b.is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "not open on both"
        );
        let open = |sys: &TaskSystem| breaker(sys) == BreakerState::Open;
        if opened_a.is_none() && open(&a.sys) {
            opened_a = Some(Instant::now());
        }
        if opened_b.is_none() && open(&b.sys) {
            opened_b = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (opened_a, opened_b) = (opened_a.unwrap(), opened_b.unwrap());
    assert!(opened_a <= opened_b, "a tripped it");
    let lag = opened_b - opened_a;
    eprintln!("figure: the breaker opened on b {lag:?} after a (poll {POLL:?})");
    assert!(lag <= Duration::from_secs(1), "b followed after {lag:?}");
    assert_eq!(seen(&mut b.events), (0, 0), "b ran none of the failures");
    assert_eq!(seen(&mut a.events), (3, 3));

    // Both nodes have tasks waiting; after the cooldown one probe runs, on one node.
    for n in [&a, &b] {
        for _ in 0..2 {
            n.sys.submit(gate("probe")).await.unwrap();
        }
    }
    tokio::time::sleep(COOLDOWN + Duration::from_secs(1)).await;
    let (sa, sb) = (seen(&mut a.events).0, seen(&mut b.events).0);
    assert_eq!(sa + sb, 1, "one probe across the cluster: a {sa}, b {sb}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (seen(&mut a.events).0, seen(&mut b.events).0),
        (0, 0),
        "the others wait behind the probe"
    );
    for n in [&a, &b] {
        assert_eq!(breaker(&n.sys), BreakerState::HalfOpen);
    }

    // The probe succeeds: closed on its node at once, on the other within a second, and
    // every waiting task runs.
    let (prober, other) = if sa == 1 { (&a, &b) } else { (&b, &a) };
    prober.handler.open("probe", 2);
    other.handler.open("probe", 2);
    until_breaker(&prober.sys, BreakerState::Closed, Duration::from_secs(1)).await;
    until_breaker(&other.sys, BreakerState::Closed, Duration::from_secs(1)).await;
    let mut ends = 0;
    let began = Instant::now();
    while ends < 4 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{ends} of 4 ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        ends += seen(&mut a.events).1 + seen(&mut b.events).1;
    }
    for n in [a, b] {
        n.sys.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn gates_configured_for_a_kind_that_is_not_registered_are_refused_naming_it() {
    let (handler, _events) = ScriptHandler::new();
    let config = SystemConfig {
        kinds: vec![KindConfig {
            name: "mail".into(),
            breaker: Some(BreakerConfig::default()),
            rate_limit: None,
        }],
        ..SystemConfig::default()
    };
    let err = TaskSystem::builder()
        .namespace(unique_ns("kinds"))
        .config(config)
        .handler(handler)
        .start()
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("\"mail\"") && text.contains("script"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_breaker_replaces_the_handlers_own() {
    let (handler, mut events) = ScriptHandler::new();
    let config = SystemConfig {
        kinds: vec![KindConfig {
            name: "script".into(),
            breaker: Some(BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            }),
            rate_limit: None,
        }],
        ..SystemConfig::default()
    };
    let sys = TaskSystem::builder()
        .namespace(unique_ns("kinds"))
        .config(config)
        .handler(handler.with_max_attempts(1))
        .start()
        .await
        .unwrap();
    assert_eq!(breaker(&sys), BreakerState::Closed);
    let fail = Script::Fail {
        message: "down".into(),
    };
    sys.submit(task(fail)).await.unwrap();
    until_breaker(&sys, BreakerState::Open, Duration::from_secs(5)).await;
    assert_eq!(seen(&mut events), (1, 1), "one failure opened it");
    sys.shutdown(Duration::from_secs(1)).await;
}
