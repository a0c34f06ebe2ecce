//! SIGTERM starts a graceful shutdown; a second signal cancels at once.
//!
//! One test in this binary: signal handlers are process-wide. It runs on the
//! real clock (a signal is a real-world event), but waits on facts, never on
//! guessed durations.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{DropFlag, builder};
use orchestrator::{Context, Mode, OrchestratorState, WorkerSpec};
use tokio::sync::Notify;

fn send(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()
        .expect("kill(1) is available");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_a_second_signal_cancels_at_once() {
    // 1. A cooperative worker: SIGTERM asks it to stop; run() returns.
    let started = Arc::new(Notify::new());
    let stopped_cleanly = Arc::new(AtomicBool::new(false));
    let (tell, clean) = (started.clone(), stopped_cleanly.clone());
    let consumer = WorkerSpec::new("consumer", move |ctx: Context| {
        let (tell, clean) = (tell.clone(), clean.clone());
        async move {
            tell.notify_one();
            ctx.cancelled().await;
            clean.store(true, Ordering::SeqCst);
        }
    })
    .mode(Mode::Continuous);
    let orchestrator = builder().worker(consumer).build().expect("valid");
    let handle = orchestrator.handle();
    let running = tokio::spawn(orchestrator.run());
    started.notified().await; // handlers are installed before any worker starts
    send("TERM");
    tokio::time::timeout(Duration::from_secs(60), running).await.expect("stops").unwrap().unwrap();
    assert!(stopped_cleanly.load(Ordering::SeqCst));
    assert_eq!(handle.status().state, OrchestratorState::Stopped);

    // 2. A worker that ignores cancellation, and a shutdown timeout of an
    // hour: the second signal cancels it at once.
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(AtomicBool::new(false));
    let (tell, flag) = (started.clone(), dropped.clone());
    let stubborn = WorkerSpec::new("stubborn", move || {
        let (tell, guard) = (tell.clone(), DropFlag(flag.clone()));
        async move {
            let _guard = guard;
            tell.notify_one();
            std::future::pending::<()>().await;
        }
    })
    .mode(Mode::Continuous);
    let orchestrator = builder().worker(stubborn).shutdown_timeout(Duration::from_secs(3600)).build().expect("valid");
    let handle = orchestrator.handle();
    let running = tokio::spawn(orchestrator.run());
    started.notified().await;
    send("INT");
    while handle.status().state != OrchestratorState::ShuttingDown {
        tokio::time::sleep(Duration::from_millis(5)).await; // until the first signal is handled
    }
    send("INT");
    tokio::time::timeout(Duration::from_secs(60), running).await.expect("stops").unwrap().unwrap();
    assert!(dropped.load(Ordering::SeqCst), "the stubborn worker's future was dropped");
    assert_eq!(handle.status().worker("stubborn").unwrap().cancelled, 1);
}
