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

mod timers;
mod worker;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod sim;
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
use crate::spec::{Misfire, Schedule, WorkerConfig};
use crate::status::RunOutcome;

use timers::{Timer, TimerKind, Timers};
use worker::{AttemptEnd, FinishedFire, Kind, ReadyKey, Slot, Traits, Waiters};
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
    /// Stop starting runs, cancel what is pending, ask running attempts to stop.
    Shutdown,
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
}

/// Something the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start an attempt of `worker`'s body; `due` is when its fire was due.
    Start { worker: WorkerId, run: RunId, attempt: u32, timeout: Option<Duration>, due: Instant },
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

    /// Begins scheduling at `now`, whose wall-clock time is `wall`: arms every
    /// enabled worker's first slot.
    pub(crate) fn start(&mut self, now: Instant, wall: DateTime<Utc>) {
        debug_assert_eq!(self.lifecycle, Lifecycle::Created);
        self.lifecycle = Lifecycle::Running;
        let now = self.observe(now);
        self.started = now;
        self.clock = WallClock::new(now, wall);
        // Registered now rather than at build, so a recorder the application
        // installs between the two receives them.
        self.register_metrics();
        for w in 0..self.workers.len() {
            if self.workers[w].enabled() {
                let first = now + self.graph.workers[w].initial_delay;
                self.arm_first_slot(w, first);
            }
        }
        self.on_timeout(now);
        self.settle(now);
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
            Event::Shutdown => self.shutdown(now),
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
        self.offer_fire(w, slot.due, traits.misfire, None);
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
        let state = &mut self.workers[w];
        let offered = state.offer(due, misfire, waiter, blocked);
        if let Some(missed) = offered.missed {
            self.history.fire_dropped(w, missed, self.now, FireOutcome::Missed, None);
            self.metrics.missed(w, 1);
        }
        // Only workers with dependencies have verdicts: the others do not
        // touch that (cold) part of their record.
        if offered.rejudge && has_dependencies {
            state.verdicts.fill(None);
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
        let Some(ended) = state.end_run(now, &outcome, name, threshold) else { return };
        self.runs_in_progress -= 1;
        if let Some(run) = run {
            self.history.run_ended(w, run, now, &outcome);
        }
        self.metrics.run_ended(w, &outcome, state.stats.last_duration, state.stats.consecutive_failures);
        if let Some(key) = state.ready.take() {
            self.ready.remove(&key);
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
        // A grid schedule (interval, cron) resumes at its next slot even
        // while a run goes on: that run's end arms nothing. Fixed-delay and
        // Continuous workers count from the end of the run in progress.
        let counts_from_run_end = matches!(self.traits[w].kind, Kind::Delay | Kind::Continuous);
        if self.lifecycle == Lifecycle::Running
            && !(counts_from_run_end && self.workers[w].run.is_some())
            && let Some(at) = worker::resumed_slot(config, &self.clock, self.started, now)
        {
            self.arm_slot(w, at);
        }
        self.mark_dirty(w);
        self.mark_dependents_dirty(w);
    }

    fn disable(&mut self, now: Instant, w: WorkerId, reason: Disabled) {
        let Some(pending) = self.workers[w].disable(reason, &self.graph.workers[w].name) else { return };
        self.metrics.enabled(w, false, self.workers[w].stats.consecutive_failures);
        if let Some(fire) = pending {
            let why = "worker disabled";
            self.history.fire_dropped(w, fire.first_due, now, FireOutcome::Cancelled, Some(why));
            self.resolve(fire.waiters, &RunOutcome::Cancelled { reason: "worker disabled".into() });
        }
        // A run between attempts gives up its remaining retries.
        if let Some(run) = &self.workers[w].run
            && !matches!(run.phase, Phase::Executing { .. })
        {
            let error = self.workers[w].retry_error.take().unwrap_or_default();
            self.finish_run(now, w, RunOutcome::Failed { error });
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
                self.history.fire_dropped(w, fire.first_due, now, FireOutcome::Cancelled, Some("shutdown"));
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
        self.history.fire_dropped(w, fire.first_due, now, FireOutcome::UpstreamFailed, Some(&error));
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
        tracing::info!(worker = %self.graph.workers[w].name, run_id = %run.id, attempt = run.attempt, "run started");
        if run.attempt == 1 {
            self.history.run_started(w, run.id, run.fire.first_due, now);
            self.metrics.run_started(w, now.saturating_duration_since(run.fire.first_due));
        } else {
            self.history.attempt_started(w, run.id, run.attempt);
        }
        self.actions.push_back(Action::Start {
            worker: w,
            run: run.id,
            attempt: run.attempt,
            timeout: traits.timeout(),
            due: run.fire.first_due,
        });
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
            self.history.fire_dropped(w, due, now, FireOutcome::Missed, None);
        }
    }

    fn arm_slot(&mut self, w: WorkerId, nominal: Instant) {
        let slot = self.workers[w].arm(nominal, self.traits[w].jitter(), &mut self.rng);
        self.set_timer(w, TimerKind::Slot, slot.due);
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
