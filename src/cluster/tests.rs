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
