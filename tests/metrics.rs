//! Without the `http` feature, the orchestrator's metrics reach whatever
//! recorder the application installed (here a Prometheus recorder of its
//! own). Its own binary: the recorder is process-wide.

mod common;

use common::{builder, start, stop};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use orchestrator::WorkerSpec;

/// The application's recorder, installed once for this binary's tests.
fn recorder() -> &'static PrometheusHandle {
    static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
    RECORDER.get_or_init(|| PrometheusBuilder::new().install_recorder().expect("first recorder of this process"))
}

#[tokio::test(start_paused = true)]
async fn an_applications_own_recorder_receives_the_metrics() {
    let recorder = recorder();
    let (handle, task) = start(
        builder()
            .worker(WorkerSpec::new("report", || async {}))
            .worker(WorkerSpec::new("broken", || async { Err::<(), _>("no") })),
    );
    assert!(handle.trigger("report").await.expect("accepted").is_success());
    assert!(!handle.trigger("broken").await.expect("accepted").is_success());
    let text = recorder.render();
    assert!(text.contains(r#"orchestrator_runs_total{worker="report",outcome="succeeded"} 1"#), "{text}");
    assert!(text.contains(r#"orchestrator_attempts_total{worker="broken",result="failed"} 1"#), "{text}");
    assert!(text.contains(r#"orchestrator_consecutive_failures{worker="broken"} 1"#), "{text}");
    stop(handle, task).await;
}

/// With the `http` feature, `/metrics` says where the metrics went instead
/// of serving an empty page: the application's recorder was installed first.
#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn metrics_route_answers_404_pointing_at_the_applications_own_recorder() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    recorder();
    let (handle, task) = start(builder().worker(WorkerSpec::new("unscraped", || async {})));
    let app = orchestrator::http::router(handle.clone(), orchestrator::http::HttpConfig::new());
    let response = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(json["error"], "metrics_elsewhere");
    stop(handle, task).await;
}
