//! `GET /metrics` read by a Prometheus parser after a known sequence of
//! runs: every metric is there, with the `worker` label, counting what it
//! should. One test in its own binary: the recorder is process-wide.

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{builder, secs, stop, wait};
use http_body_util::BodyExt;
use orchestrator::http::{HttpConfig, router};
use orchestrator::{Context, Misfire, WorkerSpec};
use prometheus_parse::{Sample, Scrape, Value};
use tower::ServiceExt;

/// The samples of `metric` by their labels, rendered as `k=v,k=v` sorted.
fn by_labels(scrape: &Scrape, metric: &str) -> HashMap<String, Value> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s: &Sample| {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            (labels.join(","), s.value.clone())
        })
        .collect()
}

fn number(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("not a number: {other:?}"),
    }
}

/// A histogram's sample count (its `+Inf` bucket).
fn observations(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Histogram(buckets)) => {
            buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count).expect("+Inf bucket")
        }
        other => panic!("not a histogram: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_count_runs_attempts_missed_fires_and_show_the_gauges_per_worker() {
    let orchestrator = builder()
        // Two successful triggered runs of 1 s each.
        .worker(WorkerSpec::new("ok", || wait(1_000)))
        // One run: its first attempt fails, its retry panics.
        .worker(
            WorkerSpec::new("flaky", |ctx: Context| async move {
                if ctx.attempt() == 1 {
                    return Err("first try fails");
                }
                panic!("second try panics");
            })
            .retries(1)
            .backoff(secs(1)),
        )
        // One attempt cut by its timeout.
        .worker(WorkerSpec::new("sluggish", || wait(60_000)).timeout(secs(1)))
        // Fails at 0 s, so its dependent's fire at 0 s is upstream_failed.
        .worker(WorkerSpec::new("upstream", || async { Err::<(), _>("down") }).interval(secs(100)))
        .worker(WorkerSpec::new("downstream", || async {}).interval(secs(100)).depends_on("upstream"))
        // Runs 2.5 s every 1 s from 10 s on, under Skip: the slots at 11 s and
        // 12 s are missed; the one at 13 s starts a run still going at 13.2 s.
        .worker(
            WorkerSpec::new("skipper", || wait(2_500)).interval(secs(1)).initial_delay(secs(10)).misfire(Misfire::Skip),
        )
        .worker(WorkerSpec::new("off", || async {}).enabled(false))
        .build()
        .expect("valid graph");
    let handle = orchestrator.handle();
    let app = router(handle.clone(), HttpConfig::new());
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(orchestrator.run());

    for _ in 0..2 {
        assert!(handle.trigger("ok").await.expect("accepted").is_success());
    }
    assert!(!handle.trigger("flaky").await.expect("accepted").is_success());
    assert!(!handle.trigger("sluggish").await.expect("accepted").is_success());
    assert!(start.elapsed() < secs(10), "the triggered runs are over before skipper starts");
    tokio::time::sleep_until(start + std::time::Duration::from_millis(13_200)).await;

    let response =
        app.oneshot(Request::get("/metrics").body(Body::empty()).expect("valid request")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format");

    let runs = by_labels(&scrape, "orchestrator_runs_total");
    assert_eq!(number(runs.get("outcome=succeeded,worker=ok")), 2.0);
    assert_eq!(number(runs.get("outcome=failed,worker=ok")), 0.0, "present at 0");
    assert_eq!(number(runs.get("outcome=failed,worker=flaky")), 1.0);
    assert_eq!(number(runs.get("outcome=failed,worker=sluggish")), 1.0);
    assert_eq!(number(runs.get("outcome=failed,worker=upstream")), 1.0);
    assert_eq!(number(runs.get("outcome=upstream_failed,worker=downstream")), 1.0);
    assert_eq!(number(runs.get("outcome=cancelled,worker=ok")), 0.0);

    let attempts = by_labels(&scrape, "orchestrator_attempts_total");
    assert_eq!(number(attempts.get("result=succeeded,worker=ok")), 2.0);
    assert_eq!(number(attempts.get("result=failed,worker=flaky")), 1.0);
    assert_eq!(number(attempts.get("result=panicked,worker=flaky")), 1.0);
    assert_eq!(number(attempts.get("result=timed_out,worker=sluggish")), 1.0);
    assert_eq!(number(attempts.get("result=succeeded,worker=flaky")), 0.0);

    let missed = by_labels(&scrape, "orchestrator_missed_fires_total");
    assert_eq!(number(missed.get("worker=skipper")), 2.0);
    assert_eq!(number(missed.get("worker=ok")), 0.0);

    let durations = by_labels(&scrape, "orchestrator_run_duration_seconds");
    assert_eq!(observations(durations.get("worker=ok")), 2.0);
    assert_eq!(observations(durations.get("worker=skipper")), 1.0, "one run ended, one going");
    let duration_sums = by_labels(&scrape, "orchestrator_run_duration_seconds_sum");
    assert!((number(duration_sums.get("worker=ok")) - 2.0).abs() < 1e-6, "two runs of 1 s");
    let lateness = by_labels(&scrape, "orchestrator_fire_lateness_seconds");
    assert_eq!(observations(lateness.get("worker=skipper")), 2.0, "runs started at 0 s and 3 s");
    assert_eq!(observations(lateness.get("worker=ok")), 2.0);

    let running = by_labels(&scrape, "orchestrator_running");
    assert_eq!(number(running.get("worker=skipper")), 1.0);
    assert_eq!(number(running.get("worker=ok")), 0.0);
    let enabled = by_labels(&scrape, "orchestrator_worker_enabled");
    assert_eq!(number(enabled.get("worker=off")), 0.0);
    assert_eq!(number(enabled.get("worker=ok")), 1.0);
    let failures = by_labels(&scrape, "orchestrator_consecutive_failures");
    assert_eq!(number(failures.get("worker=flaky")), 1.0);
    assert_eq!(number(failures.get("worker=ok")), 0.0);

    assert!(by_labels(&scrape, "orchestrator_store_up").is_empty(), "the in-memory store is never down");
    assert!(by_labels(&scrape, "orchestrator_claims_total").is_empty(), "no cluster, no claims");

    for metric in ["orchestrator_runs_total", "orchestrator_run_duration_seconds", "orchestrator_running"] {
        assert!(scrape.docs.contains_key(metric), "HELP for {metric}");
    }
    stop(handle, task).await;
}
