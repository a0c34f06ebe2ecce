//! W1: N fixed-rate workers with no-op bodies: fires run against fires due,
//! lateness, CPU per 1,000 fires (peak RSS is added by the child for every
//! workload).
//!
//! The window is `run_for + interval/2` from the start, so that every slot due
//! in it (`k·interval < window`, k = 0, 1, ...) has half an interval to run
//! and no slot falls on its edge.
//!
//! Lateness is measured inside the body: the instant the body starts minus
//! the instant its fire was due, both on tokio's monotonic clock.
//!
//! - Floor: `Interval::tick` returns the instant the tick was due. With
//!   `MissedTickBehavior::Delay` a tick more than 5 ms late shifts the later
//!   ones, and the shifted instants are the floor's schedule: lateness is
//!   measured against them.
//! - Orchestrator: `Context::due()` is the instant the fire was due on the
//!   schedule (start + initial_delay + k·interval).
//!
//! Both get the same setup time before their first fire (100 ms + 10 µs per
//! job): the floor's first tick is that far in the future when its tasks are
//! spawned, and the orchestrator's workers have it as `initial_delay`. A
//! fire counts when it was due within `window` of the first one; a worker
//! with fewer fires than slots in that window lost some (a merged or skipped
//! fire shows up that way too).

use std::sync::Arc;
use std::time::Duration;

use orchestrator::{Context, WorkerSpec};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::Running;
use crate::measure::{StartLog, UNKNOWN_CPU, cpu_seconds, nanos, percentile};
use crate::outcome::Outcome;

/// W1 for orchestrator; with `status_loop`, a task calls `Handle::status()`
/// back to back meanwhile (W1s), and the outcome has its call times.
pub async fn orchestrator(
    workers: usize,
    interval: Duration,
    run_for: Duration,
    status_loop: bool,
) -> Result<Outcome, String> {
    let window = run_for + interval / 2;
    let slots = slots_in(window, interval);
    let origin = Instant::now();
    let starts = Arc::new(StartLog::new(workers, slots + 2, origin));
    let dues = Arc::new(StartLog::new(workers, slots + 2, origin));
    let setup = setup_time(workers);
    let specs: Vec<WorkerSpec> = (0..workers)
        .map(|w| {
            let (starts, dues) = (starts.clone(), dues.clone());
            // Recorded when the runtime calls the body, inside the run's task.
            WorkerSpec::new(name(w), move |ctx: Context| {
                starts.record_on_cpu(w, Instant::now());
                dues.record(w, ctx.due());
                std::future::ready(())
            })
            .interval(interval)
            .initial_delay(setup)
        })
        .collect();
    let orchestrator = super::build(specs, workers)?;

    let cpu_before = cpu_seconds();
    let running = Running::start(orchestrator);
    let reader = status_loop.then(|| {
        let handle = running.handle.clone();
        let until = running.spawned_at + setup + window;
        tokio::spawn(async move {
            let mut calls = Vec::new();
            while Instant::now() < until {
                let at = Instant::now();
                std::hint::black_box(handle.status());
                calls.push(nanos(at.elapsed()));
                tokio::task::yield_now().await;
            }
            calls
        })
    });
    tokio::time::sleep_until(running.spawned_at + setup + window).await;
    let cpu = cpu_seconds() - cpu_before;
    let calls = match reader {
        Some(reader) => Some(reader.await.map_err(|e| format!("status loop: {e}"))?),
        None => None,
    };
    running.stop().await?;

    let first = (0..workers).filter_map(|w| dues.get(w, 0)).min().ok_or("no fire ran")?;
    let mut lateness = Vec::with_capacity(workers * slots);
    let mut early = 0;
    for w in 0..workers {
        for i in 0..dues.count(w) {
            let (Some(due), Some(at)) = (dues.get(w, i), starts.get(w, i)) else { break };
            if due >= first + window {
                break;
            }
            early += usize::from(at < due);
            lateness.push(nanos(at.saturating_sub(due)));
        }
    }
    let mut outcome = report(workers * slots, lateness, cpu, &starts);
    if let Some(mut calls) = calls {
        calls.sort_unstable();
        let ms = |p: f64| percentile(&calls, p).map_or(f64::NAN, |n| n as f64 / 1e6);
        outcome.metric("status_calls_per_s", calls.len() as f64 / (setup + window).as_secs_f64());
        outcome.metric("status_p50_ms", ms(0.5));
        outcome.metric("status_p99_ms", ms(0.99));
        outcome.metric("status_max_ms", ms(1.0));
    }
    let lost = (workers * slots).saturating_sub(outcome.get("fires_run").unwrap_or(0.0) as usize);
    outcome.metric("fires_lost", lost as f64);
    outcome.check(
        "no_fire_lost",
        lost == 0,
        format!("{lost} of {} fires due in the window did not run", workers * slots),
    );
    outcome.check("no_fire_starts_before_due", early == 0, format!("{early} bodies started before their fire was due"));
    Ok(outcome)
}

/// A peer's W1 outcome: `report`'s figures, with the CPU measured over the
/// steady window (`cpu`) per fire due in it, and the fires lost.
pub fn peer_report(expected: usize, lateness: Vec<u64>, cpu: f64, starts: &StartLog) -> Outcome {
    let mut outcome = report(expected, lateness, 0.0, starts);
    outcome.metric("cpu_s", cpu);
    outcome.metric("cpu_per_1000_fires_s", cpu / expected.max(1) as f64 * 1000.0);
    let run = outcome.get("fires_run").unwrap_or(0.0) as usize;
    outcome.metric("fires_lost", expected.saturating_sub(run) as f64);
    outcome
}

/// The time both systems get before their first fire.
fn setup_time(workers: usize) -> Duration {
    Duration::from_millis(100) + Duration::from_micros(10) * workers as u32
}

pub async fn floor(workers: usize, interval: Duration, run_for: Duration) -> Result<Outcome, String> {
    let window = run_for + interval / 2;
    let slots = slots_in(window, interval);
    let origin = Instant::now();
    let starts = Arc::new(StartLog::new(workers, slots + 2, origin));
    let dues = Arc::new(StartLog::new(workers, slots + 2, origin));

    let cpu_before = cpu_seconds();
    // Every task's first tick at the same instant, once all are spawned, as
    // the orchestrator arms every slot before its first fires.
    let start = Instant::now() + setup_time(workers);
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let (starts, dues) = (starts.clone(), dues.clone());
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(start, interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let due = ticks.tick().await;
                starts.record_on_cpu(w, Instant::now());
                dues.record(w, due);
            }
        });
    }
    tokio::time::sleep_until(start + window).await;
    let cpu = cpu_seconds() - cpu_before;
    tasks.shutdown().await;

    let cutoff = dues.since_origin(start + window);
    let mut lateness = Vec::with_capacity(workers * slots);
    for w in 0..workers {
        for i in 0..dues.count(w) {
            let (Some(due), Some(at)) = (dues.get(w, i), starts.get(w, i)) else { break };
            if due >= cutoff {
                break;
            }
            lateness.push(nanos(at.saturating_sub(due)));
        }
    }
    Ok(report(workers * slots, lateness, cpu, &starts))
}

/// How many slots `k·interval` lie in `[0, window)`.
fn slots_in(window: Duration, interval: Duration) -> usize {
    window.as_nanos().div_ceil(interval.as_nanos()) as usize
}

fn name(w: usize) -> String {
    format!("fixed-{w:05}")
}

pub(super) fn report(expected: usize, mut lateness: Vec<u64>, cpu: f64, starts: &StartLog) -> Outcome {
    lateness.sort_unstable();
    let ms = |p: f64| percentile(&lateness, p).map_or(f64::NAN, |ns| ns as f64 / 1e6);
    let mut outcome = Outcome::default();
    outcome.metric("fires_run", lateness.len() as f64);
    outcome.metric("fires_expected", expected as f64);
    outcome.metric("lateness_p50_ms", ms(0.5));
    outcome.metric("lateness_p99_ms", ms(0.99));
    outcome.metric("lateness_max_ms", ms(1.0));
    outcome.metric("cpu_s", cpu);
    outcome.metric("cpu_per_1000_fires_s", cpu / lateness.len().max(1) as f64 * 1000.0);
    if let Some(share) = busiest_cpu_share(starts) {
        outcome.metric("burst_busiest_cpu_pct", share * 100.0);
    }
    outcome
}

/// How much of a burst ran on one CPU: for each burst (the k-th fire of every
/// worker, all due at the same instant), the share of its bodies that
/// started on the CPU most of them started on; the median over bursts. 1.0
/// means the burst ran on one CPU, 1/cores that it was spread evenly. With
/// the runtime's threads sharing a CPU, a burst's lateness is its CPU time
/// end to end; with its threads on separate CPUs, part of it.
fn busiest_cpu_share(starts: &StartLog) -> Option<f64> {
    let workers = starts.workers();
    let bursts = (0..workers).map(|w| starts.count(w)).max()?;
    let shares: Vec<f64> = (0..bursts)
        .filter_map(|k| {
            let mut per_cpu = [0usize; 256];
            for w in 0..workers {
                if let Some(cpu) = starts.cpu(w, k).filter(|&cpu| cpu != UNKNOWN_CPU) {
                    per_cpu[usize::from(cpu)] += 1;
                }
            }
            let total: usize = per_cpu.iter().sum();
            (total > 1).then(|| *per_cpu.iter().max().unwrap_or(&0) as f64 / total as f64)
        })
        .collect();
    crate::measure::median(&shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_counts_its_starts_on_its_busiest_cpu_and_the_median_is_over_bursts() {
        let origin = Instant::now();
        let log = StartLog::new(4, 2, origin);
        // Burst 0: CPUs 0, 0, 1 and one unknown (not counted): 2/3 on CPU 0.
        // Burst 1: all on CPU 1.
        for (w, cpus) in [(0, [0, 1]), (1, [0, 1]), (2, [1, 1]), (3, [UNKNOWN_CPU, 1])] {
            for cpu in cpus {
                log.record_with_cpu(w, origin, cpu);
            }
        }
        let share = busiest_cpu_share(&log).expect("two bursts");
        assert!((share - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-9, "{share}");
        // Nothing known, nothing to report.
        let unknown = StartLog::new(2, 1, origin);
        unknown.record_with_cpu(0, origin, UNKNOWN_CPU);
        unknown.record_with_cpu(1, origin, UNKNOWN_CPU);
        assert_eq!(busiest_cpu_share(&unknown), None);
    }
}
