//! Every error orchestrator returns, with messages a user can act on.

use std::fmt;

/// Where a worker was defined: the `#[worker]` fn, or the
/// [`WorkerSpec::new`](crate::WorkerSpec::new) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    /// Source file, as `file!()` spells it.
    pub file: &'static str,
    /// 1-based line.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One problem found by startup validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The worker the problem belongs to, if any.
    pub worker: Option<String>,
    /// Where that worker is defined.
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    pub(crate) fn new(worker: Option<String>, location: Option<Location>, kind: ProblemKind) -> Self {
        Problem { worker, location, kind }
    }
}

/// What startup validation can find wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// No worker is registered at all.
    NoWorkers,
    /// Two or more workers share a name; `others` are the other definitions.
    DuplicateName {
        /// Where the other workers with this name are defined.
        others: Vec<Location>,
    },
    /// `depends_on` or `blocks` names a worker that does not exist.
    UnknownWorker {
        /// `"depends_on"` or `"blocks"`.
        key: &'static str,
        /// The name that was not found.
        name: String,
        /// The closest registered name, if one is close.
        did_you_mean: Option<String>,
    },
    /// A dependency cycle, as the path `a -> b -> c -> a`.
    Cycle {
        /// The workers on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A worker depends on a Continuous worker, whose runs never complete a fire.
    ContinuousDependency {
        /// The Continuous worker used as a dependency.
        dependency: String,
    },
    /// A worker takes `State<T>` but no builder `.state(...)` provides a `T`.
    MissingState {
        /// The missing type.
        type_name: &'static str,
        /// The state types that are registered.
        registered: Vec<&'static str>,
    },
    /// An option has a value the worker cannot use.
    InvalidOption {
        /// The attribute key / builder method.
        key: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.worker, &self.location) {
            (Some(worker), Some(location)) => write!(f, "worker `{worker}` ({location}): ")?,
            (Some(worker), None) => write!(f, "worker `{worker}`: ")?,
            (None, _) => {}
        }
        match &self.kind {
            ProblemKind::NoWorkers => f.write_str(
                "no worker is registered. Annotate an async fn with #[orchestrator::worker(...)] or add one \
                 with `.worker(WorkerSpec::new(..))`. If your workers live in a library crate, the binary must \
                 reference that crate for its workers to be linked in: add `use my_workers as _;` to main.rs",
            ),
            ProblemKind::DuplicateName { others } => {
                let others: Vec<String> = others.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the name is also used by the worker at {}; give one of them another name with `name = \"...\"`",
                    others.join(", ")
                )
            }
            ProblemKind::UnknownWorker { key, name, did_you_mean } => {
                write!(f, "`{key}` names `{name}`, which is not a registered worker")?;
                match did_you_mean {
                    Some(candidate) => write!(f, "; did you mean `{candidate}`?"),
                    None => Ok(()),
                }
            }
            ProblemKind::Cycle { path } => {
                write!(f, "dependency cycle: {}; remove one of these `depends_on`", path.join(" -> "))
            }
            ProblemKind::ContinuousDependency { dependency } => write!(
                f,
                "depends on `{dependency}`, a Continuous worker, whose runs never complete a fire; \
                 use `blocks` for exclusion or make `{dependency}` Scheduled"
            ),
            ProblemKind::MissingState { type_name, registered } => {
                write!(f, "takes `State<{type_name}>`, but no `.state(...)` on the builder provides a `{type_name}`")?;
                if registered.is_empty() {
                    f.write_str(" (no state is registered)")
                } else {
                    write!(f, " (registered: {})", registered.join(", "))
                }
            }
            ProblemKind::InvalidOption { key, reason } => write!(f, "`{key}`: {reason}"),
        }
    }
}

/// Startup validation failed: every problem found, not just the first.
///
/// ```text
/// 2 problems in the worker graph:
///   - worker `process_data` (src/main.rs:12): `depends_on` names `fetch_dta`, which is not a registered worker; did you mean `fetch_data`?
///   - worker `a` (src/jobs.rs:3): dependency cycle: a -> b -> a; remove one of these `depends_on`
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    problems: Vec<Problem>,
}

impl BuildError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty());
        BuildError { problems }
    }

    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.problems.as_slice() {
            return write!(f, "invalid worker graph: {only}");
        }
        write!(f, "{} problems in the worker graph:", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}

/// `; did you mean `x`?`, or nothing.
fn suggestion(did_you_mean: &Option<String>) -> String {
    did_you_mean.as_ref().map(|candidate| format!("; did you mean `{candidate}`?")).unwrap_or_default()
}

/// Why [`Handle::trigger`](crate::Handle::trigger) refused to start a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No worker has this name.
    #[error("no worker is named `{name}`{}", suggestion(.did_you_mean))]
    UnknownWorker {
        /// The name that was not found.
        name: String,
        /// The closest worker name, if one is close (the rule of startup
        /// validation's did-you-mean).
        did_you_mean: Option<String>,
    },
    /// The worker is disabled; enable it first.
    #[error("worker `{name}` is disabled ({reason}); enable it first")]
    Disabled {
        /// The worker.
        name: String,
        /// Why it is disabled.
        reason: String,
    },
    /// The worker is running now; it never overlaps itself.
    #[error("worker `{0}` is already running")]
    AlreadyRunning(String),
    /// The orchestrator is shutting down or has stopped.
    #[error("the orchestrator is shutting down")]
    ShuttingDown,
}

/// Why [`Handle::enable`](crate::Handle::enable) or
/// [`Handle::disable`](crate::Handle::disable) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No worker has this name.
    #[error("no worker is named `{name}`{}", suggestion(.did_you_mean))]
    UnknownWorker {
        /// The name that was not found.
        name: String,
        /// The closest worker name, if one is close.
        did_you_mean: Option<String>,
    },
}

/// Why [`Handle::history`](crate::Handle::history) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// No worker has this name.
    #[error("no worker is named `{name}`{}", suggestion(.did_you_mean))]
    UnknownWorker {
        /// The name that was not found.
        name: String,
        /// The closest worker name, if one is close.
        did_you_mean: Option<String>,
    },
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The error of [`run`](crate::run), [`Orchestrator::run`](crate::Orchestrator::run) and
/// [`Orchestrator::run_until`](crate::Orchestrator::run_until).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The worker graph is invalid; nothing was started.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The store could not be opened when the orchestrator started (see
    /// [`OrchestratorBuilder::store`](crate::OrchestratorBuilder::store)).
    #[error("cannot open the store: {0}")]
    Store(#[source] crate::store::StoreError),
    /// Installing the SIGINT/SIGTERM handlers failed (only
    /// [`Orchestrator::run`](crate::Orchestrator::run) and [`run`](crate::run)
    /// install them).
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
    /// The control plane could not listen on its address (see
    /// [`OrchestratorBuilder::serve_http`](crate::OrchestratorBuilder::serve_http)).
    #[cfg(feature = "http")]
    #[error("cannot serve the control plane on {addr}: {source}; choose a free address")]
    Http {
        /// The address given.
        addr: String,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
}
