//! The engine's per-worker bookkeeping: the armed slot, the pending fire, the
//! run in progress, the last finished fire, counters. Plain data; the rules
//! that move it live in `engine/mod.rs`.

use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::context::RunId;
use crate::graph::{Edges, WorkerId};
use crate::spec::{Misfire, Priority, Schedule, WorkerConfig};

/// Identifies a caller waiting for the outcome of a fire (a trigger).
pub(crate) type WaiterId = usize;

/// The callers waiting for one fire: nearly always none or one, kept inline
/// so that a trigger costs no allocation.
pub(crate) type Waiters = SmallVec<[WaiterId; 1]>;

/// Per-dependency verdicts of a pending fire (see
/// [`WorkerRecord::verdicts`]), inline for up to eight dependencies so that a
/// fire costs no allocation.
pub(crate) type Verdicts = SmallVec<[Option<bool>; 8]>;

/// The next scheduled slot of a worker, with its timer armed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// The slot on the schedule's grid (interval) or the cron occurrence.
    pub nominal: Instant,
    /// `nominal` plus this fire's jitter: when the fire is due.
    pub due: Instant,
}

/// A fire that is due but has not started: it waits for its dependencies,
/// for a conflicting run to end, for its own run to end, or for a slot.
#[derive(Debug)]
pub(crate) struct Fire {
    /// The fire's due time for dependency purposes: the latest slot merged
    /// into it (a catch-up run stands for the freshest missed slot).
    pub due: Instant,
    /// When the oldest slot merged into it was due: orders the ready queue and
    /// measures lateness.
    pub first_due: Instant,
    /// Callers of `trigger` waiting for this fire's outcome.
    pub waiters: Waiters,
}

impl Fire {
    pub(crate) fn new(due: Instant) -> Self {
        Fire { due, first_due: due, waiters: Waiters::new() }
    }
}

/// Where a run in progress is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An attempt is executing (it holds a concurrency slot unless Continuous).
    Executing { since: Instant },
    /// The last attempt failed; the next one is due at `until`.
    Backoff { until: Instant },
    /// The next attempt is due and waits in the ready queue for a slot.
    Queued { since: Instant },
}

/// A run in progress: from its first attempt's start to its outcome.
#[derive(Debug)]
pub(crate) struct Run {
    pub id: RunId,
    pub attempt: u32,
    pub phase: Phase,
    pub started: Instant,
    pub fire: Fire,
}

/// The last fire of a worker that reached an outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishedFire {
    pub succeeded: bool,
}

/// Why a fire is not starting, for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The dependency's relevant fire has not finished, or it is disabled.
    Dependency { dependency: WorkerId, why: DependencyWait },
    /// A conflicting worker (`blocks`, or a dependency relation) is running.
    Excluded { by: WorkerId },
    /// Its own previous run is still in progress.
    OwnRun,
    /// Ready, waiting for a free concurrency slot.
    Slot,
}

/// Why a dependency holds a fire back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DependencyWait {
    /// Its fire due at or before ours has not finished yet.
    NotFinished,
    /// It has never finished a run.
    NeverRan,
    /// It is disabled.
    Disabled,
}

/// Why a worker is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disabled {
    /// `enabled = false` in its definition.
    Configured,
    /// Through the handle.
    Manually,
    /// Automatically, after this many failed runs in a row.
    Failures { count: u32, last_error: String },
}

impl std::fmt::Display for Disabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disabled::Configured => f.write_str("configured with enabled = false"),
            Disabled::Manually => f.write_str("disabled through the handle"),
            Disabled::Failures { count, last_error } => {
                write!(f, "disabled after {count} consecutive failures; last error: {last_error}")
            }
        }
    }
}

/// Counters and last-run facts, for status and metrics.
///
/// Laid out by hand (see [`WorkerRecord`]): what a run's start writes, then
/// what its end writes, then the rare counters.
#[derive(Debug, Default, Clone)]
#[repr(C)]
pub(crate) struct Stats {
    // Written when a run starts.
    pub runs: u64,
    pub last_started: Option<Instant>,
    pub last_lateness: Option<Duration>,
    pub max_lateness: Duration,
    pub total_lateness: Duration,
    // Written when a run ends.
    pub successes: u64,
    pub consecutive_failures: u32,
    pub last_success: Option<bool>,
    pub last_finished: Option<Instant>,
    pub last_duration: Option<Duration>,
    pub total_duration: Duration,
    pub last_error: Option<String>,
    // Rare.
    pub failures: u64,
    pub failed_attempts: u64,
    pub upstream_failed: u64,
    pub cancelled: u64,
    /// Slots dropped under `misfire = Skip`.
    pub missed: u64,
    /// Slots merged into a pending fire under `misfire = FireOnce`.
    pub coalesced: u64,
}

/// The key of the ready queue: higher priority first, then earlier due time,
/// then name (worker ids follow name order).
pub(crate) type ReadyKey = (std::cmp::Reverse<Priority>, Instant, WorkerId);

/// Everything the engine tracks about one worker.
///
/// Laid out by hand, in the order a fire reads and writes the fields, with
/// what only relations and retries use at the end: in a burst of thousands
/// of fires every record has left the cache since the previous burst, and a
/// fire then pays one miss per cache line it touches (measured with
/// cachegrind on W1, see the README's Performance section).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct WorkerRecord {
    /// Bumped whenever `slot` changes, so stale timers are recognised.
    pub slot_generation: u32,
    pub last_fire: Option<FinishedFire>,
    pub slot: Option<Slot>,
    /// Why its pending fire or queued attempt is not running.
    pub wait: Option<Wait>,
    /// Its key while it sits in the ready queue.
    pub ready: Option<ReadyKey>,
    pub pending: Option<Fire>,
    pub run: Option<Run>,
    pub disabled: Option<Disabled>,
    pub stats: Stats,
    // Used by workers with dependencies, and by runs that retry.
    /// The pending fire's verdict per dependency (same order as the graph's
    /// `depends_on`, always that long): `None` while the dependency's
    /// relevant fire (its latest fire due at or before the pending fire's
    /// `due`) has not finished, then whether it succeeded. Settled once, so
    /// a dependency running again later cannot change the verdict.
    pub verdicts: Verdicts,
    /// The error of the run's last failed attempt, while it waits to retry.
    pub retry_error: Option<String>,
    /// Triggered workers with dependencies: which dependencies (same order as
    /// `depends_on`) succeeded since this worker's previous fire.
    pub fresh: Vec<bool>,
}

impl WorkerRecord {
    pub(crate) fn new(disabled: Option<Disabled>, dependencies: usize, fresh: usize) -> Self {
        WorkerRecord {
            disabled,
            slot: None,
            slot_generation: 0,
            pending: None,
            run: None,
            last_fire: None,
            verdicts: smallvec::smallvec![None; dependencies],
            retry_error: None,
            fresh: vec![false; fresh],
            ready: None,
            wait: None,
            stats: Stats::default(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.disabled.is_none()
    }
}

/// What kind of schedule a worker has (see [`Schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Interval,
    Delay,
    Cron,
    Triggered,
    Continuous,
}

/// What the engine reads of a worker's configuration on every fire, packed
/// into 32 bytes and kept in an array of its own.
///
/// In a burst the engine handles workers in id order, so these cost a
/// fraction of a cache line per fire; reading the same from the worker's
/// [`WorkerConfig`] and [`Edges`] cost three to five lines of cold memory
/// per fire (W1 in the README's Performance section).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Traits {
    /// The interval, the fixed delay or the restart delay (0 otherwise).
    period_ns: u64,
    jitter_ns: u64,
    /// `u64::MAX`: no timeout.
    timeout_ns: u64,
    pub max_consecutive_failures: u32,
    pub kind: Kind,
    pub priority: Priority,
    pub misfire: Misfire,
    /// No dependency, no dependent, no conflict: no other worker looks at
    /// this one's fires, and it looks at none.
    pub isolated: bool,
}

// The 32 bytes the docs promise (two per cache line).
const _: () = assert!(std::mem::size_of::<Traits>() == 32);

impl Traits {
    pub(crate) fn new(config: &WorkerConfig, edges: &Edges) -> Self {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1);
        let (kind, period) = match &config.schedule {
            Schedule::Interval(period) => (Kind::Interval, *period),
            Schedule::Delay(delay) => (Kind::Delay, *delay),
            Schedule::Cron(_) => (Kind::Cron, Duration::ZERO),
            Schedule::Triggered => (Kind::Triggered, Duration::ZERO),
            Schedule::Continuous { restart_delay } => (Kind::Continuous, *restart_delay),
        };
        Traits {
            period_ns: nanos(period),
            jitter_ns: nanos(config.jitter),
            timeout_ns: config.timeout.map_or(u64::MAX, nanos),
            max_consecutive_failures: config.max_consecutive_failures,
            kind,
            priority: config.priority,
            misfire: config.misfire,
            isolated: edges.depends_on.is_empty() && edges.dependents.is_empty() && edges.conflicts.is_empty(),
        }
    }

    /// See `period_ns`.
    pub(crate) fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    pub(crate) fn jitter(&self) -> Duration {
        Duration::from_nanos(self.jitter_ns)
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        (self.timeout_ns != u64::MAX).then(|| Duration::from_nanos(self.timeout_ns))
    }
}
