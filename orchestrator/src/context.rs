//! What a running worker can receive: its [`Context`] and application
//! [`State`]. Owns nothing of scheduling; the runtime fills these in per attempt.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::worker_fn::StateMap;

/// The identity of one run of a worker, unique within an orchestrator.
///
/// A run is one fire of the worker (scheduled, triggered or a dependency
/// completing); it holds one or more attempts when the worker has `retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Everything a worker needs to know about the attempt it is running.
///
/// Take it as an argument of a `#[worker]` fn:
///
/// ```standalone_crate
/// use orchestrator::{worker, Context};
///
/// #[worker(interval = "10s")]
/// async fn poll_queue(ctx: Context) -> anyhow::Result<()> {
///     for _batch in 0..100 {
///         if ctx.is_cancelled() {
///             // The orchestrator is shutting down: stop between batches.
///             return Ok(());
///         }
///         // ... work on one batch ...
///     }
///     tracing::info!(worker = ctx.name(), run = %ctx.run_id(), attempt = ctx.attempt(), "done");
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct Context {
    worker: Arc<WorkerScope>,
    run_id: RunId,
    attempt: u32,
    due: Instant,
}

/// What every attempt of one worker shares, built once per worker: handing
/// an attempt its `Context` then costs one reference-count increment on a
/// cache line of that worker's own (no line shared by all workers, and no
/// `CancellationToken` clone, which takes a lock).
pub(crate) struct WorkerScope {
    pub(crate) name: Arc<str>,
    /// Cancelled to ask the worker's running attempt to stop.
    pub(crate) stop: CancellationToken,
    pub(crate) states: Arc<StateMap>,
    /// The orchestrator's wall clock, set when it starts.
    pub(crate) clock: Arc<std::sync::OnceLock<crate::schedule::WallClock>>,
}

impl Context {
    pub(crate) fn new(worker: Arc<WorkerScope>, run_id: RunId, attempt: u32, due: Instant) -> Self {
        Context { worker, run_id, attempt, due }
    }

    /// The application state registered with the builder.
    pub(crate) fn states(&self) -> &StateMap {
        &self.worker.states
    }

    /// When the fire this run serves was scheduled, in UTC, to the
    /// millisecond: the fire's identity `(worker, scheduled_at)`, which every
    /// replica computes alike in cluster mode and which the history shows.
    /// For a trigger: when the trigger was accepted. For a catch-up run
    /// standing for several missed slots: the oldest.
    ///
    /// ```
    /// use orchestrator::Context;
    ///
    /// async fn report(ctx: Context) {
    ///     // Idempotent per fire: a retry of the same fire reuses the key.
    ///     let key = format!("report-{}", ctx.scheduled_at().format("%Y%m%dT%H%M%S%.3f"));
    ///     # let _ = key;
    /// }
    /// ```
    pub fn scheduled_at(&self) -> chrono::DateTime<chrono::Utc> {
        match self.worker.clock.get() {
            Some(clock) => crate::engine::journal::scheduled_at(clock, self.due.into_std()),
            None => crate::store::to_millis(chrono::Utc::now()),
        }
    }

    /// The worker's name, as it appears in the graph, status and logs.
    pub fn name(&self) -> &str {
        &self.worker.name
    }

    /// The run this attempt belongs to.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The attempt number within the run: 1 for the first try, 2 for the first
    /// retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the fire this run serves was due, on tokio's clock: its slot on
    /// the schedule plus jitter (for a catch-up run that merged missed slots,
    /// the oldest of them), or when it was triggered. `ctx.due().elapsed()` at
    /// the start of the body is the fire's lateness.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Completes when the worker is asked to stop (graceful shutdown). A worker
    /// that loops or waits for a long time should `select!` on this and return.
    ///
    /// ```
    /// # use orchestrator::Context;
    /// # async fn f(ctx: Context) {
    /// tokio::select! {
    ///     _ = ctx.cancelled() => { /* clean up and return */ }
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => { /* next step */ }
    /// }
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        self.worker.stop.cancelled().await
    }

    /// Whether the worker has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.worker.stop.is_cancelled()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.worker.name)
            .field("run_id", &self.run_id)
            .field("attempt", &self.attempt)
            .field("due", &self.due)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Application state handed to workers, as in axum: register a value with
/// [`OrchestratorBuilder::state`](crate::OrchestratorBuilder::state) and take
/// `State<T>` as a worker argument. Each attempt receives a clone, so share
/// expensive things through an `Arc` or a pool handle.
///
/// A worker that asks for a `State<T>` no builder provides is a startup error
/// naming the worker, never a panic during a run.
///
/// ```standalone_crate
/// use orchestrator::{worker, State};
///
/// #[derive(Clone)]
/// struct Db { url: String }
///
/// #[worker(interval = "1m")]
/// async fn vacuum(State(db): State<Db>) -> Result<(), std::io::Error> {
///     println!("vacuuming {}", db.url);
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
