//! The serializable status snapshot, and how it reads in a terminal.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::context::RunId;
use crate::engine::{DependencyWait, Disabled, Phase, RecordView, RunView, Wait};
use crate::graph::{Graph, WorkerId};
use crate::schedule::WallClock;
use crate::spec::{HumanDuration, Mode, Priority};

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
    /// This orchestrator's name (see
    /// [`OrchestratorBuilder::instance`](crate::OrchestratorBuilder::instance)).
    pub instance: String,
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
    /// The store the state is kept in, and whether it is reachable.
    pub store: crate::store::StoreStatus,
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
///
/// In JSON it is flattened into its [`WorkerStatus`]: `"state"` is the
/// variant's name in snake_case and `"state_detail"`, present when the
/// variant has fields, holds them:
/// `"state": "waiting_on_dependency", "state_detail": {"dependency": "fetch", "reason": "it has never finished a run"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "state_detail", rename_all = "snake_case")]
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
    /// Due, but the cluster said not yet (cluster mode): the store refused
    /// this replica's claim of the fire for now, or could not be reached.
    /// The claim is made again at `retry_at`. Meanwhile [`WorkerStatus::running_on`]
    /// names the replica that runs the worker, if one does.
    WaitingForCluster {
        /// Why, in the store's words: `report runs on api-2`, `report's fire
        /// lost on api-3 goes first`, `fetch's fire has not finished`, `the
        /// store is unreachable (...)`.
        reason: String,
        /// When the claim is made again.
        retry_at: DateTime<Utc>,
    },
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
        /// Who disabled it, as a value a program can match on.
        cause: DisabledCause,
    },
}

/// Who disabled a worker (see [`WorkerState::Disabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledCause {
    /// Its definition says `enabled = false`.
    Configured,
    /// Someone called [`Handle::disable`](crate::Handle::disable).
    Manually,
    /// It failed `max_consecutive_failures` runs in a row: the orchestrator
    /// disabled it, and `/health` reports it.
    Failures,
}

impl From<&Disabled> for DisabledCause {
    fn from(reason: &Disabled) -> Self {
        match reason {
            Disabled::Configured => DisabledCause::Configured,
            Disabled::Manually => DisabledCause::Manually,
            Disabled::Failures { .. } => DisabledCause::Failures,
        }
    }
}

/// One worker in a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: String,
    /// Scheduled, Triggered or Continuous (`scheduled`, `triggered`,
    /// `continuous` in JSON).
    pub mode: Mode,
    /// The schedule, readable: `every 1m`, `cron 0 3 * * *`, `on trigger`.
    pub schedule: String,
    /// Its priority.
    pub priority: Priority,
    /// Whether it is enabled.
    pub enabled: bool,
    /// What it is doing now (flattened in JSON: `state` and `state_detail`).
    #[serde(flatten)]
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
    #[serde(rename = "last_duration_seconds", serialize_with = "seconds")]
    pub last_duration: Option<Duration>,
    /// Whether the last run succeeded.
    pub last_success: Option<bool>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// How late the last run started after its fire was due.
    #[serde(rename = "last_lateness_seconds", serialize_with = "seconds")]
    pub last_lateness: Option<Duration>,
    /// The largest lateness seen.
    #[serde(rename = "max_lateness_seconds", serialize_with = "seconds")]
    pub max_lateness: Option<Duration>,
    /// When the next scheduled fire is due.
    pub next_fire: Option<DateTime<Utc>>,
    /// The instance running it now, if any: this one while a run is in
    /// progress here; in cluster mode, for a Cluster worker, the replica
    /// that holds its running fire, as of this replica's last poll of the
    /// store (none while the store is unreachable).
    pub running_on: Option<String>,
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

/// What status shows of a worker that never changes after the build: worked
/// out once, outside the engine lock.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    pub(crate) name: String,
    mode: Mode,
    schedule: String,
    priority: Priority,
    depends_on: Vec<String>,
    blocks: Vec<String>,
}

impl Fixed {
    /// Every worker's fixed part, by worker id.
    pub(crate) fn of_graph(graph: &Graph) -> Box<[Fixed]> {
        let name = |w: usize| graph.workers[w].name.to_string();
        graph
            .workers
            .iter()
            .zip(&graph.edges)
            .map(|(config, edges)| Fixed {
                name: config.name.to_string(),
                mode: config.schedule.mode(),
                schedule: config.schedule.to_string(),
                priority: config.priority,
                depends_on: edges.depends_on.iter().map(|&d| name(d)).collect(),
                blocks: edges
                    .conflicts
                    .iter()
                    .filter(|c| {
                        edges.depends_on.binary_search(c).is_err() && edges.dependents.binary_search(c).is_err()
                    })
                    .map(|&c| name(c))
                    .collect(),
            })
            .collect()
    }
}

/// What status shows of the orchestrator as a whole, copied with the first
/// workers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Globals {
    pub state: OrchestratorState,
    pub max_concurrent: usize,
    pub executing: usize,
    pub clock: WallClock,
}

impl Status {
    /// Builds the snapshot from copies of the engine's records (see
    /// `runtime::mirror`), without the engine lock.
    pub(crate) fn of(fixed: &[Fixed], views: &[RecordView], globals: &Globals, wakeups: u64, now: Instant) -> Self {
        Status {
            instance: String::new(), // the handle's to fill in
            taken_at: globals.clock.wall(now),
            state: globals.state,
            max_concurrent: globals.max_concurrent,
            executing: globals.executing,
            wakeups,
            store: crate::store::StoreStatus::memory(),
            workers: views.iter().enumerate().map(|(w, v)| WorkerStatus::of(fixed, w, v, &globals.clock)).collect(),
        }
    }
}

impl WorkerStatus {
    /// Worker `w`'s status from every worker's fixed part (`all`) and a
    /// copy of its record.
    pub(crate) fn of(all: &[Fixed], w: WorkerId, record: &RecordView, clock: &WallClock) -> Self {
        let fixed = &all[w];
        let name = |other: WorkerId| all[other].name.clone();
        let wall = |at: Instant| clock.wall(at);
        let stats = &record.stats;
        let activity = if let Some(reason) = &record.disabled {
            match &record.run {
                Some(run) if matches!(run.phase, Phase::Executing { .. }) => running(run, &wall),
                _ => WorkerState::Disabled { reason: reason.to_string(), cause: reason.into() },
            }
        } else if let Some(run) = &record.run {
            match run.phase {
                Phase::Backoff { until } if record.cluster_wait.is_some() => WorkerState::WaitingForCluster {
                    reason: record.cluster_wait.clone().unwrap_or_default(),
                    retry_at: wall(until),
                },
                Phase::Queued { .. } if record.cluster_wait.is_some() => WorkerState::WaitingForSlot,
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
                        DependencyWait::NeverRan if all[dependency].mode == Mode::Triggered => {
                            "it has never run, and runs only when triggered"
                        }
                        DependencyWait::NeverRan => "it has never run",
                        DependencyWait::Disabled => "it is disabled",
                    }
                    .to_string(),
                },
            }
        };
        WorkerStatus {
            name: fixed.name.clone(),
            mode: fixed.mode,
            schedule: fixed.schedule.clone(),
            priority: fixed.priority,
            enabled: record.disabled.is_none(),
            state: activity,
            fire_pending: record.run.is_some() && record.pending,
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
            next_fire: record.next_due.map(wall),
            running_on: None, // the handle's to fill in
            depends_on: fixed.depends_on.clone(),
            blocks: fixed.blocks.clone(),
        }
    }
}

fn running(run: &RunView, wall: &impl Fn(Instant) -> DateTime<Utc>) -> WorkerState {
    let since = match run.phase {
        Phase::Executing { since } => since,
        _ => run.started,
    };
    WorkerState::Running { run_id: run.id, attempt: run.attempt, since: wall(since) }
}

/// The state in words, as the status table's STATE column shows it (where
/// the retry time is relative and the slot limit is named).
impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerState::Idle => f.write_str("idle"),
            WorkerState::Running { run_id, attempt: 1, .. } => write!(f, "running (run {run_id})"),
            WorkerState::Running { run_id, attempt, .. } => write!(f, "running (run {run_id}, attempt {attempt})"),
            WorkerState::Retrying { next_attempt, next_attempt_at, .. } => {
                write!(f, "retrying, attempt {next_attempt} at {}", next_attempt_at.format("%H:%M:%S%.3f UTC"))
            }
            WorkerState::WaitingForSlot => f.write_str("waiting for a free slot"),
            WorkerState::WaitingForCluster { reason, retry_at } => {
                write!(f, "waiting for the cluster: {reason}; claimed again at {}", retry_at.format("%H:%M:%S%.3f UTC"))
            }
            WorkerState::WaitingOnDependency { dependency, reason } => write!(f, "waiting on {dependency}: {reason}"),
            WorkerState::Excluded { by } => write!(f, "excluded by {by}"),
            WorkerState::Disabled { reason, .. } => write!(f, "disabled: {reason}"),
        }
    }
}

/// The widest line of [`Status`]'s table.
const TABLE_WIDTH: usize = 120;
/// A cell longer than its column wraps onto at most this many lines; the
/// rest is cut with `…` (the full text is in the serialized status).
const CELL_LINES: usize = 3;

/// A column of the status table. When the table must shrink to
/// [`TABLE_WIDTH`], the columns furthest above their `comfortable` width
/// give way first, down to `min` (`None`: never narrowed).
struct Column {
    header: &'static str,
    numeric: bool,
    comfortable: usize,
    min: Option<usize>,
}

const COLUMNS: [Column; 9] = [
    // Comfortable widths are priorities more than sizes (they add up to more
    // than fits): a name or a schedule is split only after STATE and LAST,
    // where words wrap well, have given way.
    Column { header: "WORKER", numeric: false, comfortable: 20, min: Some(12) },
    Column { header: "SCHEDULE", numeric: false, comfortable: 16, min: Some(10) },
    Column { header: "STATE", numeric: false, comfortable: 40, min: Some(24) },
    Column { header: "RUNS", numeric: true, comfortable: 0, min: None },
    Column { header: "OK", numeric: true, comfortable: 0, min: None },
    Column { header: "FAIL", numeric: true, comfortable: 0, min: None },
    Column { header: "SKIPPED", numeric: true, comfortable: 0, min: None },
    Column { header: "LAST", numeric: false, comfortable: 16, min: Some(12) },
    Column { header: "NEXT", numeric: false, comfortable: 10, min: Some(8) },
];

/// A table, one row per worker, then the relations between workers
/// (SKIPPED counts `upstream_failed` fires and fires dropped under
/// `misfire = Skip`):
///
/// ```text
/// orchestrator running, 1/5 slots busy
/// WORKER          SCHEDULE        STATE                                   RUNS  OK  FAIL  SKIPPED  LAST           NEXT
/// archive         cron 0 3 * * *  disabled: after 3 consecutive              3   0     3        0  error: disk    -
///                                 failures; last error: disk full                                  full
/// cleanup         every 5s        idle                                       2   2     0        0  ok in 0.41s    in 1.6s
/// fetch_data      every 2s        running (run 11)                           5   4     1        0  error:         in 2.0s
///                                                                                                  upstream
///                                                                                                  returned 503
/// process_data    every 3s        waiting on fetch_data: its fire due by     3   3     0        1  ok in 0.80s    in 1.0s
///                                 then has not finished
/// report          every 1m        retrying, attempt 2 in 1.2s                4   3     0        0  ok in 2.10s    in 58.8s
/// tenant-42-sync  every 30s       waiting for a free slot                    7   7     0        0  -              in 30.0s
///                                 (max_concurrent = 5)
/// relations:
///   cleanup: blocks process_data
///   process_data: depends on fetch_data; blocks cleanup
/// ```
///
/// The table stays within 120 columns (counting characters: a wide
/// character counts as one). When the cells' natural widths would make it
/// wider, the widest of WORKER, SCHEDULE, STATE, LAST and NEXT are narrowed,
/// and a cell longer than its column wraps at spaces onto continuation lines
/// (at most three, the last ending with `…` if the text goes on; the
/// serialized status has every text whole). Counts of a million or more are
/// abbreviated (`1.2M`).
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
                    (Some(false), _) => format!("error: {}", w.last_error.as_deref().unwrap_or("failed")),
                    _ => "-".into(),
                };
                let next = w.next_fire.map_or_else(|| "-".into(), |at| format!("in {}", self.ahead(at)));
                [
                    w.name.clone(),
                    w.schedule.clone(),
                    self.state_cell(&w.state),
                    count(w.runs),
                    count(w.successes),
                    count(w.failures),
                    count(w.upstream_failed + w.missed_fires),
                    last,
                    next,
                ]
                .map(|cell| one_line(&cell))
            })
            .collect();
        let widths = column_widths(&rows);
        let mut line = |cells: [&str; 9]| -> fmt::Result {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
                if COLUMNS[i].numeric {
                    out.push_str(&pad);
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&pad);
                }
                out.push_str("  ");
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(COLUMNS.each_ref().map(|c| c.header))?;
        for row in &rows {
            let cells: Vec<Vec<String>> =
                row.iter().zip(widths).map(|(cell, width)| wrap(cell, width, CELL_LINES)).collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for i in 0..height {
                line(std::array::from_fn(|c| cells[c].get(i).map_or("", String::as_str)))?;
            }
        }
        let relations: Vec<String> = self
            .workers
            .iter()
            .filter_map(|w| {
                let mut parts = Vec::new();
                if !w.depends_on.is_empty() {
                    parts.push(format!("depends on {}", w.depends_on.join(", ")));
                }
                if !w.blocks.is_empty() {
                    parts.push(format!("blocks {}", w.blocks.join(", ")));
                }
                (!parts.is_empty()).then(|| one_line(&format!("{}: {}", w.name, parts.join("; "))))
            })
            .collect();
        if !relations.is_empty() {
            writeln!(f, "relations:")?;
            for relation in relations {
                for (i, text) in wrap(&relation, TABLE_WIDTH - 4, CELL_LINES).iter().enumerate() {
                    writeln!(f, "{}{text}", if i == 0 { "  " } else { "    " })?;
                }
            }
        }
        Ok(())
    }
}

impl Status {
    /// The STATE cell: [`WorkerState`]'s words, with a retry's time relative
    /// to the snapshot and the concurrency limit named.
    fn state_cell(&self, state: &WorkerState) -> String {
        match state {
            WorkerState::Retrying { next_attempt, next_attempt_at, .. } if *next_attempt_at > self.taken_at => {
                format!("retrying, attempt {next_attempt} in {}", self.ahead(*next_attempt_at))
            }
            // Due: the attempt is queued for a slot.
            WorkerState::Retrying { next_attempt, .. } => {
                format!("retrying, attempt {next_attempt} waiting for a free slot")
            }
            WorkerState::WaitingForSlot => {
                format!("waiting for a free slot (max_concurrent = {})", self.max_concurrent)
            }
            WorkerState::WaitingForCluster { reason, retry_at } if *retry_at > self.taken_at => {
                format!("waiting for the cluster: {reason}; claimed again in {}", self.ahead(*retry_at))
            }
            WorkerState::WaitingForCluster { reason, .. } => format!("waiting for the cluster: {reason}"),
            other => other.to_string(),
        }
    }

    /// How long after the snapshot `at` is: `1.2s` under a minute, else the
    /// two largest units (`5m 30s`, `2d 3h`).
    fn ahead(&self, at: DateTime<Utc>) -> String {
        let ahead = (at - self.taken_at).to_std().unwrap_or_default();
        if ahead < Duration::from_secs(60) {
            return format!("{:.1}s", ahead.as_secs_f64());
        }
        let whole = HumanDuration(Duration::from_secs(ahead.as_secs())).to_string();
        whole.split(' ').take(2).collect::<Vec<_>>().join(" ")
    }
}

/// A count, abbreviated from a million on (`1.2M`, `34M`, `5.6G`, up to
/// `18E`) so that the numeric columns stay 7 characters wide at most.
fn count(n: u64) -> String {
    if n < 1_000_000 {
        return n.to_string();
    }
    let mut value = n as f64 / 1e6;
    let mut units = ["M", "G", "T", "P", "E"].into_iter();
    let mut unit = units.next().expect("non-empty");
    while value >= 1_000.0 {
        match units.next() {
            Some(next) => (value, unit) = (value / 1_000.0, next),
            None => break,
        }
    }
    if value < 10.0 { format!("{value:.1}{unit}") } else { format!("{value:.0}{unit}") }
}

/// `text` on one line: a multi-line error would break the table's rows.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each column's width: its widest cell, then, while the table is wider
/// than [`TABLE_WIDTH`], one character off the flexible column that is the
/// furthest above its comfortable width (the later column on a tie, so LAST
/// gives way before STATE), never below its minimum. The minimums and the
/// numeric columns' widest cells (7 characters at most, see [`count`])
/// always fit.
fn column_widths(rows: &[[String; 9]]) -> [usize; 9] {
    let mut widths = COLUMNS.each_ref().map(|c| c.header.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            // No column is wider than the table: this bounds the loop below.
            *width = (*width).max(cell.chars().count()).min(TABLE_WIDTH);
        }
    }
    let separators = 2 * (COLUMNS.len() - 1);
    let mut total: usize = widths.iter().sum::<usize>() + separators;
    while total > TABLE_WIDTH {
        let over = |i: usize| widths[i] as isize - COLUMNS[i].comfortable as isize;
        let Some(i) = (0..COLUMNS.len())
            .filter(|&i| COLUMNS[i].min.is_some_and(|min| widths[i] > min))
            .max_by_key(|&i| (over(i), i))
        else {
            break;
        };
        widths[i] -= 1;
        total -= 1;
    }
    widths
}

/// `text` wrapped to `width` characters at spaces (a word longer than a line
/// is split), in at most `max_lines` lines, the last ending with `…` when
/// text remains. Hand-written: a dozen lines, where a text-wrapping crate
/// would be a dependency of every application for a debugging table.
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let line = lines.last_mut().expect("never empty");
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used == 0 {
                // A word longer than a whole line: split it.
                let rest = word.split_off(width);
                line.extend(word.iter());
                word = rest;
            }
            lines.push(String::new());
        }
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        let last = lines.last_mut().expect("max_lines >= 1");
        let mut kept: String = last.chars().take(width - 1).collect();
        kept.push('…');
        *last = kept;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Mode, Priority};

    fn at(taken_at: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        taken_at + chrono::Duration::milliseconds(ms)
    }

    fn worker(name: &str, schedule: &str, state: WorkerState) -> WorkerStatus {
        WorkerStatus {
            name: name.into(),
            mode: Mode::Scheduled,
            schedule: schedule.into(),
            priority: Priority::Normal,
            enabled: !matches!(state, WorkerState::Disabled { .. }),
            state,
            fire_pending: false,
            consecutive_failures: 0,
            runs: 0,
            successes: 0,
            failures: 0,
            failed_attempts: 0,
            upstream_failed: 0,
            cancelled: 0,
            missed_fires: 0,
            coalesced_fires: 0,
            last_started: None,
            last_finished: None,
            last_duration: None,
            last_success: None,
            last_error: None,
            last_lateness: None,
            max_lateness: None,
            next_fire: None,
            running_on: None,
            depends_on: Vec::new(),
            blocks: Vec::new(),
        }
    }

    fn status(workers: Vec<WorkerStatus>) -> Status {
        let taken_at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap().with_timezone(&Utc);
        Status {
            instance: "test".into(),
            store: crate::store::StoreStatus::memory(),
            taken_at,
            state: OrchestratorState::Running,
            max_concurrent: 5,
            executing: 1,
            wakeups: 0,
            workers,
        }
    }

    fn counts(mut w: WorkerStatus, runs: u64, ok: u64, fail: u64, skipped: u64) -> WorkerStatus {
        (w.runs, w.successes, w.failures, w.upstream_failed) = (runs, ok, fail, skipped);
        w
    }

    fn ok_in(mut w: WorkerStatus, ms: u64) -> WorkerStatus {
        (w.last_success, w.last_duration) = (Some(true), Some(Duration::from_millis(ms)));
        w
    }

    fn failed_with(mut w: WorkerStatus, error: &str) -> WorkerStatus {
        (w.last_success, w.last_error) = (Some(false), Some(error.into()));
        w
    }

    /// The example of `Display for Status`'s documentation.
    fn documented() -> Status {
        let mut s = status(Vec::new());
        let t = s.taken_at;
        let mut cleanup = ok_in(counts(worker("cleanup", "every 5s", WorkerState::Idle), 2, 2, 0, 0), 410);
        cleanup.next_fire = Some(at(t, 1_600));
        cleanup.blocks = vec!["process_data".into()];
        let running = WorkerState::Running { run_id: RunId(11), attempt: 1, since: t };
        let mut fetch =
            failed_with(counts(worker("fetch_data", "every 2s", running), 5, 4, 1, 0), "upstream returned 503");
        fetch.next_fire = Some(at(t, 2_000));
        let waiting = WorkerState::WaitingOnDependency {
            dependency: "fetch_data".into(),
            reason: "its fire due by then has not finished".into(),
        };
        let mut process = ok_in(counts(worker("process_data", "every 3s", waiting), 3, 3, 0, 1), 800);
        process.next_fire = Some(at(t, 1_000));
        process.depends_on = vec!["fetch_data".into()];
        process.blocks = vec!["cleanup".into()];
        let retrying = WorkerState::Retrying { run_id: RunId(9), next_attempt: 2, next_attempt_at: at(t, 1_200) };
        let mut report = ok_in(counts(worker("report", "every 1m", retrying), 4, 3, 0, 0), 2_100);
        report.next_fire = Some(at(t, 58_800));
        let mut tenant = counts(worker("tenant-42-sync", "every 30s", WorkerState::WaitingForSlot), 7, 7, 0, 0);
        tenant.next_fire = Some(at(t, 30_000));
        let disabled = WorkerState::Disabled {
            reason: "after 3 consecutive failures; last error: disk full".into(),
            cause: DisabledCause::Failures,
        };
        let archive = failed_with(counts(worker("archive", "cron 0 3 * * *", disabled), 3, 0, 3, 0), "disk full");
        s.workers = vec![archive, cleanup, fetch, process, report, tenant];
        s
    }

    #[test]
    fn the_table_reads_as_its_documentation_shows() {
        let table = documented().to_string();
        let doc = include_str!("status.rs");
        let start = doc.find("/// ```text\n/// orchestrator running").expect("the documented example");
        let documented: String = doc[start..]
            .lines()
            .skip(1)
            .take_while(|line| *line != "/// ```")
            .map(|line| format!("{}\n", line.strip_prefix("/// ").unwrap_or("")))
            .collect();
        assert_eq!(table, documented);
    }

    #[test]
    fn the_table_stays_within_120_columns_for_long_names_reasons_and_errors() {
        let long_name = format!("tenant-{}-sync", "0123456789".repeat(12));
        let error = format!("connection refused\n  caused by: {}", "the broker did not answer ".repeat(20));
        let waiting = WorkerState::WaitingOnDependency {
            dependency: long_name.clone(),
            reason: "it has never run, and runs only when triggered".into(),
        };
        let mut dependent = failed_with(counts(worker("dependent", "every 1s", waiting), u64::MAX, 0, 7, 3), &error);
        dependent.depends_on = vec![long_name.clone(); 30];
        let disabled = WorkerState::Disabled {
            reason: format!("after 3 consecutive failures; last error: {error}"),
            cause: DisabledCause::Failures,
        };
        let mut broken =
            counts(worker(&long_name, "cron 0 3 * * * (America/Argentina/ComodRivadavia)", disabled), 1, 0, 3, 0);
        broken.next_fire = Some(at(status(Vec::new()).taken_at, 400 * 86_400_000));
        let table = status(vec![dependent, broken]).to_string();
        for line in table.lines() {
            assert!(line.chars().count() <= TABLE_WIDTH, "{} columns: {line}\n{table}", line.chars().count());
        }
        assert!(table.contains("failures; last error: connection"), "{table}");
        assert!(table.contains('…'), "long texts are cut, with a mark: {table}");
        assert!(!table.contains("\n  caused"), "an error's line breaks do not break the table");
        assert!(table.contains(" 18E "), "u64::MAX runs: {table}");
        assert!(table.contains("in 400d"), "{table}");
    }

    #[test]
    fn a_table_that_fits_is_not_wrapped() {
        let table = status(vec![ok_in(worker("cleanup", "every 5s", WorkerState::Idle), 410)]).to_string();
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.lines().nth(2).unwrap().starts_with("cleanup  every 5s  idle"), "{table}");
    }

    #[test]
    fn wrap_keeps_words_whole_splits_longer_ones_and_marks_what_is_cut() {
        assert_eq!(
            wrap("waiting on fetch_data: it has never run", 20, 3),
            ["waiting on", "fetch_data: it has", "never run"]
        );
        assert_eq!(wrap("abcdefghij", 4, 3), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one two three four five six", 8, 2), ["one two", "three…"]);
        assert_eq!(wrap("one two threefourfive", 8, 2), ["one two", "threefo…"]);
        assert_eq!(wrap("", 8, 3), [""]);
    }

    #[test]
    fn counts_of_a_million_or_more_are_abbreviated() {
        assert_eq!(count(999_999), "999999");
        assert_eq!(count(1_234_567), "1.2M");
        assert_eq!(count(34_000_000), "34M");
        assert_eq!(count(5_600_000_000), "5.6G");
        assert_eq!(count(u64::MAX), "18E");
    }
}
