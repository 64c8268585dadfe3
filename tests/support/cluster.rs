//! A cluster of real `taskmesh node` processes on 127.0.0.1 sharing one PostgreSQL
//! database, with a fault-injection [`Proxy`] on every link, for scenario tests.
//!
//! Node `i` is named `n{i+1}` and has:
//! - its own directory (data dir, config file, logs) and its own database link through
//!   [`Cluster::db_proxy`]`(i)`, so a test can black-hole one node's database (the test
//!   server's password, if its URL has one, goes in `TASKMESH_STORE__PASSWORD`);
//! - with the mesh (the default): a mesh listener on a free port, advertised as the
//!   address of [`Cluster::mesh_proxy`]`(i)`, so every peer reaches it through that
//!   proxy and a test can cut it off from its peers; the other nodes' proxies are its
//!   seeds, and `TASKMESH_CLUSTER__COOKIE` is set;
//! - a config file from [`config::render`]: its store URL (in the file, not `--store`:
//!   a node checks its `[cluster]` section against the file's store), dead after 3 s, a
//!   heartbeat every 500 ms, its `[cluster]` section, and the test's extra TOML merged
//!   over them.
//!
//! The parts: [`view`] (a node's `GET /v1/cluster`, waiting on it), [`partition`]
//! (mesh faults between chosen nodes, whoever dialed: [`dialer`] tells the proxies who
//! did), [`load`] (a load driver), [`check`] (the checker over the database, waiting
//! for tasks to end), [`cron`] (schedules, the cron lease, and the slot checker),
//! [`breakers`] (the shared `exec` breaker in the database and in each node's view),
//! [`limits`] (the rate checker of cluster-wide limits).
//!
//! Include it with `#[path = "support/cluster.rs"] mod cluster;`. It needs a
//! multi-thread tokio runtime: the proxies run on its workers while the harness blocks on
//! starting processes.
#![allow(dead_code)]

#[path = "cluster/breakers.rs"]
pub mod breakers;
#[path = "cluster/check.rs"]
pub mod check;
#[path = "cluster/config.rs"]
pub mod config;
#[path = "cluster/cron.rs"]
pub mod cron;
#[path = "cluster/dialer.rs"]
pub mod dialer;
#[path = "cluster/limits.rs"]
pub mod limits;
#[path = "cluster/load.rs"]
pub mod load;
#[path = "node.rs"]
pub mod node;
#[path = "cluster/partition.rs"]
pub mod partition;
#[path = "cluster/view.rs"]
pub mod view;

use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustix::process::{kill_process, Pid, Signal};
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::proxy::Proxy;

use node::{temp_dir, wait_exit, Node, BIN};

/// The cookie every harness node shares.
pub const COOKIE: &str = "taskmesh-harness-cookie";

/// How long a graceful stop may take.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// Whether a node's process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// Running.
    Running,
    /// Stopped by SIGSTOP, until [`Cluster::cont`].
    Stopped,
    /// Killed or terminated, until [`Cluster::restart`].
    Exited,
}

/// N nodes on one database; dropping it kills the nodes, then drops the database.
pub struct Cluster {
    /// The nodes by index; a node that exited stays here until restarted.
    pub nodes: Vec<Node>,
    links: Vec<Links>,
    roster: Roster,
    http: reqwest::Client,
    env: Vec<(String, String)>,
    /// The database every node shares.
    pub db: TestDb,
}

/// What a node keeps across restarts.
struct Links {
    name: String,
    dir: PathBuf,
    config: PathBuf,
    db: Proxy,
    mesh: Option<Proxy>,
    /// The node's mesh port, held until the node starts, so that nothing else (a proxy,
    /// an outgoing connection) takes it meanwhile.
    held: Mutex<Option<TcpListener>>,
    life: Life,
    restarts: usize,
}

/// The URLs of the nodes that can answer (running, not stopped), shared with loads.
#[derive(Clone, Default)]
pub struct Roster(Arc<Mutex<Vec<Seat>>>);

/// A node in the [`Roster`]: its name, and its URL while it can answer.
struct Seat {
    name: String,
    url: Option<String>,
}

impl Roster {
    fn new(names: impl Iterator<Item = String>) -> Self {
        let seats = names.map(|name| Seat { name, url: None }).collect();
        Roster(Arc::new(Mutex::new(seats)))
    }

    /// The index and URL of each node that can answer.
    pub fn live(&self) -> Vec<(usize, String)> {
        let seats = self.0.lock();
        let seats = seats.iter().enumerate();
        seats
            .filter_map(|(i, seat)| Some((i, seat.url.clone()?)))
            .collect()
    }

    /// The name of node `i`.
    pub fn name(&self, i: usize) -> String {
        self.0.lock()[i].name.clone()
    }

    fn set(&self, i: usize, url: Option<String>) {
        self.0.lock()[i].url = url;
    }
}

/// How to start a [`Cluster`]: the number of nodes, extra TOML, mesh or not.
#[must_use = "a builder does nothing until started"]
pub struct Builder {
    test: String,
    nodes: usize,
    extra: String,
    mesh: bool,
    env: Vec<(String, String)>,
}

impl Builder {
    /// The number of nodes (default 3).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// TOML merged over each node's config (tables key by key).
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra = extra.to_owned();
        self
    }

    /// Plain nodes on the shared database: no `[cluster]` section, no mesh proxies.
    pub fn without_mesh(mut self) -> Self {
        self.mesh = false;
        self
    }

    /// An environment variable for every node.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the nodes; `None` (after a `skipped:` line) when no PostgreSQL answers,
    /// as [`TestDb::create`], or when the mesh is asked for and the node binary does not
    /// know the `[cluster]` section yet.
    pub async fn start(mut self) -> Option<Cluster> {
        let flavor = tokio::runtime::Handle::current().runtime_flavor();
        assert_eq!(
            flavor,
            tokio::runtime::RuntimeFlavor::MultiThread,
            "the cluster harness needs #[tokio::test(flavor = \"multi_thread\")]"
        );
        if self.mesh && !mesh_supported(&self.test) {
            return None;
        }
        let db = TestDb::create(&self.test).await?;
        if let Some(password) = db.options_via(db.server()).password {
            let var = taskmesh::store::PASSWORD_ENV.to_owned();
            self.env.push((var, password.expose().to_owned()));
        }
        if self.mesh {
            self.env
                .push(("TASKMESH_CLUSTER__COOKIE".into(), COOKIE.into()));
        }
        let links = self.links(&db).await;
        let roster = Roster::new(links.iter().map(|l| l.name.clone()));
        let mut cluster = Cluster {
            nodes: Vec::new(),
            links,
            roster,
            http: http_client(),
            env: self.env,
            db,
        };
        for i in 0..self.nodes {
            let node = cluster.spawn(i);
            cluster.roster.set(i, Some(node.url.clone()));
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    /// Each node's proxies, directory and config file.
    async fn links(&self, db: &TestDb) -> Vec<Links> {
        let extra = config::parse_extra(&self.extra);
        let meshes = self.mesh_proxies().await;
        let advertised: Vec<SocketAddr> =
            meshes.iter().flatten().map(|(_, p, _)| p.addr()).collect();
        let mut links = Vec::new();
        for (i, mesh) in meshes.into_iter().enumerate() {
            let name = format!("n{}", i + 1);
            let spec = mesh.as_ref().map(|(listen, proxy, _)| config::Mesh {
                name: name.clone(),
                listen: *listen,
                advertise: proxy.addr(),
                seeds: others(&advertised, i),
            });
            let config = |store: &str| config::render(store, spec.as_ref(), &extra);
            let (mesh, held) = match mesh {
                Some((_, proxy, held)) => (Some(proxy), Some(held)),
                None => (None, None),
            };
            let mut link = self.link(name, config, db, mesh).await;
            link.held = Mutex::new(held);
            links.push(link);
        }
        links
    }

    /// With the mesh, each node's listen address and the proxy in front of it, which
    /// knows which node dialed each of its connections.
    async fn mesh_proxies(&self) -> Vec<Option<(SocketAddr, Proxy, TcpListener)>> {
        let mut meshes = Vec::new();
        for _ in 0..self.nodes {
            let mesh = match self.mesh {
                true => {
                    let held = held_port();
                    let listen = held.local_addr().unwrap();
                    let classify = dialer::classifier();
                    let proxy = Proxy::start_classified(listen, classify).await;
                    Some((listen, proxy.expect("a mesh proxy"), held))
                }
                false => None,
            };
            meshes.push(mesh);
        }
        meshes
    }

    /// Node `name`'s database link, and its directory with its config file (`config`
    /// of its store URL).
    async fn link(
        &self,
        name: String,
        config: impl Fn(&str) -> String,
        db: &TestDb,
        mesh: Option<Proxy>,
    ) -> Links {
        let db_proxy = Proxy::start(db.server()).await.expect("a database proxy");
        let store = db.options_via(db_proxy.addr()).url;
        let dir = temp_dir(&format!("{}-{name}", self.test));
        let path = dir.join("taskmesh.toml");
        std::fs::write(&path, config(&store)).unwrap();
        Links {
            name,
            dir,
            config: path,
            db: db_proxy,
            mesh,
            held: Mutex::new(None),
            life: Life::Running,
            restarts: 0,
        }
    }
}

impl Cluster {
    /// How to start a cluster for the test `test` (its databases and directories are
    /// named after it).
    pub fn builder(test: &str) -> Builder {
        Builder {
            test: test.to_owned(),
            nodes: 3,
            extra: String::new(),
            mesh: true,
            env: Vec::new(),
        }
    }

    /// Starts `n` meshed nodes with `extra_toml` merged over their configs; see
    /// [`Builder::start`] for when it is `None`.
    pub async fn start(test: &str, n: usize, extra_toml: &str) -> Option<Cluster> {
        Self::builder(test).nodes(n).toml(extra_toml).start().await
    }

    /// Node `i`'s name (`n{i+1}`).
    pub fn name(&self, i: usize) -> String {
        self.links[i].name.clone()
    }

    /// Node `i`'s database link.
    pub fn db_proxy(&self, i: usize) -> &Proxy {
        &self.links[i].db
    }

    /// The proxy in front of node `i`'s mesh listener (what its peers dial). It carries
    /// only the sessions peers dialed to node `i`, and which side dials depends on the
    /// mesh; to break the links of chosen nodes whoever dialed, see
    /// [`set_link_mode`](Self::set_link_mode), [`isolate`](Self::isolate) and
    /// [`partition`](Self::partition), which act on the connections by the node that
    /// dialed them.
    pub fn mesh_proxy(&self, i: usize) -> &Proxy {
        self.links[i]
            .mesh
            .as_ref()
            .expect("a cluster started without the mesh has no mesh proxies")
    }

    /// Whether node `i` runs.
    pub fn life(&self, i: usize) -> Life {
        self.links[i].life
    }

    /// The nodes that run (not stopped, not exited).
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.life(i) == Life::Running)
            .collect()
    }

    /// Kills node `i` (SIGKILL) and waits for it.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.finish_logs();
        self.set_life(i, Life::Exited);
    }

    /// Stops node `i` (SIGSTOP): it holds everything and answers nothing.
    pub fn stop(&mut self, i: usize) {
        self.signal(i, Signal::STOP);
        self.set_life(i, Life::Stopped);
    }

    /// Continues node `i` (SIGCONT) after [`stop`](Self::stop).
    pub fn cont(&mut self, i: usize) {
        self.signal(i, Signal::CONT);
        self.set_life(i, Life::Running);
    }

    /// Stops node `i` gracefully (SIGTERM; continued first if stopped) and returns its
    /// exit code.
    pub fn terminate(&mut self, i: usize) -> i32 {
        if self.life(i) == Life::Stopped {
            self.cont(i);
        }
        self.signal(i, Signal::TERM);
        let node = &mut self.nodes[i];
        let code = wait_exit(&mut node.child, STOP_LIMIT);
        node.finish_logs();
        self.set_life(i, Life::Exited);
        code
    }

    /// Starts node `i` again with the same config, data dir and proxies, after a
    /// graceful stop if it still runs. Its earlier log is kept as `node-*.err.{k}`.
    pub fn restart(&mut self, i: usize) {
        if self.life(i) != Life::Exited {
            self.terminate(i);
        }
        let links = &mut self.links[i];
        links.restarts += 1;
        let log = self.nodes[i].stderr.clone();
        let _ = std::fs::rename(&log, log.with_extension(format!("err.{}", links.restarts)));
        self.nodes[i] = self.spawn(i);
        self.set_life(i, Life::Running);
    }

    /// Node `i`'s log so far (this start's).
    pub fn logs(&self, i: usize) -> String {
        self.nodes[i].logs()
    }

    fn spawn(&self, i: usize) -> Node {
        let l = &self.links[i];
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let config = l.config.to_str().expect("a UTF-8 temp path");
        let args = ["--config", config, "--node-name", &l.name];
        // The node binds its mesh port now.
        drop(l.held.lock().take());
        let started =
            std::panic::catch_unwind(AssertUnwindSafe(|| Node::start(&l.dir, &env, &args)));
        started.unwrap_or_else(|_| {
            let log = l.dir.join(format!("node-{}.err", std::process::id()));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "node {} did not start; its log ({}):\n{text}",
                l.name,
                log.display()
            )
        })
    }

    fn signal(&self, i: usize, signal: Signal) {
        let pid = Pid::from_raw(self.nodes[i].child.id() as i32).expect("a child's pid");
        kill_process(pid, signal)
            .unwrap_or_else(|e| panic!("{} cannot be signalled: {e}", self.name(i)));
    }

    fn set_life(&mut self, i: usize, life: Life) {
        self.links[i].life = life;
        let url = (life == Life::Running).then(|| self.nodes[i].url.clone());
        self.roster.set(i, url);
    }
}

/// Every address of `all` but the `i`th.
fn others(all: &[SocketAddr], i: usize) -> Vec<SocketAddr> {
    let all = all.iter().enumerate();
    all.filter(|(j, _)| *j != i).map(|(_, a)| *a).collect()
}

/// A listener on a port of 127.0.0.1 below the kernel's ephemeral range, for a node's
/// mesh port: the harness holds it until the node starts, then the node binds it a
/// moment later. An ephemeral port could be taken in that moment by any outgoing
/// connection (the node's own to PostgreSQL, a proxy's, another test's); a port below
/// the range is only ever taken by an explicit bind.
fn held_port() -> TcpListener {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = ephemeral.saturating_sub(12_000).max(1024);
    for _ in 0..1000 {
        let port = rand::random_range(low..ephemeral);
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return listener;
        }
    }
    TcpListener::bind("127.0.0.1:0").expect("a free port")
}

/// A port free a moment ago on 127.0.0.1 (someone may take it before it is used).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap()
}

/// A client for the harness's own calls: bounded, so a stopped node cannot hang it.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a plain HTTP client builds")
}

/// Whether the node binary accepts a `[cluster]` section; if it rejects the section as
/// unknown, prints `skipped:` and says no. Any other rejection fails the test.
fn mesh_supported(test: &str) -> bool {
    let dir = temp_dir(&format!("{test}-probe"));
    let spec = config::Mesh {
        name: "probe".into(),
        listen: free_port(),
        advertise: free_port(),
        seeds: vec![],
    };
    let config = dir.join("taskmesh.toml");
    let store = "postgres://postgres@127.0.0.1:9/probe";
    let text = config::render(store, Some(&spec), &toml::Table::new());
    std::fs::write(&config, text).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--print-config", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("TASKMESH_CLUSTER__COOKIE", COOKIE)
        .output()
        .expect("the node binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        return true;
    }
    assert!(
        stderr.contains("unknown key \"cluster\""),
        "the node refuses the harness's cluster config: {stderr}"
    );
    println!(
        "skipped: this taskmesh does not know the [cluster] section yet ({})",
        stderr.trim()
    );
    false
}
