//! Without the `http` feature, the orchestrator's metrics reach whatever
//! recorder the application installed (here a Prometheus recorder of its
//! own). One test in its own binary: the recorder is process-wide.

mod common;

use common::{builder, start, stop};
use metrics_exporter_prometheus::PrometheusBuilder;
use orchestrator::WorkerSpec;

#[tokio::test(start_paused = true)]
async fn an_applications_own_recorder_receives_the_metrics() {
    let recorder = PrometheusBuilder::new().install_recorder().expect("first recorder of this process");
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
