//! The control API: trigger, enable, disable, status, shutdown.

use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::engine::{Event, TriggerRefusal};
use crate::error::{ControlError, HistoryError, TriggerError};
use crate::graph;
use crate::history::FireRecord;
use crate::runtime::{self, Changes, Inner};
use crate::status::{RunOutcome, Status};

/// Controls a running orchestrator from anywhere in the application (an HTTP
/// handler, a CLI, a test). Cheap to clone; `Send + Sync`.
///
/// ```no_run
/// use orchestrator::Orchestrator;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let orchestrator = Orchestrator::builder().build()?;
/// let handle = orchestrator.handle();
/// let running = tokio::spawn(orchestrator.run());
///
/// let outcome = handle.trigger("reindex").await?;   // waits for that run
/// println!("reindex {outcome}");
/// handle.disable("cleanup")?;
/// println!("{}", handle.status());                  // a table; also serde::Serialize
/// handle.shutdown().await;                          // graceful; returns when all stopped
/// running.await??;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
    instance: Arc<str>,
}

impl Handle {
    pub(crate) fn new(inner: Arc<Inner>, instance: Arc<str>) -> Self {
        Handle { inner, instance }
    }

    /// This orchestrator's name (see
    /// [`OrchestratorBuilder::instance`](crate::OrchestratorBuilder::instance)).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Runs the worker named `name` now and waits for the run's outcome.
    ///
    /// The run respects exclusion, dependencies and the concurrency limit: it
    /// waits for a free slot in priority order. If the worker already has a
    /// fire waiting, the trigger joins it. Fails at once if there is no such
    /// worker, it is disabled, it is running, or the orchestrator is shutting
    /// down.
    ///
    /// # How long it can wait
    ///
    /// Until the run ends, which can be never: a worker that depends on a
    /// worker that has never run waits for that dependency's first success,
    /// so triggering `b` when its dependency `a` is Triggered and was never
    /// triggered waits until `a` runs and succeeds, or until shutdown
    /// (answered `Cancelled`). Status shows such a wait (`waiting on a: it
    /// has never run, and runs only when triggered`) and an INFO event says
    /// it when it starts. Bound the wait with [`tokio::time::timeout`]:
    ///
    /// ```no_run
    /// # async fn demo(handle: orchestrator::Handle) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// match tokio::time::timeout(Duration::from_secs(60), handle.trigger("b")).await {
    ///     Ok(outcome) => println!("b {}", outcome?),
    ///     Err(_) => println!("b has not run within a minute: {}", handle.status()),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Giving up waiting does not withdraw the trigger: its fire stays
    /// pending and runs as soon as the dependencies allow, and a later
    /// trigger of the same worker joins it. To drop the pending fire,
    /// [`disable`](Self::disable) the worker.
    pub async fn trigger(&self, name: &str) -> Result<RunOutcome, TriggerError> {
        let Some(w) = self.inner.find(name) else {
            return Err(TriggerError::UnknownWorker { name: name.to_string(), did_you_mean: self.did_you_mean(name) });
        };
        // Everything that can be done before taking the lock is. The fire
        // is this replica's to claim at once (cluster mode).
        self.inner.store.prefer(w);
        let (tx, outcome) = oneshot::channel();
        let now = runtime::now();
        let waiter = {
            let mut shared = self.inner.lock();
            let waiter = Inner::add_waiter(&mut shared, tx);
            if let Err(refusal) = shared.engine.trigger(now, w, waiter) {
                Inner::forget_waiter(&mut shared, w, waiter);
                return Err(match refusal {
                    TriggerRefusal::Disabled(reason) => {
                        TriggerError::Disabled { name: name.to_string(), reason: reason.to_string() }
                    }
                    TriggerRefusal::AlreadyRunning => TriggerError::AlreadyRunning(name.to_string()),
                    TriggerRefusal::ShuttingDown => TriggerError::ShuttingDown,
                });
            }
            waiter
        };
        // A caller that stops waiting (a timeout, a dropped task) takes its
        // waiter back, so that nothing stays allocated for it.
        let mut waiting = Waiting { inner: &self.inner, worker: w, waiter: Some(waiter) };
        // The sender is dropped only when the orchestrator stops without
        // answering, which shutdown never does for an accepted trigger.
        let outcome = outcome.await.map_err(|_| TriggerError::ShuttingDown);
        waiting.waiter = None;
        outcome
    }

    /// Enables the worker named `name` and resets its failure count; it
    /// resumes at its schedule's next slot. Enabling an enabled worker does
    /// nothing.
    pub fn enable(&self, name: &str) -> Result<(), ControlError> {
        self.control(name, Event::Enable)
    }

    /// Disables the worker named `name`: its pending fire is dropped and no
    /// new fire or attempt starts until it is enabled. A running attempt
    /// finishes (without further retries).
    pub fn disable(&self, name: &str) -> Result<(), ControlError> {
        self.control(name, Event::Disable)
    }

    fn control(&self, name: &str, event: fn(usize) -> Event) -> Result<(), ControlError> {
        let w = self.inner.find(name).ok_or_else(|| ControlError::UnknownWorker {
            name: name.to_string(),
            did_you_mean: self.did_you_mean(name),
        })?;
        let now = runtime::now();
        self.inner.lock().engine.handle(now, event(w));
        Ok(())
    }

    /// The worker name closest to an unknown `name`, by startup validation's
    /// rule, for the error's did-you-mean.
    fn did_you_mean(&self, name: &str) -> Option<String> {
        let names: Vec<&str> = self.inner.names().iter().map(|n| &**n).collect();
        graph::did_you_mean(name, &names).map(str::to_string)
    }

    /// A snapshot of the orchestrator and every worker.
    ///
    /// Cheap to call often (a dashboard, a health check): it holds the
    /// scheduler's lock only for a few microseconds at a time, copying 64
    /// workers per hold, and builds the snapshot without it. With more than
    /// 64 workers, each worker's entry is consistent in itself, but two
    /// workers may be seen a few microseconds apart.
    pub fn status(&self) -> Status {
        let mut status = self.inner.status();
        status.instance = self.instance.to_string();
        status.store = self.inner.store.status();
        self.inner.store.place(status.workers.iter_mut().enumerate());
        status
    }

    /// The latest `limit` fires of the worker named `name`, newest first:
    /// runs (in progress or ended) and fires that did not run
    /// (`upstream_failed`, `missed`, `cancelled`). In memory the last
    /// [`KEPT_PER_WORKER`](crate::history::KEPT_PER_WORKER) (100) per worker
    /// are kept. Async because a persistent store answers from its database.
    ///
    /// ```no_run
    /// # async fn demo(handle: orchestrator::Handle) -> Result<(), orchestrator::HistoryError> {
    /// for fire in handle.history("fetch_data", 10).await? {
    ///     println!("{} {:?} after {} attempts", fire.scheduled_at, fire.outcome, fire.attempts);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn history(&self, name: &str, limit: usize) -> Result<Vec<FireRecord>, HistoryError> {
        let w = self.inner.find(name).ok_or_else(|| HistoryError::UnknownWorker {
            name: name.to_string(),
            did_you_mean: self.did_you_mean(name),
        })?;
        if self.inner.store.is_persistent() {
            let name = self.inner.names()[w].clone();
            return Ok(self.inner.store.history(name, limit).await?);
        }
        Ok(self.inner.lock().engine.history(w, limit, &self.instance))
    }

    /// The live instances of the cluster with their last heartbeat, by name
    /// (cluster mode); otherwise this instance alone.
    ///
    /// ```no_run
    /// # async fn f(handle: orchestrator::Handle) -> Result<(), orchestrator::store::StoreError> {
    /// for replica in handle.instances().await? {
    ///     println!("{} (last seen {})", replica.name, replica.last_heartbeat);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn instances(&self) -> Result<Vec<crate::store::InstanceInfo>, crate::store::StoreError> {
        self.inner.store.instances(self.inner.started_at()).await
    }

    /// Status changes as they happen: see [`Changes`].
    pub fn changes(&self) -> Changes {
        Changes::new(self.inner.clone())
    }

    /// Graceful shutdown, as on SIGTERM: no new runs start, running ones are
    /// asked to stop through their [`Context`](crate::Context), and those
    /// still running after the shutdown timeout are cancelled. Returns when
    /// everything has stopped.
    pub async fn shutdown(&self) {
        self.inner.request_shutdown();
        self.inner.stopped().await;
    }
}

impl Handle {
    /// Waits until the orchestrator has stopped (or returns at once if it has).
    #[cfg(feature = "http")]
    pub(crate) async fn stopped(&self) {
        self.inner.stopped().await
    }

    /// Registers the metrics handles again, with the recorder installed now.
    #[cfg(feature = "http")]
    pub(crate) fn register_metrics(&self) {
        let mut shared = self.inner.lock();
        if shared.lifecycle != crate::status::OrchestratorState::Created {
            shared.engine.register_metrics();
        }
    }
}

/// A trigger's waiter while its caller waits (see [`Handle::trigger`]).
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    worker: usize,
    /// `None` once answered.
    waiter: Option<crate::engine::WaiterId>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            Inner::forget_waiter(&mut self.inner.lock(), self.worker, waiter);
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}
