//! A worker's bookkeeping (the armed slot, the pending fire, the run in
//! progress, the last finished fire, counters) and the rules that move it
//! which concern the worker alone: misfire, the start of a run, retries, the
//! end of a run, auto-disable, the next slot. The rules between workers
//! (dependencies, exclusion, the concurrency limit and priorities) live in
//! `engine/mod.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::AttemptResult;
use crate::context::RunId;
use crate::graph::{Edges, WorkerId};
use crate::schedule::{self, WallClock};
use crate::spec::{Misfire, Priority, Schedule, WorkerConfig};
use crate::status::RunOutcome;

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
    /// Attempts its run made on another instance before that instance was
    /// lost (cluster mode: the fire was adopted here); 0 otherwise. Its run
    /// here starts at the next attempt, within the same retry budget.
    pub attempts_done: u32,
    /// Slots came due and merged into it while this instance ran (with a
    /// persistent store): they are recorded `missed`, saying so, the
    /// freshest one when the catch-up run ends here (see
    /// `Engine::on_slot`). Not set for the catch-up fire standing for a
    /// downtime, whose slots have no rows (SPEC).
    pub merged: bool,
}

impl Fire {
    pub(crate) fn new(due: Instant) -> Self {
        Fire { due, first_due: due, waiters: Waiters::new(), attempts_done: 0, merged: false }
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
    /// The attempt executing or last executed; one less than its first
    /// here while the fire's claim waits (cluster mode).
    pub attempt: u32,
    /// Its claim was refused for now at least once (cluster mode): its
    /// start is already recorded.
    pub held: bool,
    pub phase: Phase,
    pub started: Instant,
    pub fire: Fire,
}

impl Run {
    /// Its fire's claim was refused for now (cluster mode) and waits to be
    /// made again: no attempt has run here since.
    pub(crate) fn waits_for_claim(&self) -> bool {
        self.held && self.attempt == self.fire.attempts_done && !matches!(self.phase, Phase::Executing { .. })
    }
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
            // Phrased to follow "disabled": status shows "disabled: <this>",
            // a refused trigger "is disabled (<this>)".
            Disabled::Configured => f.write_str("configured with enabled = false"),
            Disabled::Manually => f.write_str("through the handle"),
            Disabled::Failures { count, last_error } => {
                write!(f, "after {count} consecutive failures; last error: {last_error}")
            }
        }
    }
}

/// Counters and last-run facts, for status and metrics.
///
/// Laid out by hand (see [`WorkerRecord`]): what a run's start writes, then
/// what its end writes, then the rare counters.
#[derive(Debug, Default, Clone, PartialEq)]
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

/// What status shows of a worker's record: copied out under the engine lock
/// (a few cache lines and at most two short strings), turned into a
/// [`WorkerStatus`](crate::WorkerStatus) after the lock is released.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RecordView {
    pub disabled: Option<Disabled>,
    pub run: Option<RunView>,
    pub wait: Option<Wait>,
    /// A fire is due and waits (for its own run, a dependency, a slot, ...).
    pub pending: bool,
    /// When the armed slot is due.
    pub next_due: Option<Instant>,
    pub stats: Stats,
    /// Why the run's claim waits (cluster mode), while it does.
    pub cluster_wait: Option<String>,
}

/// What status shows of a run in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunView {
    pub id: RunId,
    pub attempt: u32,
    pub phase: Phase,
    pub started: Instant,
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
    pub last_fire: Option<FinishedFire>,
    pub slot: Option<Slot>,
    /// When this worker's slot timer is set for, if it has one: it may come
    /// before `slot` is due (it then re-arms) or find no slot (disarmed).
    pub slot_timer: Option<Instant>,
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
    /// When this worker's retry timer is set for, if it has one (as
    /// `slot_timer`, for the end of a backoff).
    pub retry_timer: Option<Instant>,
    /// Triggered workers with dependencies: which dependencies (same order as
    /// `depends_on`) succeeded since this worker's previous fire.
    pub fresh: Vec<bool>,
}

impl WorkerRecord {
    pub(crate) fn new(disabled: Option<Disabled>, dependencies: usize, fresh: usize) -> Self {
        WorkerRecord {
            disabled,
            slot: None,
            slot_timer: None,
            retry_timer: None,
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

    /// Copies what status shows into `view`, reusing its allocations.
    pub(crate) fn view_into(&self, view: &mut RecordView) {
        view.disabled.clone_from(&self.disabled);
        view.run =
            self.run.as_ref().map(|r| RunView { id: r.id, attempt: r.attempt, phase: r.phase, started: r.started });
        view.wait = self.wait;
        view.pending = self.pending.is_some();
        view.next_due = self.slot.map(|s| s.due);
        view.stats.clone_from(&self.stats);
        match (&self.run, &self.retry_error) {
            (Some(run), Some(why)) if run.waits_for_claim() => match &mut view.cluster_wait {
                Some(shown) => shown.clone_from(why),
                None => view.cluster_wait = Some(why.clone()),
            },
            _ => view.cluster_wait = None,
        }
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

// ----- the rules of one worker -------------------------------------------
//
// What a worker's own fires, runs and attempts do to its record. The
// [`Engine`](super::Engine) calls these and adds the relations between
// workers, the ready queue and the concurrency limit; kept apart so that
// each rule of one worker is written once, whoever drives the worker.

/// What [`WorkerRecord::offer`] did with a fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offered {
    /// The fire became the pending fire (it was not merged or dropped).
    pub new_fire: bool,
    /// The pending fire's dependencies are to be judged anew.
    pub rejudge: bool,
    /// A fire was dropped under `misfire = Skip`: when it was due.
    pub missed: Option<Instant>,
}

/// How an attempt's end moves its run (see [`WorkerRecord::attempt_ended`]).
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// The run ends with this outcome.
    Finish(RunOutcome),
    /// The attempt failed with `error` and the run retries after `pause`.
    Retry { error: String, pause: Duration },
}

impl WorkerRecord {
    /// The misfire rule: a fire due at `due` arrives (a slot, a trigger with
    /// `waiter`, dependencies completing). It becomes the pending fire, merges
    /// into the pending one (`FireOnce`), or replaces or is dropped (`Skip`:
    /// also while its own run, or a conflicting run when `blocked`, is in
    /// progress).
    pub(crate) fn offer(&mut self, due: Instant, misfire: Misfire, waiter: Option<WaiterId>, blocked: bool) -> Offered {
        let waiters = waiter.into_iter();
        let stats = &mut self.stats;
        match (&mut self.pending, &self.run, misfire) {
            (Some(fire), _, Misfire::FireOnce) => {
                // The catch-up run stands for the freshest slot: its
                // dependencies are judged anew against that slot.
                let rejudge = due > fire.due;
                if rejudge {
                    fire.due = due;
                    stats.coalesced += 1;
                }
                fire.waiters.extend(waiters);
                Offered { new_fire: false, rejudge, missed: None }
            }
            (Some(fire), _, Misfire::Skip) => {
                // The old fire did not start before the next slot: missed.
                let mut replacement = Fire::new(due);
                replacement.waiters = std::mem::take(&mut fire.waiters);
                replacement.waiters.extend(waiters);
                let missed = Some(fire.first_due);
                *fire = replacement;
                stats.missed += 1;
                Offered { new_fire: true, rejudge: true, missed }
            }
            (None, Some(_), Misfire::Skip) => {
                stats.missed += 1;
                Offered { new_fire: false, rejudge: false, missed: Some(due) }
            }
            (None, None, Misfire::Skip) if blocked => {
                stats.missed += 1;
                Offered { new_fire: false, rejudge: false, missed: Some(due) }
            }
            (None, _, _) => {
                let mut fire = Fire::new(due);
                fire.waiters.extend(waiters);
                self.pending = Some(fire);
                Offered { new_fire: true, rejudge: true, missed: None }
            }
        }
    }

    /// Counts `passed` slots that went by while nobody could process them
    /// (the process was busy or suspended): missed or merged, per `misfire`.
    pub(crate) fn count_passed(&mut self, misfire: Misfire, passed: u64) {
        match misfire {
            Misfire::FireOnce => self.stats.coalesced += passed,
            Misfire::Skip => self.stats.missed += passed,
        }
    }

    /// Starts the next attempt at `now`: the first of a run of the pending
    /// fire (a new run, numbered `id()`), or the next one of the run in
    /// progress.
    pub(crate) fn begin_attempt(&mut self, now: Instant, id: impl FnOnce() -> RunId) -> &Run {
        self.wait = None;
        if let Some(run) = &mut self.run {
            run.attempt += 1;
        } else {
            let fire = self.pending.take().expect("a worker starts with a pending fire");
            let lateness = now.saturating_duration_since(fire.first_due);
            let stats = &mut self.stats;
            stats.runs += 1;
            stats.last_started = Some(now);
            stats.last_lateness = Some(lateness);
            stats.total_lateness += lateness;
            stats.max_lateness = stats.max_lateness.max(lateness);
            self.run = Some(Run {
                id: id(),
                attempt: fire.attempts_done + 1,
                held: false,
                phase: Phase::Queued { since: now },
                started: now,
                fire,
            });
        }
        let run = self.run.as_mut().expect("set above");
        run.phase = Phase::Executing { since: now };
        run
    }

    /// The executing attempt `run` ended with `result`: whether the run ends
    /// or retries (`may_retry`: the orchestrator is not shutting down; a
    /// disabled worker never retries either). `None` for a stale report (another run, or one
    /// no longer executing, e.g. after a forced cancel).
    pub(crate) fn attempt_ended(
        &mut self,
        run: RunId,
        result: AttemptResult,
        config: &WorkerConfig,
        may_retry: bool,
        rng: &mut fastrand::Rng,
    ) -> Option<AttemptEnd> {
        let r = self.run.as_ref().filter(|r| r.id == run && matches!(r.phase, Phase::Executing { .. }))?;
        let attempt = r.attempt;
        let error = match result {
            AttemptResult::Succeeded => return Some(AttemptEnd::Finish(RunOutcome::Succeeded)),
            AttemptResult::Cancelled => {
                return Some(AttemptEnd::Finish(RunOutcome::Cancelled { reason: "shutdown".into() }));
            }
            AttemptResult::LeaseLost => {
                let reason = "its lease was lost: the store could not be reached to renew it".into();
                return Some(AttemptEnd::Finish(RunOutcome::Cancelled { reason }));
            }
            // Handled by the engine before an attempt's end is judged.
            // (Bound and dropped here, not `_`: every arm then consumes the
            // result, and the common ones carry no drop of it.)
            AttemptResult::Refused(refusal) => {
                drop(refusal);
                return None;
            }
            AttemptResult::Failed(e) => e,
            AttemptResult::Panicked(p) => format!("panicked: {p}"),
            AttemptResult::TimedOut(t) => format!("timed out after {}", crate::spec::HumanDuration(t)),
        };
        self.stats.failed_attempts += 1;
        if !(may_retry && attempt <= config.retries && self.enabled()) {
            return Some(AttemptEnd::Finish(RunOutcome::Failed { error }));
        }
        let pause = schedule::backoff(rng, config.backoff, config.max_backoff, attempt);
        tracing::warn!(
            worker = %config.name, run_id = %run, attempt, error = %error,
            retry_in = %crate::spec::HumanDuration(pause), "attempt failed, retrying"
        );
        Some(AttemptEnd::Retry { error, pause })
    }

    /// The run in progress waits until `until` for its next attempt, after
    /// an attempt failed with `error`.
    pub(crate) fn back_off(&mut self, error: String, until: Instant) {
        self.retry_error = Some(error);
        if let Some(run) = &mut self.run {
            run.phase = Phase::Backoff { until };
        }
    }

    /// Ends the run in progress at `now` with `outcome`: statistics, the
    /// log line, the last fire. Returns what the caller still has to do:
    /// answer the waiters, and disable the worker if `outcome` was its
    /// `max_consecutive_failures`-th failure in a row (0: never).
    pub(crate) fn end_run(
        &mut self,
        now: Instant,
        outcome: &RunOutcome,
        name: &Arc<str>,
        max_consecutive_failures: u32,
    ) -> Option<EndedRun> {
        // Read in place and then dropped: moving the whole `Run` out costs a
        // copy of a cold cache line or two on every fire.
        let run = self.run.as_mut()?;
        let (id, attempts, started) = (run.id, run.attempt, run.started);
        #[cfg(test)]
        let first_due = run.fire.first_due;
        let waiters = std::mem::take(&mut run.fire.waiters);
        self.run = None;
        if attempts > 1 {
            self.retry_error = None;
        }
        let stats = &mut self.stats;
        let duration = now.saturating_duration_since(started);
        stats.last_finished = Some(now);
        stats.last_duration = Some(duration);
        stats.total_duration += duration;
        let succeeded = outcome.is_success();
        match outcome {
            RunOutcome::Succeeded => {
                stats.successes += 1;
                stats.consecutive_failures = 0;
                stats.last_success = Some(true);
                stats.last_error = None;
                tracing::info!(worker = %name, run_id = %id, attempts, duration = ?duration, "run succeeded");
            }
            RunOutcome::Failed { error } => {
                stats.failures += 1;
                stats.consecutive_failures += 1;
                stats.last_success = Some(false);
                stats.last_error = Some(error.clone());
                tracing::error!(worker = %name, run_id = %id, attempts, error = %error,
                    consecutive_failures = stats.consecutive_failures, "run failed");
            }
            RunOutcome::Cancelled { reason } => {
                stats.cancelled += 1;
                stats.last_success = Some(false);
                stats.last_error = Some(format!("cancelled ({reason})"));
                tracing::warn!(worker = %name, run_id = %id, reason = %reason, "run cancelled");
            }
            RunOutcome::UpstreamFailed { .. } => unreachable!("upstream failures never start a run"),
        }
        self.last_fire = Some(FinishedFire { succeeded });
        let consecutive = stats.consecutive_failures;
        let disable =
            (!succeeded && max_consecutive_failures > 0 && consecutive >= max_consecutive_failures && self.enabled())
                .then(|| Disabled::Failures {
                    count: consecutive,
                    last_error: self.stats.last_error.clone().unwrap_or_default(),
                });
        Some(EndedRun {
            #[cfg(test)]
            first_due,
            succeeded,
            waiters,
            disable,
        })
    }

    /// Disables the worker for `reason` (if it is enabled): its slot is
    /// disarmed, and its pending fire is returned, dropped, for its waiters to
    /// be answered. `None` (and nothing changes) if it was disabled already.
    pub(crate) fn disable(&mut self, reason: Disabled, name: &Arc<str>) -> Option<Option<Fire>> {
        if self.disabled.is_some() {
            return None;
        }
        match &reason {
            Disabled::Failures { .. } => tracing::error!(worker = %name, reason = %reason, "worker disabled"),
            _ => tracing::info!(worker = %name, reason = %reason, "worker disabled"),
        }
        self.disabled = Some(reason);
        self.disarm();
        self.fresh.fill(false);
        Some(self.pending.take())
    }

    /// Enables the worker (if it is disabled) and resets its failure count.
    /// Returns whether it was disabled.
    pub(crate) fn enable(&mut self, name: &Arc<str>) -> bool {
        if self.enabled() {
            return false;
        }
        self.disabled = None;
        self.stats.consecutive_failures = 0;
        tracing::info!(worker = %name, "worker enabled");
        true
    }

    /// Sets the next slot at `nominal`, due after `jitter`.
    pub(crate) fn arm(&mut self, nominal: Instant, jitter: Duration) -> Slot {
        let slot = Slot { nominal, due: nominal + jitter };
        self.slot = Some(slot);
        slot
    }

    /// Undoes the start of the run in progress, whose first attempt never
    /// ran (cluster mode: its claim was refused), and returns its fire.
    pub(crate) fn unstart(&mut self) -> Fire {
        let run = self.run.take().expect("a run in progress");
        self.stats.runs -= 1;
        self.wait = None;
        self.retry_error = None;
        run.fire
    }

    /// Drops the armed slot (its timer, if any, finds no slot and does nothing).
    pub(crate) fn disarm(&mut self) {
        self.slot = None;
    }
}

/// What [`WorkerRecord::end_run`] leaves for its caller to do.
#[derive(Debug)]
pub(crate) struct EndedRun {
    /// When the run's fire was first due (for the tests' fire log).
    #[cfg(test)]
    pub first_due: Instant,
    pub succeeded: bool,
    /// Callers of `trigger` to answer with the outcome.
    pub waiters: Waiters,
    /// The worker is to be disabled for this reason (failed too often).
    pub disable: Option<Disabled>,
}

/// The slot that follows `slot` on a worker's grid (Interval and Cron; the
/// other schedules arm their next slot when a run ends), reached at `now`,
/// and how many slots in between went by unprocessed.
pub(crate) fn following_slot(
    config: &WorkerConfig,
    traits: &Traits,
    clock: &WallClock,
    slot: Slot,
    now: Instant,
) -> (Option<Instant>, u64) {
    // The kind first: an Interval worker's fire then reads nothing of its
    // (cold) configuration.
    match traits.kind {
        Kind::Interval => {
            let (next, passed) = schedule::next_interval(slot.nominal, traits.period(), now);
            (Some(next), passed)
        }
        Kind::Cron => {
            let Schedule::Cron(cron) = &config.schedule else { unreachable!("a Cron kind") };
            // Slots passed while the process could not process them
            // (suspended, starved) count as missed or merged.
            let mut passed = 0;
            let mut next = schedule::next_cron(cron, clock, slot.nominal);
            while let Some(at) = next.filter(|at| *at <= now) {
                passed += 1;
                next = schedule::next_cron(cron, clock, at);
                if passed >= 1000 {
                    next = schedule::next_cron(cron, clock, now);
                    break;
                }
            }
            (next, passed)
        }
        _ => (None, 0),
    }
}

/// How long a Continuous worker waits before it is started again, after a
/// run that lasted `ran` and left `failures` consecutive failures: its
/// `restart_delay` after a success, doubling with each quick failure in a
/// row up to `max_backoff`, so that a consumer whose broker is down rides
/// out the outage without spinning. A failed run that lasted at least
/// `max_backoff` ran well: the next start follows after `restart_delay`.
pub(crate) fn restart_pause(restart_delay: Duration, max_backoff: Duration, failures: u32, ran: Duration) -> Duration {
    let cap = max_backoff.max(restart_delay);
    if failures == 0 || ran >= cap {
        return restart_delay;
    }
    let factor = 1u32.checked_shl((failures - 1).min(31)).unwrap_or(u32::MAX);
    restart_delay.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// A worker's first slot at or after `earliest` (none for Triggered workers,
/// or a cron expression that never matches again).
pub(crate) fn first_slot(config: &WorkerConfig, clock: &WallClock, earliest: Instant) -> Option<Instant> {
    match &config.schedule {
        Schedule::Interval(_) | Schedule::Delay(_) | Schedule::Continuous { .. } => Some(earliest),
        Schedule::Cron(cron) => {
            // Strictly after `earliest - 1ns`, so an occurrence exactly at
            // `earliest` counts.
            let probe = earliest.checked_sub(Duration::from_nanos(1)).unwrap_or(earliest);
            schedule::next_cron(cron, clock, probe)
        }
        Schedule::Triggered => None,
    }
}

/// Where a worker enabled at `now` resumes: at its schedule's next slot
/// (`base` is the fixed-rate grid's first slot); fixed-delay and Continuous workers
/// as if a run had just ended.
pub(crate) fn resumed_slot(config: &WorkerConfig, clock: &WallClock, base: Instant, now: Instant) -> Option<Instant> {
    match &config.schedule {
        Schedule::Interval(period) => {
            Some(if now <= base { base } else { schedule::next_interval(base, *period, now).0 })
        }
        Schedule::Cron(_) => first_slot(config, clock, now),
        Schedule::Delay(period) | Schedule::Continuous { restart_delay: period } => Some(now + *period),
        Schedule::Triggered => None,
    }
}
