//! [`Orchestrator::builder`]: collects the registered and programmatic
//! workers, application state and settings, and validates the graph.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::error::{BuildError, Error};
use crate::graph;
use crate::handle::Handle;
use crate::registry;
use crate::runtime::{Inner, Signals};
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
    pub async fn run(self) -> Result<(), Error> {
        let signals = Signals::install()?;
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

    /// A builder holding every `#[worker]` of the binary.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder {
            specs: registry::registered().map(WorkerSpec::from_def).collect(),
            states: StateMap::default(),
            max_concurrent: 5,
            shutdown_timeout: Duration::from_secs(30),
            seed: None,
            instance: None,
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
    #[cfg(feature = "http")]
    http: Option<crate::http::Serve>,
}

impl OrchestratorBuilder {
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
    pub fn max_concurrent(mut self, limit: usize) -> Self {
        self.max_concurrent = limit.max(1);
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
        graph::validate(self.specs.clone(), &self.states).map(drop)
    }

    /// Validates the whole graph and returns the orchestrator, or every
    /// problem found.
    pub fn build(self) -> Result<Orchestrator, BuildError> {
        let graph = graph::validate(self.specs, &self.states)?;
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let engine = Engine::new(graph, self.max_concurrent, seed, crate::runtime::now());
        let instance = self.instance.unwrap_or_else(default_instance).into();
        Ok(Orchestrator {
            inner: Arc::new(Inner::new(engine, self.states, self.shutdown_timeout)),
            instance,
            #[cfg(feature = "http")]
            http: self.http,
        })
    }
}

/// `hostname-pid-random`: unique among replicas started from one image on
/// one host (same hostname) and across restarts (same pid in a container).
fn default_instance() -> String {
    let host = gethostname::gethostname();
    format!("{}-{}-{:08x}", host.to_string_lossy(), std::process::id(), fastrand::u32(..))
}
