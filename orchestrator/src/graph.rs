//! Startup validation of the whole worker graph: names, references,
//! dependency cycles, Continuous dependencies and missing state. Turns the
//! list of [`WorkerSpec`]s into the indexed [`Graph`] the engine runs.
//!
//! Never starts anything; [`crate::validate`] exposes it to users' tests.

use crate::error::BuildError;
use crate::spec::{WorkerConfig, WorkerSpec};
use crate::worker_fn::StateMap;

/// Index of a worker in [`Graph::workers`]. Workers are sorted by name, so
/// comparing ids compares names.
pub(crate) type WorkerId = usize;

/// A validated worker graph.
pub(crate) struct Graph {
    /// Every worker, sorted by name.
    pub workers: Vec<WorkerConfig>,
    /// Per worker (same index), its resolved edges.
    pub edges: Vec<Edges>,
}

/// One worker's resolved relations, each sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Edges {
    /// The workers it `depends_on`.
    pub depends_on: Vec<WorkerId>,
    /// The workers that depend on it.
    pub dependents: Vec<WorkerId>,
    /// The workers it may never run at the same time as: `blocks` in either
    /// direction, plus dependencies and dependents. Never itself.
    pub conflicts: Vec<WorkerId>,
}

/// Validates every spec and the graph they form, reporting every problem.
pub(crate) fn validate(specs: Vec<WorkerSpec>, states: &StateMap) -> Result<Graph, BuildError> {
    let _ = (specs, states);
    todo!("graph validation")
}
