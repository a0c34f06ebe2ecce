//! The workloads, each for every system that can express it, run inside a child process: one
//! file per workload of BENCH.md. Each returns an [`Outcome`] that
//! [`child_main`] prints for the runner.
//!
//! Shared rules: a multi-threaded tokio runtime with one worker thread per
//! core (the default, as an application would have); everything timed on
//! tokio's monotonic clock; the orchestrator built before any measurement
//! starts (building is W5's subject, not the others').

mod build;
mod chain;
mod clokwerk_peer;
#[cfg(feature = "postgres")]
pub mod cluster;
mod cron_scheduler;
mod fixed_rate;
mod idle;
mod priority;
mod trigger;

use std::process::ExitCode;
use std::time::Duration;

use orchestrator::{Handle, Orchestrator, OrchestratorState, WorkerSpec};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::measure;
use crate::outcome::Outcome;
use crate::plan::{Case, System};

/// Runs one case for one system and prints its outcome on stdout.
pub fn child_main(case: &Case, system: System) -> ExitCode {
    match run(case, system) {
        Ok(mut outcome) => {
            outcome.metric("peak_rss_mib", measure::peak_rss_bytes() / (1024.0 * 1024.0));
            print!("{}", outcome.to_lines());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{} {}: {error}", case.label(), system.name());
            ExitCode::FAILURE
        }
    }
}

fn run(case: &Case, system: System) -> Result<Outcome, String> {
    if let Case::Build { workers } = *case {
        // Synchronous: building needs no runtime.
        return build::orchestrator(workers);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    runtime.block_on(async {
        match (case, system) {
            (&Case::FixedRate { workers, interval, run_for }, System::Orchestrator) => {
                fixed_rate::orchestrator(workers, interval, run_for, false).await
            }
            (&Case::StatusLoad { workers, interval, run_for }, System::Orchestrator) => {
                fixed_rate::orchestrator(workers, interval, run_for, true).await
            }
            // The baseline of W1s is the orchestrator without the status loop.
            (&Case::StatusLoad { workers, interval, run_for }, System::Floor) => {
                fixed_rate::orchestrator(workers, interval, run_for, false).await
            }
            (&Case::FixedRate { workers, interval, run_for }, System::Floor) => {
                fixed_rate::floor(workers, interval, run_for).await
            }
            #[cfg(feature = "postgres")]
            (&Case::Cluster { replicas, workers, interval, run_for }, System::Orchestrator) => {
                cluster::orchestrator(replicas, workers, interval, run_for).await
            }
            #[cfg(not(feature = "postgres"))]
            (Case::Cluster { .. }, System::Orchestrator) => Err("C1 needs the `postgres` feature".into()),
            // C1's baseline: one process, the in-memory store, the same workers.
            (&Case::Cluster { workers, interval, run_for, .. }, System::Floor) => {
                let mut outcome = fixed_rate::orchestrator(workers, interval, run_for, false).await?;
                let due = outcome.get("fires_expected").unwrap_or(0.0);
                let window = due / workers.max(1) as f64 * interval.as_secs_f64();
                outcome.metric("fires_per_s", outcome.get("fires_run").unwrap_or(0.0) / window.max(f64::MIN_POSITIVE));
                outcome.metric("fires_doubled", 0.0);
                Ok(outcome)
            }
            (&Case::Idle { workers, idle_for }, System::Orchestrator) => idle::orchestrator(workers, idle_for).await,
            (&Case::Idle { workers, idle_for }, System::Floor) => idle::floor(workers, idle_for).await,
            (&Case::Chain { length, rounds }, System::Orchestrator) => chain::orchestrator(length, rounds).await,
            (&Case::Chain { length, rounds }, System::Floor) => chain::floor(length, rounds).await,
            (&Case::TriggerLoops { loops, run_for }, System::Orchestrator) => {
                trigger::orchestrator(loops, run_for).await
            }
            (&Case::TriggerLoops { loops, run_for }, System::Floor) => trigger::floor(loops, run_for).await,
            (&Case::PriorityBurst { workers, max_concurrent, body }, System::Orchestrator) => {
                priority::orchestrator(workers, max_concurrent, body).await
            }
            (&Case::PriorityBurst { workers, max_concurrent, body }, System::Floor) => {
                priority::floor(workers, max_concurrent, body).await
            }
            (&Case::FixedRate { workers, interval, run_for }, System::TokioCronScheduler) => {
                cron_scheduler::fixed_rate(workers, interval, run_for).await
            }
            (&Case::Idle { workers, idle_for }, System::TokioCronScheduler) => {
                cron_scheduler::idle(workers, idle_for).await
            }
            (_, System::TokioCronScheduler) => Err(format!("tokio-cron-scheduler cannot express {}", case.workload())),
            (&Case::FixedRate { workers, interval, run_for }, System::Clokwerk) => {
                clokwerk_peer::fixed_rate(workers, interval, run_for).await
            }
            (&Case::Idle { workers, idle_for }, System::Clokwerk) => clokwerk_peer::idle(workers, idle_for).await,
            (_, System::Clokwerk) => Err(format!("clokwerk cannot express {}", case.workload())),
            (Case::Build { .. }, _) => unreachable!("handled above"),
        }
    })
}

/// Whether the peers can run jobs every `interval` (whole seconds).
pub fn peers_express(interval: Duration) -> bool {
    cron_scheduler::expresses(interval) && clokwerk_peer::expresses(interval)
}

/// Builds an orchestrator of exactly `specs` (no `#[worker]` of the binary).
fn build(specs: impl IntoIterator<Item = WorkerSpec>, max_concurrent: usize) -> Result<Orchestrator, String> {
    Orchestrator::builder()
        .without_registered_workers()
        .max_concurrent(max_concurrent)
        .seed(1)
        .workers(specs)
        .build()
        .map_err(|e| format!("build failed: {e}"))
}

/// A running orchestrator: its handle and its driver task.
struct Running {
    handle: Handle,
    driver: JoinHandle<Result<(), orchestrator::Error>>,
    /// Taken just before `run()` is spawned: no fire can be due before it.
    spawned_at: Instant,
}

impl Running {
    fn start(orchestrator: Orchestrator) -> Running {
        let handle = orchestrator.handle();
        let spawned_at = Instant::now();
        let driver = tokio::spawn(orchestrator.run());
        Running { handle, driver, spawned_at }
    }

    /// Waits until the driver has begun scheduling (it runs on another task).
    async fn started(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.handle.status().state == OrchestratorState::Created {
            if Instant::now() > deadline {
                return Err("the orchestrator did not start within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    async fn stop(self) -> Result<(), String> {
        self.handle.shutdown().await;
        match self.driver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the orchestrator failed: {e}")),
            Err(e) => Err(format!("the orchestrator's task failed: {e}")),
        }
    }
}
