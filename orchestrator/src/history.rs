//! The run history: per worker, its latest fires and how each ended, from
//! [`Handle::history`](crate::Handle::history).
//!
//! The engine records into `History` at the points where it decides a
//! fire's fate (a run starts, an attempt starts, a run ends, a fire is
//! skipped, missed or dropped). The rings live in an array of their own,
//! apart from the engine's per-worker records: a fire touches one ring
//! entry, and the hot records keep their hand-tuned layout. Entries keep
//! engine instants and are turned into wall-clock records only when read.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::context::RunId;
use crate::schedule::WallClock;
use crate::status::RunOutcome;

/// How many fires the in-memory history keeps per worker.
pub const KEPT_PER_WORKER: usize = 100;

/// One fire of a worker: when it was due, where and how it ran, how it
/// ended. From [`Handle::history`](crate::Handle::history), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FireRecord {
    /// The worker.
    pub worker: String,
    /// When the fire was due (for a trigger: when the trigger was accepted).
    /// For a catch-up run standing for several missed slots, the oldest.
    pub scheduled_at: DateTime<Utc>,
    /// The orchestrator instance that handled it.
    pub instance: String,
    /// Attempts started (0 when the fire never ran).
    pub attempts: u32,
    /// When its first attempt started (`None` when it never ran).
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its outcome (`None` while running).
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended, or `running`.
    pub outcome: FireOutcome,
    /// The last attempt's error (`failed`), the failed dependency
    /// (`upstream_failed`) or why it was dropped (`cancelled`).
    pub error: Option<String>,
}

/// How a fire ended (`snake_case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FireOutcome {
    /// Its run is in progress.
    Running,
    /// The run succeeded.
    Succeeded,
    /// The run failed (after its retries).
    Failed,
    /// The fire did not run: a dependency's relevant fire failed.
    UpstreamFailed,
    /// The run was cancelled, or the fire dropped before it started
    /// (shutdown, worker disabled).
    Cancelled,
    /// The fire was dropped under `misfire = Skip`: the worker could not
    /// start it before its next slot.
    Missed,
    /// The instance running it vanished (cluster mode).
    Lost,
}

impl FireOutcome {
    /// Its name, as in JSON and in a store's `outcome` column.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FireOutcome::Running => "running",
            FireOutcome::Succeeded => "succeeded",
            FireOutcome::Failed => "failed",
            FireOutcome::UpstreamFailed => "upstream_failed",
            FireOutcome::Cancelled => "cancelled",
            FireOutcome::Missed => "missed",
            FireOutcome::Lost => "lost",
        }
    }

    /// Back from a store's column. An outcome this binary does not know (a
    /// newer one's) reads as `lost`: it did not end in a way this binary
    /// can tell.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_column(text: &str) -> Self {
        match text {
            "running" => FireOutcome::Running,
            "succeeded" => FireOutcome::Succeeded,
            "failed" => FireOutcome::Failed,
            "upstream_failed" => FireOutcome::UpstreamFailed,
            "cancelled" => FireOutcome::Cancelled,
            "missed" => FireOutcome::Missed,
            _ => FireOutcome::Lost,
        }
    }

    /// The outcome of a fire whose run ended with `outcome`.
    pub(crate) fn of(outcome: &RunOutcome) -> Self {
        match outcome {
            RunOutcome::Succeeded => FireOutcome::Succeeded,
            RunOutcome::Failed { .. } => FireOutcome::Failed,
            RunOutcome::UpstreamFailed { .. } => FireOutcome::UpstreamFailed,
            RunOutcome::Cancelled { .. } => FireOutcome::Cancelled,
        }
    }
}

/// One fire, as the engine saw it.
#[derive(Debug, Clone)]
struct Entry {
    /// The run, for a fire that started.
    run: Option<RunId>,
    scheduled: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
    attempts: u32,
    outcome: FireOutcome,
    /// Boxed: most fires have none, and the entry stays small.
    error: Option<Box<str>>,
}

/// Every worker's latest fires, oldest first in each ring.
#[derive(Debug, Default)]
pub(crate) struct History {
    rings: Box<[VecDeque<Entry>]>,
}

impl History {
    pub(crate) fn new(workers: usize) -> Self {
        // Empty rings allocate nothing until a worker's first fire.
        History { rings: (0..workers).map(|_| VecDeque::new()).collect() }
    }

    fn push(&mut self, worker: usize, entry: Entry) {
        let ring = &mut self.rings[worker];
        if ring.len() == KEPT_PER_WORKER {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The entry of `run`: the newest running one, nearly always the last
    /// (missed fires may have been recorded after it while it ran).
    fn run_mut(&mut self, worker: usize, run: RunId) -> Option<&mut Entry> {
        self.rings[worker].iter_mut().rev().find(|e| e.run == Some(run))
    }

    /// `run` of `worker`, for the fire due at `scheduled`, started its first
    /// attempt at `now`.
    pub(crate) fn run_started(&mut self, worker: usize, run: RunId, scheduled: Instant, now: Instant) {
        self.push(
            worker,
            Entry {
                run: Some(run),
                scheduled,
                started: Some(now),
                finished: None,
                attempts: 1,
                outcome: FireOutcome::Running,
                error: None,
            },
        );
    }

    /// Forgets `run` of `worker`: it never ran (its claim was refused).
    pub(crate) fn forget_run(&mut self, worker: usize, run: RunId) {
        let ring = &mut self.rings[worker];
        if let Some(i) = ring.iter().rposition(|e| e.run == Some(run)) {
            ring.remove(i);
        }
    }

    /// `run` of `worker` started its attempt number `attempt`.
    pub(crate) fn attempt_started(&mut self, worker: usize, run: RunId, attempt: u32) {
        if let Some(entry) = self.run_mut(worker, run) {
            entry.attempts = attempt;
        }
    }

    /// `run` of `worker` ended at `now` with `outcome`.
    pub(crate) fn run_ended(&mut self, worker: usize, run: RunId, now: Instant, outcome: &RunOutcome) {
        if let Some(entry) = self.run_mut(worker, run) {
            entry.finished = Some(now);
            entry.outcome = FireOutcome::of(outcome);
            entry.error = match outcome {
                RunOutcome::Succeeded => None,
                RunOutcome::Failed { error } => Some(error.as_str().into()),
                RunOutcome::UpstreamFailed { dependency } => Some(upstream_error(dependency).into()),
                RunOutcome::Cancelled { reason } => Some(reason.as_str().into()),
            };
        }
    }

    /// A fire of `worker` due at `scheduled` reached `outcome` at `now`
    /// without running (upstream_failed, cancelled, missed).
    pub(crate) fn fire_dropped(
        &mut self,
        worker: usize,
        scheduled: Instant,
        now: Instant,
        outcome: FireOutcome,
        error: Option<&str>,
    ) {
        self.push(
            worker,
            Entry {
                run: None,
                scheduled,
                started: None,
                finished: Some(now),
                attempts: 0,
                outcome,
                error: error.map(Into::into),
            },
        );
    }

    /// The latest `limit` fires of `worker`, newest first, as records.
    pub(crate) fn records(
        &self,
        worker: usize,
        limit: usize,
        name: &str,
        instance: &str,
        clock: &WallClock,
    ) -> Vec<FireRecord> {
        self.rings[worker]
            .iter()
            .rev()
            .take(limit)
            .map(|e| FireRecord {
                worker: name.to_string(),
                scheduled_at: clock.wall(e.scheduled),
                instance: instance.to_string(),
                attempts: e.attempts,
                started_at: e.started.map(|at| clock.wall(at)),
                finished_at: e.finished.map(|at| clock.wall(at)),
                outcome: e.outcome,
                error: e.error.as_deref().map(str::to_string),
            })
            .collect()
    }
}

/// The error of an `upstream_failed` fire.
pub(crate) fn upstream_error(dependency: &str) -> String {
    format!("dependency `{dependency}` failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn clock(at: Instant) -> WallClock {
        WallClock::new(at, DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn a_ring_keeps_the_latest_hundred_fires_newest_first() {
        let t0 = Instant::now();
        let mut history = History::new(2);
        for i in 0..150u64 {
            let due = t0 + Duration::from_secs(i);
            history.run_started(1, RunId(i), due, due);
            history.run_ended(1, RunId(i), due + Duration::from_millis(10), &RunOutcome::Succeeded);
        }
        let records = history.records(1, 1000, "w", "i", &clock(t0));
        assert_eq!(records.len(), KEPT_PER_WORKER);
        assert_eq!(records[0].scheduled_at.timestamp(), 149);
        assert_eq!(records[99].scheduled_at.timestamp(), 50);
        assert!(history.records(0, 10, "other", "i", &clock(t0)).is_empty());
        assert_eq!(history.records(1, 3, "w", "i", &clock(t0)).len(), 3);
    }

    #[test]
    fn a_run_ending_after_a_missed_fire_updates_its_own_entry() {
        let t0 = Instant::now();
        let mut history = History::new(1);
        history.run_started(0, RunId(7), t0, t0);
        history.attempt_started(0, RunId(7), 2);
        history.fire_dropped(0, t0 + Duration::from_secs(1), t0 + Duration::from_secs(1), FireOutcome::Missed, None);
        history.run_ended(0, RunId(7), t0 + Duration::from_secs(2), &RunOutcome::Failed { error: "boom".into() });
        let records = history.records(0, 10, "w", "i", &clock(t0));
        assert_eq!(records[0].outcome, FireOutcome::Missed);
        assert_eq!(records[0].attempts, 0);
        assert_eq!(records[1].outcome, FireOutcome::Failed);
        assert_eq!(records[1].attempts, 2);
        assert_eq!(records[1].error.as_deref(), Some("boom"));
        assert_eq!(records[1].finished_at.map(|t| t.timestamp()), Some(2));
    }
}
