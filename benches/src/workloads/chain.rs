//! W3: a chain of Triggered workers, each depending on the previous one;
//! the first is triggered and the others follow as their dependency
//! succeeds. Measured: from the first body's start to the last body's start,
//! and per hop. The floor is the same number of parked tasks, each waking the
//! next through a `Notify`.
//!
//! Each round triggers the chain once; the reported figure is the median over
//! rounds (the first, which warms caches and allocator, included).

use std::sync::Arc;
use std::time::Duration;

use orchestrator::WorkerSpec;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Running;
use crate::measure::{StartLog, median};
use crate::outcome::Outcome;

/// A chain that has not completed by then is broken, not slow.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Between rounds, so that the last worker's run has ended before the next
/// round begins.
const PAUSE: Duration = Duration::from_millis(5);

pub async fn orchestrator(length: usize, rounds: usize) -> Result<Outcome, String> {
    let starts = Arc::new(StartLog::new(length, rounds, Instant::now()));
    let (last_started, mut arrivals) = mpsc::unbounded_channel();
    let specs: Vec<WorkerSpec> = (0..length)
        .map(|k| {
            let (starts, last_started) = (starts.clone(), last_started.clone());
            let spec = WorkerSpec::new(name(k), move || {
                starts.record(k, Instant::now());
                if k + 1 == length {
                    // The receiver outlives every round it waits for.
                    let _ = last_started.send(());
                }
                std::future::ready(())
            });
            if k == 0 { spec } else { spec.depends_on(name(k - 1)) }
        })
        .collect();
    let running = Running::start(super::build(specs, 5)?);
    let mut outcome = Outcome::default();
    let mut totals = Vec::new();
    for round in 0..rounds {
        match running.handle.trigger(&name(0)).await {
            Ok(run) if run.is_success() => {}
            Ok(run) => return Err(format!("round {round}: the first worker's run {run}")),
            Err(e) => return Err(format!("round {round}: trigger failed: {e}")),
        }
        if tokio::time::timeout(CHAIN_TIMEOUT, arrivals.recv()).await.is_err() {
            let stuck = (0..length).find(|&k| starts.count(k) <= round).unwrap_or(length);
            outcome.check(
                "chain_completes",
                false,
                format!("round {round}: worker {} of {length} did not start within {CHAIN_TIMEOUT:?}", stuck + 1),
            );
            running.stop().await?;
            return Ok(outcome);
        }
        if let (Some(first), Some(last)) = (starts.get(0, round), starts.get(length - 1, round)) {
            totals.push(last.saturating_sub(first));
        }
        tokio::time::sleep(PAUSE).await;
    }
    running.stop().await?;
    let every_worker_ran_every_round = (0..length).all(|k| starts.count(k) == rounds);
    outcome.check(
        "chain_completes",
        every_worker_ran_every_round && totals.len() == rounds,
        format!("each of {length} workers must start once per round, {rounds} rounds"),
    );
    report(&mut outcome, &totals, length);
    Ok(outcome)
}

pub async fn floor(length: usize, rounds: usize) -> Result<Outcome, String> {
    let starts = Arc::new(StartLog::new(length, rounds, Instant::now()));
    let wakers: Vec<Arc<Notify>> = (0..length).map(|_| Arc::new(Notify::new())).collect();
    let (last_started, mut arrivals) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for k in 0..length {
        let (starts, me, next) = (starts.clone(), wakers[k].clone(), wakers.get(k + 1).cloned());
        let last_started = last_started.clone();
        tasks.spawn(async move {
            loop {
                me.notified().await;
                starts.record(k, Instant::now());
                match &next {
                    Some(next) => next.notify_one(),
                    None => {
                        let _ = last_started.send(());
                    }
                }
            }
        });
    }
    let mut outcome = Outcome::default();
    let mut totals = Vec::new();
    for round in 0..rounds {
        // `notify_one` stores a permit if the first task is not parked yet.
        wakers[0].notify_one();
        if tokio::time::timeout(CHAIN_TIMEOUT, arrivals.recv()).await.is_err() {
            outcome.check("chain_completes", false, format!("round {round}: the chain did not complete"));
            return Ok(outcome);
        }
        if let (Some(first), Some(last)) = (starts.get(0, round), starts.get(length - 1, round)) {
            totals.push(last.saturating_sub(first));
        }
        tokio::time::sleep(PAUSE).await;
    }
    tasks.shutdown().await;
    outcome.check("chain_completes", totals.len() == rounds, format!("{} of {rounds} rounds measured", totals.len()));
    report(&mut outcome, &totals, length);
    Ok(outcome)
}

fn name(k: usize) -> String {
    format!("chain-{:02}", k + 1)
}

fn report(outcome: &mut Outcome, totals: &[Duration], length: usize) {
    let micros: Vec<f64> = totals.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    let total = median(&micros).unwrap_or(f64::NAN);
    outcome.metric("chain_total_us", total);
    outcome.metric("chain_per_hop_us", total / (length.max(2) - 1) as f64);
}
