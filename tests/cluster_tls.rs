//! The mesh with mutual TLS (`cluster.tls`): nodes with certificates from the cluster's
//! CA join; a plain connection to a TLS node is refused; clients that connect and stall
//! are cut off at the handshake deadline and do not hold up the accepts.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

fn tls_toml() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cluster-tls");
    format!(
        "[cluster]\nhandshake_timeout_ms = 1000\n\
         [cluster.tls]\ncert = \"{dir}/node.pem\"\nkey = \"{dir}/node.key\"\nca = \"{dir}/ca.pem\"\n"
    )
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let began = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(LIMIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return began.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the node kept the connection open for {LIMIT:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_nodes_join_and_plain_or_stalled_clients_are_cut_off() {
    let Some(mut c) = Cluster::start("cluster_tls", 2, &tls_toml()).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let listen = c.mesh_proxy(0).target();

    // A plain client (what a node without TLS sends first) is refused.
    let mut plain = TcpStream::connect(listen).await.unwrap();
    plain
        .write_all(&[
            0, 0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ])
        .await
        .unwrap();
    closed_after(&mut plain).await;
    c.nodes[0].wait_log("TLS handshake failed", LIMIT);

    // Clients that connect and say nothing are cut off at the deadline, and meanwhile
    // the node still accepts: a restarted peer joins again.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(TcpStream::connect(listen).await.unwrap());
    }
    c.kill(1);
    c.restart(1);
    c.wait_all_up(LIMIT).await;
    for s in &mut stalled {
        let took = closed_after(s).await;
        assert!(
            took < Duration::from_secs(5),
            "a stalled client stayed {took:?}"
        );
    }
    c.nodes[0].wait_log("TLS handshake took too long", LIMIT);
}
