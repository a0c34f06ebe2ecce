//! The tokio driver: owns time, tasks and signals, and carries out what the
//! engine decides.
//!
//! One loop sleeps until the engine's next deadline, an attempt's completion,
//! a handle call or a signal, feeds the engine the event with the current
//! instant, and executes the queued actions: spawn an attempt (with its
//! timeout, panic catching and tracing span), cancel a run's context, answer
//! a trigger. It never decides anything about scheduling itself.

mod attempt;
mod signals;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::{Context, RunId};
use crate::engine::{Action, AttemptResult, Engine, Event, Phase, WaiterId};
use crate::error::Error;
use crate::graph::WorkerId;
use crate::status::{OrchestratorState, RunOutcome};
use crate::worker_fn::{RunInput, StateMap};

use attempt::{Attempt, panic_message};
pub(crate) use signals::Signals;

/// State shared by the driver and every [`Handle`](crate::Handle).
pub(crate) struct Inner {
    shared: Mutex<Shared>,
    /// Wakes the driver after a handle changed the engine.
    wake: Notify,
    /// Cancelled when the driver has stopped.
    stopped: CancellationToken,
    /// Every attempt's `Context` token: cancelled to ask running workers to
    /// stop. Runs are only ever asked to stop together (at shutdown), so one
    /// token serves all and an attempt costs no token of its own.
    stop: CancellationToken,
    /// Cancelled when shutdown gives up waiting: running attempts are dropped.
    abort: CancellationToken,
    states: Arc<StateMap>,
    shutdown_timeout: Duration,
}

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) lifecycle: OrchestratorState,
    waiters: HashMap<WaiterId, oneshot::Sender<RunOutcome>>,
    next_waiter: WaiterId,
    /// Set when shutdown is requested: when remaining runs are cancelled.
    shutdown_deadline: Option<std::time::Instant>,
}

/// An attempt to spawn, as the engine asked for it.
struct Start {
    worker: WorkerId,
    run: RunId,
    attempt: u32,
    timeout: Option<Duration>,
    due: std::time::Instant,
}

/// An attempt's report to the driver.
struct Done {
    worker: WorkerId,
    run: RunId,
    result: AttemptResult,
}

/// The current instant on tokio's clock (paused in tests), as the engine's
/// `std` instant.
pub(crate) fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

impl Inner {
    pub(crate) fn new(engine: Engine, states: StateMap, shutdown_timeout: Duration) -> Self {
        Inner {
            shared: Mutex::new(Shared {
                engine,
                lifecycle: OrchestratorState::Created,
                waiters: HashMap::new(),
                next_waiter: 1,
                shutdown_deadline: None,
            }),
            wake: Notify::new(),
            stopped: CancellationToken::new(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            states: Arc::new(states),
            shutdown_timeout,
        }
    }

    /// Locks the shared state. The lock is never held across an `.await`, and
    /// nothing that runs under it panics on a user's input, so a poisoned lock
    /// still holds consistent state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the driver the engine has new actions.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn stopped(&self) {
        self.stopped.cancelled().await
    }

    /// Registers a trigger's waiter; the engine answers it with
    /// [`Action::Resolve`].
    pub(crate) fn add_waiter(shared: &mut Shared) -> (WaiterId, oneshot::Receiver<RunOutcome>) {
        let id = shared.next_waiter;
        shared.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        shared.waiters.insert(id, tx);
        (id, rx)
    }

    pub(crate) fn forget_waiter(shared: &mut Shared, id: WaiterId) {
        shared.waiters.remove(&id);
    }

    /// Starts graceful shutdown (idempotent): no new runs; running ones are
    /// asked to stop and get `shutdown_timeout` to do so.
    pub(crate) fn request_shutdown(&self) {
        let mut shared = self.lock();
        match shared.lifecycle {
            OrchestratorState::Created => {
                // Never started: nothing runs, stop at once. Triggers made
                // before the start are answered (cancelled).
                shared.engine.handle(now(), Event::Shutdown);
                while let Some(action) = shared.engine.poll_action() {
                    if let Action::Resolve { waiter, outcome } = action
                        && let Some(tx) = shared.waiters.remove(&waiter)
                    {
                        let _ = tx.send(outcome);
                    }
                }
                shared.lifecycle = OrchestratorState::Stopped;
                drop(shared);
                self.stopped.cancel();
            }
            OrchestratorState::Running => {
                let now = now();
                shared.lifecycle = OrchestratorState::ShuttingDown;
                shared.shutdown_deadline = Some(now + self.shutdown_timeout);
                tracing::info!(timeout = ?self.shutdown_timeout, "graceful shutdown requested");
                shared.engine.handle(now, Event::Shutdown);
                drop(shared);
                self.wake();
            }
            OrchestratorState::ShuttingDown | OrchestratorState::Stopped => {}
        }
    }

    /// Cancels every run still in progress now (second signal, or the
    /// shutdown timeout elapsed): their futures are dropped at their next
    /// poll, and the engine records them as cancelled at once, so a worker
    /// that blocks its thread cannot hold shutdown up.
    fn force_stop(&self, why: &str) {
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
            tracing::warn!(runs = %names.join(", "), "{why}: cancelling runs still in progress");
        }
        let now = now();
        for (worker, run) in executing {
            shared.engine.handle(now, Event::AttemptFinished { worker, run, result: AttemptResult::Cancelled });
        }
        // Runs between attempts have no task; shutdown already ended them.
        debug_assert!(shared.engine.is_stopped());
    }

    /// Carries out the engine's queued actions.
    fn carry_out(&self, shared: &mut Shared, done: &mpsc::UnboundedSender<Done>) {
        while let Some(action) = shared.engine.poll_action() {
            match action {
                Action::Start { worker, run, attempt, timeout, due } => {
                    let start = Start { worker, run, attempt, timeout, due };
                    self.spawn_attempt(&shared.engine, start, done.clone());
                }
                Action::Cancel { worker, run } => {
                    tracing::debug!(worker = %shared.engine.config(worker).name, run_id = %run, "asking to stop");
                    self.stop.cancel();
                }
                Action::Resolve { waiter, outcome } => {
                    if let Some(tx) = shared.waiters.remove(&waiter) {
                        // The caller may have stopped waiting; that is fine.
                        let _ = tx.send(outcome);
                    }
                }
            }
        }
    }

    fn spawn_attempt(&self, engine: &Engine, start: Start, done: mpsc::UnboundedSender<Done>) {
        let Start { worker, run, attempt, timeout, due } = start;
        let config = engine.config(worker);
        let body = config.run.clone();
        let context = Context::new(config.name.clone(), run, attempt, TokioInstant::from_std(due), self.stop.clone());
        let input = RunInput { context, states: self.states.clone() };
        let abort = self.abort.clone();
        let span = tracing::info_span!("attempt", worker = %config.name, run_id = %run, attempt);
        tokio::spawn(
            async move {
                // The body is called inside the task, so that a panic before
                // its first `.await` is caught like any other.
                let result = match std::panic::catch_unwind(AssertUnwindSafe(|| body(input))) {
                    Ok(future) => Attempt::new(future, timeout, abort).await,
                    Err(panic) => AttemptResult::Panicked(panic_message(panic.as_ref())),
                };
                match &result {
                    AttemptResult::Failed(error) => tracing::warn!(error = %error, "attempt failed"),
                    AttemptResult::Panicked(message) => tracing::warn!(panic = %message, "attempt panicked"),
                    AttemptResult::TimedOut(limit) => tracing::warn!(timeout = ?limit, "attempt timed out"),
                    AttemptResult::Succeeded | AttemptResult::Cancelled => {}
                }
                // The driver may be gone after a forced stop.
                let _ = done.send(Done { worker, run, result });
            }
            .instrument(span),
        );
    }

    /// The driver loop; returns when everything has stopped.
    pub(crate) async fn drive(self: Arc<Self>, mut signals: Option<Signals>) -> Result<(), Error> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        {
            let mut shared = self.lock();
            if shared.lifecycle != OrchestratorState::Created {
                return Ok(()); // shut down before it ran, or run twice
            }
            shared.lifecycle = OrchestratorState::Running;
            tracing::info!(workers = shared.engine.len(), "orchestrator started");
            shared.engine.start(now(), chrono::Utc::now());
        }
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut forced = false;
        loop {
            let (deadline, shutdown_deadline) = {
                let mut shared = self.lock();
                self.carry_out(&mut shared, &done_tx);
                if shared.engine.is_stopped() {
                    break;
                }
                (shared.engine.next_deadline(), shared.shutdown_deadline.filter(|_| !forced))
            };
            let wake_at = match (deadline, shutdown_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let has_deadline = wake_at.is_some();
            if let Some(at) = wake_at {
                sleep.as_mut().reset(TokioInstant::from_std(at));
            }
            tokio::select! {
                biased;
                Some(first) = done_rx.recv() => {
                    let mut shared = self.lock();
                    let now = now();
                    let mut next = Some(first);
                    while let Some(Done { worker, run, result }) = next {
                        shared.engine.handle(now, Event::AttemptFinished { worker, run, result });
                        next = done_rx.try_recv().ok();
                    }
                }
                () = self.wake.notified() => {}
                () = wait_signal(&mut signals) => {
                    let shutting_down = self.lock().lifecycle == OrchestratorState::ShuttingDown;
                    if shutting_down {
                        forced = true;
                        self.force_stop("second signal");
                    } else {
                        tracing::info!("signal received; a second one cancels running workers at once");
                        self.request_shutdown();
                    }
                }
                () = &mut sleep, if has_deadline => {
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
        self.lock().lifecycle = OrchestratorState::Stopped;
        tracing::info!("orchestrator stopped");
        self.stopped.cancel();
        Ok(())
    }
}

async fn wait_signal(signals: &mut Option<Signals>) {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}
