//! The admin token from `ORCHESTRATOR_ADMIN_TOKEN`, and the configured one
//! taking precedence. One test in its own binary: it sets the process's
//! environment before anything else runs.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{builder, start, stop};
use orchestrator::WorkerSpec;
use orchestrator::http::{ADMIN_TOKEN_ENV, HttpConfig, router};
use tower::ServiceExt;

async fn trigger(app: &axum::Router, token: &str) -> StatusCode {
    let request = Request::post("/api/workers/quick/trigger")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("valid request");
    app.clone().oneshot(request).await.expect("infallible").status()
}

#[tokio::test(start_paused = true)]
async fn the_token_comes_from_the_environment_unless_configured() {
    // SAFETY: the only test of this binary, before any other thread reads
    // the environment.
    unsafe { std::env::set_var(ADMIN_TOKEN_ENV, "from-env") };
    let (handle, task) = start(builder().worker(WorkerSpec::new("quick", || async {})));
    let from_env = router(handle.clone(), HttpConfig::new());
    assert_eq!(trigger(&from_env, "from-env").await, StatusCode::OK);
    assert_eq!(trigger(&from_env, "other").await, StatusCode::UNAUTHORIZED);
    let configured = router(handle.clone(), HttpConfig::new().admin_token("from-code"));
    assert_eq!(trigger(&configured, "from-code").await, StatusCode::OK);
    assert_eq!(trigger(&configured, "from-env").await, StatusCode::UNAUTHORIZED);
    stop(handle, task).await;
}
