//! W2: N hourly workers with nothing due: the CPU consumed while idle, which
//! for an event-driven scheduler is about nothing.
//!
//! The SPEC fires a fixed-rate schedule at start, so "none due during the
//! run" takes `initial_delay = interval` (floor: the first tick an interval
//! away). The window opens once everything is set up (slots armed, tasks
//! parked), so it holds only the idle cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use orchestrator::WorkerSpec;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::Running;
use crate::measure::cpu_seconds;
use crate::outcome::Outcome;

const HOUR: Duration = Duration::from_secs(3600);
/// Lets start-up work (arming, first polls) finish before the window opens.
const SETTLE: Duration = Duration::from_millis(100);

pub async fn orchestrator(workers: usize, idle_for: Duration) -> Result<Outcome, String> {
    let fired = Arc::new(AtomicU64::new(0));
    let specs: Vec<WorkerSpec> = (0..workers)
        .map(|w| {
            let fired = fired.clone();
            WorkerSpec::new(format!("hourly-{w:05}"), move || {
                fired.fetch_add(1, Relaxed);
                std::future::ready(())
            })
            .interval(HOUR)
            .initial_delay(HOUR)
        })
        .collect();
    let running = Running::start(super::build(specs, workers)?);
    running.started().await?;
    tokio::time::sleep(SETTLE).await;
    let cpu = idle_cpu(idle_for).await;
    running.stop().await?;
    Ok(report(cpu, fired.load(Relaxed)))
}

pub async fn floor(workers: usize, idle_for: Duration) -> Result<Outcome, String> {
    let fired = Arc::new(AtomicU64::new(0));
    let first = Instant::now() + HOUR;
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let fired = fired.clone();
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(first, HOUR);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                fired.fetch_add(1, Relaxed);
            }
        });
    }
    tokio::time::sleep(SETTLE).await;
    let cpu = idle_cpu(idle_for).await;
    tasks.shutdown().await;
    Ok(report(cpu, fired.load(Relaxed)))
}

async fn idle_cpu(idle_for: Duration) -> f64 {
    let before = cpu_seconds();
    tokio::time::sleep(idle_for).await;
    cpu_seconds() - before
}

fn report(cpu: f64, fired: u64) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.metric("cpu_s", cpu);
    outcome.check("nothing_fires_while_idle", fired == 0, format!("{fired} bodies ran though none was due"));
    outcome
}
