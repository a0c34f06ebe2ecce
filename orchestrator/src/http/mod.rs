//! The control plane over HTTP (cargo feature `http`): the status API,
//! control routes behind a bearer token, Prometheus metrics, health, live
//! updates over server-sent events, and the dashboard.
//!
//! [`router`] gives an [`axum::Router`] to nest into an application's own
//! server; [`OrchestratorBuilder::serve_http`](crate::OrchestratorBuilder::serve_http)
//! serves one for the orchestrator's lifetime. This module decides nothing
//! about scheduling: every route goes through the [`Handle`].
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the dashboard |
//! | `GET /api/status` | [`Status`](crate::Status) as JSON |
//! | `GET /api/workers/{name}` | one [`WorkerStatus`](crate::WorkerStatus); 404 for an unknown name |
//! | `GET /api/workers/{name}/history?limit=N` | [`Handle::history`] as JSON (`limit` 1 to 1000, default 100) |
//! | `GET /api/events` | server-sent events: one `status` event per worker whose status changed |
//! | `POST /api/workers/{name}/trigger[?wait=false]` | runs it; 200 with the run's outcome, or 202 at once with `wait=false` |
//! | `POST /api/workers/{name}/enable` \| `/disable` | 200 with the worker's status |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /health` | 200 while running, no worker is auto-disabled and the store is reachable; 503 with the reasons |
//!
//! Writes need `Authorization: Bearer <token>`: 401 without it or with a
//! wrong one, 403 when no token is configured (writes are off). Errors are
//! JSON: `{"error": "unknown_worker", "message": "no worker is named `x`"}`.

mod api;
mod auth;
mod dashboard;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::Error;
use crate::handle::Handle;

pub use auth::ADMIN_TOKEN_ENV;

/// Settings of the control plane's [`router`].
///
/// ```
/// use orchestrator::http::HttpConfig;
///
/// let config = HttpConfig::new().admin_token("s3cret");
/// assert!(format!("{config:?}").contains("<redacted>"));
/// ```
#[derive(Clone, Default)]
pub struct HttpConfig {
    admin_token: Option<String>,
    metrics: Option<PrometheusHandle>,
}

impl HttpConfig {
    /// Defaults: the token from the `ORCHESTRATOR_ADMIN_TOKEN` environment
    /// variable (writes are off without one), and the built-in Prometheus
    /// exporter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bearer token the control routes require (trigger, enable,
    /// disable). Takes precedence over `ORCHESTRATOR_ADMIN_TOKEN`. An empty
    /// token counts as none.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Serves `/metrics` from this Prometheus recorder's handle, for an
    /// application that built and installed the recorder itself. Without
    /// it the router installs one (see [`prometheus`]).
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The token in force: the configured one, else the environment's.
    fn token(&self) -> Option<String> {
        self.admin_token.clone().or_else(|| std::env::var(ADMIN_TOKEN_ENV).ok()).filter(|t| !t.is_empty())
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("HttpConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// The control plane's routes (see the [module docs](self)), for
/// `handle`'s orchestrator. Nest it into an application's server, under a
/// prefix if you like (`Router::new().nest("/orchestrator", router(..))`:
/// the dashboard finds its API relative to its own address).
///
/// Metrics: unless [`HttpConfig::metrics`] gives a handle, the router
/// installs the built-in Prometheus recorder as the global `metrics`
/// recorder (once per process); if the application installed a recorder of
/// its own, that recorder receives the metrics and `/metrics` answers 404.
/// Create the router before running the orchestrator, or the metrics it
/// registered at its start are registered again when the recorder appears.
///
/// ```no_run
/// use orchestrator::{Orchestrator, http::{HttpConfig, router}};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let orchestrator = Orchestrator::builder().build()?;
/// let app = axum::Router::new().nest("/orchestrator", router(orchestrator.handle(), HttpConfig::new()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
/// tokio::spawn(async move { axum::serve(listener, app).await });
/// orchestrator.run().await?;
/// # Ok(()) }
/// ```
pub fn router(handle: Handle, config: HttpConfig) -> Router {
    let metrics = config.metrics.clone().or_else(|| {
        let installed = prometheus();
        if installed.is_some() {
            // Handles registered before the recorder existed are no-ops.
            handle.register_metrics();
        }
        installed
    });
    let state = api::Api::new(handle, config.token(), metrics);
    Router::new()
        .route("/", get(dashboard::page))
        .route("/api/status", get(api::status))
        .route("/api/workers/{name}", get(api::worker))
        .route("/api/workers/{name}/history", get(api::history))
        .route("/api/workers/{name}/trigger", post(api::trigger))
        .route("/api/workers/{name}/enable", post(api::enable))
        .route("/api/workers/{name}/disable", post(api::disable))
        .route("/api/events", get(api::events))
        .route("/metrics", get(api::metrics))
        .route("/health", get(api::health))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
}

/// The built-in Prometheus recorder's handle, installing the recorder as the
/// process's global `metrics` recorder on the first call; `None` if the
/// application installed another recorder first (then that one receives
/// the orchestrator's metrics). Histograms get buckets from 1 ms to 1 h.
pub fn prometheus() -> Option<PrometheusHandle> {
    static INSTALLED: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            const BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 3600.0];
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS);
            let recorder = builder.ok()?.build_recorder();
            let handle = recorder.handle();
            ::metrics::set_global_recorder(recorder).ok()?;
            // The recorder's histograms keep their samples until upkeep
            // folds them in; without a scrape they would grow. A thread,
            // not a task: the recorder is process-wide and outlives any one
            // runtime.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("orchestrator-metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded in at each scrape");
            }
            Some(handle)
        })
        .clone()
}

/// Where [`OrchestratorBuilder::serve_http`](crate::OrchestratorBuilder::serve_http)
/// listens, and with what settings.
#[derive(Debug, Clone)]
pub(crate) struct Serve {
    pub(crate) addr: String,
    pub(crate) config: HttpConfig,
}

impl Serve {
    /// Binds, serves while `run` (the orchestrator) runs, then shuts the
    /// server down gracefully: open connections get a few seconds to
    /// finish (event streams end when the orchestrator stops).
    pub(crate) async fn around<F>(&self, handle: Handle, run: F) -> Result<(), Error>
    where
        F: Future<Output = Result<(), Error>>,
    {
        let listener = tokio::net::TcpListener::bind(&self.addr)
            .await
            .map_err(|source| Error::Http { addr: self.addr.clone(), source })?;
        let local: Option<SocketAddr> = listener.local_addr().ok();
        if let Some(local) = local {
            if !local.ip().is_loopback() {
                tracing::warn!(addr = %local, "the control plane listens beyond this machine: put it behind TLS and your own access control");
            }
            tracing::info!(url = %format!("http://{local}/"), "control plane listening");
        }
        let app = router(handle.clone(), self.config.clone());
        let stopped = handle.clone();
        let mut server = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { stopped.stopped().await }).await
        });
        let result = run.await;
        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the control plane's server failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the control plane's server task failed"),
            Err(_) => {
                server.abort();
                tracing::warn!("the control plane's connections did not close within 5 s; dropped");
            }
        }
        result
    }
}
