//! `/v1/cluster` on a node that is not in a cluster, and draining one whose store is not
//! shared: clear errors, not empty answers.

use axum::http::{Method, StatusCode};

use super::{open, request, send, start, stop};

#[tokio::test]
async fn a_node_outside_a_cluster_says_so_and_cannot_drain_without_a_shared_store() {
    let system = start(|b| b).await;
    let app = open(&system);
    let answer = send(&app, request(Method::GET, "/v1/cluster", None, None)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cluster.listen"), "{message}");
    let answer = send(&app, request(Method::POST, "/v1/cluster/drain", None, None)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not shared"), "{message}");
    assert!(!system.draining(), "nothing was drained");
    stop(system).await;
}

#[tokio::test]
async fn draining_on_a_shared_store_reports_progress_until_empty() {
    let store = crate::store::MemoryStore::shared();
    let system = start(|b| b.store(store).node_name("d")).await;
    let app = open(&system);
    let answer = send(&app, request(Method::POST, "/v1/cluster/drain", None, None)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.body["draining"], true);
    assert_eq!(answer.body["running"], 0);
    assert_eq!(answer.body["empty"], true);
    assert!(system.draining());
    stop(system).await;
}
