//! Background workers for tokio applications: annotate async fns with
//! [`#[worker]`](worker), call [`run`], and orchestrator schedules them on
//! intervals or cron, on demand or continuously, honouring dependencies,
//! mutual exclusion, priorities, a concurrency limit, timeouts, retries and
//! auto-disabling, with status and graceful shutdown.
//!
//! # In thirty seconds
//!
//! ```no_run,standalone_crate
//! use orchestrator::{worker, Context};
//!
//! #[worker(interval = "60s", timeout = "30s", priority = High)]
//! async fn fetch_data(ctx: Context) -> anyhow::Result<()> {
//!     println!("fetching (run {})", ctx.run_id());
//!     Ok(())
//! }
//!
//! // Runs only after a fresh success of fetch_data; a typo in the path is a
//! // compile error.
//! #[worker(interval = "2m", depends_on = fetch_data)]
//! async fn process_data() -> anyhow::Result<()> {
//!     println!("processing");
//!     Ok(())
//! }
//!
//! // Never runs at the same time as process_data.
//! #[worker(interval = "1h", priority = Low, blocks = process_data)]
//! async fn cleanup() {}
//!
//! #[tokio::main]
//! async fn main() -> Result<(), orchestrator::Error> {
//!     // Validates the whole graph, schedules, and on SIGINT/SIGTERM stops
//!     // starting runs, asks running ones to stop, and waits for them.
//!     orchestrator::run().await
//! }
//! ```
//!
//! # The pieces
//!
//! - [`#[worker]`](worker) checks its arguments at compile time and
//!   registers the fn; its documentation lists every key.
//! - [`WorkerSpec`] defines the same kind of worker at run time (one per
//!   tenant, from configuration, ...), with the same options.
//! - [`Orchestrator::builder`] collects both, plus application [`State`] and
//!   settings; [`build`](OrchestratorBuilder::build) validates the graph
//!   (unknown names, cycles, duplicates, missing state) and reports every
//!   problem at once.
//! - [`Handle`] triggers, enables and disables workers, reads the [`Status`]
//!   and each worker's [`history`](Handle::history), and shuts down.
//! - [`metrics`] lists the metrics recorded through the `metrics` facade.
//! - `http` (cargo feature `http`): the control plane, a JSON API, Prometheus
//!   metrics, health and a live dashboard, as an axum router or served by
//!   `OrchestratorBuilder::serve_http`.
//!
//! ```no_run
//! use std::time::Duration;
//! use orchestrator::{Context, Orchestrator, State, WorkerSpec};
//!
//! #[derive(Clone)]
//! struct Db;
//!
//! async fn sync_tenant(ctx: Context, State(_db): State<Db>) -> anyhow::Result<()> {
//!     println!("{} attempt {}", ctx.name(), ctx.attempt());
//!     Ok(())
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let orchestrator = Orchestrator::builder()
//!     .max_concurrent(4)
//!     .state(Db)
//!     .workers((1..=3).map(|tenant| {
//!         WorkerSpec::new(format!("tenant-{tenant}-sync"), sync_tenant).interval(Duration::from_secs(30))
//!     }))
//!     .build()?;
//! let handle = orchestrator.handle();
//! let running = tokio::spawn(orchestrator.run());
//!
//! let outcome = handle.trigger("tenant-2-sync").await?; // waits for that run
//! println!("{outcome}\n{}", handle.status());
//! handle.shutdown().await;
//! running.await??;
//! # Ok(()) }
//! ```
//!
//! # Testing with a virtual clock
//!
//! Scheduling follows tokio's clock, so a test on a paused clock runs hours of
//! schedule in milliseconds, deterministically:
//!
//! ```
//! use std::time::Duration;
//! use orchestrator::{Orchestrator, WorkerSpec};
//!
//! #[tokio::test(start_paused = true)]
//! # async fn _doc() {}
//! async fn hourly_job_runs_every_hour() {
//!     let orchestrator = Orchestrator::builder()
//!         .without_registered_workers()
//!         .worker(WorkerSpec::new("hourly", || async {}).interval(Duration::from_secs(3600)))
//!         .build()
//!         .unwrap();
//!     let handle = orchestrator.handle();
//!     let running = tokio::spawn(orchestrator.run());
//!     tokio::time::sleep(Duration::from_secs(3 * 3600 + 1)).await;
//!     assert_eq!(handle.status().worker("hourly").unwrap().runs, 4);
//!     handle.shutdown().await;
//!     running.await.unwrap().unwrap();
//! }
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
//! #     .block_on(hourly_job_runs_every_hour());
//! ```
//!
//! And [`validate`] in a unit test catches graph mistakes before a deploy.

#![warn(missing_docs)]

mod builder;
mod context;
mod engine;
mod error;
mod graph;
mod handle;
pub mod history;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
mod registry;
mod runtime;
mod schedule;
// The cron and time zone syntax lives in its own crate, shared with the
// attribute so that both accept exactly the same expressions.
use orchestrator_syntax as schedule_syntax;
mod spec;
mod status;
pub mod store;
mod worker_fn;

pub use builder::{Orchestrator, OrchestratorBuilder};
pub use context::{Context, RunId, State};
pub use error::{BuildError, ControlError, Error, HistoryError, Location, Problem, ProblemKind, TriggerError};
pub use handle::Handle;
pub use history::{FireOutcome, FireRecord};
pub use orchestrator_macros::worker;
pub use runtime::Changes;
pub use spec::{Misfire, Mode, Priority, Scope, WorkerSpec};
pub use status::{DisabledCause, OrchestratorState, RunOutcome, Status, WorkerState, WorkerStatus};
pub use worker_fn::{StateType, WorkerArg, WorkerFn, WorkerOutput};

/// Runs startup validation on the workers registered with `#[worker]`,
/// without starting anything: call it from a unit test to catch unknown
/// names, cycles and duplicate names before deploying.
///
/// Workers that take `State<T>` need that state; validate them with
/// `Orchestrator::builder().state(...).validate()` instead.
pub fn validate() -> Result<(), BuildError> {
    Orchestrator::builder().validate()
}

/// Builds the orchestrator from every `#[worker]` of the binary, validates
/// the graph and runs it until SIGINT/SIGTERM, then shuts down gracefully.
///
/// Equivalent to `Orchestrator::builder().build()?.run().await`; use the
/// builder for state, settings and programmatic workers.
///
/// Needs the `signals` cargo feature (on by default); without it, use
/// [`Orchestrator::run_until`] with the application's own shutdown future.
#[cfg(feature = "signals")]
pub async fn run() -> Result<(), Error> {
    Orchestrator::builder().build()?.run().await
}

/// Items the `#[worker]` attribute expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{ScheduleDef, WorkerDef, WorkerRef};
    pub use crate::spec::{Misfire, Mode, Priority, Scope};
    pub use crate::worker_fn::{BoxRunFuture, RunInput, StateType, WorkerArg, WorkerOutput};
    pub use core::time::Duration;
    pub use inventory;
    pub use std::boxed::Box;
}
