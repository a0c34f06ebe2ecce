//! Application state handed to workers as `State<T>`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{builder, start, stop};
use orchestrator::{ProblemKind, RunOutcome, State, WorkerSpec};

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

#[tokio::test(start_paused = true)]
async fn workers_receive_the_registered_state() {
    let counter = Counter(Arc::new(AtomicU64::new(0)));
    let bump = WorkerSpec::new("bump", |State(counter): State<Counter>, State(step): State<u64>| async move {
        counter.0.fetch_add(step, Ordering::SeqCst);
    });
    let (handle, task) = start(builder().state(counter.clone()).state(5u64).worker(bump));
    assert_eq!(handle.trigger("bump").await, Ok(RunOutcome::Succeeded));
    assert_eq!(handle.trigger("bump").await, Ok(RunOutcome::Succeeded));
    assert_eq!(counter.0.load(Ordering::SeqCst), 10);
    stop(handle, task).await;
}

#[test]
fn missing_state_is_a_startup_error_naming_the_worker() {
    let bump = WorkerSpec::new("bump", |State(counter): State<Counter>| async move {
        counter.0.fetch_add(1, Ordering::SeqCst);
    });
    let error = builder().state(1u64).worker(bump).build().err().expect("state is missing");
    assert!(matches!(error.problems()[0].kind, ProblemKind::MissingState { .. }));
    let message = error.to_string();
    assert!(message.contains("worker `bump`"), "{message}");
    assert!(message.contains("state::Counter"), "{message}");
    assert!(message.contains("tests/state.rs"), "{message}");
}
