//! The `taskmesh` binary: a node, a client of a node's HTTP API, a demo, and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use taskmesh::cli::Client;
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
    about = "Distributed task processing on ractor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The node's URL (client commands and bench --node).
    #[arg(
        long,
        global = true,
        env = "TASKMESH_URL",
        default_value = "http://127.0.0.1:7700"
    )]
    url: String,
    /// The node's API token (client commands and bench --node).
    #[arg(long, global = true, env = "TASKMESH_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a node: SQLite store under ./data, HTTP on 127.0.0.1:7700.
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
    /// The store: "memory" (no store) or "sqlite".
    #[arg(long, default_value = "memory")]
    store: String,
    /// The SQLite file (default: a new temporary file, removed afterwards).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Fill a SQLite store with this many tasks and time a filtered page of 1,000.
    #[arg(long)]
    list_page: Option<u64>,
    /// Run every-second cron schedules for this many seconds and report how many slots
    /// started and how late (with --store sqlite, on a SQLite store as a node does).
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
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.url, cli.token.clone());
    let result = match cli.command {
        Command::Node(args) => node(args).await,
        Command::Demo { tasks } => demo::run(tasks).await,
        Command::Bench(args) => bench(*args, cli.token).await,
        Command::Client(cmd) => run_client(&client, cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

async fn node(args: NodeArgs) -> Result<(), AnyError> {
    let mut cfg = NodeConfig::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(a) = args.http_addr {
        cfg.http.addr = a;
    }
    if let Some(l) = args.log {
        cfg.log.level = l;
    }
    if let Some(f) = args.log_format {
        cfg.log.format = f;
    }
    if args.print_config {
        print!("{}", cfg.dump());
        return Ok(());
    }
    taskmesh::node::logging::init(&cfg.log)?;
    taskmesh::node::run(cfg, taskmesh::node::signal(), |addr| {
        println!("taskmesh node listening on http://{addr}");
    })
    .await?;
    Ok(())
}

async fn run_client(client: &Client, cmd: commands::ClientCmd) -> Result<(), AnyError> {
    match commands::run(client, cmd).await? {
        serde_json::Value::String(s) => println!("{s}"),
        serde_json::Value::Null => {}
        out => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(())
}

async fn bench(o: BenchArgs, token: Option<String>) -> Result<(), AnyError> {
    use taskmesh::bench::{self, BenchStore};
    if o.concurrency == 0 || o.tasks == 0 || o.max_workers == 0 {
        return Err("--tasks, --concurrency and --max-workers must be at least 1".into());
    }
    if let Some(url) = &o.node {
        let report =
            taskmesh::cli::bench_node(&Client::new(url, token), o.tasks, o.concurrency).await?;
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
        other => {
            return Err(
                format!("unknown store {other:?}: expected \"memory\" or \"sqlite\"").into(),
            )
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
        if store == BenchStore::Memory {
            return Err("--list-page needs --store sqlite".into());
        }
        let report = bench::run_list_page(path, n).await?;
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

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: &dyn std::fmt::Display,
) -> Result<(), AnyError> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{text}");
    }
    Ok(())
}
