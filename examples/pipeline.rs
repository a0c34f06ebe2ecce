//! The fetch → process pipeline with a cleanup job, from the README, with
//! intervals short enough that something happens every second.
//!
//! ```sh
//! cargo run --example pipeline              # Ctrl-C to stop (twice to cancel at once)
//! cargo run --example pipeline -- --for 12  # stop by itself after 12 s
//! RUST_LOG=debug cargo run --example pipeline
//! ```
//!
//! What to watch: `process_data` starts the moment `fetch_data` succeeds; a
//! failed attempt of `fetch_data` is retried after a backoff; when a run of
//! `fetch_data` fails for good, that fire of `process_data` is
//! `upstream_failed` instead of running on stale data; `cleanup` never runs at
//! the same time as `process_data`; a status table is printed every 4 s.

use std::time::Duration;

use orchestrator::{Context, Orchestrator, worker};

/// Pulls fresh data. The upstream is flaky: every third run's first attempt
/// fails (the retry succeeds), and every fifth run fails for good.
#[worker(interval = "2s", timeout = "1s", priority = High, retries = 1, backoff = "200ms")]
async fn fetch_data(ctx: Context) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = ctx.run_id().0;
    if run.is_multiple_of(5) || (run.is_multiple_of(3) && ctx.attempt() == 1) {
        anyhow::bail!("upstream returned 503");
    }
    Ok(())
}

/// Works on what `fetch_data` fetched: runs only after its fire succeeded.
#[worker(interval = "3s", depends_on = fetch_data)]
async fn process_data() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(800)).await;
    Ok(())
}

/// Housekeeping that must not run while `process_data` does.
#[worker(interval = "5s", priority = Low, blocks = process_data)]
async fn cleanup(ctx: Context) -> anyhow::Result<()> {
    // Long work checks for shutdown between steps.
    for _ in 0..4 {
        if ctx.is_cancelled() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), orchestrator::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();

    let orchestrator = Orchestrator::builder().build()?;
    let handle = orchestrator.handle();

    let printer = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(4)).await;
            println!("\n{}", printer.status());
        }
    });

    if let Some(seconds) = run_for() {
        let stopper = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stopper.shutdown().await;
        });
    }

    orchestrator.run().await?;
    println!("\n{}", handle.status());
    Ok(())
}

/// `--for SECONDS`: stop by itself (for demos and CI).
fn run_for() -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|a| a == "--for")?;
    args.get(position + 1)?.parse().ok()
}
