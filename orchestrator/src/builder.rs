//! [`Orchestrator::builder`]: collects the registered and programmatic
//! workers, application state and settings, and validates the graph.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::error::{BuildError, Error, Problem, ProblemKind};
use crate::graph::{self, Graph};
use crate::handle::Handle;
use crate::registry;
use crate::runtime::Inner;
use crate::spec::WorkerSpec;
use crate::worker_fn::StateMap;

/// A validated set of workers, ready to run.
///
/// Dropping it without running it, or dropping the future of
/// [`run`](Self::run) before it finished, stops it at once: runs in
/// progress are cancelled, waiting triggers are answered as cancelled, and
/// [`Handle::shutdown`] returns. For a graceful stop, call
/// [`Handle::shutdown`] and let `run` finish.
pub struct Orchestrator {
    inner: Arc<Inner>,
    instance: Arc<str>,
    #[cfg(feature = "http")]
    http: Option<crate::http::Serve>,
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        // Not yet started: stop it, or its triggers would wait forever. A
        // started one is stopped by its driver, or by the driver's drop.
        if self.inner.is_created() {
            self.inner.abandon();
        }
    }
}

impl Orchestrator {
    /// A handle to control the orchestrator once it runs (and before).
    pub fn handle(&self) -> Handle {
        Handle::new(self.inner.clone(), self.instance.clone())
    }

    /// Schedules the workers until [`Handle::shutdown`] or SIGINT/SIGTERM,
    /// then shuts down gracefully: no new runs, running ones are asked to stop
    /// and get the shutdown timeout to finish, the rest are cancelled (a
    /// second signal cancels them at once). Returns when everything has
    /// stopped.
    ///
    /// Needs the `signals` cargo feature (on by default), which turns on
    /// tokio's `signal` feature, and a runtime with its I/O driver enabled
    /// (`#[tokio::main]` has it). An application that handles signals itself
    /// uses [`run_until`](Self::run_until) instead.
    #[cfg(feature = "signals")]
    pub async fn run(self) -> Result<(), Error> {
        let signals = crate::runtime::Signals::install()?;
        self.alongside_http(self.inner.clone().drive(Some(signals))).await
    }

    /// Runs `run` (the driver), with the control plane served around it if
    /// [`OrchestratorBuilder::serve_http`] asked for it.
    async fn alongside_http(&self, run: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
        #[cfg(feature = "http")]
        if let Some(serve) = &self.http {
            return serve.around(self.handle(), run).await;
        }
        run.await
    }

    /// Schedules the workers until `shutdown` completes or
    /// [`Handle::shutdown`] is called, then shuts down gracefully exactly as
    /// [`run`](Self::run) does on a signal: no new runs, running ones are
    /// asked to stop through their [`Context`](crate::Context), those still
    /// running after the shutdown timeout are cancelled. Returns when
    /// everything has stopped.
    ///
    /// It installs no signal handler: the application owns its shutdown (as
    /// with axum's `with_graceful_shutdown`), and this works without the
    /// `signals` feature and on a runtime without an I/O driver. A
    /// `shutdown` future that never completes is fine: the orchestrator then
    /// runs until [`Handle::shutdown`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use orchestrator::{Context, Orchestrator, WorkerSpec};
    /// use tokio::sync::oneshot;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let consumer = WorkerSpec::new("consumer", |ctx: Context| async move {
    ///     ctx.cancelled().await; // runs until asked to stop
    /// })
    /// .mode(orchestrator::Mode::Continuous);
    /// let orchestrator = Orchestrator::builder().without_registered_workers().worker(consumer).build()?;
    ///
    /// // The application's own shutdown signal: here a channel, which its
    /// // HTTP server, its CLI or its own signal handling would fire.
    /// let (stop, stopped) = oneshot::channel::<()>();
    /// let running = tokio::spawn(orchestrator.run_until(async move {
    ///     let _ = stopped.await; // a dropped sender stops it too
    /// }));
    ///
    /// tokio::time::sleep(Duration::from_secs(5)).await;
    /// stop.send(()).expect("still running");
    /// running.await??; // the consumer was asked to stop and did
    /// # Ok(()) }
    /// ```
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let inner = self.inner.clone();
        let run = async move {
            let mut driver = std::pin::pin!(inner.clone().drive(None));
            let shutdown = std::pin::pin!(shutdown);
            tokio::select! {
                // The driver first: its first poll starts the orchestrator, so a
                // shutdown future that is ready at once still finds it running
                // and shuts it down gracefully.
                biased;
                result = driver.as_mut() => return result,
                () = shutdown => inner.request_shutdown(),
            }
            driver.await
        };
        self.alongside_http(run).await
    }

    /// A builder holding every `#[worker]` of the binary.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder {
            specs: registry::registered().map(WorkerSpec::from_def).collect(),
            states: StateMap::default(),
            max_concurrent: 5,
            shutdown_timeout: Duration::from_secs(30),
            seed: None,
            instance: None,
            store: None,
            history_retention: Some(Duration::from_secs(7 * 86_400)),
            #[cfg(feature = "http")]
            http: None,
        }
    }
}

/// Collects workers, state and settings; [`build`](Self::build) validates.
pub struct OrchestratorBuilder {
    specs: Vec<WorkerSpec>,
    states: StateMap,
    max_concurrent: usize,
    shutdown_timeout: Duration,
    seed: Option<u64>,
    instance: Option<String>,
    store: Option<std::sync::Arc<dyn crate::store::Backend>>,
    history_retention: Option<Duration>,
    #[cfg(feature = "http")]
    http: Option<crate::http::Serve>,
}

impl OrchestratorBuilder {
    /// Keeps the orchestrator's state in `store`: a [`MemoryStore`] (the
    /// default: nothing outlives the process), a `SqliteStore` (feature
    /// `sqlite`: one instance whose state survives restarts) or a
    /// `PostgresStore` (feature `postgres`: the same, and cluster mode, where
    /// replicas on one database run each fire of a Cluster-scope worker
    /// once). The store is opened when the orchestrator starts running:
    /// [`Orchestrator::run`] fails with [`Error::Store`] if it cannot be.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")]
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use orchestrator::{Orchestrator, store::SqliteStore};
    ///
    /// let orchestrator = Orchestrator::builder()
    ///     .store(SqliteStore::open("orchestrator.db").await?)
    ///     .build()?;
    /// orchestrator.run().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`MemoryStore`]: crate::store::MemoryStore
    pub fn store(mut self, store: impl crate::store::Store) -> Self {
        self.store = Some(crate::store::sealed::Sealed::into_backend(store).0);
        self
    }

    /// How long a persistent store keeps finished fires in its history
    /// (default 7 days; `None`: forever). The in-memory history keeps the
    /// last 100 fires per worker regardless.
    pub fn history_retention(mut self, retention: impl Into<Option<Duration>>) -> Self {
        self.history_retention = retention.into();
        self
    }

    /// Leaves out the `#[worker]` functions of the binary: only workers added
    /// with [`worker`](Self::worker) run. Useful in tests and benchmarks.
    pub fn without_registered_workers(mut self) -> Self {
        self.specs.clear();
        self
    }

    /// Adds a programmatic worker.
    pub fn worker(mut self, spec: WorkerSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Adds several programmatic workers.
    pub fn workers(mut self, specs: impl IntoIterator<Item = WorkerSpec>) -> Self {
        self.specs.extend(specs);
        self
    }

    /// Makes `value` available to workers as `State<T>`.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// At most this many scheduled or triggered runs execute at once
    /// (default 5). Continuous workers are not counted.
    ///
    /// At least 1: [`build`](Self::build) refuses 0, with a
    /// [`ProblemKind::InvalidOption`](crate::ProblemKind::InvalidOption) for
    /// `max_concurrent`, since no scheduled or triggered run could ever start.
    pub fn max_concurrent(mut self, limit: usize) -> Self {
        self.max_concurrent = limit;
        self
    }

    /// How long graceful shutdown waits for running workers before cancelling
    /// them (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Seeds the random numbers behind `jitter` and retry backoff, for
    /// reproducible tests. By default they are seeded from entropy.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Names this orchestrator (this replica, in cluster mode): shown in
    /// status and in every history record. By default
    /// `hostname-pid-random`, e.g. `api-host-4242-9f3c01ab`.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// Serves the control plane (status API, control, metrics, health, the
    /// dashboard: see [`http`](crate::http)) on `addr`, e.g.
    /// `"127.0.0.1:9090"`, while the orchestrator runs; it stops with it.
    /// Prefer a loopback address: anything wider needs TLS and access
    /// control in front. Writes need the admin token from
    /// `ORCHESTRATOR_ADMIN_TOKEN`; use [`serve_http_with`](Self::serve_http_with)
    /// to give it in code. Binding happens in [`Orchestrator::run`], which
    /// fails with [`Error::Http`] if the address is taken.
    #[cfg(feature = "http")]
    pub fn serve_http(self, addr: impl Into<String>) -> Self {
        self.serve_http_with(addr, crate::http::HttpConfig::new())
    }

    /// [`serve_http`](Self::serve_http) with settings (the admin token, a
    /// Prometheus handle of the application's).
    #[cfg(feature = "http")]
    pub fn serve_http_with(mut self, addr: impl Into<String>, config: crate::http::HttpConfig) -> Self {
        self.http = Some(crate::http::Serve { addr: addr.into(), config });
        self
    }

    /// Runs startup validation without keeping the result.
    pub fn validate(&self) -> Result<(), BuildError> {
        Self::validated(self.settings_problems(), graph::validate(self.specs.clone(), &self.states)).map(drop)
    }

    /// Validates the settings and the whole graph and returns the
    /// orchestrator, or every problem found.
    pub fn build(self) -> Result<Orchestrator, BuildError> {
        let graph = Self::validated(self.settings_problems(), graph::validate(self.specs, &self.states))?;
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let engine = Engine::new(graph, self.max_concurrent, seed, crate::runtime::now());
        let instance: Arc<str> = self.instance.unwrap_or_else(default_instance).into();
        let backend = self.store.unwrap_or_else(|| Arc::new(crate::store::MemoryStore));
        let store = crate::runtime::StoreLink::new(backend, instance.clone(), self.history_retention, engine.graph());
        Ok(Orchestrator {
            inner: Arc::new(Inner::new(engine, self.states, self.shutdown_timeout, store)),
            instance,
            #[cfg(feature = "http")]
            http: self.http,
        })
    }

    /// What is wrong with the builder's own settings (not a worker's).
    fn settings_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max_concurrent == 0 {
            problems.push(Problem::new(
                None,
                None,
                ProblemKind::InvalidOption {
                    key: "max_concurrent",
                    reason: "must be at least 1: with 0, no scheduled or triggered run could ever start".into(),
                },
            ));
        }
        problems
    }

    /// The settings' problems and the graph's, reported together.
    fn validated(mut problems: Vec<Problem>, graph: Result<Graph, BuildError>) -> Result<Graph, BuildError> {
        match graph {
            Ok(graph) if problems.is_empty() => Ok(graph),
            Ok(_) => Err(BuildError::new(problems)),
            Err(error) => {
                problems.extend_from_slice(error.problems());
                Err(BuildError::new(problems))
            }
        }
    }
}

/// `hostname-pid-random`: unique among replicas started from one image on
/// one host (same hostname) and across restarts (same pid in a container).
fn default_instance() -> String {
    let host = gethostname::gethostname();
    format!("{}-{}-{:08x}", host.to_string_lossy(), std::process::id(), fastrand::u32(..))
}
