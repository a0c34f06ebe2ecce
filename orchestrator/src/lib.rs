//! Background workers for tokio applications.
//!
//! (Crate documentation is written with the engine; see README.md.)

#![warn(missing_docs)]

mod builder;
mod context;
mod engine;
mod error;
mod graph;
mod handle;
mod registry;
mod runtime;
mod schedule;
mod schedule_syntax;
mod spec;
mod status;
mod worker_fn;

pub use builder::{Orchestrator, OrchestratorBuilder};
pub use context::{Context, RunId, State};
pub use error::{BuildError, ControlError, Error, Location, Problem, ProblemKind, TriggerError};
pub use handle::Handle;
pub use orchestrator_macros::worker;
pub use spec::{Misfire, Mode, Priority, Scope, WorkerSpec};
pub use status::{OrchestratorState, RunOutcome, Status, WorkerState, WorkerStatus};
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
