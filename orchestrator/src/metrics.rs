//! Metrics, through the [`metrics`] facade: whatever recorder the
//! application installed (the `http` feature's Prometheus exporter, or the
//! application's own) receives them.
//!
//! Every handle is registered once per worker when the orchestrator starts
//! and kept in an array apart from the engine's hot records, so that a fire
//! increments through a ready handle: no key is built and nothing is
//! allocated. Without a recorder the handles are no-ops. Names (label
//! `worker` on each):
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `orchestrator_runs_total` | counter | `outcome`: succeeded, failed, upstream_failed, cancelled |
//! | `orchestrator_attempts_total` | counter | `result`: succeeded, failed, panicked, timed_out |
//! | `orchestrator_missed_fires_total` | counter | |
//! | `orchestrator_run_duration_seconds` | histogram | |
//! | `orchestrator_fire_lateness_seconds` | histogram | |
//! | `orchestrator_running` | gauge (0 or 1) | |
//! | `orchestrator_worker_enabled` | gauge (0 or 1) | |
//! | `orchestrator_consecutive_failures` | gauge | |
//!
//! With a persistent store (SQLite, PostgreSQL), also:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `orchestrator_store_up` | gauge (0 or 1) | `store`: sqlite, postgres (no `worker`) |
//! | `orchestrator_claims_total` | counter (cluster mode) | `worker`; `result`: granted, taken, busy, upstream_failed, error |

use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};

use crate::engine::AttemptResult;
use crate::status::RunOutcome;

/// `orchestrator_runs_total`.
pub const RUNS_TOTAL: &str = "orchestrator_runs_total";
/// `orchestrator_attempts_total`.
pub const ATTEMPTS_TOTAL: &str = "orchestrator_attempts_total";
/// `orchestrator_missed_fires_total`.
pub const MISSED_FIRES_TOTAL: &str = "orchestrator_missed_fires_total";
/// `orchestrator_run_duration_seconds`.
pub const RUN_DURATION_SECONDS: &str = "orchestrator_run_duration_seconds";
/// `orchestrator_fire_lateness_seconds`.
pub const FIRE_LATENESS_SECONDS: &str = "orchestrator_fire_lateness_seconds";
/// `orchestrator_running`.
pub const RUNNING: &str = "orchestrator_running";
/// `orchestrator_worker_enabled`.
pub const WORKER_ENABLED: &str = "orchestrator_worker_enabled";
/// `orchestrator_consecutive_failures`.
pub const CONSECUTIVE_FAILURES: &str = "orchestrator_consecutive_failures";
/// `orchestrator_store_up`: 1 while the store answers, 0 while it is
/// unreachable (persistent stores only).
pub const STORE_UP: &str = "orchestrator_store_up";
/// `orchestrator_claims_total`: claims of fires, by result (cluster mode).
pub const CLAIMS_TOTAL: &str = "orchestrator_claims_total";

const OUTCOMES: [&str; 4] = ["succeeded", "failed", "upstream_failed", "cancelled"];
const RESULTS: [&str; 4] = ["succeeded", "failed", "panicked", "timed_out"];

/// One worker's handles, in the order a fire uses them: its start, then its
/// end.
#[derive(Debug)]
struct WorkerMetrics {
    lateness: Histogram,
    running: Gauge,
    attempts: [Counter; 4],
    runs: [Counter; 4],
    duration: Histogram,
    consecutive_failures: Gauge,
    missed: Counter,
    enabled: Gauge,
}

/// Every worker's handles (none before [`Metrics::register`]).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    workers: Box<[WorkerMetrics]>,
}

impl Metrics {
    /// Registers every worker's handles with the recorder installed now,
    /// and sets the gauges to each worker's `(enabled, consecutive
    /// failures)`.
    pub(crate) fn register<'a>(workers: impl Iterator<Item = (&'a str, bool, u32)>) -> Self {
        describe();
        let workers = workers
            .map(|(name, enabled, failures)| {
                let worker = name.to_string();
                let m = WorkerMetrics {
                    lateness: ::metrics::histogram!(FIRE_LATENESS_SECONDS, "worker" => worker.clone()),
                    running: ::metrics::gauge!(RUNNING, "worker" => worker.clone()),
                    attempts: RESULTS.map(
                        |result| ::metrics::counter!(ATTEMPTS_TOTAL, "worker" => worker.clone(), "result" => result),
                    ),
                    runs: OUTCOMES.map(
                        |outcome| ::metrics::counter!(RUNS_TOTAL, "worker" => worker.clone(), "outcome" => outcome),
                    ),
                    duration: ::metrics::histogram!(RUN_DURATION_SECONDS, "worker" => worker.clone()),
                    consecutive_failures: ::metrics::gauge!(CONSECUTIVE_FAILURES, "worker" => worker.clone()),
                    missed: ::metrics::counter!(MISSED_FIRES_TOTAL, "worker" => worker.clone()),
                    enabled: ::metrics::gauge!(WORKER_ENABLED, "worker" => worker),
                };
                // Counters show up at 0, so that a rate over them exists
                // before the first event.
                for counter in m.attempts.iter().chain(&m.runs).chain([&m.missed]) {
                    counter.increment(0);
                }
                m.running.set(0.0);
                m.enabled.set(if enabled { 1.0 } else { 0.0 });
                m.consecutive_failures.set(failures);
                m
            })
            .collect();
        Metrics { workers }
    }

    /// A run of `worker` started, `lateness` after its fire was due.
    pub(crate) fn run_started(&self, worker: usize, lateness: Duration) {
        if let Some(m) = self.workers.get(worker) {
            m.lateness.record(lateness.as_secs_f64());
            m.running.set(1.0);
        }
    }

    /// A run of `worker` counted as started never ran (its claim was refused).
    pub(crate) fn run_abandoned(&self, worker: usize) {
        if let Some(m) = self.workers.get(worker) {
            m.running.set(0.0);
        }
    }

    /// An attempt of `worker` ended with `result` (a cancelled attempt is
    /// counted by its run's outcome only).
    pub(crate) fn attempt_ended(&self, worker: usize, result: AttemptKind) {
        if let (Some(m), Some(i)) = (self.workers.get(worker), result.index()) {
            m.attempts[i].increment(1);
        }
    }

    /// A run of `worker` ended with `outcome` after `duration`, leaving
    /// `consecutive_failures`.
    pub(crate) fn run_ended(
        &self,
        worker: usize,
        outcome: &RunOutcome,
        duration: Option<Duration>,
        consecutive_failures: u32,
    ) {
        if let Some(m) = self.workers.get(worker) {
            m.runs[outcome_index(outcome)].increment(1);
            if let Some(d) = duration {
                m.duration.record(d.as_secs_f64());
            }
            m.running.set(0.0);
            m.consecutive_failures.set(consecutive_failures);
        }
    }

    /// A fire of `worker` was recorded `upstream_failed`.
    pub(crate) fn upstream_failed(&self, worker: usize) {
        if let Some(m) = self.workers.get(worker) {
            m.runs[2].increment(1);
        }
    }

    /// `count` fires of `worker` were dropped under `misfire = Skip`.
    pub(crate) fn missed(&self, worker: usize, count: u64) {
        if let Some(m) = self.workers.get(worker) {
            m.missed.increment(count);
        }
    }

    /// `worker` was enabled or disabled; enabling resets its failure count.
    pub(crate) fn enabled(&self, worker: usize, enabled: bool, consecutive_failures: u32) {
        if let Some(m) = self.workers.get(worker) {
            m.enabled.set(if enabled { 1.0 } else { 0.0 });
            m.consecutive_failures.set(consecutive_failures);
        }
    }
}

fn outcome_index(outcome: &RunOutcome) -> usize {
    match outcome {
        RunOutcome::Succeeded => 0,
        RunOutcome::Failed { .. } => 1,
        RunOutcome::UpstreamFailed { .. } => 2,
        RunOutcome::Cancelled { .. } => 3,
    }
}

/// The `result` label of an attempt, taken before the engine consumes the
/// [`AttemptResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptKind {
    Succeeded,
    Failed,
    Panicked,
    TimedOut,
    Cancelled,
}

impl AttemptKind {
    pub(crate) fn of(result: &AttemptResult) -> Self {
        match result {
            AttemptResult::Succeeded => AttemptKind::Succeeded,
            AttemptResult::Failed(_) => AttemptKind::Failed,
            AttemptResult::Panicked(_) => AttemptKind::Panicked,
            AttemptResult::TimedOut(_) => AttemptKind::TimedOut,
            AttemptResult::Cancelled | AttemptResult::LeaseLost | AttemptResult::Refused(_) => AttemptKind::Cancelled,
        }
    }

    fn index(self) -> Option<usize> {
        match self {
            AttemptKind::Succeeded => Some(0),
            AttemptKind::Failed => Some(1),
            AttemptKind::Panicked => Some(2),
            AttemptKind::TimedOut => Some(3),
            AttemptKind::Cancelled => None,
        }
    }
}

/// The HELP lines and units; recorders keep the first description given.
fn describe() {
    ::metrics::describe_counter!(RUNS_TOTAL, "Runs ended (and fires skipped as upstream_failed), by outcome");
    ::metrics::describe_counter!(ATTEMPTS_TOTAL, "Attempts ended, by result");
    ::metrics::describe_counter!(MISSED_FIRES_TOTAL, "Fires dropped under misfire = Skip");
    ::metrics::describe_histogram!(RUN_DURATION_SECONDS, Unit::Seconds, "Run durations, all attempts included");
    ::metrics::describe_histogram!(
        FIRE_LATENESS_SECONDS,
        Unit::Seconds,
        "How late runs started after their fire was due"
    );
    ::metrics::describe_gauge!(RUNNING, "1 while a run of the worker is in progress");
    ::metrics::describe_gauge!(WORKER_ENABLED, "1 while the worker is enabled");
    ::metrics::describe_gauge!(CONSECUTIVE_FAILURES, "Failed runs in a row");
    ::metrics::describe_gauge!(STORE_UP, "1 while the store answers, 0 while it is unreachable");
    ::metrics::describe_counter!(CLAIMS_TOTAL, "Claims of fires in cluster mode, by result");
}
