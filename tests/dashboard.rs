//! End to end: the dashboard of the real `taskmesh` binary. It is on by default with its
//! security headers, `ui.enabled = false` turns it off, and an open live stream does not
//! hold up a graceful shutdown; in a cluster, the cluster page lists every node.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::node::{temp_dir, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_by_default_and_ui_enabled_false_turns_it_off() {
    let dir = temp_dir("ui-on");
    let node = Node::start(&dir, &[], &[]);
    let page = reqwest::get(format!("{}/ui", node.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().await.unwrap().contains("Tasks by state"));
    assert_eq!(node.terminate(), 0);

    let dir = temp_dir("ui-off");
    let node = Node::start(&dir, &[("TASKMESH_UI__ENABLED", "false")], &[]);
    let page = reqwest::get(format!("{}/ui", node.url)).await.unwrap();
    assert_eq!(page.status(), 404);
    let api = reqwest::get(format!("{}/v1/queues", node.url))
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "the API stays on");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_live_stream_does_not_hold_up_a_graceful_shutdown() {
    let dir = temp_dir("ui-live");
    let node = Node::start(&dir, &[], &[]);
    let mut stream = reqwest::get(format!("{}/ui/live", node.url)).await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut text = String::new();
    while !text.contains("event: updated") {
        let chunk = stream
            .chunk()
            .await
            .unwrap()
            .expect("the stream sends a snapshot");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: counts"), "{text}");
    let code = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap();
    assert_eq!(code, 0);
    while let Ok(Some(_)) = stream.chunk().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_the_cluster_page_lists_every_node_and_marks_the_answering_one() {
    let Some(c) = cluster::Cluster::start("ui_cluster", 2, "").await else {
        return;
    };
    c.wait_all_up(std::time::Duration::from_secs(30)).await;
    let page = reqwest::get(format!("{}/ui/cluster", c.nodes[1].url))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(
        body.contains("As seen by <strong class=\"mono\">n2</strong>"),
        "{body}"
    );
    assert_eq!(
        body.matches("<span class=\"badge node-up\">up</span>")
            .count(),
        2,
        "{body}"
    );
    assert!(
        body.contains("<span class=\"mono\">n2</span> <span class=\"badge this-node\">"),
        "{body}"
    );
    assert!(body.contains("action=\"/ui/cluster/drain\""), "{body}");
}
