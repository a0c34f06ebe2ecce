//! `Orchestrator::run_until`: runs beside the application's own shutdown,
//! installing no signal handler.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{builder, wait};
use orchestrator::{Context, Mode, OrchestratorState, WorkerSpec};
use tokio::sync::oneshot;

/// A Continuous worker that runs until its context asks it to stop, and
/// records that it stopped on its own.
fn cooperative(stopped_cleanly: &Arc<AtomicBool>) -> WorkerSpec {
    let clean = stopped_cleanly.clone();
    WorkerSpec::new("consumer", move |ctx: Context| {
        let clean = clean.clone();
        async move {
            ctx.cancelled().await;
            wait(200).await; // some cleanup, well within the shutdown timeout
            clean.store(true, Ordering::SeqCst);
        }
    })
    .mode(Mode::Continuous)
}

#[tokio::test(start_paused = true)]
async fn run_until_stops_gracefully_when_its_future_completes() {
    let stopped_cleanly = Arc::new(AtomicBool::new(false));
    let orchestrator = builder().worker(cooperative(&stopped_cleanly)).build().expect("valid");
    let handle = orchestrator.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(orchestrator.run_until(async move {
        let _ = stopped.await;
    }));
    wait(1_000).await;
    assert_eq!(handle.status().state, OrchestratorState::Running);
    assert!(!running.is_finished());

    stop.send(()).expect("still running");
    running.await.expect("driver task").expect("driver result");
    assert!(stopped_cleanly.load(Ordering::SeqCst), "the running worker was asked to stop and finished");
    assert_eq!(handle.status().state, OrchestratorState::Stopped);
    assert_eq!(handle.status().worker("consumer").expect("known").cancelled, 0, "nothing was cancelled");
}

#[tokio::test(start_paused = true)]
async fn run_until_cancels_what_is_still_running_after_the_shutdown_timeout() {
    let orchestrator = builder()
        .shutdown_timeout(Duration::from_secs(2))
        .worker(WorkerSpec::new("stubborn", || wait(3_600_000)).mode(Mode::Continuous))
        .build()
        .expect("valid");
    let handle = orchestrator.handle();
    let running = tokio::spawn(orchestrator.run_until(wait(1_000)));
    wait(1_500).await;
    assert_eq!(handle.status().state, OrchestratorState::ShuttingDown);
    let asked = tokio::time::Instant::now();
    running.await.expect("driver task").expect("driver result");
    // Shutdown was requested at 1 s with a 2 s timeout: cancelled at 3 s.
    assert_eq!(asked.elapsed(), Duration::from_millis(1_500));
    assert_eq!(handle.status().worker("stubborn").expect("known").cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn run_until_also_stops_on_handle_shutdown_without_its_future_completing() {
    let orchestrator = builder().worker(WorkerSpec::new("tick", || async {}).interval(Duration::from_secs(1))).build();
    let orchestrator = orchestrator.expect("valid");
    let handle = orchestrator.handle();
    let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
    wait(3_500).await;
    handle.shutdown().await;
    running.await.expect("driver task").expect("driver result");
    assert!(handle.status().worker("tick").expect("known").runs >= 3);
}

/// A runtime with a timer but no I/O driver, which tokio's signal handling
/// needs: `run()` cannot listen for signals on it, `run_until` never tries.
fn runtime_without_io() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
}

#[test]
fn run_until_installs_no_signal_handler_and_works_on_a_runtime_without_io() {
    let stopped_cleanly = Arc::new(AtomicBool::new(false));
    let orchestrator = builder().worker(cooperative(&stopped_cleanly)).build().expect("valid");
    runtime_without_io().block_on(async {
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(orchestrator.run_until(async move {
            let _ = stopped.await;
        }));
        wait(1_000).await;
        stop.send(()).expect("still running");
        running.await.expect("driver task").expect("driver result");
    });
    assert!(stopped_cleanly.load(Ordering::SeqCst));
}

#[test]
fn run_installs_signal_handlers_which_a_runtime_without_io_cannot_give() {
    // The counterpart of the test above: proof that the runtime it uses
    // would have caught a signal handler.
    let orchestrator = builder().worker(WorkerSpec::new("tick", || async {}).interval(Duration::from_secs(1)));
    let orchestrator = orchestrator.build().expect("valid");
    let outcome = runtime_without_io()
        .block_on(async { tokio::spawn(tokio::time::timeout(Duration::from_secs(1), orchestrator.run())).await });
    let error = outcome.expect_err("run() cannot listen for signals without an I/O driver");
    assert!(error.is_panic(), "{error:?}");
}
