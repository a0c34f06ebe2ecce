//! W1 and W2 for tokio-cron-scheduler, the peer an application would most
//! likely pick instead: the same jobs through its public API
//! (`Job::new_repeated_async`), measured with the same instruments.
//!
//! What it can express, and how it runs them (read in its source, 0.15):
//! repeated jobs of whole seconds only (its schedule is kept in whole Unix
//! seconds, so a sub-second interval cannot be given: those cases do not
//! include it); a ticker task that wakes every 500 ms, scans every job and,
//! for each one due, spawns tasks to notify, activate and record it; the
//! body's future is then spawned by the activation listener. A repeated
//! job's next tick advances by exactly its interval per run, so the k-th run
//! of a job is the fire due at its first tick + k·interval: lateness is
//! measured against that, on the wall clock its schedule lives on (mapped to
//! tokio's clock through one pair of readings taken together).
//!
//! Its activations travel through a broadcast channel of a size chosen at
//! construction (`JobScheduler::new()` takes 200); a burst larger than that
//! would overflow it and lose fires, so it is given room for every job
//! (`new_with_channel_size`), as a user who read its docs would.
//!
//! Its first fires come at a whole second after the jobs are added, not at
//! an instant this program chooses; the window measured is therefore
//! `run_for` from the first whole second at least one second after the
//! scheduler started, and the CPU is read over `run_for` starting half a
//! second before it (a steady-state rate: each fire runs within about half a
//! second of its due instant).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::measure::{StartLog, cpu_seconds, nanos};
use crate::outcome::Outcome;

/// Whether tokio-cron-scheduler can run jobs every `interval`.
pub fn expresses(interval: Duration) -> bool {
    interval >= Duration::from_secs(1) && interval.subsec_nanos() == 0
}

pub async fn fixed_rate(workers: usize, interval: Duration, run_for: Duration) -> Result<Outcome, String> {
    if !expresses(interval) {
        return Err(format!("tokio-cron-scheduler repeats jobs in whole seconds, not every {interval:?}"));
    }
    let clock = Clock::now();
    let slots = (run_for.as_nanos().div_ceil(interval.as_nanos())) as usize;
    // Fires before the window and a few after it are recorded too.
    let capacity = slots + 8 + (4 * 1_000_000_000 / interval.as_nanos()) as usize;
    let starts = Arc::new(StartLog::new(workers, capacity, clock.instant));
    let scheduler = scheduler(workers).await?;
    let mut ids = Vec::with_capacity(workers);
    for w in 0..workers {
        let starts = starts.clone();
        let job = Job::new_repeated_async(interval, move |_id, _scheduler| {
            let starts = starts.clone();
            Box::pin(async move { starts.record_on_cpu(w, Instant::now()) })
        })
        .map_err(|e| format!("tokio-cron-scheduler refused the job: {e}"))?;
        ids.push(scheduler.add(job).await.map_err(|e| format!("tokio-cron-scheduler add: {e}"))?);
    }
    // Each job's first due instant, as its scheduler holds it.
    let mut firsts = Vec::with_capacity(workers);
    let mut reader = scheduler.clone();
    for id in ids {
        let first = reader
            .next_tick_for_job(id)
            .await
            .map_err(|e| format!("tokio-cron-scheduler next tick: {e}"))?
            .ok_or("a repeated job has no next tick")?;
        firsts.push(clock.to_instant(first.into()));
    }
    scheduler.start().await.map_err(|e| format!("tokio-cron-scheduler start: {e}"))?;

    let window_start = clock.next_whole_second_after(Instant::now() + Duration::from_secs(1));
    let window_end = window_start + run_for;
    let half = Duration::from_millis(500);
    tokio::time::sleep_until(window_start - half).await;
    let cpu_before = cpu_seconds();
    tokio::time::sleep_until(window_end - half).await;
    let cpu = cpu_seconds() - cpu_before;
    // Let the last fires of the window run before reading the log.
    tokio::time::sleep_until(window_end + Duration::from_secs(1)).await;
    let mut stopper = scheduler.clone();
    stopper.shutdown().await.map_err(|e| format!("tokio-cron-scheduler shutdown: {e}"))?;

    let mut lateness = Vec::with_capacity(workers * slots);
    let mut expected = 0;
    for (w, &first) in firsts.iter().enumerate() {
        for k in 0.. {
            let due = first + interval * k;
            if due >= window_end {
                break;
            }
            if due < window_start {
                continue;
            }
            expected += 1;
            if let Some(at) = starts.get(w, k as usize) {
                lateness.push(nanos(at.saturating_sub(starts.since_origin(due))));
            }
        }
    }
    // CPU over `run_for`, per fire due in it.
    Ok(super::fixed_rate::peer_report(expected, lateness, cpu, &starts))
}

pub async fn idle(workers: usize, idle_for: Duration) -> Result<Outcome, String> {
    const HOUR: Duration = Duration::from_secs(3600);
    let fired = Arc::new(AtomicU64::new(0));
    let scheduler = scheduler(workers).await?;
    for _ in 0..workers {
        let fired = fired.clone();
        let job = Job::new_repeated_async(HOUR, move |_id, _scheduler| {
            let fired = fired.clone();
            Box::pin(async move {
                fired.fetch_add(1, Relaxed);
            })
        })
        .map_err(|e| format!("tokio-cron-scheduler refused the job: {e}"))?;
        scheduler.add(job).await.map_err(|e| format!("tokio-cron-scheduler add: {e}"))?;
    }
    scheduler.start().await.map_err(|e| format!("tokio-cron-scheduler start: {e}"))?;
    // As for the others: start-up work done before the window opens (its
    // ticker's first scan comes 500 ms after the start).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = cpu_seconds();
    tokio::time::sleep(idle_for).await;
    let cpu = cpu_seconds() - before;
    let mut stopper = scheduler.clone();
    stopper.shutdown().await.map_err(|e| format!("tokio-cron-scheduler shutdown: {e}"))?;
    let fired = fired.load(Relaxed);
    let mut outcome = Outcome::default();
    outcome.metric("cpu_s", cpu);
    outcome.check("nothing_fires_while_idle", fired == 0, format!("{fired} bodies ran though none was due"));
    Ok(outcome)
}

async fn scheduler(workers: usize) -> Result<JobScheduler, String> {
    // Room for a whole burst of activations and their three notifications.
    JobScheduler::new_with_channel_size(workers.max(200) * 4)
        .await
        .map_err(|e| format!("cannot create tokio-cron-scheduler's scheduler: {e}"))
}

/// The wall clock and tokio's clock, read together once.
pub(super) struct Clock {
    pub(super) instant: Instant,
    wall: SystemTime,
}

impl Clock {
    pub(super) fn now() -> Clock {
        Clock { instant: Instant::now(), wall: SystemTime::now() }
    }

    pub(super) fn to_instant(&self, wall: SystemTime) -> Instant {
        match wall.duration_since(self.wall) {
            Ok(ahead) => self.instant + ahead,
            Err(behind) => self.instant - behind.duration(),
        }
    }

    /// The first instant at or after `at` that falls on a whole second of
    /// the wall clock.
    pub(super) fn next_whole_second_after(&self, at: Instant) -> Instant {
        let wall = self.wall + at.saturating_duration_since(self.instant);
        let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let whole = Duration::from_secs(since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0));
        self.to_instant(UNIX_EPOCH + whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_expresses_whole_second_intervals_only() {
        assert!(expresses(Duration::from_secs(1)));
        assert!(expresses(Duration::from_secs(3600)));
        assert!(!expresses(Duration::from_millis(100)));
        assert!(!expresses(Duration::from_millis(1500)));
        assert!(!expresses(Duration::ZERO));
    }

    #[test]
    fn the_next_whole_second_is_on_the_wall_clock_and_not_before_the_instant_given() {
        let clock = Clock { instant: Instant::now(), wall: UNIX_EPOCH + Duration::from_millis(10_250) };
        let at = clock.instant + Duration::from_millis(100);
        let whole = clock.next_whole_second_after(at);
        assert_eq!(whole - clock.instant, Duration::from_millis(750));
        // Already on a whole second: that one.
        assert_eq!(clock.next_whole_second_after(whole), whole);
        assert_eq!(clock.to_instant(UNIX_EPOCH + Duration::from_secs(10)), clock.instant - Duration::from_millis(250));
    }
}
