//! The cluster page: a node alone says so; a clustered node lists its nodes live and an
//! operator (only) drains it after a confirmation.

use std::time::Duration;

use axum::http::{header, StatusCode};

use super::super::live::{events, Live};
use super::*;
use crate::cluster::{Cluster, ClusterConfig, ClusterStatus, NodeState, NodeStatus};

/// A one-node cluster "a" on a shared memory store.
async fn clustered() -> (TaskSystem, Cluster) {
    let system = TaskSystem::builder()
        .namespace(format!("ui-cl-{}", TaskId::new()))
        .store(MemoryStore::shared())
        .node_name("a")
        .advertise("127.0.0.1:7999")
        .start()
        .await
        .expect("system starts");
    let listen = "127.0.0.1:0".parse().unwrap();
    let config = ClusterConfig::new("a", listen, "127.0.0.1:7999", Secret::new("c"));
    let cluster = Cluster::start(system.clone(), config).await.expect("joins");
    (system, cluster)
}

/// The guarded dashboard of a clustered node.
fn guarded_in(system: &TaskSystem, cluster: &Cluster) -> Router {
    let config = UiConfig {
        operator_token: Some(Secret::new(OPERATOR)),
        viewer_token: Some(Secret::new(VIEWER)),
        cluster: Some(cluster.clone()),
        ..UiConfig::default()
    };
    Dashboard::new(system.clone(), config).router()
}

#[tokio::test]
async fn a_node_alone_says_it_is_not_in_a_cluster_and_every_page_links_the_cluster_page() {
    let system = start().await;
    let app = open(&system);
    let page = get(&app, "/ui/cluster", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("not in a cluster") && page.body.contains("cluster.listen"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("href=\"/ui/cluster\" aria-keyshortcuts=\"g c\" aria-current=\"page\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/ui/cluster/drain"), "{}", page.body);
    let overview = get(&app, "/ui", None).await;
    assert!(
        overview.body.contains("href=\"/ui/cluster\""),
        "{}",
        overview.body
    );
    let csrf = page.csrf();
    let a = post(
        &app,
        "/ui/cluster/drain",
        None,
        &format!("csrf={csrf}&confirm=yes"),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
}

#[tokio::test]
async fn the_cluster_page_lists_this_node_as_up_marked_as_this_node_in_a_live_region() {
    let (system, cluster) = clustered().await;
    let app = guarded_in(&system, &cluster);
    let olga = login(&app, OPERATOR, "olga").await;
    let page = get(&app, "/ui/cluster", Some(&olga)).await;
    assert_eq!(page.status, StatusCode::OK);
    for want in [
        "As seen by <strong class=\"mono\">a</strong>",
        "<tr class=\"this\"><td><span class=\"mono\">a</span> <span class=\"badge this-node\">this node</span>",
        "127.0.0.1:7999",
        "<span class=\"badge node-up\">up</span>",
        "sse-swap=\"cluster\"",
        "action=\"/ui/cluster/drain\"",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    assert!(!page.body.contains("node-draining"), "{}", page.body);

    let live =
        Live::new(system.clone(), Duration::from_secs(3600), None).cluster(Some(cluster.clone()));
    let snapshot = live.current().await;
    let status = snapshot
        .cluster
        .as_ref()
        .expect("the snapshot carries the cluster");
    assert!(status.nodes.iter().any(|n| n.this && n.name == "a"));
    assert_eq!(
        events(&snapshot).len(),
        6,
        "the five regions and the cluster"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_viewer_sees_no_drain_button_and_is_refused_the_drain() {
    let (system, cluster) = clustered().await;
    let app = guarded_in(&system, &cluster);
    let val = login(&app, VIEWER, "val").await;
    let page = get(&app, "/ui/cluster", Some(&val)).await;
    assert!(page.body.contains("node-up"), "{}", page.body);
    assert!(!page.body.contains("/ui/cluster/drain"), "{}", page.body);
    let csrf = page.csrf();
    let form = format!("csrf={csrf}&confirm=yes");
    let a = post(&app, "/ui/cluster/drain", Some(&val), &form).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("read-only"), "{}", a.body);
    assert!(!system.load().draining, "nothing changed");
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_operators_confirmed_drain_puts_the_node_into_draining() {
    let (system, cluster) = clustered().await;
    let app = guarded_in(&system, &cluster);
    let olga = login(&app, OPERATOR, "olga").await;
    let csrf = get(&app, "/ui/cluster", Some(&olga)).await.csrf();
    let a = post(&app, "/ui/cluster/drain", Some(&olga), "confirm=yes").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no CSRF token");
    let ask = post(
        &app,
        "/ui/cluster/drain",
        Some(&olga),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(
        ask.body.contains("Drain node") && ask.body.contains("name=\"confirm\" value=\"yes\""),
        "{}",
        ask.body
    );
    assert!(!system.load().draining, "only asked");

    let form = format!("csrf={csrf}&confirm=yes");
    let done = post(&app, "/ui/cluster/drain", Some(&olga), &form).await;
    assert_eq!(
        (done.status, done.header(header::LOCATION)),
        (StatusCode::SEE_OTHER, "/ui/cluster?done=drain")
    );
    assert!(system.load().draining);
    let page = get(&app, "/ui/cluster?done=drain", Some(&olga)).await;
    for want in [
        "Drain started",
        "<span class=\"badge node-draining\">draining</span>",
        "Draining: <strong>empty</strong>",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    assert!(
        !page.body.contains("action=\"/ui/cluster/drain\""),
        "no second drain: {}",
        page.body
    );
    cluster.shutdown().await;
}

#[test]
fn hostile_node_names_addresses_queues_and_store_errors_are_escaped() {
    let xss = "<script>alert(1)</script>";
    let node = NodeStatus {
        name: xss.into(),
        address: Some(xss.into()),
        state: NodeState::Suspect,
        incarnation: 3,
        heartbeat_age_ms: Some(1500),
        running: None,
        free_slots: None,
        queued: None,
        queues: vec![xss.into()],
        this: false,
    };
    let status = ClusterStatus {
        answered_by: xss.into(),
        nodes: vec![node],
        store_error: Some(xss.into()),
        cron_leader: None,
    };
    let html = super::super::cluster::view(&status).into_string();
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(html.matches("&lt;script&gt;").count(), 5, "{html}");
    assert!(
        html.contains("<span class=\"badge node-suspect\">suspect</span>"),
        "{html}"
    );
    assert!(html.contains("1.5 s"), "{html}");
    assert!(html.contains("Cron leader: none yet."), "{html}");
}

#[test]
fn the_cron_leader_is_shown_with_its_epoch_and_time_left_escaped() {
    let xss = "<script>alert(1)</script>";
    let mut status = ClusterStatus {
        answered_by: "n1".into(),
        nodes: vec![],
        store_error: None,
        cron_leader: Some(crate::cluster::CronLeader {
            node: xss.into(),
            incarnation: 7,
            epoch: 4,
            remaining_ms: 9200,
        }),
    };
    let html = super::super::cluster::view(&status).into_string();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("(epoch 4, lease 9.2 s left)"), "{html}");
    status.cron_leader.as_mut().unwrap().remaining_ms = 0;
    let html = super::super::cluster::view(&status).into_string();
    assert!(html.contains("Cron leader: none now"), "{html}");
    assert!(html.contains("epoch 4, ran out"), "{html}");
}
