//! How a user's async fn becomes something the runtime can call: the argument
//! and return traits the `#[worker]` attribute checks against, and the
//! type-erased [`RunFn`] that both the attribute and [`WorkerSpec::new`]
//! produce.
//!
//! [`WorkerSpec::new`]: crate::WorkerSpec::new

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::context::{Context, State};

/// The future of one attempt, as the runtime drives it: `Err` carries the
/// worker's error rendered with `{:#}` (which shows anyhow's cause chain).
pub type BoxRunFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// A worker's body, type-erased: called once per attempt.
pub type RunFn = Arc<dyn Fn(RunInput) -> BoxRunFuture + Send + Sync + 'static>;

/// A Rust type a worker asks for as `State<T>`, used by startup validation to
/// report state that no builder provides.
#[derive(Clone, Copy)]
pub struct StateType {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl StateType {
    /// The state type `T` (as in `State<T>`).
    pub fn of<T: 'static>() -> Self {
        StateType { id: TypeId::of::<T>(), name: std::any::type_name::<T>() }
    }

    /// The type's name, as `std::any::type_name` spells it.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for StateType {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for StateType {}

impl fmt::Debug for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The application state registered with the builder, by type.
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    names: Vec<&'static str>,
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        if self.values.insert(TypeId::of::<T>(), Arc::new(value)).is_none() {
            self.names.push(std::any::type_name::<T>());
        }
    }

    pub(crate) fn contains(&self, ty: StateType) -> bool {
        self.values.contains_key(&ty.id)
    }

    /// The registered type names, for error messages.
    pub(crate) fn type_names(&self) -> &[&'static str] {
        &self.names
    }

    fn get<T: Clone + 'static>(&self) -> Option<T> {
        self.values.get(&TypeId::of::<T>())?.downcast_ref::<T>().cloned()
    }
}

/// What the runtime hands to a worker's body for one attempt.
#[doc(hidden)]
pub struct RunInput {
    pub(crate) context: Context,
}

/// A type a worker fn can take as an argument: [`Context`] or [`State<T>`].
///
/// Implemented by the runtime only; the `#[worker]` attribute checks every
/// argument against it, so an unsupported argument is a compile error at its
/// type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a worker",
    label = "unsupported worker argument",
    note = "a worker fn takes any of `orchestrator::Context` and `orchestrator::State<T>` (T registered with `Orchestrator::builder().state(...)`), by value"
)]
pub trait WorkerArg: Sized + Send + 'static {
    /// The state type this argument needs registered, if any.
    fn state_type() -> Option<StateType>;

    /// Builds the argument for one attempt.
    #[doc(hidden)]
    fn from_run(input: &RunInput) -> Self;
}

impl WorkerArg for Context {
    fn state_type() -> Option<StateType> {
        None
    }

    fn from_run(input: &RunInput) -> Self {
        input.context.clone()
    }
}

impl<T: Clone + Send + Sync + 'static> WorkerArg for State<T> {
    fn state_type() -> Option<StateType> {
        Some(StateType::of::<T>())
    }

    fn from_run(input: &RunInput) -> Self {
        // Startup validation refuses to build an orchestrator whose workers ask
        // for state it does not have, so this lookup cannot miss.
        State(input.context.states().get::<T>().expect("state presence is checked by startup validation"))
    }
}

/// What a worker fn can return: `()` or `Result<(), E>` with `E: Display`
/// (`anyhow::Error`, `std::io::Error`, your own error type, ...), or `!` for
/// a body that never returns (one that only panics or loops forever).
#[diagnostic::on_unimplemented(
    message = "a worker cannot return `{Self}`",
    label = "unsupported worker return type",
    note = "a worker fn returns `()` or `Result<(), E>` where `E: std::fmt::Display` (for example `anyhow::Result<()>`)"
)]
pub trait WorkerOutput {
    /// Converts the fn's return value into the run's result, rendering an error
    /// with `{:#}` so anyhow's cause chain is kept.
    fn into_result(self) -> Result<(), String>;
}

impl WorkerOutput for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> WorkerOutput for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// The never type `!`, which stable Rust does not let us write in a type
/// position, reached through a function pointer's return type (the trick of
/// the `never-say-never` crate, a dozen lines not worth a dependency).
mod never {
    /// Public in a private module: nameable in the impl below, invisible
    /// outside the crate.
    pub trait FnReturn {
        type Output;
    }

    impl<T> FnReturn for fn() -> T {
        type Output = T;
    }

    pub type Never = <fn() -> ! as FnReturn>::Output;
}
use never::Never;

/// A body that never returns, such as `|| async { panic!("...") }` or one that
/// loops forever. In edition 2024 such an async block's output is `!` (the
/// never type no longer falls back to `()`), so without this impl the
/// closure would be refused.
impl WorkerOutput for Never {
    fn into_result(self) -> Result<(), String> {
        self
    }
}

/// A function or closure that can be a worker's body, for programmatic
/// registration with [`WorkerSpec::new`](crate::WorkerSpec::new): an async fn
/// or a closure returning a future, taking up to four [`WorkerArg`]s.
///
/// ```
/// use orchestrator::{Context, WorkerSpec};
/// use std::time::Duration;
///
/// let tenant = 42;
/// let spec = WorkerSpec::new(format!("tenant-{tenant}-sync"), move |ctx: Context| async move {
///     println!("{} syncs tenant {tenant}", ctx.name());
///     Ok::<(), std::io::Error>(())
/// })
/// .interval(Duration::from_secs(30));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a worker body",
    label = "expected an async fn or a closure returning a future",
    note = "a worker body takes up to four arguments of `Context` / `State<T>` and its future outputs `()` or `Result<(), E: Display>`; the closure must be `Fn + Send + Sync + 'static`"
)]
pub trait WorkerFn<Args>: Send + Sync + 'static {
    /// The state types this body needs.
    fn state_types() -> Vec<StateType>;

    /// Starts one attempt.
    #[doc(hidden)]
    fn call(&self, input: RunInput) -> BoxRunFuture;
}

macro_rules! impl_worker_fn {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> WorkerFn<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: WorkerOutput,
            $($arg: WorkerArg,)*
        {
            fn state_types() -> Vec<StateType> {
                #[allow(unused_mut)]
                let mut types = Vec::new();
                $(types.extend($arg::state_type());)*
                types
            }

            #[allow(unused_variables)]
            fn call(&self, input: RunInput) -> BoxRunFuture {
                let future = (self)($($arg::from_run(&input)),*);
                Box::pin(async move { future.await.into_result() })
            }
        }
    };
}

impl_worker_fn!();
impl_worker_fn!(A1);
impl_worker_fn!(A1, A2);
impl_worker_fn!(A1, A2, A3);
impl_worker_fn!(A1, A2, A3, A4);
