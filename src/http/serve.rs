//! Serving the router over TCP: HTTP/1.1 connections with a header-read timeout, a limit on
//! open connections, and an accept loop that backs off when accepting fails.
//!
//! A client that opens a connection and never finishes its request head is closed after
//! [`HttpConfig::header_read_timeout`](super::HttpConfig::header_read_timeout), idle
//! keep-alive connections too. At [`HttpConfig::max_connections`](super::HttpConfig::max_connections)
//! open connections the loop stops accepting; new ones wait in the kernel's backlog until
//! one closes, so the process never runs out of file descriptors because of clients. An
//! accept error (`EMFILE`, `ENFILE`, `ENOBUFS`) waits before the next try, from 5 ms doubling
//! to 1 s, instead of spinning.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpConfig;

/// The first wait after a failed accept.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` with the connection settings of `config` until `shutdown`
/// resolves; then stops accepting, closes idle connections and lets requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut backoff = FIRST_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        let next = tokio::select! {
            _ = &mut shutdown => break,
            next = accept(&listener, &limit, &mut backoff) => next,
        };
        let (stream, peer, permit) = next;
        // The peer address as `ConnectInfo` (the dashboard limits logins per address).
        let router = router.clone();
        let service =
            TowerToHyperService::new(tower::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                tower::Service::call(&mut router.clone(), req)
            }));
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The next connection with its slot under the limit; waits for a free slot first, and
/// after a failed accept waits `backoff` (doubling it) before trying again.
async fn accept(
    listener: &TcpListener,
    limit: &Arc<Semaphore>,
    backoff: &mut Duration,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let permit = limit.clone().acquire_owned().await.expect("never closed");
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                *backoff = FIRST_BACKOFF;
                return (stream, peer, permit);
            }
            Err(e) if per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "http accept failed");
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Errors that concern only the connection being accepted, not the listener.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
