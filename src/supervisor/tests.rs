//! Supervisor tests. A scripted `Probe` child reports its starts and stops on a channel;
//! tests wait on those events (and on actor exits), never on sleeps. Time is paused, so
//! backoff delays pass instantly unless a test holds the clock.

use std::time::Duration;

use futures::FutureExt;
use ractor::{
    call_t, Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::*;
use crate::health::HealthStatus;
use crate::task::Backoff;

type Event = (String, &'static str);

/// A child that reports `(id, "start")` and `(id, "stop")`, fails on `Fail` and exits
/// normally on `Exit`.
struct Probe;

/// The probe's arguments and state.
struct ProbeArgs {
    id: String,
    events: UnboundedSender<Event>,
    refuse_start: bool,
}

#[derive(ractor_cluster::RactorMessage)]
enum ProbeMsg {
    Fail,
    Exit,
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ProbeArgs;
    type Arguments = ProbeArgs;

    async fn pre_start(
        &self,
        _: ActorRef<ProbeMsg>,
        args: ProbeArgs,
    ) -> Result<ProbeArgs, ActorProcessingErr> {
        if args.refuse_start {
            return Err(format!("probe {} refused to start", args.id).into());
        }
        let _ = args.events.send((args.id.clone(), "start"));
        Ok(args)
    }

    async fn post_stop(
        &self,
        _: ActorRef<ProbeMsg>,
        s: &mut ProbeArgs,
    ) -> Result<(), ActorProcessingErr> {
        let _ = s.events.send((s.id.clone(), "stop"));
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        s: &mut ProbeArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Fail => Err(format!("probe {} failed", s.id).into()),
            ProbeMsg::Exit => {
                me.stop(None);
                Ok(())
            }
        }
    }
}

/// A parent that forwards the failures and exits of its children as strings.
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = UnboundedSender<String>;
    type Arguments = UnboundedSender<String>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tx: UnboundedSender<String>,
    ) -> Result<UnboundedSender<String>, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut UnboundedSender<String>,
    ) -> Result<(), ActorProcessingErr> {
        let _ = match evt {
            SupervisionEvent::ActorFailed(_, err) => tx.send(format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(..) => tx.send("terminated".into()),
            _ => Ok(()),
        };
        Ok(())
    }
}

fn probe_spec(id: &str, events: &UnboundedSender<Event>, refuse_start: bool) -> ChildSpec {
    let (id, events) = (id.to_string(), events.clone());
    ChildSpec::new(id.clone(), move |sup| {
        let args = ProbeArgs {
            id: id.clone(),
            events: events.clone(),
            refuse_start,
        };
        async move {
            Ok(Actor::spawn_linked(None, Probe, args, sup)
                .await?
                .0
                .get_cell())
        }
        .boxed()
    })
}

fn probe(id: &str, events: &UnboundedSender<Event>) -> ChildSpec {
    probe_spec(id, events, false)
}

/// A spec of probes with these ids, and the receiver of their events.
fn probes(
    strategy: Strategy,
    ids: &[&str],
) -> (
    SupervisorSpec,
    UnboundedSender<Event>,
    UnboundedReceiver<Event>,
) {
    let (tx, rx) = unbounded_channel();
    let spec = ids.iter().fold(SupervisorSpec::new(strategy), |s, id| {
        s.child(probe(id, &tx))
    });
    (spec, tx, rx)
}

async fn start(label: &str, spec: SupervisorSpec) -> ActorRef<SupervisorMsg> {
    start_supervisor(None, Supervisor::new(label), spec, None)
        .await
        .expect("supervisor starts")
        .0
}

async fn children(sup: &ActorRef<SupervisorMsg>) -> Vec<ChildInfo> {
    call_t!(sup, SupervisorMsg::Children, 5_000).expect("children")
}

async fn health(sup: &ActorRef<SupervisorMsg>) -> ServiceHealth {
    call_t!(sup, SupervisorMsg::Health, 5_000).expect("health")
}

async fn cell_of(sup: &ActorRef<SupervisorMsg>, id: &str) -> ActorCell {
    let child = children(sup).await.into_iter().find(|c| c.id == id);
    child
        .and_then(|c| c.cell)
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// Sends `msg` to the child `id` and waits until it has exited (and so its supervisor has
/// been told).
async fn send_and_wait_exit(sup: &ActorRef<SupervisorMsg>, id: &str, msg: ProbeMsg) {
    let cell = cell_of(sup, id).await;
    ActorRef::<ProbeMsg>::from(cell.clone())
        .send_message(msg)
        .expect("probe alive");
    cell.wait(None).await.expect("probe exits");
}

async fn fail(sup: &ActorRef<SupervisorMsg>, id: &str) {
    send_and_wait_exit(sup, id, ProbeMsg::Fail).await;
}

async fn next<T>(rx: &mut UnboundedReceiver<T>) -> T {
    let recv = tokio::time::timeout(Duration::from_secs(30), rx.recv());
    recv.await
        .expect("an event within 30 s")
        .expect("channel open")
}

async fn expect_events(rx: &mut UnboundedReceiver<Event>, expected: &[(&str, &str)]) {
    for (id, what) in expected {
        let (got_id, got_what) = next(rx).await;
        assert_eq!(
            (got_id.as_str(), got_what),
            (*id, *what),
            "expected {expected:?}"
        );
    }
}

/// Asserts no event is waiting, after a round trip through the supervisor.
async fn expect_quiet(sup: &ActorRef<SupervisorMsg>, rx: &mut UnboundedReceiver<Event>) {
    children(sup).await;
    assert_eq!(rx.try_recv().ok(), None);
}

fn restarts(children: &[ChildInfo]) -> Vec<(&str, u32)> {
    children
        .iter()
        .map(|c| (c.id.as_str(), c.restarts))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn children_start_in_order_and_stop_in_reverse_order() {
    let (spec, _tx, mut rx) = probes(Strategy::OneForOne, &["a", "b", "c"]);
    let sup = start("order", spec).await;
    expect_events(&mut rx, &[("a", "start"), ("b", "start"), ("c", "start")]).await;
    sup.stop_and_wait(None, None).await.unwrap();
    expect_events(&mut rx, &[("c", "stop"), ("b", "stop"), ("a", "stop")]).await;
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let (spec, _tx, mut rx) = probes(Strategy::OneForOne, &["a", "b", "c"]);
    let sup = start("one-for-one", spec).await;
    expect_events(&mut rx, &[("a", "start"), ("b", "start"), ("c", "start")]).await;
    fail(&sup, "b").await;
    expect_events(&mut rx, &[("b", "start")]).await;
    expect_quiet(&sup, &mut rx).await;
    assert_eq!(
        restarts(&children(&sup).await),
        [("a", 0), ("b", 1), ("c", 0)]
    );
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_every_child_in_start_order() {
    let (spec, _tx, mut rx) = probes(Strategy::OneForAll, &["a", "b", "c"]);
    let sup = start("one-for-all", spec).await;
    expect_events(&mut rx, &[("a", "start"), ("b", "start"), ("c", "start")]).await;
    fail(&sup, "b").await;
    let expected = [
        ("c", "stop"),
        ("a", "stop"),
        ("a", "start"),
        ("b", "start"),
        ("c", "start"),
    ];
    expect_events(&mut rx, &expected).await;
    expect_quiet(&sup, &mut rx).await;
    assert_eq!(
        restarts(&children(&sup).await),
        [("a", 1), ("b", 1), ("c", 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let (spec, _tx, mut rx) = probes(Strategy::RestForOne, &["a", "b", "c"]);
    let sup = start("rest-for-one", spec).await;
    expect_events(&mut rx, &[("a", "start"), ("b", "start"), ("c", "start")]).await;
    fail(&sup, "b").await;
    expect_events(&mut rx, &[("c", "stop"), ("b", "start"), ("c", "start")]).await;
    expect_quiet(&sup, &mut rx).await;
    assert_eq!(
        restarts(&children(&sup).await),
        [("a", 0), ("b", 1), ("c", 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn transient_child_is_restarted_after_a_failure_but_not_after_a_normal_exit() {
    let (tx, mut rx) = unbounded_channel();
    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(probe("t", &tx).restart(Restart::Transient));
    let sup = start("transient", spec).await;
    expect_events(&mut rx, &[("t", "start")]).await;
    fail(&sup, "t").await;
    expect_events(&mut rx, &[("t", "start")]).await;
    send_and_wait_exit(&sup, "t", ProbeMsg::Exit).await;
    expect_events(&mut rx, &[("t", "stop")]).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    expect_quiet(&sup, &mut rx).await;
    assert!(children(&sup).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn temporary_child_is_never_restarted() {
    let (tx, mut rx) = unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("x", &tx).restart(Restart::Temporary))
        .child(probe("y", &tx).restart(Restart::Temporary))
        .child(probe("p", &tx));
    let sup = start("temporary", spec).await;
    expect_events(&mut rx, &[("x", "start"), ("y", "start"), ("p", "start")]).await;
    fail(&sup, "x").await;
    send_and_wait_exit(&sup, "y", ProbeMsg::Exit).await;
    expect_events(&mut rx, &[("y", "stop")]).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    expect_quiet(&sup, &mut rx).await;
    assert_eq!(restarts(&children(&sup).await), [("p", 0)]);
    assert_eq!(health(&sup).await.status, HealthStatus::Healthy);
}

#[tokio::test(start_paused = true)]
async fn restarts_wait_for_the_backoff_delay() {
    let (spec, _tx, mut rx) = probes(Strategy::OneForOne, &["a"]);
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let sup = start(
        "backoff",
        spec.intensity(Intensity::default().backoff(backoff)),
    )
    .await;
    expect_events(&mut rx, &[("a", "start")]).await;
    for delay_ms in [100, 200] {
        fail(&sup, "a").await;
        assert!(!children(&sup).await[0].running);
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(delay_ms - 1)).await;
        expect_quiet(&sup, &mut rx).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        expect_events(&mut rx, &[("a", "start")]).await;
    }
}

#[tokio::test(start_paused = true)]
async fn exceeding_restart_intensity_escalates_to_the_parent() {
    let (parent_tx, mut parent_rx) = unbounded_channel();
    let (parent, _) = Actor::spawn(None, Parent, parent_tx).await.unwrap();
    let (spec, _tx, mut rx) = probes(Strategy::OneForOne, &["a", "b"]);
    let spec = spec.intensity(Intensity::new(2, Duration::from_secs(60)));
    let sup = start_supervisor(
        None,
        Supervisor::new("escalate"),
        spec,
        Some(parent.get_cell()),
    );
    let (sup, handle) = sup.await.unwrap();
    expect_events(&mut rx, &[("a", "start"), ("b", "start")]).await;
    for _ in 0..2 {
        fail(&sup, "a").await;
        expect_events(&mut rx, &[("a", "start")]).await;
    }
    let cells: Vec<ActorCell> = children(&sup)
        .await
        .into_iter()
        .filter_map(|c| c.cell)
        .collect();
    fail(&sup, "a").await;
    let reason = next(&mut parent_rx).await;
    assert!(
        reason.starts_with("failed: restart intensity exceeded: 3 restarts in 60s (max 2)"),
        "{reason}"
    );
    expect_events(&mut rx, &[("b", "stop")]).await;
    assert!(cells.iter().all(|c| c.get_status() == ActorStatus::Stopped));
    handle.await.unwrap();
    assert_eq!(rx.try_recv().ok(), None);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start() {
    let (tx, mut rx) = unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &tx))
        .child(probe_spec("b", &tx, true))
        .child(probe("c", &tx));
    let err = start_supervisor(None, Supervisor::new("bad-start"), spec, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(r#"child "b" failed to start"#),
        "{err}"
    );
    expect_events(&mut rx, &[("a", "start"), ("a", "stop")]).await;
    assert_eq!(rx.try_recv().ok(), None);
}

#[tokio::test(start_paused = true)]
async fn nested_supervisor_stops_its_children_in_order_when_the_parent_stops() {
    let (inner, tx, mut rx) = probes(Strategy::OneForOne, &["a", "b"]);
    let root = SupervisorSpec::new(Strategy::OneForAll)
        .child(Supervisor::new("inner").child_spec("inner", inner))
        .child(probe("c", &tx));
    let sup = start("root", root).await;
    expect_events(&mut rx, &[("a", "start"), ("b", "start"), ("c", "start")]).await;
    sup.stop_and_wait(None, None).await.unwrap();
    expect_events(&mut rx, &[("c", "stop"), ("b", "stop"), ("a", "stop")]).await;
}

#[tokio::test(start_paused = true)]
async fn health_reports_degraded_after_a_restart() {
    let (spec, _tx, mut rx) = probes(Strategy::OneForOne, &["a"]);
    let sup = start("health", spec).await;
    expect_events(&mut rx, &[("a", "start")]).await;
    let report = health(&sup).await;
    assert_eq!(
        (report.service.as_str(), report.status),
        ("supervisor:health", HealthStatus::Healthy)
    );
    fail(&sup, "a").await;
    assert_eq!(health(&sup).await.status, HealthStatus::Degraded);
    expect_events(&mut rx, &[("a", "start")]).await;
    assert_eq!(health(&sup).await.status, HealthStatus::Degraded);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(health(&sup).await.status, HealthStatus::Healthy);
}
