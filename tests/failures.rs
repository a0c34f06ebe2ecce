//! Timeouts, retries, panics and auto-disable through the real driver.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::{DropFlag, Log, builder, secs, start, stop, wait};
use orchestrator::{Context, DisabledCause, RunOutcome, WorkerSpec, WorkerState};

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_the_attempt_drops_its_future_and_counts_as_a_failure() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let hang = WorkerSpec::new("hang", move || {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }
    })
    .timeout(secs(5));
    let (handle, task) = start(builder().worker(hang));
    let outcome = handle.trigger("hang").await.expect("accepted");
    assert_eq!(outcome, RunOutcome::Failed { error: "timed out after 5s".into() });
    assert!(dropped.load(Ordering::SeqCst), "the timed-out future was not dropped");
    let status = handle.status();
    let hang = status.worker("hang").expect("listed");
    assert_eq!((hang.runs, hang.failures, hang.consecutive_failures), (1, 1, 1));
    assert_eq!(hang.last_duration, Some(secs(5)));
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_with_exponential_backoff() {
    let log = Log::new();
    let marks = log.clone();
    let flaky = WorkerSpec::new("flaky", move |ctx: Context| {
        let marks = marks.clone();
        async move {
            marks.mark(format!("attempt {}", ctx.attempt()));
            if ctx.attempt() < 4 { Err(format!("attempt {} failed", ctx.attempt())) } else { Ok(()) }
        }
    })
    .retries(3)
    .backoff(secs(2));
    let (handle, task) = start(builder().worker(flaky));
    assert_eq!(handle.trigger("flaky").await, Ok(RunOutcome::Succeeded));
    let at: Vec<u64> = (1..=4).flat_map(|a| log.times(&format!("attempt {a}"))).collect();
    assert_eq!(at.len(), 4);
    // Pauses in [b/2, b] for b = 2 s, 4 s, 8 s.
    for (pair, full) in at.windows(2).zip([2_000, 4_000, 8_000]) {
        let pause = pair[1] - pair[0];
        assert!((full / 2..=full).contains(&pause), "pause {pause} ms not in [{}, {full}]", full / 2);
    }
    let status = handle.status();
    let flaky = status.worker("flaky").expect("listed");
    assert_eq!((flaky.runs, flaky.successes, flaky.failures, flaky.failed_attempts), (1, 1, 0, 3));
    stop(handle, task).await;
}

/// Declared to return `()`, so the worker's body is not of type `!`.
fn explode() {
    panic!("kaboom");
}

#[tokio::test(start_paused = true)]
async fn a_panic_fails_the_run_and_nothing_else() {
    let log = Log::new();
    let marks = log.clone();
    let steady = WorkerSpec::new("steady", move || {
        let marks = marks.clone();
        async move { marks.mark("steady") }
    })
    .interval(secs(1));
    let bomb = WorkerSpec::new("bomb", || async {
        wait(10).await;
        explode();
    });
    let (handle, task) = start(builder().worker(steady).worker(bomb));
    let outcome = handle.trigger("bomb").await.expect("accepted");
    assert_eq!(outcome, RunOutcome::Failed { error: "panicked: kaboom".into() });
    wait(3_000).await;
    assert_eq!(log.times("steady"), [0, 1_000, 2_000, 3_000]);
    assert_eq!(handle.status().worker("bomb").unwrap().failures, 1);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_keeps_failing_is_disabled_with_the_reason_and_enable_resumes_it() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let broken = WorkerSpec::new("broken", move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(std::io::Error::other("database unreachable"))
        }
    })
    .interval(secs(10))
    .max_consecutive_failures(3);
    let (handle, task) = start(builder().worker(broken));
    wait(60_000).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "disabled after the third failure");
    let status = handle.status();
    let broken = status.worker("broken").expect("listed");
    assert!(!broken.enabled);
    assert_eq!(
        broken.state,
        WorkerState::Disabled {
            reason: "after 3 consecutive failures; last error: database unreachable".into(),
            cause: DisabledCause::Failures,
        }
    );
    assert_eq!(broken.next_fire, None);
    handle.enable("broken").expect("known worker");
    assert_eq!(handle.status().worker("broken").unwrap().consecutive_failures, 0);
    wait(10_500).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "runs again at its next slot (70 s)");
    stop(handle, task).await;
}

/// Panics when dropped: a body whose cleanup fails.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("cleanup failed");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_panics_while_its_timeout_cancels_it_frees_its_slot_and_its_worker_runs_again() {
    let hang = WorkerSpec::new("hang", || async {
        let _cleanup = PanicOnDrop;
        std::future::pending::<()>().await;
    })
    .timeout(secs(1));
    let (handle, task) = start(builder().max_concurrent(1).worker(hang).worker(WorkerSpec::new("next", || async {})));
    let outcome = tokio::time::timeout(secs(60), handle.trigger("hang")).await.expect("answered").expect("accepted");
    assert_eq!(outcome, RunOutcome::Failed { error: "timed out after 1s".into() });
    let status = handle.status();
    assert_eq!(status.executing, 0, "the slot is free again");
    assert_eq!(status.worker("hang").expect("listed").state, WorkerState::Idle);
    assert_eq!(handle.trigger("next").await, Ok(RunOutcome::Succeeded), "the only slot is usable");
    let again = handle.trigger("hang").await.expect("accepted");
    assert_eq!(again, RunOutcome::Failed { error: "timed out after 1s".into() }, "its lane lives on");
    let stopping = tokio::time::Instant::now();
    stop(handle, task).await;
    assert_eq!(stopping.elapsed(), std::time::Duration::ZERO, "nothing left to wait for");
}

#[tokio::test(start_paused = true)]
async fn a_continuous_worker_rides_out_an_outage_of_ten_restart_delays_and_runs_again_after_it() {
    // The broker is down for the first second: 10 restart delays of 100 ms.
    let started = tokio::time::Instant::now();
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    let consumer = WorkerSpec::new("consumer", move |ctx: Context| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            if started.elapsed() < secs(1) {
                return Err("broker unreachable");
            }
            ctx.cancelled().await; // consumes until shutdown
            Ok(())
        }
    })
    .mode(orchestrator::Mode::Continuous)
    .restart_delay(std::time::Duration::from_millis(100));
    let (handle, task) = start(builder().worker(consumer));
    wait(3_000).await;
    let status = handle.status();
    let consumer = status.worker("consumer").expect("listed");
    assert!(consumer.enabled, "not disabled by the outage: {status}");
    assert!(matches!(consumer.state, WorkerState::Running { .. }), "running again: {status}");
    // 0, 0.1, 0.3, 0.7 s failed; 1.5 s runs: backoff, not a restart every 100 ms.
    assert_eq!(attempts.load(Ordering::SeqCst), 5);
    assert_eq!(consumer.failures, 4);
    stop(handle, task).await;
}
