//! Running a node: store, task system, HTTP API, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{ConfigError, HttpSettings, NodeConfig, StoreUrl};
use crate::cluster::{Cluster, ClusterError};
use crate::dashboard::{Dashboard, UiConfig};
use crate::http::{self, HttpConfig};
use crate::lockfile::{LockError, LockFile};
use crate::store::{PgOptions, PgStore, SqliteStore, StoreError};
use crate::system::{TaskSystem, TaskSystemBuilder};
use crate::SystemError;
use crate::{builtin, telemetry};

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task system did not start.
    #[error(transparent)]
    System(#[from] SystemError),
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node could not join its cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The HTTP address could not be bound or served.
    #[error("http {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another node runs on the data directory.
    #[error("data directory {} is in use by another taskmesh node{}; one node per data directory", path.display(), holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    DataDirInUse {
        /// The directory.
        path: std::path::PathBuf,
        /// The other node's pid, when known.
        holder: Option<u32>,
    },
    /// The data directory's lock file could not be taken.
    #[error("cannot lock data directory {}: {source}", path.display())]
    DataDirLock {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs a node until `shutdown` resolves, then shuts down gracefully:
///
/// 1. stop accepting work (submits get 503; `/health/ready` reports not ready, and the HTTP
///    API keeps answering so load balancers see it);
/// 2. let running tasks finish within `shutdown.grace_ms`;
/// 3. keep the rest in the store for the next start;
/// 4. return, so the process exits 0.
///
/// `on_ready` is called with the bound HTTP address once the node serves.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl Future<Output = ()> + Send,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), NodeError> {
    // Nothing touches the store before the data directory is ours and the port is bound:
    // a second node on the same directory, or one that cannot serve, changes nothing.
    cfg.check_cluster()?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let addr = cfg.http.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Http { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NodeError::Http { addr, source })?;
    let metrics = telemetry::prometheus().install_recorder().ok();
    telemetry::describe();
    let builder = TaskSystem::builder().config(cfg.system.clone());
    let builder = with_store(builder, &cfg, bound).await?;
    let system = builtin::register(builder, cfg.exec.clone()).start().await?;
    let cluster = join_cluster(&system, &cfg, bound).await?;
    let recovery = system.recovery();
    tracing::info!(
        loaded = recovery.loaded,
        interrupted = recovery.interrupted,
        orphaned = recovery.orphaned,
        "task system started"
    );

    let mut http_cfg = http_config(&cfg.http);
    http_cfg.cluster = cluster.clone();
    let mut router = http::router(system.clone(), http_cfg.clone(), metrics.clone());
    let dashboard = cfg
        .ui
        .enabled
        .then(|| dashboard(&system, &cfg, metrics, cluster.clone()));
    if let Some(d) = &dashboard {
        router = router.merge(d.router());
    }
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = http_stopped.await;
        };
        http::serve(listener, router, &http_cfg, stopped).await
    });
    tracing::info!(addr = %bound, "node ready");
    on_ready(bound);

    shutdown.await;
    tracing::info!(
        grace_ms = cfg.shutdown.grace_ms,
        "shutting down: no new work; running tasks get the grace period"
    );
    let report = system
        .shutdown(Duration::from_millis(cfg.shutdown.grace_ms))
        .await;
    tracing::info!(
        interrupted = report.interrupted.len(),
        left_queued = report.left_queued,
        "task system stopped; the rest waits in the store for the next start"
    );
    if let Some(d) = &dashboard {
        d.shutdown();
    }
    if let Some(c) = &cluster {
        c.shutdown().await;
    }
    let _ = stop_http.send(());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(NodeError::Http {
            addr: bound,
            source,
        }),
        Err(_) => Ok(()),
    }
}

/// Opens the configured store and gives it to the system, with this node's name and
/// liveness settings for a shared PostgreSQL database.
async fn with_store(
    builder: TaskSystemBuilder,
    cfg: &NodeConfig,
    bound: SocketAddr,
) -> Result<TaskSystemBuilder, NodeError> {
    let s = &cfg.store;
    let target = s
        .target(&cfg.data_dir)
        .map_err(|reason| NodeError::Config(ConfigError::Invalid(reason)))?;
    match target {
        StoreUrl::Sqlite(db) => {
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(db))
                .await
                .expect("open does not panic")?;
            Ok(builder.store(store))
        }
        StoreUrl::Postgres(url) => {
            let mut options = PgOptions::new(url)
                .pool_size(s.pool_size)
                .writers(s.writers(cfg.cluster.listen.is_some()))
                .schema(s.schema.clone());
            options.password = s.password.clone();
            options.password_file = s.password_file.clone();
            tracing::info!(url = %options.redacted_url(), "connecting to PostgreSQL");
            let store = PgStore::connect_with(options).await?;
            let node = node_name(cfg, bound);
            let ms = Duration::from_millis;
            let mut builder = builder.store(store).node_name(node.clone()).liveness(
                ms(s.dead_after_ms),
                ms(s.heartbeat_ms),
                ms(s.poll_ms),
            );
            builder = builder.cron_lease(super::config::cron_lease(s));
            if let Some(c) = cfg.cluster.config(&node) {
                builder = builder.advertise(c.advertise);
            }
            Ok(builder)
        }
    }
}

/// This node's name: configured, else `{namespace}@{host}:{http port}`.
fn node_name(cfg: &NodeConfig, bound: SocketAddr) -> String {
    cfg.node_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}@{}:{}", cfg.system.namespace, hostname(), bound.port()))
}

/// Joins the cluster, if one is configured.
async fn join_cluster(
    system: &TaskSystem,
    cfg: &NodeConfig,
    bound: SocketAddr,
) -> Result<Option<Cluster>, NodeError> {
    let Some(config) = cfg.cluster.config(&node_name(cfg, bound)) else {
        return Ok(None);
    };
    Ok(Some(Cluster::start(system.clone(), config).await?))
}

/// This machine's name (Linux), else "localhost".
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Creates the data directory if needed and takes its lock (`taskmesh.lock`), held for
/// the node's life.
fn lock_data_dir(dir: &std::path::Path) -> Result<LockFile, NodeError> {
    std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    LockFile::acquire(dir.join("taskmesh.lock")).map_err(|e| match e {
        LockError::Held { holder, .. } => NodeError::DataDirInUse {
            path: dir.to_path_buf(),
            holder,
        },
        LockError::Io { source, .. } => NodeError::DataDirLock {
            path: dir.to_path_buf(),
            source,
        },
    })
}

/// The dashboard over `system`, with the node's tokens, metrics and cluster.
fn dashboard(
    system: &TaskSystem,
    cfg: &NodeConfig,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    cluster: Option<Cluster>,
) -> Dashboard {
    let ui = UiConfig {
        operator_token: cfg.http.token.clone(),
        viewer_token: cfg.ui.viewer_token.clone(),
        secure_cookie: cfg.ui.secure_cookie,
        metrics,
        cluster,
        ..UiConfig::default()
    };
    Dashboard::new(system.clone(), ui)
}

/// The HTTP API's settings from the node's.
fn http_config(http: &HttpSettings) -> HttpConfig {
    HttpConfig {
        token: http.token.clone(),
        max_body_bytes: http.max_body_bytes,
        header_read_timeout: Duration::from_millis(http.header_read_timeout_ms),
        request_timeout: Duration::from_millis(http.request_timeout_ms),
        max_connections: http.max_connections,
        cluster: None,
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives while the node is still starting
/// (before `run` awaits it) is not lost to the default action, which kills the process.
/// Call it inside the Tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler installs");
        let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler installs");
        async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
