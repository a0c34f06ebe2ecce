//! W1 and W2 for clokwerk, a peer an application might pick instead: the
//! same jobs through its `AsyncScheduler`, measured with the same
//! instruments.
//!
//! What it can express, and how it runs them (read in its source, 0.4):
//! jobs every n whole seconds (`every(n.seconds())`), due at the multiples of
//! n seconds since the Unix epoch; no sub-second interval. It runs nothing by
//! itself: the application polls `run_pending()` in a loop, and its docs'
//! tokio example sleeps 100 ms between polls, which is what this does. Each
//! poll checks every job; the due ones' futures are awaited together inside
//! the poll (not spawned), and each job's next run is computed from the
//! poll's time (a poll more than a second late skips fires, which would show
//! in the count).
//!
//! A run's due instant is the whole second its job was pending for: read in
//! the job's closure, which clokwerk calls during the poll, as the wall
//! clock's whole second (the poll comes less than a second after it);
//! lateness is the body's start minus that, on tokio's clock (mapped through
//! one pair of readings taken together). The window and CPU reading are as
//! for tokio-cron-scheduler: `run_for` from a whole second at least a
//! second after the start, the CPU over `run_for` from half a second before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::clokwerk::{AsyncScheduler, TimeUnits};
use tokio::time::Instant;

use super::cron_scheduler::Clock;
use crate::measure::{StartLog, cpu_seconds, nanos};
use crate::outcome::Outcome;

/// The pause between polls, from clokwerk's documentation.
const POLL: Duration = Duration::from_millis(100);

/// Whether clokwerk can run jobs every `interval`.
pub fn expresses(interval: Duration) -> bool {
    interval >= Duration::from_secs(1) && interval.subsec_nanos() == 0 && u32::try_from(interval.as_secs()).is_ok()
}

pub async fn fixed_rate(workers: usize, interval: Duration, run_for: Duration) -> Result<Outcome, String> {
    if !expresses(interval) {
        return Err(format!("clokwerk runs jobs every whole number of seconds, not every {interval:?}"));
    }
    let seconds = interval.as_secs() as u32;
    let clock = Arc::new(Clock::now());
    let slots = (run_for.as_nanos().div_ceil(interval.as_nanos())) as usize;
    let capacity = slots + 8 + (4 * 1_000_000_000 / interval.as_nanos()) as usize;
    let starts = Arc::new(StartLog::new(workers, capacity, clock.instant));
    let dues = Arc::new(StartLog::new(workers, capacity, clock.instant));
    let mut scheduler = AsyncScheduler::with_tz(chrono::Utc);
    for w in 0..workers {
        let (starts, dues, clock) = (starts.clone(), dues.clone(), clock.clone());
        scheduler.every(seconds.seconds()).run(move || {
            dues.record(w, clock.whole_second_at_or_before(SystemTime::now()));
            let starts = starts.clone();
            async move { starts.record_on_cpu(w, Instant::now()) }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(Relaxed) {
                scheduler.run_pending().await;
                tokio::time::sleep(POLL).await;
            }
        }
    });

    let window_start = clock.next_whole_second_after(Instant::now() + Duration::from_secs(1));
    let window_end = window_start + run_for;
    let half = Duration::from_millis(500);
    tokio::time::sleep_until(window_start - half).await;
    let cpu_before = cpu_seconds();
    tokio::time::sleep_until(window_end - half).await;
    let cpu = cpu_seconds() - cpu_before;
    tokio::time::sleep_until(window_end + Duration::from_secs(1)).await;
    stop.store(true, Relaxed);
    poller.await.map_err(|e| format!("clokwerk's poll loop failed: {e}"))?;

    let (from, to) = (starts.since_origin(window_start), starts.since_origin(window_end));
    let mut lateness = Vec::with_capacity(workers * slots);
    for w in 0..workers {
        for i in 0..dues.count(w) {
            let (Some(due), Some(at)) = (dues.get(w, i), starts.get(w, i)) else { break };
            if due >= from && due < to {
                lateness.push(nanos(at.saturating_sub(due)));
            }
        }
    }
    Ok(super::fixed_rate::peer_report(workers * slots, lateness, cpu, &starts))
}

pub async fn idle(workers: usize, idle_for: Duration) -> Result<Outcome, String> {
    let fired = Arc::new(AtomicU64::new(0));
    let mut scheduler = AsyncScheduler::with_tz(chrono::Utc);
    for _ in 0..workers {
        let fired = fired.clone();
        scheduler.every(1.hour()).run(move || {
            let fired = fired.clone();
            async move {
                fired.fetch_add(1, Relaxed);
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(Relaxed) {
                scheduler.run_pending().await;
                tokio::time::sleep(POLL).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = cpu_seconds();
    tokio::time::sleep(idle_for).await;
    let cpu = cpu_seconds() - before;
    stop.store(true, Relaxed);
    poller.await.map_err(|e| format!("clokwerk's poll loop failed: {e}"))?;
    // An hourly clokwerk job is due at the top of the hour, which may fall
    // inside the window: count it, do not fail on it.
    let mut outcome = Outcome::default();
    outcome.metric("cpu_s", cpu);
    outcome.metric("fired_while_idle", fired.load(Relaxed) as f64);
    Ok(outcome)
}

impl Clock {
    /// The whole second of the wall clock at or before `wall`, on tokio's
    /// clock.
    fn whole_second_at_or_before(&self, wall: SystemTime) -> Instant {
        let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.to_instant(UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs()))
    }
}
