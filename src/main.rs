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
        /// The store; only "memory" exists so far.
        #[arg(long, default_value = "memory")]
        store: String,
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
            queued,
            json,
        } => bench(tasks, concurrency, max_workers, &store, queued, json).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(
    tasks: usize,
    concurrency: usize,
    max_workers: usize,
    store: &str,
    queued: Option<usize>,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    if store != "memory" {
        return Err(format!("unknown store {store:?}: expected \"memory\"").into());
    }
    if concurrency == 0 || tasks == 0 || max_workers == 0 {
        return Err("--tasks, --concurrency and --max-workers must be at least 1".into());
    }
    if let Some(n) = queued {
        let report = taskmesh::bench::run_queued(n).await?;
        print(json, &report, &report)?;
        return Ok(());
    }
    let cfg = taskmesh::bench::BenchConfig {
        tasks,
        concurrency,
        workers: (2.min(max_workers), max_workers),
    };
    let report = taskmesh::bench::run(cfg).await?;
    print(json, &report, &report)
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
