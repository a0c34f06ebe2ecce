//! W6: N workers due at the same instant behind `max_concurrent` slots, with
//! mixed priorities and bodies that sleep: runs per second, and whether the
//! start order respects priority. The floor is a semaphore-limited spawn of
//! the same bodies, in priority order.
//!
//! "Due at the same instant": hourly workers, whose first fire is at start
//! for all of them (and the next an hour away). Priorities are uniform over
//! the four levels, seeded.
//!
//! The order checked is the order in which the scheduler decided to start
//! runs: the orchestrator numbers runs in the order it starts them (the run
//! id), the floor in the order it spawns. The order in which bodies begin
//! executing can differ by a few places, because runs started together race
//! on tokio's worker threads; it is reported as `body_start_inversions`, for
//! information.

use std::cmp::Reverse;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use orchestrator::{Context, Priority, WorkerSpec};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::Running;
use crate::measure::{StartLog, nanos};
use crate::outcome::Outcome;

const HOUR: Duration = Duration::from_secs(3600);

pub async fn orchestrator(workers: usize, max_concurrent: usize, body: Duration) -> Result<Outcome, String> {
    let priorities = priorities(workers);
    let progress = Arc::new(Progress::new(workers));
    let specs: Vec<WorkerSpec> = (0..workers)
        .map(|w| {
            let progress = progress.clone();
            WorkerSpec::new(format!("burst-{w:05}"), move |ctx: Context| {
                progress.started(w, ctx.run_id().0);
                let progress = progress.clone();
                async move {
                    tokio::time::sleep(body).await;
                    progress.finished();
                }
            })
            .interval(HOUR)
            .priority(priorities[w])
        })
        .collect();
    let running = Running::start(super::build(specs, max_concurrent)?);
    let finished = progress.all_finished(time_limit(workers, max_concurrent, body)).await;
    let elapsed = progress.last_finish().map(|last| last.saturating_duration_since(running.spawned_at));
    running.stop().await?;
    Ok(report(&progress, &priorities, finished, elapsed))
}

pub async fn floor(workers: usize, max_concurrent: usize, body: Duration) -> Result<Outcome, String> {
    let priorities = priorities(workers);
    let progress = Arc::new(Progress::new(workers));
    let mut queue: Vec<usize> = (0..workers).collect();
    queue.sort_by_key(|&w| (Reverse(priorities[w]), w));
    let slots = Arc::new(Semaphore::new(max_concurrent));

    let started = Instant::now();
    let spawning = {
        let progress = progress.clone();
        async move {
            for (order, w) in queue.into_iter().enumerate() {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                progress.started(w, order as u64);
                let progress = progress.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(body).await;
                    drop(slot);
                    progress.finished();
                });
            }
        }
    };
    tokio::spawn(spawning);
    let finished = progress.all_finished(time_limit(workers, max_concurrent, body)).await;
    let elapsed = progress.last_finish().map(|last| last.saturating_duration_since(started));
    Ok(report(&progress, &priorities, finished, elapsed))
}

/// Where the runs are: who started in which order and when, how many are
/// still to finish.
struct Progress {
    origin: Instant,
    /// Per worker: the scheduler's start order (run id, or spawn order), +1 so
    /// that 0 means "never started".
    order: Box<[AtomicU64]>,
    /// Per worker: when its body began, and how often it began.
    starts: StartLog,
    remaining: AtomicUsize,
    /// Nanoseconds since `origin` when the last body finished.
    last_finish: AtomicU64,
    all_done: Notify,
}

impl Progress {
    fn new(workers: usize) -> Self {
        let origin = Instant::now();
        Progress {
            origin,
            order: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            starts: StartLog::new(workers, 1, origin),
            remaining: AtomicUsize::new(workers),
            last_finish: AtomicU64::new(0),
            all_done: Notify::new(),
        }
    }

    fn started(&self, worker: usize, order: u64) {
        self.starts.record(worker, Instant::now());
        self.order[worker].store(order + 1, Ordering::Relaxed);
    }

    fn finished(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.last_finish.store(nanos(self.origin.elapsed()), Ordering::Release);
            // Stores a permit if nobody waits yet.
            self.all_done.notify_one();
        }
    }

    /// Whether every body finished within `limit`.
    async fn all_finished(&self, limit: Duration) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
            || tokio::time::timeout(limit, self.all_done.notified()).await.is_ok()
    }

    fn last_finish(&self) -> Option<Instant> {
        match self.last_finish.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.origin + Duration::from_nanos(ns)),
        }
    }
}

/// Generous: a run that has not finished by then is stuck, not slow.
fn time_limit(workers: usize, max_concurrent: usize, body: Duration) -> Duration {
    body * (20 * workers / max_concurrent.max(1)) as u32 + Duration::from_secs(30)
}

fn priorities(workers: usize) -> Vec<Priority> {
    let mut rng = fastrand::Rng::with_seed(6);
    let levels = [Priority::Low, Priority::Normal, Priority::High, Priority::Critical];
    (0..workers).map(|_| levels[rng.usize(..levels.len())]).collect()
}

/// Walks the workers in `key` order and counts starts of a priority higher
/// than one already started: each is a start that should have come earlier.
fn inversions(priorities: &[Priority], key: impl Fn(usize) -> u64) -> usize {
    let mut workers: Vec<usize> = (0..priorities.len()).collect();
    workers.sort_by_key(|&w| key(w));
    let mut lowest_so_far = Priority::Critical;
    let mut inversions = 0;
    for w in workers {
        if priorities[w] > lowest_so_far {
            inversions += 1;
        }
        lowest_so_far = lowest_so_far.min(priorities[w]);
    }
    inversions
}

fn report(progress: &Progress, priorities: &[Priority], finished: bool, elapsed: Option<Duration>) -> Outcome {
    let workers = priorities.len();
    let mut outcome = Outcome::default();
    let ran_once = (0..workers).filter(|&w| progress.starts.count(w) == 1).count();
    outcome.check(
        "every_worker_runs_once",
        finished && ran_once == workers,
        format!("{ran_once} of {workers} workers started exactly once; all finished: {finished}"),
    );
    let violations = inversions(priorities, |w| progress.order[w].load(Ordering::Relaxed));
    outcome.check(
        "start_order_respects_priority",
        violations == 0,
        format!("{violations} runs started after a run of lower priority due at the same instant"),
    );
    outcome.metric("priority_violations", violations as f64);
    let body_starts = inversions(priorities, |w| progress.starts.get(w, 0).map_or(u64::MAX, nanos));
    outcome.metric("body_start_inversions", body_starts as f64);
    if let Some(elapsed) = elapsed {
        outcome.metric("runs_per_s", workers as f64 / elapsed.as_secs_f64());
        outcome.metric("elapsed_s", elapsed.as_secs_f64());
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    #[test]
    fn inversions_count_starts_that_overtook_a_lower_priority() {
        let priorities = [Critical, High, High, Low, Normal, Low];
        // In index order: Normal (index 4) starts after Low (index 3).
        assert_eq!(inversions(&priorities, |w| w as u64), 1);
        // In priority order: none.
        let order = [0, 1, 2, 4, 3, 5];
        assert_eq!(inversions(&priorities, |w| order[w]), 0);
    }
}
