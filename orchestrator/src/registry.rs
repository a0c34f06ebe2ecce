//! The const-constructible worker definition that `#[worker]` emits, and its
//! collection through `inventory`.
//!
//! Everything here is plain data the macro has already checked: durations are
//! `Duration` constants, enums are values, names are string literals. Turning a
//! definition into a runnable worker goes through [`WorkerSpec`], the same path
//! as programmatic registration, so both get identical validation.
//!
//! [`WorkerSpec`]: crate::WorkerSpec

use std::time::Duration;

use crate::spec::{Misfire, Mode, Priority, Scope};
use crate::worker_fn::{BoxRunFuture, RunInput, StateType};

/// A worker's schedule as written in the attribute.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum ScheduleDef {
    Interval(Duration),
    Delay(Duration),
    Cron(&'static str),
}

/// One `#[worker]` fn, as the attribute registers it. Not meant to be written
/// by hand: use [`WorkerSpec`](crate::WorkerSpec) for programmatic workers.
#[doc(hidden)]
#[derive(Debug)]
pub struct WorkerDef {
    pub name: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub run: fn(RunInput) -> BoxRunFuture,
    pub state_types: &'static [fn() -> Option<StateType>],
    pub schedule: Option<ScheduleDef>,
    pub timezone: Option<&'static str>,
    pub mode: Option<Mode>,
    pub restart_delay: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub priority: Option<Priority>,
    pub depends_on: &'static [&'static str],
    pub blocks: &'static [&'static str],
    pub max_consecutive_failures: Option<u32>,
    pub initial_delay: Option<Duration>,
    pub jitter: Option<Duration>,
    pub misfire: Option<Misfire>,
    pub enabled: Option<bool>,
    pub scope: Option<Scope>,
}

impl WorkerDef {
    /// A definition with every option at its default ("not given"); the macro
    /// fills in the keys the attribute has with struct update syntax.
    pub const fn new(
        name: &'static str,
        file: &'static str,
        line: u32,
        run: fn(RunInput) -> BoxRunFuture,
        state_types: &'static [fn() -> Option<StateType>],
    ) -> Self {
        WorkerDef {
            name,
            file,
            line,
            run,
            state_types,
            schedule: None,
            timezone: None,
            mode: None,
            restart_delay: None,
            timeout: None,
            retries: None,
            backoff: None,
            max_backoff: None,
            priority: None,
            depends_on: &[],
            blocks: &[],
            max_consecutive_failures: None,
            initial_delay: None,
            jitter: None,
            misfire: None,
            enabled: None,
            scope: None,
        }
    }
}

inventory::collect!(WorkerDef);

/// Every worker registered with `#[worker]` in this binary (and the library
/// crates it references).
pub(crate) fn registered() -> impl Iterator<Item = &'static WorkerDef> {
    inventory::iter::<WorkerDef>.into_iter()
}

/// Implemented by the hidden type-namespace item that `#[worker]` emits next
/// to each fn, so that `depends_on = fetch_data` (a path) is resolved by the
/// compiler and a typo fails to compile at the typo.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a #[worker] function",
    label = "`depends_on` and `blocks` paths must name a fn annotated with #[worker]",
    note = "to refer to a worker by its registered name instead, write it as a string: \"name\""
)]
#[doc(hidden)]
pub trait WorkerRef {
    /// The referenced worker's name in the graph (its `name` key, or the fn name).
    const NAME: &'static str;
}
