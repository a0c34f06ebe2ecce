//! The decision core: a pure state machine that decides which worker runs
//! when.
//!
//! It holds no clock and spawns nothing. The runtime feeds it [`Event`]s with
//! the current instant, carries out the [`Action`]s it queues (start an
//! attempt, ask a run to stop, answer a trigger), and sleeps until
//! [`Engine::next_deadline`]. Every semantic rule of the SPEC (schedules,
//! misfire, dependencies, exclusion, priorities, the concurrency limit,
//! retries, auto-disable, shutdown) is decided here, so each is testable in
//! microseconds without tokio.
//!
//! Data flow for one fire: a slot timer (or a trigger, or dependencies
//! completing) offers a [`Fire`] to its worker ([`Engine::offer_fire`]); the
//! worker is marked dirty; [`Engine::settle`] re-evaluates dirty workers
//! (dependencies, conflicts) and moves the ones that may run into the ready
//! queue, then fills free concurrency slots from it in priority order.
//! Whenever a run starts or ends, the workers it relates to are marked dirty,
//! so a waiting worker starts the moment it is allowed to: nothing polls.

pub(crate) mod journal;
mod timers;
mod worker;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::context::RunId;
use crate::graph::{Graph, WorkerId};
use crate::history::{FireOutcome, FireRecord, History};
use crate::metrics::{AttemptKind, Metrics};
use crate::schedule::WallClock;
use crate::spec::{Misfire, Schedule, Scope, WorkerConfig};
use crate::status::RunOutcome;
use crate::store::Restored;

use journal::Journal;
use timers::{Timer, TimerKind, Timers};
use worker::{AttemptEnd, FinishedFire, Fire, Kind, ReadyKey, Slot, Traits, Waiters};
pub(crate) use worker::{DependencyWait, Disabled, Phase, RecordView, Run, RunView, Wait, WaiterId, WorkerRecord};

/// Something that happened, fed to [`Engine::handle`].
#[derive(Debug)]
pub(crate) enum Event {
    /// Time has reached [`Engine::next_deadline`] (or later).
    Timeout,
    /// An attempt started by [`Action::Start`] ended.
    AttemptFinished { worker: WorkerId, run: RunId, result: AttemptResult },
    /// Enable a worker (resets its failure count).
    Enable(WorkerId),
    /// Disable a worker: no new fire or attempt starts; a running attempt finishes.
    Disable(WorkerId),
    /// The store says how `worker` stands cluster-wide (another replica
    /// enabled or disabled it, or its failures elsewhere count): applied
    /// here without being written back.
    /// (`disabled` boxed, and `Adopt`'s fire: they are rare, and every
    /// attempt's end is an `Event` too, no bigger for them.)
    Sync { worker: WorkerId, disabled: Option<Box<Disabled>>, consecutive_failures: u32 },
    /// Stop starting runs, cancel what is pending, ask running attempts to stop.
    Shutdown,
    /// Cluster mode: a fire lost on another instance, whose next attempt
    /// this instance is to run (the store handed it over). It runs as soon
    /// as the rules allow, like a catch-up fire; if it is not run here (the
    /// worker is disabled, an older fire of the worker waits), it is
    /// written off (journaled `lost`).
    /// Handed again (the store repeats it until the claim), it changes
    /// nothing.
    Adopt(Box<LostFire>),
}

/// A fire lost on another instance (see [`Event::Adopt`]).
#[derive(Debug)]
pub(crate) struct LostFire {
    pub worker: WorkerId,
    /// When the fire was due.
    pub due: Instant,
    /// The attempts it made before its instance was lost.
    pub attempts_done: u32,
    /// The instance it was lost on, for the log.
    pub lost_by: String,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    Succeeded,
    /// Returned an error (rendered).
    Failed(String),
    /// Panicked, with the panic message.
    Panicked(String),
    /// Exceeded its timeout and was cancelled.
    TimedOut(Duration),
    /// Dropped at shutdown.
    Cancelled,
    /// Cluster mode: the lease on the fire was lost (it could not be
    /// renewed), so the attempt was cancelled by this instance.
    LeaseLost,
    /// Cluster mode: the store refused the claim of the fire; no attempt ran.
    /// Boxed: every attempt's result travels through the engine's events, and
    /// the in-memory store's results are no bigger for it (24 bytes).
    Refused(Box<Refusal>),
}

/// Why a store refused the claim of a fire (cluster mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Another instance (named) has, or had, this fire.
    Taken { by: String },
    /// A conflicting run is in progress elsewhere (or the store is
    /// unreachable): the fire waits and its claim is tried again after `retry`.
    Busy { why: String, retry: Duration },
    /// The dependency's relevant fire failed (on whichever instance).
    UpstreamFailed { dependency: String },
}

/// Something the driver must do, in order.
///
/// `repr(u8)`, with `Start`'s small fields first: the variant is read by a
/// tag and a jump, as before `first` existed. Without it the compiler keeps
/// the variant in a niche of `timeout` (a few more instructions for every
/// action taken, measured on W4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Action {
    /// Start an attempt of `worker`'s body; `due` is when its fire was due.
    /// `first`: the run's first attempt on this instance, before which its
    /// fire is claimed (cluster mode).
    Start { first: bool, attempt: u32, worker: WorkerId, run: RunId, timeout: Option<Duration>, due: Instant },
    /// Ask a running attempt to stop (its `Context` is cancelled).
    Cancel { worker: WorkerId, run: RunId },
    /// Answer a trigger with its run's outcome.
    Resolve { waiter: WaiterId, outcome: RunOutcome },
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TriggerRefusal {
    Disabled(Disabled),
    AlreadyRunning,
    ShuttingDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Created,
    Running,
    ShuttingDown,
}

/// The scheduling state machine.
///
/// Laid out by hand: the fields nearly every event writes come first, in the
/// first two cache lines (the struct is line-aligned), apart from the ones
/// that are only read. The engine is used by whichever thread holds its lock,
/// and under concurrent triggers the lock moves between cores on every
/// acquisition: each cache line an event writes then has to follow it, and
/// a read-only field sharing such a line would too.
#[repr(C, align(64))]
pub(crate) struct Engine {
    // Written by nearly every event.
    /// The latest instant an event was handled at.
    now: Instant,
    /// Attempts executing that hold a concurrency slot.
    executing: usize,
    /// Runs in progress (any phase, Continuous included).
    runs_in_progress: usize,
    next_run: u64,
    /// Bumped by every event: status copies nothing while it is unchanged.
    generation: u64,
    rng: fastrand::Rng,
    actions: VecDeque<Action>,
    dirty: Vec<WorkerId>,
    ready: BTreeSet<ReadyKey>,
    // Read by nearly every event, written by few: the timers when a slot
    // is armed, the rest only at start and at shutdown.
    lifecycle: Lifecycle,
    max_concurrent: usize,
    workers: Vec<WorkerRecord>,
    /// Per worker, what every fire reads of its configuration.
    traits: Vec<Traits>,
    is_dirty: Vec<bool>,
    graph: Graph,
    timers: Timers,
    started: Instant,
    clock: WallClock,
    // Cold: one entry per worker, touched once or twice per fire.
    history: History,
    metrics: Metrics,
    /// The facts a persistent store keeps (`None` with the in-memory store).
    journal: Option<Box<Journal>>,
    /// Set while a [`Event::Sync`] is applied: what it changes came from
    /// the store and is not written back.
    quiet: bool,
    /// Per worker, the fixed-rate grid's start when a store gave one
    /// (otherwise: the start plus the initial delay). Empty without a store.
    anchors: Vec<Option<Instant>>,
    /// Every fire that reached an outcome, for the property tests' reference
    /// model of the dependency rule.
    #[cfg(test)]
    pub(crate) fire_log: Vec<FireLog>,
    /// Every run started, with its fire's due time and how many fires had
    /// reached an outcome by then (for the same reference model).
    #[cfg(test)]
    pub(crate) start_log: Vec<(WorkerId, Instant, usize)>,
}

/// A fire that reached an outcome (test builds only).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FireLog {
    pub worker: WorkerId,
    pub first_due: Instant,
    pub succeeded: bool,
    /// Recorded `upstream_failed`, judged for a fire due at this instant.
    pub upstream_failed: Option<Instant>,
}

impl Engine {
    /// An engine for `graph`, created at `now` (it schedules nothing before
    /// [`start`](Self::start)).
    pub(crate) fn new(graph: Graph, max_concurrent: usize, seed: u64, now: Instant) -> Self {
        let workers = graph
            .workers
            .iter()
            .zip(&graph.edges)
            .map(|(config, edges)| {
                let disabled = (!config.enabled).then_some(Disabled::Configured);
                let fresh = if matches!(config.schedule, Schedule::Triggered) { edges.depends_on.len() } else { 0 };
                WorkerRecord::new(disabled, edges.depends_on.len(), fresh)
            })
            .collect();
        let n = graph.workers.len();
        let traits = graph.workers.iter().zip(&graph.edges).map(|(config, edges)| Traits::new(config, edges)).collect();
        Engine {
            traits,
            graph,
            workers,
            max_concurrent: max_concurrent.max(1),
            executing: 0,
            runs_in_progress: 0,
            ready: BTreeSet::new(),
            timers: Timers::default(),
            dirty: Vec::new(),
            is_dirty: vec![false; n],
            actions: VecDeque::new(),
            rng: fastrand::Rng::with_seed(seed),
            next_run: 1,
            generation: 0,
            lifecycle: Lifecycle::Created,
            started: now,
            now,
            clock: WallClock::new(now, DateTime::<Utc>::UNIX_EPOCH),
            history: History::new(n),
            metrics: Metrics::default(),
            journal: None,
            quiet: false,
            anchors: Vec::new(),
            #[cfg(test)]
            fire_log: Vec::new(),
            #[cfg(test)]
            start_log: Vec::new(),
        }
    }

    // ----- queries -------------------------------------------------------

    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    pub(crate) fn config(&self, worker: WorkerId) -> &WorkerConfig {
        &self.graph.workers[worker]
    }

    #[cfg(test)]
    pub(crate) fn state(&self, worker: WorkerId) -> &WorkerRecord {
        &self.workers[worker]
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    #[cfg(test)]
    pub(crate) fn find(&self, name: &str) -> Option<WorkerId> {
        // Workers are sorted by name.
        self.graph.workers.binary_search_by(|w| (*w.name).cmp(name)).ok()
    }

    /// When scheduling began.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    pub(crate) fn clock(&self) -> &WallClock {
        &self.clock
    }

    /// The latest `limit` fires of `worker`, newest first.
    pub(crate) fn history(&self, worker: WorkerId, limit: usize, instance: &str) -> Vec<FireRecord> {
        self.history.records(worker, limit, &self.graph.workers[worker].name, instance, &self.clock)
    }

    pub(crate) fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    pub(crate) fn executing(&self) -> usize {
        self.executing
    }

    /// Whether `worker` is disabled, and its failure count (for the
    /// cluster's poll, see [`Event::Sync`]).
    pub(crate) fn standing(&self, worker: WorkerId) -> (Option<&Disabled>, u32) {
        let record = &self.workers[worker];
        (record.disabled.as_ref(), record.stats.consecutive_failures)
    }

    /// Changes whenever an event was handled (see [`RecordView`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Copies what status shows of `worker` into `view`.
    pub(crate) fn view_into(&self, worker: WorkerId, view: &mut RecordView) {
        self.workers[worker].view_into(view);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lifecycle == Lifecycle::ShuttingDown
    }

    /// Shutting down and no run is in progress any more.
    pub(crate) fn is_stopped(&self) -> bool {
        self.is_shutting_down() && self.runs_in_progress == 0
    }

    /// The runs in progress, for the shutdown report.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (WorkerId, &Run)> {
        self.workers.iter().enumerate().filter_map(|(w, s)| s.run.as_ref().map(|r| (w, r)))
    }

    /// When the driver must call back with [`Event::Timeout`].
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// How many actions are queued (see [`poll_action`](Self::poll_action)).
    pub(crate) fn pending_actions(&self) -> usize {
        self.actions.len()
    }

    /// The next action for the driver to carry out.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ----- events --------------------------------------------------------

    /// The instant an event is handled at: `now`, or the latest instant seen
    /// if `now` is older. Callers read the clock before taking the lock the
    /// engine sits behind, so two events may arrive out of their clock
    /// order; the engine's time still never goes backwards.
    fn observe(&mut self, now: Instant) -> Instant {
        self.generation = self.generation.wrapping_add(1);
        self.now = self.now.max(now);
        self.now
    }

    /// Begins scheduling at `now` (wall-clock `wall`), carrying on from what
    /// a persistent store kept (`restored`, one per worker, in id order):
    /// disabled flags, failure counts, last outcomes, fixed-rate anchors,
    /// and the fires due while no instance ran, which become one catch-up
    /// fire (`FireOnce`) or `missed` records (`Skip`). From then on the
    /// engine journals every fact the store keeps.
    pub(crate) fn start_from(&mut self, now: Instant, wall: DateTime<Utc>, restored: Option<&[Restored]>) {
        debug_assert_eq!(self.lifecycle, Lifecycle::Created);
        self.lifecycle = Lifecycle::Running;
        let now = self.observe(now);
        self.started = now;
        self.clock = WallClock::new(now, wall);
        if let Some(restored) = restored {
            self.journal = Some(Box::default());
            self.anchors = vec![None; self.workers.len()];
            for (w, r) in restored.iter().enumerate().take(self.workers.len()) {
                self.restore(w, r);
            }
        }
        // Registered now rather than at build, so a recorder the application
        // installs between the two receives them.
        self.register_metrics();
        for w in 0..self.workers.len() {
            if self.workers[w].enabled() {
                match restored.and_then(|r| r.get(w)) {
                    Some(r) => self.resume(now, w, r),
                    None => {
                        let first = now + self.graph.workers[w].initial_delay;
                        self.arm_first_slot(w, first);
                    }
                }
            }
        }
        self.on_timeout(now);
        self.settle(now);
    }

    /// Takes what the store kept of `w` (before start).
    fn restore(&mut self, w: WorkerId, r: &Restored) {
        let record = &mut self.workers[w];
        record.disabled = r.disabled.as_ref().map(journal::from_stored);
        record.stats.consecutive_failures = r.consecutive_failures;
        if let Some((_, outcome)) = r.last_fire {
            let succeeded = match outcome {
                FireOutcome::Succeeded => Some(true),
                FireOutcome::Failed | FireOutcome::UpstreamFailed | FireOutcome::Lost => Some(false),
                _ => None,
            };
            if let Some(succeeded) = succeeded {
                record.last_fire = Some(worker::FinishedFire { succeeded });
            }
        }
        if let Schedule::Interval(_) = self.graph.workers[w].schedule {
            self.anchors[w] = Some(self.clock.instant(r.anchor));
        }
    }

    /// Arms `w`'s schedule after a restart from a store, and offers or
    /// records the fires its grid had while no instance ran it: those after
    /// the last recorded fire (or the anchor) and before `now`.
    fn resume(&mut self, now: Instant, w: WorkerId, r: &Restored) {
        let config = &self.graph.workers[w];
        let covered = r.last_fire.map(|(at, _)| self.clock.instant(at));
        let mut missed: Vec<Instant> = Vec::new();
        let mut count: u64 = 0;
        const KEPT: usize = crate::history::KEPT_PER_WORKER;
        let next = match &config.schedule {
            Schedule::Interval(period) => {
                let base = self.anchors[w].unwrap_or(now);
                if now <= base {
                    base
                } else {
                    let p = period.as_nanos().max(1);
                    // Slots base + k·p; the first at or after `now` is next.
                    let k_next = (now - base).as_nanos().div_ceil(p);
                    let k_from = match covered {
                        Some(c) if c >= base => (c - base).as_nanos() / p + 1,
                        _ => 0,
                    };
                    let slot = |k: u128| base + Duration::from_nanos(u64::try_from(k * p).unwrap_or(u64::MAX));
                    if k_next > k_from {
                        count = u64::try_from(k_next - k_from).unwrap_or(u64::MAX);
                        // The oldest, then the latest KEPT.
                        missed.push(slot(k_from));
                        let tail_from = k_next.saturating_sub(KEPT as u128).max(k_from + 1);
                        missed.extend((tail_from..k_next).map(slot));
                    }
                    slot(k_next)
                }
            }
            Schedule::Cron(cron) => {
                let anchor = self.clock.instant(r.anchor);
                let mut at = covered.unwrap_or(anchor.checked_sub(Duration::from_nanos(1)).unwrap_or(anchor));
                let mut next = None;
                // Bounded: a cron every second over a long downtime stops
                // being listed after 10,000 occurrences (and is counted so far).
                for _ in 0..10_000 {
                    match crate::schedule::next_cron(cron, &self.clock, at) {
                        Some(o) if o < now => {
                            count += 1;
                            if missed.len() > KEPT {
                                missed.remove(1);
                            }
                            missed.push(o);
                            at = o;
                        }
                        other => {
                            next = other;
                            break;
                        }
                    }
                }
                let probe = now.checked_sub(Duration::from_nanos(1)).unwrap_or(now);
                match next.or_else(|| crate::schedule::next_cron(cron, &self.clock, probe)) {
                    Some(n) => n,
                    None => return,
                }
            }
            _ => {
                let first = now + config.initial_delay;
                return self.arm_first_slot(w, first);
            }
        };
        self.arm_slot(w, next);
        if count == 0 {
            return;
        }
        let misfire = self.traits[w].misfire;
        let name = self.graph.workers[w].name.clone();
        match misfire {
            Misfire::FireOnce => {
                tracing::info!(worker = %name, missed = count, "fires due while no instance ran: one catch-up run");
                let oldest = missed[0];
                let newest = *missed.last().expect("one at least");
                self.offer_fire(w, oldest, Misfire::FireOnce, None);
                // Offering the newest merges it (and counts it coalesced);
                // the slots in between are counted here.
                let merged = if newest > oldest {
                    self.offer_fire(w, newest, Misfire::FireOnce, None);
                    2
                } else {
                    1
                };
                self.workers[w].stats.coalesced += count.saturating_sub(merged);
            }
            Misfire::Skip => {
                tracing::info!(worker = %name, missed = count, "fires due while no instance ran: recorded missed");
                self.workers[w].stats.missed += count;
                self.metrics.missed(w, count);
                // The first listed is the oldest; the rest the latest ones.
                let listed = if missed.len() > KEPT { &missed[missed.len() - KEPT..] } else { &missed[..] };
                for &due in listed.to_vec().iter() {
                    self.drop_fire(w, due, now, FireOutcome::Missed, Some("misfire = Skip: due while no instance ran"));
                }
            }
        }
    }

    /// The facts queued for the store since the last call (empty without one).
    pub(crate) fn take_facts(&mut self) -> Vec<crate::store::Fact> {
        match &mut self.journal {
            Some(journal) if !journal.is_empty() => journal.take(),
            _ => Vec::new(),
        }
    }

    /// Whether facts wait for the store.
    pub(crate) fn has_facts(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    /// Records a fire of `w` due at `due` that reached `outcome` at `now`
    /// without running, in the history and the journal.
    /// Why a slot merged into the catch-up fire first due at `first_due`
    /// has no run of its own.
    fn merged_reason(&self, first_due: Instant) -> String {
        let at = journal::scheduled_at(&self.clock, first_due);
        format!(
            "merged into the catch-up run of {} (misfire = FireOnce: it came due before that fire could start)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }

    fn drop_fire(&mut self, w: WorkerId, due: Instant, now: Instant, outcome: FireOutcome, error: Option<&str>) {
        self.history.fire_dropped(w, due, now, outcome, error);
        if let Some(journal) = &mut self.journal {
            journal.dropped(&self.graph.workers[w].name, &self.clock, due, now, outcome, error);
        }
    }

    /// Journals `w`'s enabled flag and failure count (unless quiet).
    fn journal_state(&mut self, w: WorkerId) {
        if self.quiet {
            return;
        }
        if let Some(journal) = &mut self.journal {
            let record = &self.workers[w];
            journal.state(&self.graph.workers[w].name, record.disabled.as_ref(), record.stats.consecutive_failures);
        }
    }

    /// Registers every worker's metrics with the recorder installed now.
    pub(crate) fn register_metrics(&mut self) {
        self.metrics = Metrics::register(
            self.graph
                .workers
                .iter()
                .zip(&self.workers)
                .map(|(config, record)| (&*config.name, record.enabled(), record.stats.consecutive_failures)),
        );
    }

    /// Handles one event at `now`.
    pub(crate) fn handle(&mut self, now: Instant, event: Event) {
        let now = self.observe(now);
        self.catch_up(now);
        match event {
            Event::Timeout => {}
            Event::AttemptFinished { worker, run, result } => self.on_attempt_finished(now, worker, run, result),
            Event::Enable(w) => self.enable(now, w),
            Event::Disable(w) => self.disable(now, w, Disabled::Manually),
            Event::Sync { worker, disabled, consecutive_failures } => {
                self.sync(now, worker, disabled.map(|d| *d), consecutive_failures);
            }
            Event::Shutdown => self.shutdown(now),
            Event::Adopt(lost) => self.adopt(now, lost.worker, lost.due, lost.attempts_done, &lost.lost_by),
        }
        // The event may have armed a timer that is already due (enabling
        // resumes at a slot due now): its fire is offered before anything
        // is judged, or a dependent could be judged without it.
        self.catch_up(now);
    }

    /// Asks for a run of `worker` now; `waiter` is answered with its outcome
    /// through [`Action::Resolve`]. Joins the worker's pending fire if it has
    /// one. Before [`start`](Self::start), the fire waits for the start.
    pub(crate) fn trigger(&mut self, now: Instant, w: WorkerId, waiter: WaiterId) -> Result<(), TriggerRefusal> {
        let now = self.observe(now);
        if self.lifecycle == Lifecycle::ShuttingDown {
            return Err(TriggerRefusal::ShuttingDown);
        }
        self.catch_up(now);
        let state = &self.workers[w];
        if let Some(reason) = &state.disabled {
            return Err(TriggerRefusal::Disabled(reason.clone()));
        }
        if state.run.is_some() {
            return Err(TriggerRefusal::AlreadyRunning);
        }
        tracing::debug!(worker = %self.graph.workers[w].name, "triggered");
        self.offer_fire(w, now, Misfire::FireOnce, Some(waiter));
        self.catch_up(now);
        Ok(())
    }

    /// Handles the timers due by `now` (then settles), before and after an
    /// event at `now`, as if the driver had been on time: an event must meet
    /// the state those timers would have made (a dependency's due fire
    /// pending, a slot's run started), or a dependent could be judged by a
    /// fire due after its own. The driver is late whenever the runtime is
    /// busy, and an event (a trigger, a report) may take the lock before it.
    fn catch_up(&mut self, now: Instant) {
        if self.timers.next_deadline().is_some_and(|at| at <= now) {
            self.on_timeout(now);
        }
        self.settle(now);
    }

    /// Drops `waiter` from `w`'s fire (its caller stopped waiting).
    pub(crate) fn forget_waiter(&mut self, w: WorkerId, waiter: WaiterId) {
        let record = &mut self.workers[w];
        let fires = [record.pending.as_mut(), record.run.as_mut().map(|run| &mut run.fire)];
        for fire in fires.into_iter().flatten() {
            fire.waiters.retain(|id| *id != waiter);
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        while let Some(mut due) = self.timers.pop_due(now) {
            for timer in due.drain(..) {
                let w = timer.worker;
                let record = &mut self.workers[w];
                match timer.kind {
                    TimerKind::Slot => {
                        record.slot_timer = None;
                        match record.slot {
                            Some(slot) if slot.due <= now => {
                                record.slot = None;
                                self.on_slot(now, w, slot);
                            }
                            // Re-armed for later since this timer was set.
                            Some(slot) => self.set_timer(w, TimerKind::Slot, slot.due),
                            None => {}
                        }
                    }
                    TimerKind::Retry => {
                        record.retry_timer = None;
                        if let Some(r) = record.run.as_mut()
                            && let Phase::Backoff { until } = r.phase
                        {
                            if until <= now {
                                r.phase = Phase::Queued { since: until };
                                self.mark_dirty(w);
                            } else {
                                self.set_timer(w, TimerKind::Retry, until);
                            }
                        }
                    }
                }
            }
            self.timers.recycle(due);
        }
    }

    /// Makes sure `w` has a timer of `kind` that comes due at `at` or
    /// before (see the `timers` module).
    fn set_timer(&mut self, w: WorkerId, kind: TimerKind, at: Instant) {
        let record = &mut self.workers[w];
        let set = match kind {
            TimerKind::Slot => &mut record.slot_timer,
            TimerKind::Retry => &mut record.retry_timer,
        };
        let timer = Timer { worker: w, kind };
        match *set {
            Some(earlier) if earlier <= at => return,
            Some(later) => self.timers.remove(later, timer),
            None => {}
        }
        *set = Some(at);
        self.timers.push(at, timer);
    }

    /// A scheduled slot was reached: arm the next one and offer the fire.
    fn on_slot(&mut self, now: Instant, w: WorkerId, slot: Slot) {
        let traits = self.traits[w];
        let (next, passed) = worker::following_slot(&self.graph.workers[w], &traits, &self.clock, slot, now);
        if let Some(at) = next {
            self.arm_slot(w, at);
        }
        if passed > 0 {
            self.workers[w].count_passed(traits.misfire, passed);
            if traits.misfire == Misfire::Skip {
                self.record_passed(now, w, slot, passed);
            }
        }
        // With a persistent store, a slot merging into the pending fire
        // (`FireOnce`: it came due before that fire could start) is not
        // dropped silently: every replica may merge it alike, and then no
        // claim would ever record it. The slot it supersedes as the
        // freshest is recorded `missed` now (an interval late, it ran
        // elsewhere if anywhere, and then that row stands); the freshest
        // one when the catch-up run ends here (`finish_run`), so that a
        // replica on time can still claim and run it meanwhile.
        let merging = match &self.workers[w].pending {
            Some(fire) if self.journal.is_some() && traits.misfire == Misfire::FireOnce && slot.due > fire.due => {
                Some((fire.due, fire.first_due, fire.merged))
            }
            _ => None,
        };
        self.offer_fire(w, slot.due, traits.misfire, None);
        if let Some((superseded, first_due, merged)) = merging {
            if let Some(fire) = self.workers[w].pending.as_mut() {
                fire.merged = true;
            }
            if merged && superseded > first_due {
                let why = self.merged_reason(first_due);
                self.drop_fire(w, superseded, now, FireOutcome::Missed, Some(&why));
            }
        }
        // A fixed-delay or Continuous fire dropped under `Skip` (a blocker
        // was running) counts as its previous run: the next one follows
        // after the delay. Otherwise nothing would ever arm it again.
        let record = &self.workers[w];
        if matches!(traits.kind, Kind::Delay | Kind::Continuous) && record.pending.is_none() && record.run.is_none() {
            self.arm_after_run(now, w);
        }
    }

    /// A fire due at `due` arrives for `w`: becomes its pending fire, merges
    /// into the pending one, or is dropped, following `misfire`.
    fn offer_fire(&mut self, w: WorkerId, due: Instant, misfire: Misfire, waiter: Option<WaiterId>) {
        let isolated = self.traits[w].isolated;
        let has_dependencies = !isolated && !self.graph.edges_of(w).depends_on.is_empty();
        let blocked = misfire == Misfire::Skip && !isolated && self.is_blocks_excluded(w);
        let offered = self.workers[w].offer(due, misfire, waiter, blocked);
        if let Some(missed) = offered.missed {
            let now = self.now;
            self.drop_fire(
                w,
                missed,
                now,
                FireOutcome::Missed,
                Some("misfire = Skip: it came due before the previous fire could start"),
            );
            self.metrics.missed(w, 1);
        }
        // Only workers with dependencies have verdicts: the others do not
        // touch that (cold) part of their record.
        if offered.rejudge && has_dependencies {
            self.workers[w].verdicts.fill(None);
        }
        if offered.new_fire {
            self.unsettle_dependents(w, due);
        }
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
    }

    /// `w` has a new fire due at `due`: for dependents whose pending fire is
    /// due at or after it, this is now the dependency's relevant fire, so a
    /// verdict reached on an older fire no longer holds. (This happens when
    /// fires come due at the same instant, or when a Triggered dependency is
    /// fired by its own dependencies completing.)
    fn unsettle_dependents(&mut self, w: WorkerId, due: Instant) {
        if self.traits[w].isolated {
            return;
        }
        for &d in &self.graph.edges_of(w).dependents {
            let dependent = &mut self.workers[d];
            if dependent.pending.as_ref().is_some_and(|fire| fire.due >= due) {
                let position = self.graph.edges_of(d).depends_on.binary_search(&w).expect("edges are symmetric");
                dependent.verdicts[position] = None;
            }
        }
    }

    fn on_attempt_finished(&mut self, now: Instant, w: WorkerId, run: RunId, result: AttemptResult) {
        let config = &self.graph.workers[w];
        let may_retry = self.lifecycle == Lifecycle::Running;
        if let AttemptResult::Refused(refusal) = result {
            return self.refused(now, w, run, *refusal);
        }
        let kind = AttemptKind::of(&result);
        let Some(end) = self.workers[w].attempt_ended(run, result, config, may_retry, &mut self.rng) else { return };
        self.metrics.attempt_ended(w, kind);
        if !self.is_continuous(w) {
            self.executing -= 1;
        }
        match end {
            AttemptEnd::Finish(outcome) => self.finish_run(now, w, outcome),
            AttemptEnd::Retry { error, pause } => {
                let until = now + pause;
                self.workers[w].back_off(error, until);
                self.set_timer(w, TimerKind::Retry, until);
                self.mark_dirty(w);
            }
        }
    }

    /// Ends `w`'s run in progress with `outcome`, and lets everything that
    /// waited on it move.
    fn finish_run(&mut self, now: Instant, w: WorkerId, outcome: RunOutcome) {
        let name = &self.graph.workers[w].name;
        let threshold = self.traits[w].max_consecutive_failures;
        let state = &mut self.workers[w];
        let run = state.run.as_ref().map(|r| r.id);
        // What the store keeps of the run, read before it ends (only with
        // one): its fire and attempts, and the freshest slot merged into
        // this catch-up run (see `on_slot`).
        let (journaled, merged) = match self.journal {
            Some(_) => {
                let r = state.run.as_ref();
                let merged = r.filter(|r| r.fire.merged && r.fire.due > r.fire.first_due);
                (r.map(|r| (r.fire.first_due, r.attempt)), merged.map(|r| (r.fire.due, r.fire.first_due)))
            }
            None => (None, None),
        };
        let Some(ended) = state.end_run(now, &outcome, name, threshold) else { return };
        self.runs_in_progress -= 1;
        if let Some(run) = run {
            self.history.run_ended(w, run, now, &outcome);
        }
        if let (Some(journal), Some((first_due, attempts))) = (&mut self.journal, journaled) {
            let failures = state.stats.consecutive_failures;
            journal.finished(name, &self.clock, first_due, now, attempts, &outcome, failures, threshold);
        }
        self.metrics.run_ended(w, &outcome, state.stats.last_duration, state.stats.consecutive_failures);
        if let Some(key) = state.ready.take() {
            self.ready.remove(&key);
        }
        if let Some((due, first_due)) = merged {
            let why = self.merged_reason(first_due);
            self.drop_fire(w, due, now, FireOutcome::Missed, Some(&why));
        }
        #[cfg(test)]
        self.fire_log.push(FireLog {
            worker: w,
            first_due: ended.first_due,
            succeeded: ended.succeeded,
            upstream_failed: None,
        });
        self.resolve(ended.waiters, &outcome);
        if let Some(reason) = ended.disable {
            self.disable(now, w, reason);
        }
        if self.lifecycle == Lifecycle::Running && self.workers[w].enabled() {
            self.arm_after_run(now, w);
        }
        if ended.succeeded {
            self.record_dependency_success(now, w);
        }
        self.mark_dirty(w);
        for i in 0..self.graph.edges_of(w).conflicts.len() {
            let c = self.graph.edges_of(w).conflicts[i];
            self.mark_dirty(c);
        }
    }

    /// Triggered dependents of `w` fire once all their dependencies have
    /// succeeded since their previous fire.
    fn record_dependency_success(&mut self, now: Instant, w: WorkerId) {
        if self.traits[w].isolated {
            return;
        }
        for i in 0..self.graph.edges_of(w).dependents.len() {
            let d = self.graph.edges_of(w).dependents[i];
            if self.traits[d].kind != Kind::Triggered || !self.workers[d].enabled() {
                continue;
            }
            let position = self.graph.edges_of(d).depends_on.binary_search(&w).expect("edges are symmetric");
            let fresh = &mut self.workers[d].fresh;
            fresh[position] = true;
            if fresh.iter().all(|f| *f) {
                fresh.fill(false);
                self.offer_fire(d, now, Misfire::FireOnce, None);
            }
        }
    }

    /// After a run ends: fixed-delay and Continuous schedules arm their next slot.
    fn arm_after_run(&mut self, now: Instant, w: WorkerId) {
        let traits = self.traits[w];
        match traits.kind {
            Kind::Delay => self.arm_slot(w, now + traits.period()),
            Kind::Continuous => {
                let stats = &self.workers[w].stats;
                let pause = worker::restart_pause(
                    traits.period(),
                    self.graph.workers[w].max_backoff,
                    stats.consecutive_failures,
                    stats.last_duration.unwrap_or_default(),
                );
                self.arm_slot(w, now + pause);
            }
            _ => {}
        }
    }

    fn enable(&mut self, now: Instant, w: WorkerId) {
        let config = &self.graph.workers[w];
        if !self.workers[w].enable(&config.name) {
            return;
        }
        self.metrics.enabled(w, true, 0);
        self.journal_state(w);
        let config = &self.graph.workers[w];
        let base = self.anchors.get(w).copied().flatten().unwrap_or(self.started + config.initial_delay);
        // A grid schedule (interval, cron) resumes at its next slot even
        // while a run goes on: that run's end arms nothing. Fixed-delay and
        // Continuous workers count from the end of the run in progress.
        let counts_from_run_end = matches!(self.traits[w].kind, Kind::Delay | Kind::Continuous);
        if self.lifecycle == Lifecycle::Running
            && !(counts_from_run_end && self.workers[w].run.is_some())
            && let Some(at) = worker::resumed_slot(config, &self.clock, base, now)
        {
            self.arm_slot(w, at);
        }
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
    }

    fn disable(&mut self, now: Instant, w: WorkerId, reason: Disabled) {
        let Some(pending) = self.workers[w].disable(reason, &self.graph.workers[w].name) else { return };
        self.metrics.enabled(w, false, self.workers[w].stats.consecutive_failures);
        self.journal_state(w);
        if let Some(fire) = pending {
            // An adopted fire will not run elsewhere either: written off.
            let (outcome, why) = if fire.attempts_done > 0 {
                (FireOutcome::Lost, "the worker is disabled")
            } else {
                (FireOutcome::Cancelled, "worker disabled")
            };
            self.drop_fire(w, fire.first_due, now, outcome, Some(why));
            self.resolve(fire.waiters, &RunOutcome::Cancelled { reason: "worker disabled".into() });
        }
        // A run between attempts gives up its remaining retries.
        if let Some((attempt, fire)) = self.workers[w]
            .run
            .as_ref()
            .filter(|r| !matches!(r.phase, Phase::Executing { .. }))
            .map(|r| (r.attempt, (r.fire.first_due, r.fire.attempts_done)))
        {
            let error = self.workers[w].retry_error.take().unwrap_or_default();
            // A run whose claim waits (cluster mode) never ran an attempt here.
            let (first_due, attempts_done) = fire;
            let never_ran = attempt == attempts_done;
            let outcome = if never_ran {
                RunOutcome::Cancelled { reason: "worker disabled".into() }
            } else {
                RunOutcome::Failed { error }
            };
            self.finish_run(now, w, outcome);
            // An adopted fire, unclaimed, will not run elsewhere either.
            if never_ran
                && attempts_done > 0
                && let Some(journal) = &mut self.journal
            {
                let name = &self.graph.workers[w].name;
                journal.dropped(name, &self.clock, first_due, now, FireOutcome::Lost, Some("the worker is disabled"));
            }
        }
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
    }

    fn shutdown(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::ShuttingDown {
            return;
        }
        tracing::info!(runs_in_progress = self.runs_in_progress, "shutting down: no new runs start");
        self.lifecycle = Lifecycle::ShuttingDown;
        self.timers.clear();
        self.ready.clear();
        for w in 0..self.workers.len() {
            let state = &mut self.workers[w];
            state.slot = None;
            state.slot_timer = None;
            state.retry_timer = None;
            state.ready = None;
            state.wait = None;
            if let Some(fire) = state.pending.take() {
                self.drop_fire(w, fire.first_due, now, FireOutcome::Cancelled, Some("shutdown"));
                self.resolve(fire.waiters, &RunOutcome::Cancelled { reason: "shutdown".into() });
            }
            match self.workers[w].run.as_ref().map(|r| (r.id, r.phase)) {
                Some((run, Phase::Executing { .. })) => self.actions.push_back(Action::Cancel { worker: w, run }),
                Some(_) => self.finish_run(now, w, RunOutcome::Cancelled { reason: "shutdown".into() }),
                None => {}
            }
        }
        self.dirty.clear();
        self.is_dirty.fill(false);
    }

    // ----- deciding ------------------------------------------------------

    /// Re-evaluates dirty workers and fills free slots, until nothing changes.
    fn settle(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        loop {
            while let Some(w) = self.dirty.pop() {
                self.is_dirty[w] = false;
                self.evaluate(now, w);
            }
            while self.executing < self.max_concurrent {
                let Some(key) = self.ready.pop_first() else { break };
                let w = key.2;
                self.workers[w].ready = None;
                self.start_attempt(now, w);
            }
            if self.dirty.is_empty() {
                break;
            }
        }
    }

    /// Decides what `w`'s pending fire or queued attempt is waiting for, and
    /// queues it (or starts it, if Continuous) when nothing holds it back.
    fn evaluate(&mut self, now: Instant, w: WorkerId) {
        if let Some(key) = self.workers[w].ready.take() {
            self.ready.remove(&key);
        }
        let priority = self.traits[w].priority;
        let state = &self.workers[w];
        if let Some(run) = &state.run {
            // A queued retry only waits for a slot: no conflicting run can have
            // started while this run was in progress. A pending fire waits for
            // the run to end.
            if let Phase::Queued { since } = run.phase {
                self.enqueue(now, w, (Reverse(priority), since, w));
            } else {
                let wait = state.pending.as_ref().map(|_| Wait::OwnRun);
                self.workers[w].wait = wait;
            }
            return;
        }
        if state.pending.is_none() {
            self.workers[w].wait = None;
            return;
        }
        if !state.enabled() {
            return;
        }
        match self.check_dependencies(w) {
            Dependencies::Failed(dependency) => return self.upstream_failed(now, w, dependency),
            Dependencies::Wait(wait) => {
                let previous = self.workers[w].wait.replace(wait);
                // A wait on a dependency that has never run can last forever
                // (a Triggered dependency nobody triggers): say so once, when
                // it starts, not at every re-evaluation.
                if let Wait::Dependency { dependency, why: DependencyWait::NeverRan } = wait
                    && previous != Some(wait)
                {
                    tracing::info!(
                        worker = %self.graph.workers[w].name, dependency = %self.graph.workers[dependency].name,
                        "waiting on a dependency that has never run; it starts once the dependency has succeeded"
                    );
                }
                return;
            }
            Dependencies::Satisfied => {}
        }
        if !self.traits[w].isolated
            && let Some(by) = self.graph.edges_of(w).conflicts.iter().copied().find(|&c| self.workers[c].run.is_some())
        {
            self.workers[w].wait = Some(Wait::Excluded { by });
            return;
        }
        if self.is_continuous(w) {
            self.workers[w].wait = None;
            return self.start_attempt(now, w);
        }
        let first_due = self.workers[w].pending.as_ref().map_or(now, |f| f.first_due);
        self.enqueue(now, w, (Reverse(priority), first_due, w));
    }

    /// Queues `w` for a slot, or starts it at once when a slot is free for it
    /// and for every other worker that could become ready in this pass: then
    /// the queue's order cannot matter, and the common case of a worker due
    /// with slots to spare skips the queue.
    fn enqueue(&mut self, now: Instant, w: WorkerId, key: ReadyKey) {
        if self.ready.is_empty() && self.executing + self.dirty.len() < self.max_concurrent {
            return self.start_attempt(now, w);
        }
        self.ready.insert(key);
        let state = &mut self.workers[w];
        state.ready = Some(key);
        state.wait = Some(Wait::Slot);
    }

    /// Settles what can be settled of `w`'s pending fire's dependencies.
    fn check_dependencies(&mut self, w: WorkerId) -> Dependencies {
        if self.traits[w].isolated {
            return Dependencies::Satisfied;
        }
        let edges = &self.graph.edges_of(w);
        if edges.depends_on.is_empty() {
            return Dependencies::Satisfied;
        }
        // Taken out while the other workers are read; `w` is never its own
        // dependency (validation rejects cycles).
        let mut verdicts = std::mem::take(&mut self.workers[w].verdicts);
        let due = self.workers[w].pending.as_ref().expect("evaluated with a pending fire").due;
        let mut first_wait = None;
        for (i, &dep) in edges.depends_on.iter().enumerate() {
            if verdicts[i].is_some() {
                continue;
            }
            let d = &self.workers[dep];
            let why = if !d.enabled() {
                Some(DependencyWait::Disabled)
            } else if d.run.is_some() || d.pending.as_ref().is_some_and(|p| p.first_due <= due) {
                Some(DependencyWait::NotFinished)
            } else if let Some(last) = d.last_fire {
                verdicts[i] = Some(last.succeeded);
                None
            } else {
                Some(DependencyWait::NeverRan)
            };
            if let Some(why) = why {
                first_wait.get_or_insert(Wait::Dependency { dependency: dep, why });
            }
        }
        let failed = verdicts.iter().position(|s| *s == Some(false)).map(|i| edges.depends_on[i]);
        self.workers[w].verdicts = verdicts;
        match (failed, first_wait) {
            (Some(dependency), _) => Dependencies::Failed(dependency),
            (None, Some(wait)) => Dependencies::Wait(wait),
            (None, None) => Dependencies::Satisfied,
        }
    }

    /// A fire of `w` first due at `first_due` is about to start or be recorded,
    /// so `w`'s last outcome is about to become a fire newer than any
    /// dependent's pending fire due before it. Those dependents' verdicts on
    /// `w` are taken now, from the outcome that is still theirs (a dependent
    /// may not have been evaluated since, e.g. while its own run was going).
    fn settle_before_newer_fire(&mut self, w: WorkerId, first_due: Instant) {
        if self.traits[w].isolated {
            return;
        }
        let Some(last) = self.workers[w].last_fire else { return };
        for &d in &self.graph.edges_of(w).dependents {
            let dependent = &mut self.workers[d];
            if dependent.pending.as_ref().is_some_and(|fire| fire.due < first_due) {
                let position = self.graph.edges_of(d).depends_on.binary_search(&w).expect("edges are symmetric");
                dependent.verdicts[position].get_or_insert(last.succeeded);
            }
        }
    }

    /// `w`'s pending fire will not run: `dependency`'s relevant fire failed.
    fn upstream_failed(&mut self, now: Instant, w: WorkerId, dependency: WorkerId) {
        let name = self.graph.workers[w].name.clone();
        let dependency_name = self.graph.workers[dependency].name.to_string();
        let state = &mut self.workers[w];
        let first_due = state.pending.as_ref().expect("evaluated with a pending fire").first_due;
        self.settle_before_newer_fire(w, first_due);
        let state = &mut self.workers[w];
        let fire = state.pending.take().expect("evaluated with a pending fire");
        state.wait = None;
        state.stats.upstream_failed += 1;
        state.last_fire = Some(FinishedFire { succeeded: false });
        tracing::warn!(worker = %name, dependency = %dependency_name, "fire skipped: upstream_failed");
        let error = crate::history::upstream_error(&dependency_name);
        self.drop_fire(w, fire.first_due, now, FireOutcome::UpstreamFailed, Some(&error));
        self.metrics.upstream_failed(w);
        #[cfg(test)]
        self.fire_log.push(FireLog {
            worker: w,
            first_due: fire.first_due,
            succeeded: false,
            upstream_failed: Some(fire.due),
        });
        self.resolve(fire.waiters, &RunOutcome::UpstreamFailed { dependency: dependency_name });
        // A fixed-delay schedule counts the skipped fire as its previous run.
        if self.traits[w].kind == Kind::Delay && self.workers[w].enabled() {
            self.arm_after_run(now, w);
        }
        self.mark_dependents_dirty(w);
    }

    /// Starts `w`'s next attempt: the first of its pending fire, or a retry.
    fn start_attempt(&mut self, now: Instant, w: WorkerId) {
        let traits = self.traits[w];
        let state = &self.workers[w];
        if state.run.is_none() {
            if let Some(fire) = &state.pending {
                #[cfg(test)]
                self.start_log.push((w, fire.due, self.fire_log.len()));
                self.settle_before_newer_fire(w, fire.first_due);
            }
            self.runs_in_progress += 1;
            // Fixed-delay and Continuous workers form one chain: this run's
            // end arms the next slot. A slot armed before (the run was
            // triggered during the delay) would start a second chain.
            if matches!(traits.kind, Kind::Delay | Kind::Continuous) {
                self.workers[w].disarm();
            }
        }
        let next_run = &mut self.next_run;
        let run = self.workers[w].begin_attempt(now, || {
            *next_run += 1;
            RunId(*next_run - 1)
        });
        let (id, attempt, due) = (run.id, run.attempt, run.fire.first_due);
        let timeout = traits.timeout();
        // The common case first, as it was before stores: a fire's first
        // attempt, with neither a claim that waited nor attempts made
        // elsewhere. (The worker's name is looked up only where it is used.)
        if attempt == 1 && !run.held {
            tracing::info!(worker = %self.graph.workers[w].name, run_id = %id, attempt, "run started");
            self.history.run_started(w, id, due, now);
            self.metrics.run_started(w, now.saturating_duration_since(due));
            if let Some(journal) = &mut self.journal {
                journal.started(&self.graph.workers[w].name, &self.clock, due, now);
            }
            self.actions.push_back(Action::Start { first: true, attempt, worker: w, run: id, timeout, due });
        } else {
            let (held, attempts_done) = (run.held, run.fire.attempts_done);
            let first = self.later_attempt_started(now, w, id, attempt, held, due, attempts_done);
            self.actions.push_back(Action::Start { first, attempt, worker: w, run: id, timeout, due });
        }
        if traits.kind != Kind::Continuous {
            self.executing += 1;
        }
        if traits.isolated {
            return;
        }
        // Conflicting workers may not start now: take them out of the queue.
        for i in 0..self.graph.edges_of(w).conflicts.len() {
            let c = self.graph.edges_of(w).conflicts[i];
            if let Some(key) = self.workers[c].ready.take() {
                self.ready.remove(&key);
            }
            self.mark_dirty(c);
        }
        self.mark_dependents_dirty(w);
    }

    /// Records the start of an attempt of `w`'s run other than a fresh
    /// fire's first (see [`Engine::start_attempt`]): a retry, a run whose
    /// claim waited (`held`), or an adopted fire's next attempt here.
    /// Returns whether it is the run's first attempt on this instance (its
    /// fire is claimed first).
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn later_attempt_started(
        &mut self,
        now: Instant,
        w: WorkerId,
        run: RunId,
        attempt: u32,
        held: bool,
        first_due: Instant,
        attempts_done: u32,
    ) -> bool {
        let name = &self.graph.workers[w].name;
        if held {
            // Its claim was answered busy: said once, not at every retry.
            tracing::debug!(worker = %name, run_id = %run, "claiming the fire again");
        } else {
            tracing::info!(worker = %name, run_id = %run, attempt, "run started");
        }
        // An adopted fire's run starts here at its next attempt.
        let first = attempt == attempts_done + 1;
        if first && !held {
            self.history.run_started(w, run, first_due, now);
            if attempt > 1 {
                self.history.attempt_started(w, run, attempt);
            }
            self.metrics.run_started(w, now.saturating_duration_since(first_due));
            if let Some(journal) = &mut self.journal {
                journal.started(name, &self.clock, first_due, now);
            }
        } else if !first {
            self.history.attempt_started(w, run, attempt);
            if let Some(journal) = &mut self.journal {
                journal.attempt(name, &self.clock, first_due, attempt);
            }
        }
        first
    }

    /// The store refused the claim of `w`'s fire (cluster mode): no
    /// attempt ran. The fire waits and is claimed again later (`Busy`), or
    /// it is settled elsewhere (`Taken`) or by the claim (`UpstreamFailed`).
    #[cold]
    fn refused(&mut self, now: Instant, w: WorkerId, run: RunId, refusal: Refusal) {
        let continuous = self.is_continuous(w);
        let record = &mut self.workers[w];
        let Some(r) = record.run.as_mut().filter(|r| r.id == run && matches!(r.phase, Phase::Executing { .. })) else {
            return;
        };
        if !continuous {
            self.executing -= 1;
        }
        if self.lifecycle != Lifecycle::Running && matches!(refusal, Refusal::Busy { .. }) {
            // Shutting down: the claim is not tried again (shutdown cleared
            // the timers; waiting would hold the stop up for good). The
            // fire was never claimed here and may run elsewhere: nothing is
            // recorded about it (a shared fire's `cancelled` is not written).
            let fire = self.workers[w].unstart();
            self.runs_in_progress -= 1;
            self.history.forget_run(w, run);
            self.metrics.run_abandoned(w);
            self.drop_fire(w, fire.first_due, now, FireOutcome::Cancelled, Some("shutdown"));
            self.resolve(fire.waiters, &RunOutcome::Cancelled { reason: "shutdown".into() });
            return;
        }
        let dependency = match refusal {
            Refusal::Busy { why, retry } => {
                // As for a conflicting run here: the fire waits. Its run
                // goes back to before its first attempt, and the claim is
                // tried again when the pause is over.
                r.attempt -= 1;
                r.held = true;
                let until = now + retry;
                record.back_off(why, until);
                self.set_timer(w, TimerKind::Retry, until);
                self.mark_dirty(w);
                self.yield_to_older_fire(w);
                return;
            }
            Refusal::Taken { by } => {
                tracing::debug!(worker = %self.graph.workers[w].name, instance = %by, "fire claimed by another instance");
                None
            }
            Refusal::UpstreamFailed { dependency } => Some(dependency),
        };
        // The run never was: undo its start.
        let mut fire = record.unstart();
        let merged = dependency.is_none() && fire.due > fire.first_due;
        if merged {
            // A catch-up fire whose oldest slot ran elsewhere: the slots
            // merged into it after that one are still due (each replica
            // merges on its own, so the others may have dropped them too).
            // It waits again, to be claimed as its freshest slot, which
            // stands for them; a fire pending since takes it in.
            fire.first_due = fire.due;
            fire.attempts_done = 0;
            fire.merged = false;
            let record = &mut self.workers[w];
            match record.pending.as_mut() {
                Some(later) => {
                    later.first_due = later.first_due.min(fire.due);
                    later.waiters.extend(fire.waiters.drain(..));
                }
                None => record.pending = Some(fire),
            }
            self.runs_in_progress -= 1;
            self.history.forget_run(w, run);
            self.metrics.run_abandoned(w);
            self.mark_dirty(w);
            self.mark_dependents_dirty(w);
            for i in 0..self.graph.edges_of(w).conflicts.len() {
                let c = self.graph.edges_of(w).conflicts[i];
                self.mark_dirty(c);
            }
            return;
        }
        self.runs_in_progress -= 1;
        self.history.forget_run(w, run);
        self.metrics.run_abandoned(w);
        match dependency {
            None => {
                // Ran, or runs, elsewhere: for this instance's dependents the
                // store's claim judges the outcome (see `Refusal`).
                self.workers[w].last_fire = Some(worker::FinishedFire { succeeded: true });
                let reason = "the fire ran on another instance".to_string();
                self.resolve(fire.waiters, &RunOutcome::Cancelled { reason });
                if self.lifecycle == Lifecycle::Running && self.workers[w].enabled() {
                    self.arm_after_run(now, w);
                }
            }
            Some(dependency) => {
                let later = self.workers[w].pending.replace(fire);
                let d = self.graph.workers.binary_search_by(|c| (*c.name).cmp(&dependency)).unwrap_or(w);
                self.upstream_failed(now, w, d);
                if let Some(later) = later {
                    self.workers[w].pending = Some(later);
                }
            }
        }
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
        for i in 0..self.graph.edges_of(w).conflicts.len() {
            let c = self.graph.edges_of(w).conflicts[i];
            self.mark_dirty(c);
        }
    }

    /// Takes over a fire lost on another instance (see [`Event::Adopt`]).
    fn adopt(&mut self, now: Instant, w: WorkerId, due: Instant, attempts_done: u32, lost_by: &str) {
        if self.lifecycle != Lifecycle::Running {
            // Stopping: the store hands it to another replica once this
            // one has left.
            return;
        }
        let record = &self.workers[w];
        let known = |fire: &Fire| fire.first_due == due && fire.attempts_done >= attempts_done;
        if record.run.as_ref().is_some_and(|r| known(&r.fire)) || record.pending.as_ref().is_some_and(known) {
            // Handed again before its claim went through.
            return;
        }
        let name = self.graph.workers[w].name.clone();
        if !self.workers[w].enabled() {
            tracing::warn!(worker = %name, "lost fire not retried: the worker is disabled");
            return self.drop_fire(w, due, now, FireOutcome::Lost, Some("the worker is disabled"));
        }
        let misfire = self.traits[w].misfire;
        match self.workers[w].pending.as_mut() {
            Some(fire) if fire.first_due < due => {
                // The older fire waiting here stands for it.
                tracing::warn!(worker = %name, "lost fire not retried: an older fire of the worker waits here");
                let why = "an older fire of the worker waits on the instance that took it over";
                return self.drop_fire(w, due, now, FireOutcome::Lost, Some(why));
            }
            Some(fire) => {
                // The older fire's identity wins: the adopted one's.
                let merged = fire.first_due;
                fire.first_due = due;
                fire.attempts_done = fire.attempts_done.max(attempts_done);
                if merged > due {
                    match misfire {
                        Misfire::FireOnce => self.workers[w].stats.coalesced += 1,
                        Misfire::Skip => {
                            self.workers[w].stats.missed += 1;
                            self.metrics.missed(w, 1);
                            self.drop_fire(
                                w,
                                merged,
                                now,
                                FireOutcome::Missed,
                                Some("misfire = Skip: an older fire lost elsewhere was taken over in its place"),
                            );
                        }
                    }
                }
                self.mark_dirty(w);
                self.mark_dependents_dirty(w);
            }
            None => {
                self.offer_fire(w, due, Misfire::FireOnce, None);
                if let Some(fire) = self.workers[w].pending.as_mut() {
                    fire.attempts_done = attempts_done;
                }
            }
        }
        tracing::warn!(worker = %name, "fire lost on instance {lost_by}: retrying here (attempt {})", attempts_done + 1);
        self.yield_to_older_fire(w);
    }

    /// A run of `w` still waiting for its claim (cluster mode: refused busy,
    /// no claim in flight) gives way to an older fire pending here, an
    /// adopted one: the store keeps the worker busy for newer fires until a
    /// lost fire is taken over, so the older fire goes first, and the
    /// waiting one merges into it as a later slot would.
    fn yield_to_older_fire(&mut self, w: WorkerId) {
        let record = &mut self.workers[w];
        let (Some(run), Some(older)) = (record.run.as_ref(), record.pending.as_ref()) else { return };
        if !run.held || matches!(run.phase, Phase::Executing { .. }) || older.first_due >= run.fire.first_due {
            return;
        }
        let run = run.id;
        if let Some(key) = record.ready.take() {
            self.ready.remove(&key);
        }
        let record = &mut self.workers[w];
        let fire = record.unstart();
        let older = record.pending.as_mut().expect("checked above");
        if fire.due > older.due {
            older.due = fire.due;
        }
        older.waiters.extend(fire.waiters);
        record.stats.coalesced += 1;
        self.runs_in_progress -= 1;
        self.history.forget_run(w, run);
        self.metrics.run_abandoned(w);
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
    }

    /// Applies the cluster-wide state of `w` (see [`Event::Sync`]).
    fn sync(&mut self, now: Instant, w: WorkerId, disabled: Option<Disabled>, consecutive_failures: u32) {
        self.quiet = true;
        match (self.workers[w].enabled(), disabled) {
            (true, Some(reason)) => self.disable(now, w, reason),
            (false, None) => self.enable(now, w),
            _ => {}
        }
        self.quiet = false;
        let stats = &mut self.workers[w].stats;
        if stats.consecutive_failures != consecutive_failures {
            stats.consecutive_failures = consecutive_failures;
            let enabled = self.workers[w].enabled();
            self.metrics.enabled(w, enabled, consecutive_failures);
        }
    }

    // ----- helpers -------------------------------------------------------

    /// Records the `passed` slots after `slot` that went by unprocessed
    /// under `misfire = Skip` as missed fires (the latest
    /// [`KEPT_PER_WORKER`](crate::history::KEPT_PER_WORKER) of them).
    fn record_passed(&mut self, now: Instant, w: WorkerId, slot: Slot, passed: u64) {
        self.metrics.missed(w, passed);
        let kept = passed.min(crate::history::KEPT_PER_WORKER as u64);
        let mut dues = Vec::new();
        match &self.graph.workers[w].schedule {
            Schedule::Interval(period) => {
                let skipped = u32::try_from(passed - kept).unwrap_or(u32::MAX);
                let mut at = slot.nominal + *period * skipped;
                for _ in 0..kept {
                    at += *period;
                    dues.push(at);
                }
            }
            Schedule::Cron(cron) => {
                let mut at = slot.nominal;
                while let Some(next) = crate::schedule::next_cron(cron, &self.clock, at).filter(|next| *next <= now) {
                    dues.push(next);
                    at = next;
                    if dues.len() as u64 >= passed {
                        break;
                    }
                }
                dues.drain(..dues.len().saturating_sub(kept as usize));
            }
            _ => {}
        }
        for due in dues {
            self.drop_fire(
                w,
                due,
                now,
                FireOutcome::Missed,
                Some("misfire = Skip: due while the process could not run (busy or suspended)"),
            );
        }
    }

    fn arm_slot(&mut self, w: WorkerId, nominal: Instant) {
        let jitter = self.slot_jitter(w, nominal);
        let slot = self.workers[w].arm(nominal, jitter);
        self.set_timer(w, TimerKind::Slot, slot.due);
    }

    /// How long after its slot at `nominal` a fire of `w` is due.
    ///
    /// A fire's identity is the wall time it is due at, so for a Cluster
    /// worker the jitter is a function of the worker and the slot, the same
    /// on every replica: they all compute the same fire, claim it, and one
    /// runs it at that time. (Keying the identity on the nominal slot
    /// instead, with a jitter of each replica's own, would let the replica
    /// that drew the shortest jitter win every fire: the run would start
    /// at the minimum of the replicas' draws, not spread over `jitter`.)
    /// An Instance worker's fires are each replica's own: drawn at random,
    /// so that the replicas' runs spread out.
    fn slot_jitter(&mut self, w: WorkerId, nominal: Instant) -> Duration {
        let max = self.traits[w].jitter();
        if max.is_zero() {
            return Duration::ZERO;
        }
        let config = &self.graph.workers[w];
        match config.scope {
            Scope::Cluster => {
                let slot = journal::scheduled_at(&self.clock, nominal).timestamp_millis();
                crate::schedule::slot_jitter(&config.name, slot, max)
            }
            Scope::Instance => crate::schedule::random_up_to(&mut self.rng, max),
        }
    }

    /// Arms the first slot at or after `earliest`.
    fn arm_first_slot(&mut self, w: WorkerId, earliest: Instant) {
        if let Some(at) = worker::first_slot(&self.graph.workers[w], &self.clock, earliest) {
            self.arm_slot(w, at);
        }
    }

    fn is_continuous(&self, w: WorkerId) -> bool {
        self.traits[w].kind == Kind::Continuous
    }

    /// Whether a worker `w` lists in `blocks` (either direction), as opposed to
    /// a dependency relation, has a run in progress.
    fn is_blocks_excluded(&self, w: WorkerId) -> bool {
        let edges = &self.graph.edges_of(w);
        edges.conflicts.iter().any(|&c| {
            self.workers[c].run.is_some()
                && edges.depends_on.binary_search(&c).is_err()
                && edges.dependents.binary_search(&c).is_err()
        })
    }

    fn resolve(&mut self, waiters: Waiters, outcome: &RunOutcome) {
        for waiter in waiters {
            self.actions.push_back(Action::Resolve { waiter, outcome: outcome.clone() });
        }
    }

    fn mark_dirty(&mut self, w: WorkerId) {
        if !self.is_dirty[w] {
            self.is_dirty[w] = true;
            self.dirty.push(w);
        }
    }

    fn mark_dependents_dirty(&mut self, w: WorkerId) {
        if self.traits[w].isolated {
            return;
        }
        for i in 0..self.graph.edges_of(w).dependents.len() {
            let d = self.graph.edges_of(w).dependents[i];
            if self.workers[d].pending.is_some() {
                self.mark_dirty(d);
            }
        }
    }
}

enum Dependencies {
    Satisfied,
    Wait(Wait),
    Failed(WorkerId),
}
