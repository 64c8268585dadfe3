//! The `taskmesh` binary: a node, a client of a node's HTTP API, a demo, and benchmarks.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use taskmesh::cli::{Client, Exit, OutputFormat};
use taskmesh::node::{LogFormat, NodeConfig};

mod commands;
mod demo;

/// mimalloc instead of the system allocator: the runtime allocates per task (cells,
/// events, JSON), and glibc's malloc and free were a tenth of the workers' time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "taskmesh",
    version,
    about = "Distributed task processing on ractor",
    after_help = taskmesh::cli::EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a node: SQLite store under ./data, HTTP on 127.0.0.1:7700.
    #[command(after_help = NODE_HELP)]
    Node(NodeArgs),
    /// Runs a few thousand tasks in memory with a mix of outcomes and prints a summary.
    Demo {
        /// How many tasks.
        #[arg(long, default_value_t = 5000)]
        tasks: usize,
    },
    /// Measures throughput and latency against a raw-tokio baseline (or a node, --node).
    Bench(Box<BenchArgs>),
    #[command(flatten)]
    Client(commands::ClientCmd),
}

/// `taskmesh node --help`: where the token comes from, since there is no flag for it.
const NODE_HELP: &str = "\
The API token is not a flag (flags show up in process lists): set TASKMESH_HTTP__TOKEN, or
http.token_file in the config file. Every key of the config file can be set as
TASKMESH_<SECTION>__<KEY> (e.g. TASKMESH_HTTP__ADDR). The client's variables TASKMESH_URL
and TASKMESH_TOKEN are not node settings: the node ignores them.";

#[derive(Args)]
struct NodeArgs {
    /// A TOML config file (see config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the store lives.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The HTTP address, e.g. 127.0.0.1:7700 (port 0 picks a free one).
    #[arg(long)]
    http_addr: Option<std::net::SocketAddr>,
    /// The store: sqlite:PATH (default {data_dir}/taskmesh.db) or
    /// postgres://user@host/database, which several nodes may share. Keep the password out
    /// of the URL: set TASKMESH_STORE__PASSWORD or store.password_file.
    #[arg(long)]
    store: Option<String>,
    /// This node's name among nodes sharing a PostgreSQL database (unique; the same
    /// across restarts).
    #[arg(long)]
    node_name: Option<String>,
    /// Joins a cluster: where to accept peers, e.g. 127.0.0.1:7701 (needs a PostgreSQL
    /// store and TASKMESH_CLUSTER__COOKIE).
    #[arg(long)]
    cluster_listen: Option<std::net::SocketAddr>,
    /// The address peers dial (default: --cluster-listen).
    #[arg(long)]
    advertise: Option<String>,
    /// A peer's address to dial (repeatable); the database's node registry adds the rest.
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// The log filter, e.g. info or taskmesh=debug (RUST_LOG wins).
    #[arg(long)]
    log: Option<String>,
    /// text or json.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Prints the effective configuration (without secrets) and exits.
    #[arg(long)]
    print_config: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Tasks in all.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: usize,
    /// Concurrent submitters.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Maximum workers of the bench queue.
    #[arg(long, default_value_t = 20)]
    max_workers: usize,
    /// With --cron and --cluster: where the cron leader's tasks start (the nodes'
    /// `[cluster.routing] default`: local, round_robin, least_loaded).
    #[arg(long, default_value = "local")]
    routing: String,
    /// The store: "memory" (no store), "sqlite", or a PostgreSQL admin URL
    /// (postgres://user@host/postgres), through which each run creates a fresh database
    /// taskmesh_bench_<pid>_<n> and drops it afterwards.
    #[arg(long, default_value = "memory")]
    store: String,
    /// Open loop: producers submit without waiting for their tasks; the clock stops at
    /// the last completion. Reports enqueue/s, end-to-end/s and submit→ack latency.
    #[arg(long, conflicts_with = "submit_only")]
    open_loop: bool,
    /// With --open-loop on PostgreSQL: run one node, then this many task systems sharing
    /// the database (producers split between them), and report the ratio.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// With a PostgreSQL --store: start one node, then this many nodes joined in a
    /// cluster, as processes on 127.0.0.1, drive them over HTTP (open loop), and report
    /// both runs and the ratio.
    #[arg(long)]
    cluster: Option<usize>,
    /// The SQLite file (default: a new temporary file, removed afterwards).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Fill a SQLite store with this many tasks and time a filtered page of 1,000.
    #[arg(long)]
    list_page: Option<u64>,
    /// Run every-second cron schedules for this many seconds and report how many slots
    /// started and how late (with --store sqlite, on a SQLite store as a node does; with
    /// --cluster N and a PostgreSQL --store, on N nodes, then kill the cron leader and
    /// report the failover).
    #[arg(long)]
    cron: Option<u64>,
    /// The schedules of --cron.
    #[arg(long, default_value_t = 20)]
    schedules: usize,
    /// Enqueue this many tasks without running them and report bytes per task.
    #[arg(long)]
    queued: Option<usize>,
    /// Wait only for each submit's acknowledgement, not for the task to end.
    #[arg(long)]
    submit_only: bool,
    /// Drive a running node at this URL over HTTP instead.
    #[arg(long)]
    node: Option<String>,
    /// The node's API token (with --node).
    #[arg(long, env = "TASKMESH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => node(args).await,
        Command::Demo { tasks } => demo::run(tasks).await,
        Command::Bench(args) => bench(*args).await,
        Command::Client(cmd) => return run_client(cmd).await.into(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&*e);
            Exit::Error.into()
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

/// Prints `error: …` with the whole source chain (each cause not already in the message).
fn report(e: &dyn std::error::Error) {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    let _ = writeln!(std::io::stderr(), "error: {text}");
}

async fn node(args: NodeArgs) -> Result<(), AnyError> {
    let mut cfg = NodeConfig::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(a) = args.http_addr {
        cfg.http.addr = a;
    }
    if let Some(url) = args.store {
        cfg.store.url = Some(url);
    }
    if let Some(name) = args.node_name {
        if cfg.cluster.node_name.is_some() {
            cfg.cluster.node_name = Some(name.clone());
        }
        cfg.store.node_name = Some(name);
    }
    if let Some(l) = args.cluster_listen {
        cfg.cluster.listen = Some(l);
    }
    if let Some(a) = args.advertise {
        cfg.cluster.advertise = Some(a);
    }
    if !args.seeds.is_empty() {
        cfg.cluster.seeds = args.seeds;
    }
    if let Some(l) = args.log {
        cfg.log.level = l;
    }
    if let Some(f) = args.log_format {
        cfg.log.format = f;
    }
    cfg.check_data_dir()?;
    cfg.check_cluster()?;
    if args.print_config {
        print_quietly(cfg.dump().trim_end());
        return Ok(());
    }
    taskmesh::node::logging::init(&cfg.log)?;
    taskmesh::node::run(cfg, taskmesh::node::signal(), |addr| {
        print_quietly(&format!("taskmesh node listening on http://{addr}"));
    })
    .await?;
    Ok(())
}

async fn run_client(cmd: commands::ClientCmd) -> Exit {
    let conn = cmd.conn().clone();
    let format = OutputFormat::or_default(conn.output, std::io::stdout().is_terminal());
    let reply = match Client::new(&conn.url, conn.token) {
        Ok(client) => commands::run(&client, cmd).await,
        Err(e) => Err(e),
    };
    match reply {
        Ok(reply) => {
            print_quietly(&format.render(&reply.value));
            reply.exit
        }
        Err(e) => {
            report(&e);
            Exit::of_error(&e)
        }
    }
}

/// Prints `text` and a newline (nothing for empty text). A reader that went away (`taskmesh
/// list | head -1`) is not an error: the rest is dropped without a word.
fn print_quietly(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "error: cannot write the output: {e}");
        }
    }
}

async fn bench(o: BenchArgs) -> Result<(), AnyError> {
    use taskmesh::bench::{self, BenchStore};
    if o.concurrency == 0 || o.tasks == 0 || o.max_workers == 0 || o.nodes == 0 {
        return Err("--tasks, --concurrency, --max-workers and --nodes must be at least 1".into());
    }
    if o.nodes > 1 && !o.open_loop {
        return Err("--nodes needs --open-loop".into());
    }
    if let Some(url) = &o.node {
        let report =
            taskmesh::cli::bench_node(&Client::new(url, o.token.clone())?, o.tasks, o.concurrency)
                .await?;
        return print(o.json, &report, &report);
    }
    if let (Some(nodes), Some(secs)) = (o.cluster, o.cron) {
        let report = taskmesh::cli::bench_cluster_cron(taskmesh::cli::ClusterCronBench {
            store: o.store.clone(),
            nodes,
            schedules: o.schedules,
            secs,
            workers: o.max_workers,
            routing: o.routing.clone(),
        })
        .await?;
        return print(o.json, &report, &report);
    }
    if let Some(nodes) = o.cluster {
        let report = taskmesh::cli::bench_cluster(taskmesh::cli::ClusterBench {
            store: o.store.clone(),
            nodes,
            tasks: o.tasks,
            concurrency: o.concurrency,
            max_workers: o.max_workers,
        })
        .await?;
        return print(o.json, &report, &report);
    }
    if let Some(n) = o.queued {
        let report = bench::run_queued(n).await?;
        return print(o.json, &report, &report);
    }
    let temp = std::env::temp_dir().join(format!("taskmesh-bench-{}", std::process::id()));
    let path = o.db.clone().unwrap_or_else(|| temp.join("bench.db"));
    let store = match o.store.as_str() {
        "memory" => BenchStore::Memory,
        "sqlite" => BenchStore::Sqlite(path.clone()),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            BenchStore::Postgres(url.to_owned())
        }
        other => {
            let expected = "expected \"memory\", \"sqlite\" or a postgres:// URL";
            return Err(format!("unknown store {other:?}: {expected}").into());
        }
    };
    let result = run_bench(&o, store, &path).await;
    if o.db.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    result
}

async fn run_bench(
    o: &BenchArgs,
    store: taskmesh::bench::BenchStore,
    path: &std::path::Path,
) -> Result<(), AnyError> {
    use taskmesh::bench::{self, BenchStore};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if let Some(n) = o.list_page {
        let report = match &store {
            BenchStore::Sqlite(_) => {
                let sqlite = taskmesh::store::SqliteStore::open(path)?;
                bench::run_list_page(&sqlite, n).await?
            }
            BenchStore::Postgres(url) => bench::run_list_page_pg(url, n).await?,
            BenchStore::Memory => {
                return Err("--list-page needs --store sqlite or postgres://…".into())
            }
        };
        return print(o.json, &report, &report);
    }
    if let Some(seconds) = o.cron {
        let (schedules, store) = (o.schedules, store);
        let report = bench::run_cron(bench::CronBench {
            seconds,
            schedules,
            store,
        })
        .await?;
        return print(o.json, &report, &report);
    }
    let workers = (2.min(o.max_workers), o.max_workers);
    if o.open_loop {
        return open_loop(o, store, workers).await;
    }
    let cfg = bench::BenchConfig {
        tasks: o.tasks,
        concurrency: o.concurrency,
        workers,
        store,
        submit_only: o.submit_only,
    };
    let report = bench::run(cfg).await?;
    print(o.json, &report, &report)
}

async fn open_loop(
    o: &BenchArgs,
    store: taskmesh::bench::BenchStore,
    workers: (usize, usize),
) -> Result<(), AnyError> {
    use taskmesh::bench::{run_open_loop, NodesReport, OpenLoopConfig};
    let cfg = |nodes| OpenLoopConfig {
        tasks: o.tasks,
        producers: o.concurrency,
        workers,
        store: store.clone(),
        nodes,
    };
    let one = run_open_loop(cfg(1)).await?;
    if o.nodes == 1 {
        return print(o.json, &one, &one);
    }
    let report = NodesReport::new(one, run_open_loop(cfg(o.nodes)).await?);
    print(o.json, &report, &report)
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: &dyn std::fmt::Display,
) -> Result<(), AnyError> {
    if json {
        print_quietly(&serde_json::to_string(value)?);
    } else {
        print_quietly(&text.to_string());
    }
    Ok(())
}
