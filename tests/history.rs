//! `Handle::history` through the real driver: the fires of a worker, newest
//! first, with their outcome and the instance that ran them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{builder, secs, start, stop, wait};
use orchestrator::{FireOutcome, HistoryError, WorkerSpec};

#[tokio::test(start_paused = true)]
async fn history_lists_a_workers_fires_newest_first_including_the_running_one() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    // Fails every second run; each run takes 1 s.
    let job = WorkerSpec::new("job", move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(secs(1)).await;
            if n % 2 == 1 { Err(format!("run {n} failed")) } else { Ok(()) }
        }
    })
    .interval(secs(10));
    let (handle, task) = start(builder().instance("replica-a").worker(job));
    wait(20_500).await; // runs at 0 (ok), 10 (failed), 20 (running)
    let history = handle.history("job", 10).await.expect("known worker");
    let outcomes: Vec<_> = history.iter().map(|f| f.outcome).collect();
    assert_eq!(outcomes, [FireOutcome::Running, FireOutcome::Failed, FireOutcome::Succeeded]);
    assert_eq!(history[1].error.as_deref(), Some("run 1 failed"));
    assert_eq!((history[1].scheduled_at - history[2].scheduled_at).num_seconds(), 10);
    let took = history[2].finished_at.expect("ended") - history[2].started_at.expect("started");
    assert_eq!(took.num_milliseconds(), 1_000);
    assert!(history.iter().all(|f| f.instance == "replica-a" && f.worker == "job" && f.attempts == 1));
    assert_eq!(handle.history("job", 1).await.expect("known").len(), 1);
    let json = serde_json::to_value(&history[1]).expect("serializable");
    assert_eq!(json["outcome"], "failed");
    assert!(json["scheduled_at"].is_string());
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn history_of_an_unknown_worker_is_an_error_naming_it() {
    let (handle, task) = start(builder().worker(WorkerSpec::new("job", || async {}).interval(secs(10))));
    assert_eq!(
        handle.history("jbo", 10).await,
        Err(HistoryError::UnknownWorker { name: "jbo".into(), did_you_mean: Some("job".into()) })
    );
    stop(handle, task).await;
}
