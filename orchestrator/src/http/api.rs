//! The JSON routes: status, one worker, history, control, metrics, health,
//! and the error bodies they share.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use futures_util::{Stream, StreamExt, stream};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};

use super::auth::{self, Refusal};
use crate::error::{ControlError, HistoryError, TriggerError};
use crate::handle::Handle;
use crate::status::{DisabledCause, OrchestratorState, Status, WorkerState};

/// What every route shares.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) handle: Handle,
    token: Option<Arc<str>>,
    metrics: Option<PrometheusHandle>,
}

impl Api {
    pub(crate) fn new(handle: Handle, token: Option<String>, metrics: Option<PrometheusHandle>) -> Self {
        Api { handle, token: token.map(Into::into), metrics }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        auth::check(self.token.as_deref(), headers).map_err(ApiError::from)
    }
}

/// An error answer: a status code and `{"error": code, "message": text}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, error, message: message.into() }
    }

    fn unknown_worker(name: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_worker", format!("no worker is named `{name}`"))
    }

    /// A 404 with the error's message, which may suggest a close name.
    fn unknown_worker_from(e: &impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_worker", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody { error: self.error, message: &self.message });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        // The messages never include what was sent.
        match refusal {
            Refusal::WritesOff => ApiError::new(
                StatusCode::FORBIDDEN,
                "writes_disabled",
                "no admin token is configured, so control is off; set ORCHESTRATOR_ADMIN_TOKEN or HttpConfig::admin_token",
            ),
            Refusal::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "this route needs the admin token: send `Authorization: Bearer <token>`",
            ),
            Refusal::Malformed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "malformed_token",
                "the Authorization header must be `Bearer <token>`",
            ),
            Refusal::Wrong => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "the admin token is wrong"),
        }
    }
}

impl From<TriggerError> for ApiError {
    fn from(e: TriggerError) -> Self {
        let code = match &e {
            TriggerError::UnknownWorker { .. } => return ApiError::unknown_worker_from(&e),
            TriggerError::Disabled { .. } => "worker_disabled",
            TriggerError::AlreadyRunning(_) => "already_running",
            TriggerError::ShuttingDown => "shutting_down",
        };
        ApiError::new(StatusCode::CONFLICT, code, e.to_string())
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::UnknownWorker { .. } => ApiError::unknown_worker_from(&e),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::UnknownWorker { .. } => ApiError::unknown_worker_from(&e),
            #[allow(unreachable_patterns)] // the enum is non_exhaustive for stores to come
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "history_unavailable", other.to_string()),
        }
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route; see GET /api/status")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (reads are GET, control is POST)",
    )
}

/// `GET /api/status`.
pub(crate) async fn status(State(api): State<Api>) -> Json<Status> {
    Json(api.handle.status())
}

/// `GET /api/workers/{name}`.
pub(crate) async fn worker(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, ApiError> {
    worker_json(&api.handle, &name)
}

fn worker_json(handle: &Handle, name: &str) -> Result<Response, ApiError> {
    let status = handle.status();
    let worker = status.worker(name).ok_or_else(|| ApiError::unknown_worker(name))?;
    Ok(Json(worker).into_response())
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    limit: Option<usize>,
}

/// The largest `limit` of a history request.
const MAX_LIMIT: usize = 1000;

/// `GET /api/workers/{name}/history?limit=N`.
pub(crate) async fn history(
    State(api): State<Api>,
    Path(name): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(crate::history::KEPT_PER_WORKER);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    Ok(Json(api.handle.history(&name, limit).await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TriggerQuery {
    wait: Option<bool>,
}

/// `POST /api/workers/{name}/trigger[?wait=false]`: 200 with the run's
/// outcome once it ended; with `wait=false`, 202 as soon as the trigger is
/// accepted. A refused trigger is a 409 either way.
pub(crate) async fn trigger(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: Result<Query<TriggerQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    api.authorize(&headers)?;
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let mut run = pin!(api.handle.trigger(&name));
    // `Handle::trigger` accepts or refuses before its first await; one poll
    // tells which, without waiting for the run.
    let first = std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(result) => result?,
        Poll::Pending if query.wait == Some(false) => {
            // Dropping the waiting future leaves the run going; nobody is told.
            let body = serde_json::json!({ "worker": &name, "accepted": true });
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        Poll::Pending => run.await?,
    };
    let mut body = serde_json::to_value(&outcome).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("worker".into(), name.as_str().into());
    }
    Ok(Json(body).into_response())
}

/// `POST /api/workers/{name}/enable`.
pub(crate) async fn enable(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.authorize(&headers)?;
    api.handle.enable(&name)?;
    worker_json(&api.handle, &name)
}

/// `POST /api/workers/{name}/disable`.
pub(crate) async fn disable(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.authorize(&headers)?;
    api.handle.disable(&name)?;
    worker_json(&api.handle, &name)
}

/// `GET /api/events`: server-sent events, one `status` event per worker
/// whose status changed (its [`WorkerStatus`](crate::WorkerStatus) as
/// JSON), as it happens; the stream ends when the orchestrator stops.
/// Changes before the connection are not replayed: read `/api/status` once
/// connected.
pub(crate) async fn events(
    State(api): State<Api>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>> + Send + 'static> {
    let changes = api.handle.changes();
    let batches = stream::unfold(changes, |mut changes| async move {
        let batch = changes.next().await?;
        Some((stream::iter(batch), changes))
    });
    let events = batches.flatten().map(|worker| Event::default().event("status").json_data(&worker));
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(api): State<Api>) -> Result<Response, ApiError> {
    let Some(prometheus) = &api.metrics else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_elsewhere",
            "the application installed its own metrics recorder: the orchestrator's metrics are exported there",
        ));
    };
    let text = prometheus.render();
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text).into_response())
}

/// The body of `GET /health`.
#[derive(Serialize)]
struct Health {
    healthy: bool,
    state: OrchestratorState,
    /// Why it is not healthy (empty when it is).
    reasons: Vec<String>,
}

/// `GET /health`: 200 while running with no worker auto-disabled and the
/// store reachable, else 503 with the reasons.
pub(crate) async fn health(State(api): State<Api>) -> Response {
    let status = api.handle.status();
    let mut reasons = Vec::new();
    if status.state != OrchestratorState::Running {
        reasons.push(match status.state {
            OrchestratorState::Created => "the orchestrator has not started".to_string(),
            OrchestratorState::ShuttingDown => "the orchestrator is shutting down".to_string(),
            _ => "the orchestrator has stopped".to_string(),
        });
    }
    for worker in &status.workers {
        if let WorkerState::Disabled { reason, cause: DisabledCause::Failures } = &worker.state {
            reasons.push(format!("worker `{}` is {reason}", worker.name));
        }
    }
    if !status.store.reachable {
        // The store's errors never contain a password (see `StoreError`).
        let store = &status.store;
        let mut reason = format!("the {} store is failing", store.kind);
        if let Some(since) = store.unreachable_since {
            reason = format!(
                "the {} store has been failing since {}",
                store.kind,
                since.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        if let Some(error) = &store.error {
            reason.push_str(&format!(": {error}"));
        }
        reasons.push(reason);
    }
    let healthy = reasons.is_empty();
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(Health { healthy, state: status.state, reasons })).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::http::{HttpConfig, router};
    use crate::store::switchable::{DOWN, SwitchableStore};
    use crate::{Handle, Orchestrator, WorkerSpec};

    async fn health(handle: &Handle) -> (StatusCode, serde_json::Value) {
        let app = router(handle.clone(), HttpConfig::new());
        let request = Request::get("/health").body(Body::empty()).expect("a valid request");
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test(start_paused = true)]
    async fn health_is_503_with_since_when_and_the_error_while_the_store_is_unreachable() {
        let store = SwitchableStore::default();
        let orchestrator = Orchestrator::builder()
            .without_registered_workers()
            .worker(WorkerSpec::new("w", || async {}))
            .store(store.clone())
            .build()
            .expect("valid");
        let handle = orchestrator.handle();
        let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
        assert!(handle.trigger("w").await.expect("accepted").is_success());
        let (code, body) = health(&handle).await;
        assert_eq!((code, &body["reasons"]), (StatusCode::OK, &serde_json::json!([])), "{body}");

        store.set_down(true);
        assert!(handle.trigger("w").await.expect("accepted").is_success(), "runs without the store");
        crate::store::switchable::until_reachable(&handle, false).await;
        let since = handle.status().store.unreachable_since.expect("since when");
        let (code, body) = health(&handle).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["healthy"], false);
        assert_eq!(body["state"], "running");
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(
            body["reasons"],
            serde_json::json!([format!(
                "the sqlite store has been failing since {since}: the store is unreachable: {DOWN}"
            )]),
        );

        store.set_down(false);
        crate::store::switchable::until_reachable(&handle, true).await;
        let (code, body) = health(&handle).await;
        assert_eq!(code, StatusCode::OK, "healthy again: {body}");

        handle.shutdown().await;
        running.await.expect("joined").expect("stopped cleanly");
    }
}
