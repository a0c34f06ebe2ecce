//! Cluster mode: start this in two or three terminals and watch each fire
//! run once, on one replica, and a killed replica's work taken over.
//!
//! ```sh
//! cargo run --example cluster --features postgres -- alpha    # terminal 1
//! cargo run --example cluster --features postgres -- beta     # terminal 2
//! cargo run --example cluster --features postgres -- gamma    # terminal 3
//! DATABASE_URL=postgres://user:pass@host/db cargo run --example cluster --features postgres -- alpha
//! ```
//!
//! What to watch:
//! - `report` fires every 2 s, and each fire prints on exactly one of the
//!   terminals, whichever replica claimed it;
//! - `heartbeat` is `scope = Instance`: it prints on every terminal;
//! - `rebuild_index` runs for 6 s every 15 s. Kill the replica running it
//!   (Ctrl-\ sends SIGQUIT, or `kill -9` its pid): after the lease expires
//!   (5 s here, 30 s by default) another replica records the fire `lost`
//!   and runs its second attempt ("attempt 2");
//! - every 5 s each replica prints the live replicas and who runs what.
//!
//! `--for SECONDS` stops by itself. The state lives in the schema
//! `orchestrator_example` of `DATABASE_URL` (default: the local `test`
//! database); `DROP SCHEMA orchestrator_example CASCADE` starts over.

use std::time::Duration;

use orchestrator::store::PostgresStore;
use orchestrator::{Context, Orchestrator, State, worker};

/// This replica's name, for the workers to print.
#[derive(Clone)]
struct Me(String);

fn stamp(ctx: &Context) -> String {
    ctx.scheduled_at().format("%H:%M:%S%.3f").to_string()
}

/// Runs once per fire across the cluster.
#[worker(interval = "2s")]
async fn report(ctx: Context, State(me): State<Me>) {
    println!("[{}] report         fire {}", me.0, stamp(&ctx));
}

/// Long work, retried once: kill the replica running it to see a takeover.
#[worker(interval = "15s", retries = 1, timeout = "20s")]
async fn rebuild_index(ctx: Context, State(me): State<Me>) {
    println!("[{}] rebuild_index  fire {} attempt {}: started", me.0, stamp(&ctx), ctx.attempt());
    tokio::time::sleep(Duration::from_secs(6)).await;
    println!("[{}] rebuild_index  fire {} attempt {}: done", me.0, stamp(&ctx), ctx.attempt());
}

/// Runs on every replica (its own fires, its own history rows).
#[worker(interval = "5s", scope = Instance)]
async fn heartbeat(State(me): State<Me>) {
    println!("[{}] heartbeat (every replica)", me.0);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_target(false)
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.iter().find(|a| !a.starts_with("--") && a.parse::<u64>().is_err()).cloned();
    let name = name.unwrap_or_else(|| format!("replica-{}", std::process::id()));
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());

    // Connects, creates or migrates the schema, or fails with a clear error
    // (unreachable, wrong credentials, a newer schema). A short lease makes
    // the takeover quick to watch; the default is 30 s.
    let store =
        PostgresStore::builder(&url).schema("orchestrator_example").lease_ttl(Duration::from_secs(5)).connect().await?;
    let orchestrator = Orchestrator::builder().store(store).instance(name.clone()).state(Me(name)).build()?;
    let handle = orchestrator.handle();

    let printer = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let replicas = match printer.instances().await {
                Ok(list) => list.into_iter().map(|i| i.name).collect::<Vec<_>>().join(", "),
                Err(error) => format!("unknown ({error})"),
            };
            let status = printer.status();
            let running: Vec<String> = status
                .workers
                .iter()
                .filter_map(|w| w.running_on.as_ref().map(|on| format!("{} on {on}", w.name)))
                .collect();
            println!("-- {}: live replicas: {replicas}; running: {}", status.instance, running.join(", "));
        }
    });

    if let Some(seconds) = run_for(&args) {
        let stopper = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stopper.shutdown().await;
        });
    }
    orchestrator.run().await?;
    Ok(())
}

/// `--for SECONDS`: stop by itself.
fn run_for(args: &[String]) -> Option<u64> {
    let position = args.iter().position(|a| a == "--for")?;
    args.get(position + 1)?.parse().ok()
}
