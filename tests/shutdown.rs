//! Graceful shutdown with cooperative and uncooperative workers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{DropFlag, Log, builder, start, wait};
use orchestrator::{Context, OrchestratorState, WorkerSpec};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_cooperative_worker_stops_through_its_context() {
    let log = Log::new();
    let marks = log.clone();
    let consumer = WorkerSpec::new("consumer", move |ctx: Context| {
        let marks = marks.clone();
        async move {
            marks.mark("started");
            ctx.cancelled().await;
            marks.mark("asked to stop");
            wait(200).await; // flush
            marks.mark("stopped");
        }
    })
    .mode(orchestrator::Mode::Continuous);
    let (handle, task) = start(builder().worker(consumer).shutdown_timeout(Duration::from_secs(30)));
    wait(1_000).await;
    let asked = Instant::now();
    handle.shutdown().await;
    assert_eq!(asked.elapsed(), Duration::from_millis(200), "returns once the worker has flushed");
    assert_eq!(log.events(), ["started", "asked to stop", "stopped"]);
    task.await.unwrap().unwrap();
    let status = handle.status();
    assert_eq!(status.state, OrchestratorState::Stopped);
    assert_eq!(status.worker("consumer").unwrap().successes, 1);
}

#[tokio::test(start_paused = true)]
async fn an_uncooperative_worker_is_cancelled_at_the_shutdown_timeout() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let stubborn = WorkerSpec::new("stubborn", move || {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            wait(3_600_000).await;
        }
    })
    .interval(Duration::from_secs(3600))
    .timeout(Duration::from_secs(7200));
    let (handle, task) = start(builder().worker(stubborn).shutdown_timeout(Duration::from_secs(5)));
    wait(1_000).await;
    let asked = Instant::now();
    handle.shutdown().await;
    assert_eq!(asked.elapsed(), Duration::from_secs(5));
    task.await.unwrap().unwrap();
    assert!(dropped.load(Ordering::SeqCst), "the cancelled future must be dropped");
    let status = handle.status();
    let stubborn = status.worker("stubborn").unwrap();
    assert_eq!((stubborn.cancelled, stubborn.failures), (1, 0));
    assert_eq!(stubborn.last_error.as_deref(), Some("cancelled (shutdown)"));
}

#[tokio::test(start_paused = true)]
async fn no_run_starts_after_shutdown_is_requested() {
    let log = Log::new();
    let marks = log.clone();
    let tick = WorkerSpec::new("tick", move |ctx: Context| {
        let marks = marks.clone();
        async move {
            marks.mark("tick");
            // Finishes its work even when asked to stop.
            let _ = ctx.is_cancelled();
            wait(2_000).await;
        }
    })
    .interval(Duration::from_secs(1));
    let (handle, task) = start(builder().worker(tick));
    wait(500).await;
    handle.shutdown().await;
    task.await.unwrap().unwrap();
    wait(10_000).await;
    assert_eq!(log.times("tick"), [0]);
}

#[tokio::test(start_paused = true)]
async fn once_stopped_nothing_of_the_workers_is_kept() {
    // The application state is held by every worker's lane; it must be
    // released once the orchestrator has stopped and its handles are gone.
    let state = Arc::new(());
    let held = Arc::downgrade(&state);
    let tick = WorkerSpec::new("tick", |_: orchestrator::State<Arc<()>>| async {}).interval(Duration::from_secs(1));
    let on_demand = WorkerSpec::new("on-demand", |_: orchestrator::State<Arc<()>>| async {});
    let (handle, task) = start(builder().state(state).worker(tick).worker(on_demand));
    assert!(handle.trigger("on-demand").await.unwrap().is_success());
    wait(2_500).await;
    common::stop(handle, task).await;
    // Lanes end at their next poll; one round of the scheduler gives them it.
    tokio::task::yield_now().await;
    assert_eq!(held.strong_count(), 0, "a lane outlived the orchestrator");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_run_future_stops_the_orchestrator_and_nothing_waits_for_it() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let slow = WorkerSpec::new("slow", move || {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            wait(60_000).await;
        }
    })
    .interval(Duration::from_secs(3600));
    let orchestrator = builder().worker(slow).worker(WorkerSpec::new("on_demand", || async {})).build().expect("valid");
    let handle = orchestrator.handle();
    // The application's select! picks another branch: run()'s future is dropped.
    tokio::select! {
        _ = orchestrator.run() => panic!("run() does not end by itself"),
        () = wait(1_000) => {}
    }
    wait(1).await; // the lane's next poll drops the cancelled attempt
    assert!(dropped.load(Ordering::SeqCst), "the running attempt was cancelled");
    assert_eq!(handle.status().state, OrchestratorState::Stopped);
    assert_eq!(handle.trigger("on_demand").await, Err(orchestrator::TriggerError::ShuttingDown));
    let at = Instant::now();
    handle.shutdown().await;
    assert_eq!(at.elapsed(), Duration::ZERO, "shutdown() returns at once");
}

#[tokio::test(start_paused = true)]
async fn a_trigger_on_an_orchestrator_dropped_without_running_is_answered() {
    let orchestrator = builder().worker(WorkerSpec::new("job", || async {})).build().expect("valid");
    let handle = orchestrator.handle();
    let trigger = tokio::spawn(async move { handle.trigger("job").await });
    wait(1).await;
    drop(orchestrator);
    let answer = tokio::time::timeout(Duration::from_secs(60), trigger).await.expect("answered").expect("joined");
    assert_eq!(answer, Ok(orchestrator::RunOutcome::Cancelled { reason: "shutdown".into() }));
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_timeout_of_duration_max_waits_for_the_runs_however_long() {
    let log = Log::new();
    let slow = marking_after("slow", &log, 3_600_000).timeout(Duration::from_secs(7_200));
    let (handle, task) = start(builder().worker(slow).shutdown_timeout(Duration::MAX));
    let trigger = tokio::spawn({
        let handle = handle.clone();
        async move { handle.trigger("slow").await }
    });
    wait(1).await;
    let asked = Instant::now();
    handle.shutdown().await;
    assert_eq!(asked.elapsed(), Duration::from_millis(3_600_000 - 1), "waited for the run to end");
    assert_eq!(log.events(), ["slow done"]);
    assert_eq!(trigger.await.expect("joined"), Ok(orchestrator::RunOutcome::Succeeded));
    task.await.expect("joined").expect("stopped cleanly");
}

/// A worker that ignores its context, works for `ms` and marks `<name> done`.
fn marking_after(name: &'static str, log: &Log, ms: u64) -> WorkerSpec {
    let log = log.clone();
    WorkerSpec::new(name, move || {
        let log = log.clone();
        async move {
            wait(ms).await;
            log.mark(format!("{name} done"));
        }
    })
}
