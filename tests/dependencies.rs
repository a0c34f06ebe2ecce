//! Dependencies through the real driver: per-fire all_success, upstream_failed,
//! Triggered pipelines.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Log, builder, marking, secs, start, stop, wait};
use orchestrator::{RunOutcome, WorkerSpec};

#[tokio::test(start_paused = true)]
async fn a_dependent_starts_the_moment_its_dependency_succeeds() {
    let log = Log::new();
    let (handle, task) = start(
        builder()
            .worker(marking("fetch_data", &log, 2_000).interval(secs(10)))
            .worker(marking("process_data", &log, 500).interval(secs(10)).depends_on("fetch_data")),
    );
    wait(25_000).await;
    stop(handle, task).await;
    assert_eq!(log.times("fetch_data"), [0, 10_000, 20_000]);
    assert_eq!(log.times("process_data"), [2_000, 12_000, 22_000]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_dependency_makes_the_fire_upstream_failed_not_a_failure() {
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    let fetch = WorkerSpec::new("fetch_data", move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move { if n == 0 { Err("source down") } else { Ok(()) } }
    })
    .interval(secs(10));
    let log = Log::new();
    let (handle, task) = start(builder().worker(fetch).worker(
        marking("process_data", &log, 0).interval(secs(10)).depends_on("fetch_data").max_consecutive_failures(1),
    ));
    wait(5_000).await;
    let status = handle.status();
    let process = status.worker("process_data").unwrap();
    assert_eq!((process.runs, process.upstream_failed, process.failures), (0, 1, 0));
    assert!(process.enabled, "upstream failures do not count toward auto-disable");
    wait(10_000).await;
    assert_eq!(log.times("process_data"), [10_000]);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn triggered_workers_chained_by_dependencies_form_a_pipeline() {
    let log = Log::new();
    let (handle, task) = start(
        builder()
            .worker(marking("extract", &log, 1_000))
            .worker(marking("transform", &log, 1_000).depends_on("extract"))
            .worker(marking("load", &log, 1_000).depends_on("transform")),
    );
    assert_eq!(handle.trigger("extract").await, Ok(RunOutcome::Succeeded));
    wait(5_000).await;
    assert_eq!(log.events(), ["extract", "transform", "load"]);
    assert_eq!(log.times("load"), [2_000]);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn triggering_a_dependent_waits_for_its_running_dependency() {
    let log = Log::new();
    let (handle, task) = start(
        builder()
            .worker(marking("fetch_data", &log, 3_000).interval(secs(60)))
            .worker(marking("report", &log, 0).depends_on("fetch_data")),
    );
    wait(1_000).await;
    // fetch_data runs 0..3 s; the triggered report waits for it, then runs
    // (and also runs once as fetch_data's Triggered dependent: the trigger
    // joins that fire).
    assert_eq!(handle.trigger("report").await, Ok(RunOutcome::Succeeded));
    assert_eq!(log.times("report"), [3_000]);
    stop(handle, task).await;
}
