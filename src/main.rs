//! The `taskmesh` binary: a demo run and the benchmark harness.

use clap::{Parser, Subcommand};

mod demo;

#[derive(Parser)]
#[command(
    name = "taskmesh",
    version,
    about = "Distributed task processing on ractor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a few thousand tasks with a mix of outcomes and prints a summary.
    Demo {
        /// How many tasks.
        #[arg(long, default_value_t = 5000)]
        tasks: usize,
    },
    /// Measures end-to-end throughput and latency against a raw-tokio baseline.
    Bench {
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
        db: Option<std::path::PathBuf>,
        /// Fill a SQLite store with this many tasks and time a filtered page of 1,000.
        #[arg(long)]
        list_page: Option<u64>,
        /// Run 20 every-second cron schedules for this many seconds and report how late
        /// their slots start.
        #[arg(long)]
        cron: Option<u64>,
        /// Enqueue this many tasks without running them and report bytes per task.
        #[arg(long)]
        queued: Option<usize>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { tasks } => demo::run(tasks).await,
        Command::Bench {
            tasks,
            concurrency,
            max_workers,
            store,
            db,
            list_page,
            cron,
            queued,
            json,
        } => {
            let opts = BenchOpts {
                tasks,
                concurrency,
                max_workers,
                store,
                db,
                list_page,
                cron,
                queued,
                json,
            };
            bench(opts).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct BenchOpts {
    tasks: usize,
    concurrency: usize,
    max_workers: usize,
    store: String,
    db: Option<std::path::PathBuf>,
    list_page: Option<u64>,
    cron: Option<u64>,
    queued: Option<usize>,
    json: bool,
}

async fn bench(o: BenchOpts) -> Result<(), Box<dyn std::error::Error>> {
    use taskmesh::bench::{self, BenchStore};
    if o.concurrency == 0 || o.tasks == 0 || o.max_workers == 0 {
        return Err("--tasks, --concurrency and --max-workers must be at least 1".into());
    }
    if let Some(n) = o.queued {
        let report = bench::run_queued(n).await?;
        return print(o.json, &report, &report);
    }
    if let Some(secs) = o.cron {
        let report = bench::run_cron(secs).await?;
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
    o: &BenchOpts,
    store: taskmesh::bench::BenchStore,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
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
    let workers = (2.min(o.max_workers), o.max_workers);
    let cfg = bench::BenchConfig {
        tasks: o.tasks,
        concurrency: o.concurrency,
        workers,
        store,
    };
    let report = bench::run(cfg).await?;
    print(o.json, &report, &report)
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: &dyn std::fmt::Display,
) -> Result<(), Box<dyn std::error::Error>> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{text}");
    }
    Ok(())
}
