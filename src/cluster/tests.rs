use super::*;
use crate::secret::Secret;
use crate::store::MemoryStore;

fn config(node: &str) -> ClusterConfig {
    let listen = "127.0.0.1:0".parse().unwrap();
    ClusterConfig::new(node, listen, "127.0.0.1:7999", Secret::new("c"))
}

#[tokio::test]
async fn joining_needs_a_shared_store_and_the_systems_own_name_and_address() {
    let alone = TaskSystem::builder()
        .namespace("cl-alone")
        .start()
        .await
        .unwrap();
    let err = Cluster::start(alone.clone(), config("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NotShared), "{err}");
    alone.shutdown(Duration::from_secs(1)).await;

    let store = MemoryStore::shared();
    let unnamed = TaskSystem::builder()
        .namespace("cl-unnamed")
        .store(store.clone())
        .node_name("a")
        .start()
        .await
        .unwrap();
    let err = Cluster::start(unnamed.clone(), config("a"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("advertise(\"127.0.0.1:7999\")"),
        "{err}"
    );
    unnamed.shutdown(Duration::from_secs(1)).await;

    let named = TaskSystem::builder()
        .namespace("cl-named")
        .store(store)
        .node_name("a")
        .advertise("127.0.0.1:7999")
        .start()
        .await
        .unwrap();
    let cluster = Cluster::start(named.clone(), config("a")).await.unwrap();
    let again = Cluster::start(named.clone(), config("a"))
        .await
        .unwrap_err();
    assert!(matches!(again, ClusterError::AlreadyJoined), "{again}");
    let status = cluster.status().await;
    assert_eq!(status.answered_by, "a");
    assert_eq!(status.nodes.len(), 1);
    assert!(status.nodes[0].this && status.nodes[0].state == NodeState::Up);
    cluster.shutdown().await;
    named.shutdown(Duration::from_secs(1)).await;
}

/// Routes every task to one process and loses every hint.
struct LosesHints(crate::store::Owner);

impl crate::runtime::Peers for LosesHints {
    fn place(&self, _: &str, _: Option<&str>) -> crate::runtime::Placement {
        crate::runtime::Placement::There(self.0.clone())
    }
    fn hint(&self, _: &crate::store::Owner, _: &str, _: Vec<crate::TaskId>) {}
    fn live(
        &self,
        _: &crate::store::Owner,
        _: crate::TaskId,
    ) -> futures::future::BoxFuture<'static, Option<crate::TaskStatus>> {
        Box::pin(async { None })
    }
    fn deliver(&self, _: &crate::store::Owner, _: crate::store::Requested) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_routed_to_a_node_whose_hint_is_lost_runs_there_about_one_poll_later() {
    let store = MemoryStore::shared();
    let start = |ns: &'static str, node: &'static str| {
        let store = store.clone();
        async move {
            crate::builtin::register(
                TaskSystem::builder()
                    .namespace(ns)
                    .store(store)
                    .node_name(node)
                    .liveness(
                        Duration::from_secs(15),
                        Duration::from_secs(2),
                        Duration::from_millis(200),
                    ),
                crate::builtin::ExecConfig::default(),
            )
            .start()
            .await
            .unwrap()
        }
    };
    let a = start("cl-route-a", "a").await;
    let b = start("cl-route-b", "b").await;
    let to_b = b.shared.journal.owner().unwrap();
    // Both are in the "cluster" (b looks for routed tasks only then).
    for s in [&a, &b] {
        let peers = std::sync::Arc::new(LosesHints(to_b.clone()));
        assert!(s.shared.peers.set(peers).is_ok());
    }
    let receipt = a
        .submit(crate::NewTask::new("noop", serde_json::json!(null)))
        .await
        .unwrap();
    let ended = b
        .wait_timeout(receipt.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.state, crate::TaskState::Succeeded, "{ended:?}");
    let events = a.events(receipt.id).await.unwrap();
    let created = events[0].event.at;
    let started = events
        .iter()
        .find_map(|e| match &e.event.kind {
            crate::store::EventKind::Started {
                worker: Some(w), ..
            } => Some((w.clone(), e.event.at)),
            _ => None,
        })
        .expect("a started event");
    assert!(started.0.starts_with("b/"), "it ran on b: {events:?}");
    let took = started.1.duration_since(created).unwrap();
    assert!(
        took < Duration::from_secs(1),
        "started {took:?} after its submit: more than a poll late"
    );
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}
