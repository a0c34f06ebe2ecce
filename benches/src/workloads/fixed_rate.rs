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
//! - Orchestrator: SPEC's fixed-rate schedule fires at start + k·interval
//!   (k = 0, 1, ...: the first fire at start). The start is the instant the
//!   driver begins inside `run()`, which the API does not expose. The instant
//!   just before `run()` is spawned is a lower bound; the exact start is then
//!   recovered from a status snapshot after the window (see [`engine_start`]),
//!   also as a lower bound, so lateness is never under-estimated.
//!
//! Which slot a start serves: a worker's k-th start serves slot k when the
//! engine reports no merged fire for it (the exact case). When it reports
//! merges (misfire = FireOnce turns several late slots into one run), a start
//! a whole interval late stands for every slot due by then, and those count
//! as lost.

use std::sync::Arc;
use std::time::Duration;

use orchestrator::{Handle, WorkerSpec};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::Running;
use crate::measure::{StartLog, cpu_seconds, nanos, percentile};
use crate::outcome::Outcome;

pub async fn orchestrator(workers: usize, interval: Duration, run_for: Duration) -> Result<Outcome, String> {
    let window = run_for + interval / 2;
    let slots = slots_in(window, interval);
    let starts = Arc::new(StartLog::new(workers, slots + 2, Instant::now()));
    let specs: Vec<WorkerSpec> = (0..workers)
        .map(|w| {
            let starts = starts.clone();
            // Recorded when the runtime calls the body, inside the run's task.
            WorkerSpec::new(name(w), move || {
                starts.record(w, Instant::now());
                std::future::ready(())
            })
            .interval(interval)
        })
        .collect();
    let orchestrator = super::build(specs, workers)?;

    let cpu_before = cpu_seconds();
    let running = Running::start(orchestrator);
    tokio::time::sleep_until(running.spawned_at + window).await;
    let cpu = cpu_seconds() - cpu_before;
    let start = engine_start(&running.handle, running.spawned_at, interval);
    let merged = merged_fires(&running.handle, workers);
    let start_offset = start.saturating_duration_since(running.spawned_at);
    running.stop().await?;

    let start = starts.since_origin(start);
    let mut lateness = Vec::with_capacity(workers * slots);
    let mut early = 0;
    for (w, merged) in merged.iter().enumerate() {
        let mut slot = 0;
        for at in starts.entries(w) {
            if slot >= slots {
                break;
            }
            let due = start + interval * slot as u32;
            early += usize::from(at < due);
            lateness.push(nanos(at.saturating_sub(due)));
            let reached = (nanos(at.saturating_sub(start)) / nanos(interval)) as usize;
            slot = if *merged == 0 { slot + 1 } else { (slot + 1).max(reached + 1) };
        }
    }
    let mut outcome = report(workers * slots, lateness, cpu);
    let lost = workers * slots - outcome.get("fires_run").unwrap_or(0.0) as usize;
    outcome.metric("fires_lost", lost as f64);
    outcome.metric("merged_fires", merged.iter().sum::<u64>() as f64);
    outcome.metric("start_offset_us", start_offset.as_secs_f64() * 1e6);
    outcome.check(
        "no_fire_lost",
        lost == 0,
        format!("{lost} of {} fires due in the window did not run", workers * slots),
    );
    outcome.check("no_fire_starts_before_due", early == 0, format!("{early} bodies started before their fire was due"));
    Ok(outcome)
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
    let start = Instant::now() + Duration::from_millis(100) + Duration::from_micros(10) * workers as u32;
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let (starts, dues) = (starts.clone(), dues.clone());
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(start, interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let due = ticks.tick().await;
                starts.record(w, Instant::now());
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
    Ok(report(workers * slots, lateness, cpu))
}

/// How many slots `k·interval` lie in `[0, window)`.
fn slots_in(window: Duration, interval: Duration) -> usize {
    window.as_nanos().div_ceil(interval.as_nanos()) as usize
}

fn name(w: usize) -> String {
    format!("fixed-{w:05}")
}

fn report(expected: usize, mut lateness: Vec<u64>, cpu: f64) -> Outcome {
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
    outcome
}

/// The instant the driver started, recovered from a status snapshot.
///
/// `next_fire − taken_at` is exactly `due − now` of the snapshot (both are
/// the engine's monotonic instants mapped through the same wall-clock
/// anchor), and `due = start + m·interval`. The snapshot's `now` is read
/// after our `before`, so `before + (next_fire − taken_at) − m·interval` is
/// a lower bound of the start, short by the time to take the engine's lock.
/// Falls back to `spawned_at` (also a lower bound) if that cannot be read.
fn engine_start(handle: &Handle, spawned_at: Instant, interval: Duration) -> Instant {
    let before = Instant::now();
    let status = handle.status();
    let recovered = status.workers.first().and_then(|w| w.next_fire).and_then(|next| {
        let ahead = (next - status.taken_at).num_nanoseconds()?;
        let due = if ahead >= 0 {
            before + Duration::from_nanos(ahead.unsigned_abs())
        } else {
            before.checked_sub(Duration::from_nanos(ahead.unsigned_abs()))?
        };
        let since_spawn = due.checked_duration_since(spawned_at)?;
        let m = (nanos(since_spawn) / nanos(interval)) as u32;
        due.checked_sub(interval * m)
    });
    // The driver cannot have started before it was spawned.
    recovered.map_or(spawned_at, |start| start.max(spawned_at))
}

/// Per worker, the fires the engine merged or dropped (`coalesced_fires +
/// missed_fires` of the status), by worker index.
fn merged_fires(handle: &Handle, workers: usize) -> Vec<u64> {
    let mut merged = vec![0; workers];
    for status in handle.status().workers {
        if let Some(w) = status.name.strip_prefix("fixed-").and_then(|n| n.parse::<usize>().ok())
            && w < workers
        {
            merged[w] = status.coalesced_fires + status.missed_fires;
        }
    }
    merged
}
