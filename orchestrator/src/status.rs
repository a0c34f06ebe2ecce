//! The serializable status snapshot, and how it reads in a terminal.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::context::RunId;
use crate::engine::{DependencyWait, Engine, Phase, Wait};
use crate::spec::{HumanDuration, Mode, Priority, Scope};

/// How a run ended, as returned by [`Handle::trigger`](crate::Handle::trigger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The last attempt succeeded.
    Succeeded,
    /// Every attempt failed (error, panic or timeout); `error` is the last one's.
    Failed {
        /// The last attempt's error.
        error: String,
    },
    /// The fire did not run: a dependency's relevant fire failed.
    UpstreamFailed {
        /// The dependency whose fire failed.
        dependency: String,
    },
    /// The fire was dropped or its run cancelled (shutdown, worker disabled).
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl RunOutcome {
    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, RunOutcome::Succeeded)
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutcome::Succeeded => f.write_str("succeeded"),
            RunOutcome::Failed { error } => write!(f, "failed: {error}"),
            RunOutcome::UpstreamFailed { dependency } => write!(f, "upstream_failed ({dependency})"),
            RunOutcome::Cancelled { reason } => write!(f, "cancelled ({reason})"),
        }
    }
}

/// The orchestrator's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrchestratorState {
    /// Built, `run()` not called yet.
    Created,
    /// Scheduling.
    Running,
    /// Shutdown requested: no new runs start; running ones are finishing.
    ShuttingDown,
    /// Everything has stopped.
    Stopped,
}

/// A snapshot of the orchestrator and every worker, from
/// [`Handle::status`](crate::Handle::status). Serializes with serde; its
/// `Display` is a table for terminals and logs.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When the snapshot was taken.
    pub taken_at: DateTime<Utc>,
    /// The orchestrator's lifecycle.
    pub state: OrchestratorState,
    /// The concurrency limit.
    pub max_concurrent: usize,
    /// Scheduled/triggered attempts executing now (Continuous not counted).
    pub executing: usize,
    /// How many times the scheduler has woken up since it started: when
    /// something it had armed came due (a fire, a retry, the shutdown
    /// timeout), or when an event (a trigger, an enable, a signal) needed it
    /// earlier. Nothing polls: while no worker is due this stays unchanged,
    /// however long the wait.
    pub wakeups: u64,
    /// One entry per worker, sorted by name.
    pub workers: Vec<WorkerStatus>,
}

impl Status {
    /// The status of the worker named `name`.
    ///
    /// A binary search over `workers`, which a snapshot lists by name; if the
    /// list was reordered since, a linear scan.
    pub fn worker(&self, name: &str) -> Option<&WorkerStatus> {
        match self.workers.binary_search_by(|w| (*w.name).cmp(name)) {
            Ok(i) => Some(&self.workers[i]),
            Err(_) => self.workers.iter().find(|w| w.name == name),
        }
    }
}

/// What a worker is doing, with the reason when it is not running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WorkerState {
    /// Nothing due.
    Idle,
    /// An attempt is executing.
    Running {
        /// The run.
        run_id: RunId,
        /// Its attempt number (1 = first try).
        attempt: u32,
        /// When the attempt started.
        since: DateTime<Utc>,
    },
    /// The last attempt failed; the next one is due at `next_attempt_at`.
    Retrying {
        /// The run.
        run_id: RunId,
        /// The attempt that will start next.
        next_attempt: u32,
        /// When it is due (it may then wait for a slot).
        next_attempt_at: DateTime<Utc>,
    },
    /// Due, waiting for a free concurrency slot.
    WaitingForSlot,
    /// Due, waiting for a dependency.
    WaitingOnDependency {
        /// The dependency.
        dependency: String,
        /// Why it holds this worker back: `its fire due by then has not
        /// finished`, `it is disabled`, or `it has never run` (which lasts
        /// until the dependency first succeeds; for a Triggered dependency,
        /// `it has never run, and runs only when triggered`).
        reason: String,
    },
    /// Due, held back by a conflicting run (`blocks`, or a dependency relation).
    Excluded {
        /// The running worker it conflicts with.
        by: String,
    },
    /// Disabled; nothing starts until enabled.
    Disabled {
        /// Why (configuration, by hand, or too many failures with the last error).
        reason: String,
    },
}

/// One worker in a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: String,
    /// Scheduled, Triggered or Continuous.
    pub mode: Mode,
    /// The schedule, readable: `every 1m`, `cron 0 3 * * *`, `on trigger`.
    pub schedule: String,
    /// Its priority.
    pub priority: Priority,
    /// Its cluster scope.
    pub scope: Scope,
    /// Whether it is enabled.
    pub enabled: bool,
    /// What it is doing now.
    pub state: WorkerState,
    /// Whether a fire is due and waiting behind its own running run.
    pub fire_pending: bool,
    /// Failed runs in a row (reset by a success or by enabling).
    pub consecutive_failures: u32,
    /// Runs started.
    pub runs: u64,
    /// Runs that succeeded.
    pub successes: u64,
    /// Runs that failed (after their retries).
    pub failures: u64,
    /// Failed attempts, retried or not.
    pub failed_attempts: u64,
    /// Fires recorded as `upstream_failed` (a dependency's fire failed).
    pub upstream_failed: u64,
    /// Runs cancelled (shutdown).
    pub cancelled: u64,
    /// Slots dropped under `misfire = Skip`.
    pub missed_fires: u64,
    /// Slots merged into one catch-up run under `misfire = FireOnce`.
    pub coalesced_fires: u64,
    /// When the last run started.
    pub last_started: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub last_finished: Option<DateTime<Utc>>,
    /// How long the last run took, all attempts included.
    #[serde(serialize_with = "seconds")]
    pub last_duration: Option<Duration>,
    /// Whether the last run succeeded.
    pub last_success: Option<bool>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// How late the last run started after its fire was due.
    #[serde(serialize_with = "seconds")]
    pub last_lateness: Option<Duration>,
    /// The largest lateness seen.
    #[serde(serialize_with = "seconds")]
    pub max_lateness: Option<Duration>,
    /// When the next scheduled fire is due.
    pub next_fire: Option<DateTime<Utc>>,
    /// Its dependencies.
    pub depends_on: Vec<String>,
    /// The workers it blocks (either direction).
    pub blocks: Vec<String>,
}

fn seconds<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_some(&d.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

impl Status {
    pub(crate) fn of(engine: &Engine, state: OrchestratorState, wakeups: u64, now: Instant) -> Self {
        let clock = *engine.clock();
        let wall = |at: Instant| clock.wall(at);
        let graph = engine.graph();
        let name = |w: usize| graph.workers[w].name.to_string();
        let workers = (0..engine.len())
            .map(|w| {
                let config = engine.config(w);
                let record = engine.state(w);
                let stats = &record.stats;
                let edges = &graph.edges[w];
                let activity = if let Some(reason) = &record.disabled {
                    match &record.run {
                        Some(run) if matches!(run.phase, Phase::Executing { .. }) => running(run, &wall),
                        _ => WorkerState::Disabled { reason: reason.to_string() },
                    }
                } else if let Some(run) = &record.run {
                    match run.phase {
                        Phase::Executing { .. } => running(run, &wall),
                        Phase::Backoff { until } => WorkerState::Retrying {
                            run_id: run.id,
                            next_attempt: run.attempt + 1,
                            next_attempt_at: wall(until),
                        },
                        Phase::Queued { since } => WorkerState::Retrying {
                            run_id: run.id,
                            next_attempt: run.attempt + 1,
                            next_attempt_at: wall(since),
                        },
                    }
                } else {
                    match record.wait {
                        None | Some(Wait::OwnRun) => WorkerState::Idle,
                        Some(Wait::Slot) => WorkerState::WaitingForSlot,
                        Some(Wait::Excluded { by }) => WorkerState::Excluded { by: name(by) },
                        Some(Wait::Dependency { dependency, why }) => WorkerState::WaitingOnDependency {
                            dependency: name(dependency),
                            reason: match why {
                                DependencyWait::NotFinished => "its fire due by then has not finished",
                                // The wait that can last forever: say what ends it.
                                DependencyWait::NeverRan
                                    if matches!(
                                        engine.config(dependency).schedule,
                                        crate::spec::Schedule::Triggered
                                    ) =>
                                {
                                    "it has never run, and runs only when triggered"
                                }
                                DependencyWait::NeverRan => "it has never run",
                                DependencyWait::Disabled => "it is disabled",
                            }
                            .to_string(),
                        },
                    }
                };
                let blocks = edges
                    .conflicts
                    .iter()
                    .filter(|c| {
                        edges.depends_on.binary_search(c).is_err() && edges.dependents.binary_search(c).is_err()
                    })
                    .map(|&c| name(c))
                    .collect();
                WorkerStatus {
                    name: config.name.to_string(),
                    mode: config.schedule.mode(),
                    schedule: config.schedule.to_string(),
                    priority: config.priority,
                    scope: config.scope,
                    enabled: record.enabled(),
                    state: activity,
                    fire_pending: record.run.is_some() && record.pending.is_some(),
                    consecutive_failures: stats.consecutive_failures,
                    runs: stats.runs,
                    successes: stats.successes,
                    failures: stats.failures,
                    failed_attempts: stats.failed_attempts,
                    upstream_failed: stats.upstream_failed,
                    cancelled: stats.cancelled,
                    missed_fires: stats.missed,
                    coalesced_fires: stats.coalesced,
                    last_started: stats.last_started.map(wall),
                    last_finished: stats.last_finished.map(wall),
                    last_duration: stats.last_duration,
                    last_success: stats.last_success,
                    last_error: stats.last_error.clone(),
                    last_lateness: stats.last_lateness,
                    max_lateness: stats.last_lateness.map(|_| stats.max_lateness),
                    next_fire: record.slot.map(|s| wall(s.due)),
                    depends_on: edges.depends_on.iter().map(|&d| name(d)).collect(),
                    blocks,
                }
            })
            .collect();
        Status {
            taken_at: wall(now),
            state,
            max_concurrent: engine.max_concurrent(),
            executing: engine.executing(),
            wakeups,
            workers,
        }
    }
}

fn running(run: &crate::engine::Run, wall: &impl Fn(Instant) -> DateTime<Utc>) -> WorkerState {
    let since = match run.phase {
        Phase::Executing { since } => since,
        _ => run.started,
    };
    WorkerState::Running { run_id: run.id, attempt: run.attempt, since: wall(since) }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerState::Idle => f.write_str("idle"),
            WorkerState::Running { run_id, attempt: 1, .. } => write!(f, "running (run {run_id})"),
            WorkerState::Running { run_id, attempt, .. } => write!(f, "running (run {run_id}, attempt {attempt})"),
            WorkerState::Retrying { next_attempt, .. } => write!(f, "retrying (attempt {next_attempt} next)"),
            WorkerState::WaitingForSlot => f.write_str("waiting for a slot"),
            WorkerState::WaitingOnDependency { dependency, reason } => write!(f, "waiting on {dependency}: {reason}"),
            WorkerState::Excluded { by } => write!(f, "excluded by {by}"),
            WorkerState::Disabled { reason } => write!(f, "disabled: {reason}"),
        }
    }
}

/// A table, one line per worker (SKIPPED counts `upstream_failed` fires and
/// fires dropped under `misfire = Skip`):
///
/// ```text
/// orchestrator running, 1/5 slots busy
/// WORKER        SCHEDULE  STATE                  RUNS  OK  FAIL  SKIPPED  LAST                          NEXT
/// cleanup       every 5s  idle                      2   2     0        0  ok in 0.41s                   in 1.6s
/// fetch_data    every 2s  running (run 11)          5   4     1        0  error: upstream returned 503  in 2.0s
/// process_data  every 3s  waiting on fetch_data     3   3     0        1  ok in 0.80s                   in 1.0s
/// ```
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            OrchestratorState::Created => "created",
            OrchestratorState::Running => "running",
            OrchestratorState::ShuttingDown => "shutting down",
            OrchestratorState::Stopped => "stopped",
        };
        writeln!(f, "orchestrator {state}, {}/{} slots busy", self.executing, self.max_concurrent)?;
        let rows: Vec<[String; 9]> = self
            .workers
            .iter()
            .map(|w| {
                let last = match (&w.last_success, w.last_duration) {
                    (Some(true), Some(d)) => format!("ok in {:.2}s", d.as_secs_f64()),
                    (Some(false), _) => {
                        let error = w.last_error.as_deref().unwrap_or("failed");
                        let mut error: String = error.chars().take(40).collect();
                        if w.last_error.as_deref().is_some_and(|e| e.chars().count() > 40) {
                            error.push('…');
                        }
                        format!("error: {error}")
                    }
                    _ => "-".into(),
                };
                let next = match w.next_fire {
                    Some(at) => {
                        let ahead = (at - self.taken_at).to_std().unwrap_or_default();
                        if ahead < Duration::from_secs(60) {
                            format!("in {:.1}s", ahead.as_secs_f64())
                        } else {
                            format!("in {}", HumanDuration(Duration::from_secs(ahead.as_secs())))
                        }
                    }
                    None => "-".into(),
                };
                [
                    w.name.clone(),
                    w.schedule.clone(),
                    w.state.to_string(),
                    w.runs.to_string(),
                    w.successes.to_string(),
                    w.failures.to_string(),
                    (w.upstream_failed + w.missed_fires).to_string(),
                    last,
                    next,
                ]
            })
            .collect();
        let header = ["WORKER", "SCHEDULE", "STATE", "RUNS", "OK", "FAIL", "SKIPPED", "LAST", "NEXT"];
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let numeric = [false, false, false, true, true, true, true, false, false];
        let mut line = |cells: [&str; 9]| -> fmt::Result {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < cells.len() {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if i + 1 < cells.len() {
                    out.push_str("  ");
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(header)?;
        for row in &rows {
            line(row.each_ref().map(String::as_str))?;
        }
        Ok(())
    }
}
