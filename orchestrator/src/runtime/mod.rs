//! The tokio driver: owns time, tasks and signals, and carries out what the
//! engine decides.
//!
//! The engine sits behind one mutex, and whoever has an event for it feeds it
//! under that lock: a handle call, the driver loop (which sleeps until the
//! engine's next deadline, or a signal, and handles time), or a worker's lane
//! reporting an attempt. Releasing the lock ([`Guard`]'s drop) carries out
//! the queued actions: cancel the stop token, wake the driver if its
//! deadline moved earlier or all has stopped, and, once the lock is
//! released, hand lanes their attempts and answer triggers. The lanes live
//! outside the lock and the clock is read before it is taken, so the lock is
//! held for deciding only. A completion or a trigger never waits for a
//! round trip through the driver. Nothing here decides anything about
//! scheduling.

mod attempt;
mod lane;
mod mirror;
mod signals;
mod store;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use slab::Slab;
use smallvec::SmallVec;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;

use crate::context::{RunId, WorkerScope};
use crate::engine::{Action, AttemptResult, Engine, Event, Phase, WaiterId};
use crate::error::Error;
use crate::graph::WorkerId;
use crate::status::{OrchestratorState, RunOutcome};
use crate::worker_fn::{RunFn, StateMap};

use lane::{Lane, LaneContext};
pub use mirror::Changes;
use mirror::Mirror;
pub(crate) use signals::Signals;
pub(crate) use store::StoreLink;
pub use store::StoreStatus;
use store::StoreTasks;

/// State shared by the driver, the lanes and every [`Handle`](crate::Handle).
pub(crate) struct Inner {
    shared: Mutex<Shared>,
    /// Wakes the driver when its deadline moved earlier or all has stopped.
    wake: Notify,
    /// What status shows, copied out of the engine (see [`mirror`]).
    mirror: Mirror,
    /// Wakes [`Changes`] streams after an event, while there are any.
    changed: Notify,
    /// How many [`Changes`] streams exist.
    watchers: AtomicUsize,
    /// Cancelled when the driver has stopped.
    stopped: CancellationToken,
    /// Every attempt's `Context` token (through a child per lane): cancelled
    /// to ask running workers to stop. Runs are only ever asked to stop
    /// together, at shutdown.
    stop: CancellationToken,
    /// Cancelled when shutdown gives up waiting: running attempts are dropped.
    abort: CancellationToken,
    states: Arc<StateMap>,
    shutdown_timeout: Duration,
    /// Every worker's name, indexed by its id.
    names: Box<[Arc<str>]>,
    /// Every worker's body, indexed by its id, for spawning its lane.
    bodies: Box<[RunFn]>,
    /// Each worker's lane, spawned at its first attempt (Scheduled and
    /// Continuous workers: when the driver starts). Outside the engine lock:
    /// ringing a lane's doorbell touches memory the lane's thread owns,
    /// which would otherwise lengthen every critical section.
    lanes: Box<[OnceLock<Lane>]>,
    /// The runtime lanes are spawned on (handle calls may come from
    /// elsewhere), set when the driver starts.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Set when the driver closes the lanes (see [`Inner::lane`]).
    lanes_closed: AtomicBool,
    /// The store: persistence and cluster mode (see [`store`]).
    ///
    /// Both boxed: `Inner` keeps the size and layout it had before stores,
    /// so the fields every run touches share cache lines as they did.
    pub(crate) store: Box<StoreLink>,
    store_tasks: Box<StoreTasks>,
    /// How many times the driver has woken up (see [`Status::wakeups`]).
    ///
    /// [`Status::wakeups`]: crate::Status::wakeups
    wakeups: AtomicU64,
}

/// What the engine lock guards. In declaration order (see [`Engine`]'s
/// layout): the engine, whose size is a whole number of cache lines, then
/// the rest, starting with the waiters' slab, which a trigger writes.
#[repr(C)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    /// Triggers waiting for their run's outcome, by [`WaiterId`].
    waiters: Slab<oneshot::Sender<RunOutcome>>,
    /// When the driver will next wake by itself (`None`: not before an event).
    armed: Option<std::time::Instant>,
    pub(crate) lifecycle: OrchestratorState,
    /// Set when shutdown is requested: when remaining runs are cancelled.
    shutdown_deadline: Option<std::time::Instant>,
    /// The engine generation [`Changes`] streams were last woken for.
    published: u64,
}

/// An attempt to run, as the engine asked for it.
struct Start {
    worker: WorkerId,
    run: RunId,
    attempt: u32,
    /// The run's first attempt here: its fire is claimed first (cluster mode).
    first: bool,
    timeout: Option<Duration>,
    due: TokioInstant,
}

/// The current instant on tokio's clock (paused in tests), as the engine's
/// `std` instant. Read before taking the engine lock, to keep the clock read
/// out of the critical section; the engine orders the instants it is given.
pub(crate) fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

/// The engine lock. Dropping it carries out the engine's actions, releases
/// the lock, then starts the attempts and answers the triggers.
pub(crate) struct Guard<'a> {
    inner: &'a Arc<Inner>,
    shared: Option<MutexGuard<'a, Shared>>,
}

impl Deref for Guard<'_> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        self.shared.as_ref().expect("present until drop")
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        self.shared.as_mut().expect("present until drop")
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            self.inner.release(shared);
        }
    }
}

impl Inner {
    pub(crate) fn new(engine: Engine, states: StateMap, shutdown_timeout: Duration, store: StoreLink) -> Self {
        let workers = engine.len();
        let globals = crate::status::Globals {
            state: OrchestratorState::Created,
            max_concurrent: engine.max_concurrent(),
            executing: 0,
            clock: *engine.clock(),
        };
        Inner {
            mirror: Mirror::new(crate::status::Fixed::of_graph(engine.graph()), globals),
            changed: Notify::new(),
            watchers: AtomicUsize::new(0),
            names: (0..workers).map(|w| engine.config(w).name.clone()).collect(),
            bodies: (0..workers).map(|w| engine.config(w).run.clone()).collect(),
            lanes: (0..workers).map(|_| OnceLock::new()).collect(),
            runtime: OnceLock::new(),
            lanes_closed: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            store: Box::new(store),
            store_tasks: Box::default(),
            shared: Mutex::new(Shared {
                engine,
                lifecycle: OrchestratorState::Created,
                waiters: Slab::new(),
                shutdown_deadline: None,
                armed: None,
                published: 0,
            }),
            wake: Notify::new(),
            stopped: CancellationToken::new(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            states: Arc::new(states),
            shutdown_timeout,
        }
    }

    /// Locks the engine. The lock is never held across an `.await`, and
    /// nothing that runs under it panics on a user's input, so a poisoned lock
    /// still holds consistent state.
    pub(crate) fn lock(self: &Arc<Self>) -> Guard<'_> {
        Guard { inner: self, shared: Some(self.shared.lock().unwrap_or_else(PoisonError::into_inner)) }
    }

    /// Everything a lock holder does when letting go (see the module docs).
    fn release(self: &Arc<Self>, mut shared: MutexGuard<'_, Shared>) {
        let mut effects = Effects::default();
        self.carry_out(&mut shared, &mut effects);
        let must_look = shared.engine.is_stopped()
            || match (shared.engine.next_deadline(), shared.armed) {
                (Some(next), Some(armed)) => next < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
        let generation = shared.engine.generation();
        let watched = generation != shared.published && self.watchers.load(Ordering::Relaxed) > 0;
        if watched {
            shared.published = generation;
        }
        drop(shared);
        if must_look {
            self.wake.notify_one();
        }
        if watched {
            self.changed.notify_waiters();
        }
        // Each lane is woken as soon as it has its attempt, so that in a
        // burst the first lanes run while the rest are being handed theirs.
        for start in effects.starts {
            if let Some(waker) = self.lane(start.worker).start(start) {
                waker.wake();
            }
        }
        for (tx, outcome) in effects.answers {
            // The caller may have stopped waiting; that is fine.
            let _ = tx.send(outcome);
        }
    }

    /// When the driver started (or now, before it did).
    pub(crate) fn started_at(self: &Arc<Self>) -> chrono::DateTime<chrono::Utc> {
        let shared = self.lock();
        if shared.lifecycle == OrchestratorState::Created {
            return chrono::Utc::now();
        }
        shared.engine.clock().wall(shared.engine.started())
    }

    pub(crate) fn store_tasks(&self) -> &StoreTasks {
        &self.store_tasks
    }

    /// A lane's report: its attempt ended.
    fn attempt_finished(self: &Arc<Self>, worker: WorkerId, run: RunId, result: AttemptResult) {
        let now = now();
        self.lock().engine.handle(now, Event::AttemptFinished { worker, run, result });
    }

    /// Whether the driver has not started (nor the orchestrator stopped).
    pub(crate) fn is_created(self: &Arc<Self>) -> bool {
        self.lock().lifecycle == OrchestratorState::Created
    }

    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Counts one of the driver's wake-ups, before it acts on it.
    fn woke(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the orchestrator and every worker (see [`mirror`]).
    pub(crate) fn status(&self) -> crate::status::Status {
        self.mirror.status(self)
    }

    pub(crate) async fn stopped(&self) {
        self.stopped.cancelled().await
    }

    /// Registers a trigger's waiter; the engine answers it with
    /// [`Action::Resolve`].
    pub(crate) fn add_waiter(shared: &mut Shared, tx: oneshot::Sender<RunOutcome>) -> WaiterId {
        shared.waiters.insert(tx)
    }

    /// Forgets a waiter: its trigger was refused, or its caller stopped
    /// waiting (then the engine drops it from `worker`'s fire too, so that
    /// its id, reused, is never answered with this fire's outcome).
    pub(crate) fn forget_waiter(shared: &mut Shared, worker: WorkerId, id: WaiterId) {
        if shared.waiters.try_remove(id).is_some() {
            shared.engine.forget_waiter(worker, id);
        }
    }

    /// Every worker's name, by id (in name order).
    pub(crate) fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// The id of the worker named `name`. Names never change after the
    /// build, so this needs no lock.
    pub(crate) fn find(&self, name: &str) -> Option<WorkerId> {
        // Worker ids follow name order.
        self.names.binary_search_by(|n| (**n).cmp(name)).ok()
    }

    /// Starts graceful shutdown (idempotent): no new runs; running ones are
    /// asked to stop and get `shutdown_timeout` to do so.
    pub(crate) fn request_shutdown(self: &Arc<Self>) {
        let mut shared = self.lock();
        match shared.lifecycle {
            OrchestratorState::Created => {
                // Never started: nothing runs, stop at once. Triggers made
                // before the start are answered (cancelled).
                shared.engine.handle(now(), Event::Shutdown);
                shared.lifecycle = OrchestratorState::Stopped;
                drop(shared);
                self.stopped.cancel();
            }
            OrchestratorState::Running => {
                let now = now();
                shared.lifecycle = OrchestratorState::ShuttingDown;
                // A timeout too long to add to an instant means: wait for
                // the runs, however long (`Duration::MAX`).
                shared.shutdown_deadline = now.checked_add(self.shutdown_timeout);
                tracing::info!(timeout = ?self.shutdown_timeout, "graceful shutdown requested");
                shared.engine.handle(now, Event::Shutdown);
                drop(shared);
                // The driver keeps the shutdown deadline.
                self.wake.notify_one();
            }
            OrchestratorState::ShuttingDown | OrchestratorState::Stopped => {}
        }
    }

    /// Cancels every run still in progress now (second signal, or the
    /// shutdown timeout elapsed): their futures are dropped at their next
    /// poll, and the engine records them as cancelled at once, so a worker
    /// that blocks its thread cannot hold shutdown up.
    fn force_stop(self: &Arc<Self>, why: &str) {
        self.abort.cancel();
        let mut shared = self.lock();
        let executing: Vec<(WorkerId, RunId)> = shared
            .engine
            .runs()
            .filter(|(_, run)| matches!(run.phase, Phase::Executing { .. }))
            .map(|(w, run)| (w, run.id))
            .collect();
        if !executing.is_empty() {
            let names: Vec<String> =
                executing.iter().map(|&(w, run)| format!("{} (run {run})", shared.engine.config(w).name)).collect();
            // INFO, not WARN: each cancelled run gets its own WARN "run
            // cancelled" from the engine, with its `worker` and `run_id`.
            tracing::info!(runs = %names.join(", "), "{why}: cancelling runs still in progress");
        }
        let now = now();
        for (worker, run) in executing {
            shared.engine.handle(now, Event::AttemptFinished { worker, run, result: AttemptResult::Cancelled });
        }
        // Runs between attempts have no task; shutdown already ended them.
        debug_assert!(shared.engine.is_stopped());
    }

    /// Carries out the engine's queued actions, collecting in `effects` what
    /// is done once the lock is released.
    fn carry_out(self: &Arc<Self>, shared: &mut Shared, effects: &mut Effects) {
        // A burst's thousands of attempts: one allocation, not a doubling
        // series of them.
        effects.starts.reserve(shared.engine.pending_actions());
        while let Some(action) = shared.engine.poll_action() {
            match action {
                Action::Start { worker, run, attempt, first, timeout, due } => {
                    let due = TokioInstant::from_std(due);
                    effects.starts.push(Start { worker, run, attempt, first, timeout, due });
                }
                Action::Cancel { worker, run } => {
                    tracing::debug!(worker = %shared.engine.config(worker).name, run_id = %run, "asking to stop");
                    self.stop.cancel();
                }
                Action::Resolve { waiter, outcome } => {
                    if let Some(tx) = shared.waiters.try_remove(waiter) {
                        effects.answers.push((tx, outcome));
                    }
                }
            }
        }
        if shared.engine.has_facts() {
            let facts = shared.engine.take_facts();
            self.store.queue(self, facts);
        }
    }

    /// `worker`'s lane, spawned if it has none yet.
    fn lane(self: &Arc<Self>, worker: WorkerId) -> &Lane {
        let mut spawned = false;
        let lane = self.lanes[worker].get_or_init(|| {
            spawned = true;
            self.spawn_lane(worker)
        });
        // An attempt is handed over after the lock is released, so a forced
        // stop can end the engine, and the driver close the lanes, between
        // the decision and this first spawn. Either the driver's pass sees
        // this lane or this sees the driver's flag (the two fences order
        // them), so the lane cannot outlive the orchestrator: it runs the
        // attempt it is handed, whose abort is already signalled, and ends.
        if spawned {
            fence(Ordering::SeqCst);
            if self.lanes_closed.load(Ordering::Relaxed) {
                lane.close();
            }
        }
        lane
    }

    fn spawn_lane(self: &Arc<Self>, worker: WorkerId) -> Lane {
        // The engine issues attempts only once the driver has started.
        let runtime = self.runtime.get().expect("lanes are spawned once the driver runs");
        Lane::spawn(
            runtime,
            LaneContext {
                scope: Arc::new(WorkerScope {
                    name: self.names[worker].clone(),
                    // A child per lane: cancelled with the rest, but its
                    // reference count is the lane's own, not contended by
                    // every run.
                    stop: self.stop.child_token(),
                    states: self.states.clone(),
                    clock: self.store.clock.clone(),
                }),
                claims: self.store.claims(worker),
                body: self.bodies[worker].clone(),
                abort: self.abort.clone(),
                inner: self.clone(),
            },
        )
    }

    /// The driver loop; returns when everything has stopped.
    ///
    /// If its future is dropped before that (a `select!` branch that lost),
    /// the orchestrator stops at once (see [`Abandoned`]): nothing may wait
    /// for a driver that is gone.
    pub(crate) async fn drive(self: Arc<Self>, mut signals: Option<Signals>) -> Result<(), Error> {
        let mut abandoned = Abandoned(None);
        // The wall clock fire times are computed on: the database's, in
        // cluster mode, so that replicas agree whatever their own clocks say.
        let offset = if self.store.is_persistent() && self.is_created() {
            self.store.clock_offset().await.map_err(Error::Store)?
        } else {
            chrono::Duration::zero()
        };
        let restored = if self.store.is_persistent() && self.is_created() {
            let workers = StoreLink::infos(self.lock().engine.graph(), chrono::Utc::now() + offset);
            Some(self.store.open(workers).await.map_err(Error::Store)?)
        } else {
            None
        };
        {
            let mut shared = self.lock();
            if shared.lifecycle != OrchestratorState::Created {
                return Ok(()); // shut down before it ran, or run twice
            }
            // From here on, this driver owns the orchestrator's life.
            abandoned.0 = Some(self.clone());
            shared.lifecycle = OrchestratorState::Running;
            tracing::info!(workers = shared.engine.len(), "orchestrator started");
            let _ = self.runtime.set(tokio::runtime::Handle::current());
            // Workers that will surely run get their lane now, so that the
            // first fires do not pay for spawning; Triggered workers get
            // theirs at their first run.
            for worker in 0..shared.engine.len() {
                if !matches!(shared.engine.config(worker).schedule, crate::spec::Schedule::Triggered) {
                    self.lane(worker);
                }
            }
            shared.engine.start_from(now(), chrono::Utc::now() + offset, restored.as_deref());
            self.store.started(&self, *shared.engine.clock());
        }
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut forced = false;
        loop {
            let wake_at = {
                let mut shared = self.lock();
                if shared.engine.is_stopped() {
                    break;
                }
                let shutdown_deadline = shared.shutdown_deadline.filter(|_| !forced);
                let wake_at = match (shared.engine.next_deadline(), shutdown_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                shared.armed = wake_at;
                wake_at
            };
            if let Some(at) = wake_at {
                sleep.as_mut().reset(TokioInstant::from_std(at));
            }
            tokio::select! {
                biased;
                () = self.wake.notified() => self.woke(),
                () = wait_signal(&mut signals) => {
                    self.woke();
                    let shutting_down = self.lock().lifecycle == OrchestratorState::ShuttingDown;
                    if shutting_down {
                        forced = true;
                        self.force_stop("second signal");
                    } else {
                        tracing::info!("signal received; a second one cancels running workers at once");
                        self.request_shutdown();
                    }
                }
                () = &mut sleep, if wake_at.is_some() => {
                    self.woke();
                    let now = now();
                    let mut shared = self.lock();
                    if shared.shutdown_deadline.is_some_and(|d| d <= now) && !forced {
                        drop(shared);
                        forced = true;
                        self.force_stop("shutdown timeout elapsed");
                    } else {
                        shared.engine.handle(now, Event::Timeout);
                    }
                }
            }
        }
        abandoned.0 = None;
        // The facts of the last runs reach the store before `shutdown()`
        // returns; then this instance leaves the cluster.
        self.store.close(&self, Duration::from_secs(10)).await;
        self.finish();
        Ok(())
    }

    /// The end of a driver: marks the orchestrator stopped, closes the
    /// lanes and wakes whoever waits for the stop.
    fn finish(&self) {
        {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            shared.lifecycle = OrchestratorState::Stopped;
        }
        // A stopped engine starts nothing more: the lanes can end (each
        // holds this `Inner`, so they must be told). See `lane` for a lane
        // spawned while this runs.
        self.lanes_closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        for lane in self.lanes.iter().filter_map(OnceLock::get) {
            lane.close();
        }
        tracing::info!("orchestrator stopped");
        self.stopped.cancel();
        self.changed.notify_waiters();
    }

    /// The orchestrator is dropped, or its driver's future is, before it
    /// stopped: stop now. Nothing can wait for runs any more, so running
    /// attempts are cancelled at once (dropped at their next poll), pending
    /// fires and triggers are answered as cancelled, and `shutdown()`
    /// returns.
    pub(crate) fn abandon(self: &Arc<Self>) {
        let lifecycle = self.lock().lifecycle;
        match lifecycle {
            OrchestratorState::Created => self.request_shutdown(),
            OrchestratorState::Running | OrchestratorState::ShuttingDown => {
                tracing::warn!("the orchestrator's run() future was dropped: stopping now");
                self.request_shutdown();
                self.force_stop("run() was dropped");
                self.finish();
            }
            OrchestratorState::Stopped => {}
        }
    }
}

/// Stops the orchestrator if the driver's future is dropped before it
/// finished (see [`Inner::drive`]).
struct Abandoned(Option<Arc<Inner>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            inner.abandon();
        }
    }
}

/// What a lock holder does after releasing the lock: attempts to hand to
/// their lanes, and triggers to answer (answering wakes the caller's task,
/// which may wake a sleeping runtime thread). On the releasing thread's
/// stack, and inline for the usual single item: buffers shared by every
/// lock holder would be more cache lines moving between cores with the
/// lock (W4 with 64 loops).
#[derive(Default)]
struct Effects {
    starts: SmallVec<[Start; 1]>,
    answers: SmallVec<[(oneshot::Sender<RunOutcome>, RunOutcome); 1]>,
}

async fn wait_signal(signals: &mut Option<Signals>) {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Orchestrator, WorkerSpec};

    #[tokio::test(start_paused = true)]
    async fn a_trigger_whose_caller_gave_up_leaves_no_waiter_behind() {
        // "waits" depends on a worker that never runs: its fire waits forever.
        let orchestrator = Orchestrator::builder()
            .without_registered_workers()
            .worker(WorkerSpec::new("never", || async {}))
            .worker(WorkerSpec::new("waits", || async {}).depends_on("never"))
            .build()
            .expect("valid");
        let handle = orchestrator.handle();
        let inner = handle.inner().clone();
        let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
        for _ in 0..1_000 {
            let gave_up = tokio::time::timeout(Duration::from_millis(10), handle.trigger("waits")).await;
            assert!(gave_up.is_err(), "the fire waits on its dependency");
        }
        {
            let shared = inner.lock();
            assert_eq!(shared.waiters.len(), 0, "every waiter was taken back");
            let w = inner.find("waits").expect("known");
            let fire = shared.engine.state(w).pending.as_ref().expect("the fire still waits");
            assert!(fire.waiters.is_empty(), "the fire keeps no waiter id that could be reused");
        }
        handle.shutdown().await;
        running.await.expect("joined").expect("stopped cleanly");
    }
}
