//! The pipeline of `examples/pipeline.rs`, plus a report and an on-demand
//! reindex, with the control plane on: open the printed URL for the
//! dashboard; its trigger, enable and disable buttons ask for the printed
//! token.
//!
//! ```sh
//! cargo run --example dashboard --features http                 # Ctrl-C to stop
//! cargo run --example dashboard --features http -- --addr 127.0.0.1:8080 --for 60
//! ORCHESTRATOR_ADMIN_TOKEN=mine cargo run --example dashboard --features http
//! ```

use std::time::Duration;

use orchestrator::http::{ADMIN_TOKEN_ENV, HttpConfig};
use orchestrator::{Context, Orchestrator, worker};

/// Pulls fresh data. The upstream is flaky: every third run's first attempt
/// fails (the retry succeeds), and every fifth run fails for good.
#[worker(interval = "4s", timeout = "2s", priority = High, retries = 1, backoff = "300ms")]
async fn fetch_data(ctx: Context) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(600)).await;
    let run = ctx.run_id().0;
    if run.is_multiple_of(5) || (run.is_multiple_of(3) && ctx.attempt() == 1) {
        anyhow::bail!("upstream returned 503");
    }
    Ok(())
}

/// Works on what `fetch_data` fetched: runs only after its fire succeeded.
#[worker(interval = "6s", depends_on = fetch_data)]
async fn process_data() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(())
}

/// Summarises what `process_data` produced, once it has produced it.
#[worker(depends_on = process_data)]
async fn report() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(())
}

/// Housekeeping that must not run while `process_data` does.
#[worker(interval = "10s", priority = Low, blocks = process_data)]
async fn cleanup(ctx: Context) -> anyhow::Result<()> {
    for _ in 0..8 {
        if ctx.is_cancelled() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Only on demand: press its trigger button.
#[worker(mode = Triggered, timeout = "30s")]
async fn reindex() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_secs(3)).await;
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

    let addr = arg("--addr").unwrap_or_else(|| "127.0.0.1:9090".to_string());
    let token = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty()).unwrap_or_else(random_token);
    let orchestrator = Orchestrator::builder().serve_http_with(&addr, HttpConfig::new().admin_token(&token)).build()?;
    println!("dashboard: http://{addr}/");
    println!("admin token (for the buttons): {token}");

    if let Some(seconds) = arg("--for").and_then(|s| s.parse().ok()) {
        let stopper = orchestrator.handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stopper.shutdown().await;
        });
    }
    orchestrator.run().await
}

/// The value after `name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|a| a == name)?;
    args.get(position + 1).cloned()
}

/// 128 bits from the standard library's randomly keyed hasher (its keys
/// come from the operating system's random source), in hex: enough for a
/// demo; an application brings its own secret.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}
