//! The handle: trigger, enable, disable, status.

mod common;

use std::time::Duration;

use common::{builder, secs, start, stop, wait};
use orchestrator::{ControlError, DisabledCause, Priority, RunOutcome, TriggerError, WorkerSpec, WorkerState};

fn working(name: &'static str, ms: u64) -> WorkerSpec {
    WorkerSpec::new(name, move || async move { wait(ms).await })
}

#[tokio::test(start_paused = true)]
async fn trigger_waits_for_the_run_and_returns_its_outcome() {
    let failing = WorkerSpec::new("failing", || async { Err::<(), _>("no input file") });
    let (handle, task) = start(builder().worker(working("reindex", 500)).worker(failing));
    let started = tokio::time::Instant::now();
    assert_eq!(handle.trigger("reindex").await, Ok(RunOutcome::Succeeded));
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(handle.trigger("failing").await, Ok(RunOutcome::Failed { error: "no input file".into() }));
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn trigger_refuses_unknown_disabled_and_running_workers() {
    let (handle, task) =
        start(builder().worker(working("busy", 10_000).interval(secs(60))).worker(working("off", 0).enabled(false)));
    wait(1).await;
    assert_eq!(
        handle.trigger("nope").await,
        Err(TriggerError::UnknownWorker { name: "nope".into(), did_you_mean: None })
    );
    assert_eq!(
        handle.trigger("off").await,
        Err(TriggerError::Disabled { name: "off".into(), reason: "configured with enabled = false".into() })
    );
    assert_eq!(handle.trigger("busy").await, Err(TriggerError::AlreadyRunning("busy".into())));
    assert_eq!(handle.enable("nope"), Err(ControlError::UnknownWorker { name: "nope".into(), did_you_mean: None }));
    assert_eq!(handle.disable("nope"), Err(ControlError::UnknownWorker { name: "nope".into(), did_you_mean: None }));
    handle.enable("off").expect("known");
    assert_eq!(handle.trigger("off").await, Ok(RunOutcome::Succeeded));
    stop(handle.clone(), task).await;
    assert_eq!(handle.trigger("off").await, Err(TriggerError::ShuttingDown));
}

#[tokio::test(start_paused = true)]
async fn a_trigger_waits_for_a_slot_in_priority_order() {
    let (handle, task) = start(
        builder()
            .max_concurrent(1)
            .worker(working("hog", 1_000).interval(secs(60)))
            .worker(working("low", 100).priority(Priority::Low))
            .worker(working("high", 100).priority(Priority::High)),
    );
    wait(1).await;
    let low = tokio::spawn({
        let handle = handle.clone();
        async move { (handle.trigger("low").await, tokio::time::Instant::now()) }
    });
    wait(1).await;
    let high = tokio::spawn({
        let handle = handle.clone();
        async move { (handle.trigger("high").await, tokio::time::Instant::now()) }
    });
    let (low, low_done) = low.await.unwrap();
    let (high, high_done) = high.await.unwrap();
    assert!(low.unwrap().is_success() && high.unwrap().is_success());
    assert!(high_done < low_done, "high priority must take the slot first");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn disable_stops_future_fires_and_enable_resumes() {
    let (handle, task) = start(builder().worker(working("tick", 0).interval(secs(10))));
    wait(5_000).await;
    handle.disable("tick").expect("known");
    wait(30_000).await;
    assert_eq!(handle.status().worker("tick").unwrap().runs, 1);
    assert_eq!(
        handle.status().worker("tick").unwrap().state,
        WorkerState::Disabled { reason: "through the handle".into(), cause: DisabledCause::Manually }
    );
    handle.enable("tick").expect("known");
    wait(5_500).await; // next grid slot at 40 s
    assert_eq!(handle.status().worker("tick").unwrap().runs, 2);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn status_explains_waiting_and_serializes() {
    let (handle, task) = start(
        builder()
            .worker(working("fetch", 2_000).interval(secs(10)))
            .worker(working("process", 100).interval(secs(10)).depends_on("fetch"))
            .worker(
                working("cleanup", 100).interval(secs(10)).initial_delay(Duration::from_millis(500)).blocks("fetch"),
            ),
    );
    wait(1_000).await;
    let status = handle.status();
    assert!(matches!(status.worker("fetch").unwrap().state, WorkerState::Running { attempt: 1, .. }));
    assert_eq!(
        status.worker("process").unwrap().state,
        WorkerState::WaitingOnDependency {
            dependency: "fetch".into(),
            reason: "its fire due by then has not finished".into()
        }
    );
    assert_eq!(status.worker("cleanup").unwrap().state, WorkerState::Excluded { by: "fetch".into() });
    let json = serde_json::to_value(&status).expect("serializable");
    assert_eq!(json["state"], "running");
    assert_eq!(json["workers"][2]["name"], "process");
    assert_eq!(json["workers"][2]["state"], "waiting_on_dependency");
    assert_eq!(json["workers"][2]["state_detail"]["dependency"], "fetch");
    assert_eq!(json["workers"][1]["state"], "running");
    assert_eq!(json["workers"][1]["state_detail"]["attempt"], 1);
    assert_eq!(json["workers"][2]["mode"], "scheduled");
    assert_eq!(json["workers"][2]["priority"], "normal");
    // Cluster mode does not exist yet: status claims no scope.
    assert!(json["workers"][2].get("scope").is_none());
    assert!(json["workers"][2].get("last_duration_seconds").is_some());
    assert_eq!(json["workers"][2]["depends_on"][0], "fetch");
    for field in [
        "enabled",
        "consecutive_failures",
        "runs",
        "successes",
        "failures",
        "last_error",
        "last_started",
        "last_finished",
        "next_fire",
    ] {
        assert!(json["workers"][0].get(field).is_some(), "missing {field}");
    }
    let table = status.to_string();
    assert!(table.contains("process") && table.contains("waiting on fetch"), "{table}");
    // Lookups by name hold in a snapshot reordered by its owner, and miss
    // names that do not exist.
    let mut reordered = status.clone();
    reordered.workers.reverse();
    for name in ["cleanup", "fetch", "process"] {
        assert_eq!(reordered.worker(name).map(|w| w.name.as_str()), Some(name));
    }
    assert!(status.worker("nope").is_none() && reordered.worker("nope").is_none());
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn a_trigger_before_the_start_runs_once_started_or_is_cancelled_by_shutdown() {
    let orchestrator = builder().worker(working("early", 100)).build().expect("valid");
    let handle = orchestrator.handle();
    let early = tokio::spawn({
        let handle = handle.clone();
        async move { handle.trigger("early").await }
    });
    wait(1_000).await; // the trigger is accepted and waits for the start
    let running = tokio::spawn(orchestrator.run());
    assert_eq!(early.await.unwrap(), Ok(RunOutcome::Succeeded));
    stop(handle, running).await;

    let never_run = builder().worker(working("early", 100)).build().expect("valid");
    let handle = never_run.handle();
    let early = tokio::spawn({
        let handle = handle.clone();
        async move { handle.trigger("early").await }
    });
    wait(1_000).await;
    handle.shutdown().await;
    assert_eq!(early.await.unwrap(), Ok(RunOutcome::Cancelled { reason: "shutdown".into() }));
}

#[tokio::test(start_paused = true)]
async fn status_names_the_instance_given_to_the_builder_or_a_unique_default() {
    let (named, task) = start(builder().instance("api-7f9c").worker(working("tick", 0).interval(secs(10))));
    assert_eq!(named.status().instance, "api-7f9c");
    assert_eq!(named.instance(), "api-7f9c");
    named.shutdown().await;
    task.await.unwrap().unwrap();

    let (a, task_a) = start(builder().worker(working("tick", 0).interval(secs(10))));
    let (b, task_b) = start(builder().worker(working("tick", 0).interval(secs(10))));
    let pid = format!("-{}-", std::process::id());
    assert!(a.status().instance.contains(&pid), "hostname-pid-random: {}", a.status().instance);
    assert_ne!(
        a.status().instance,
        b.status().instance,
        "the random part tells two orchestrators of one process apart"
    );
    a.shutdown().await;
    b.shutdown().await;
    task_a.await.unwrap().unwrap();
    task_b.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn changes_deliver_each_state_change_of_a_worker_as_it_happens() {
    let (handle, task) =
        start(builder().worker(working("report", 300)).worker(working("other", 0).interval(secs(3600))));
    wait(1).await;
    let mut changes = handle.changes();
    let t0 = tokio::time::Instant::now();
    let trigger = tokio::spawn({
        let handle = handle.clone();
        async move { handle.trigger("report").await }
    });
    let started = changes.next().await.expect("still running");
    assert_eq!(started.len(), 1, "only the triggered worker changed: {started:?}");
    assert_eq!(started[0].name, "report");
    assert!(matches!(started[0].state, WorkerState::Running { attempt: 1, .. }), "{:?}", started[0].state);
    assert_eq!(
        started[0].running_on.as_deref(),
        Some(handle.instance()),
        "a change names where it runs, as status does"
    );
    assert_eq!(t0.elapsed(), Duration::ZERO, "delivered the moment the run started");
    let finished = changes.next().await.expect("still running");
    assert_eq!(t0.elapsed(), Duration::from_millis(300), "delivered the moment the run ended");
    assert_eq!(finished[0].name, "report");
    assert_eq!((finished[0].state.clone(), finished[0].successes), (WorkerState::Idle, 1));
    assert_eq!(finished[0].running_on, None);
    assert_eq!(trigger.await.expect("joined"), Ok(RunOutcome::Succeeded));
    stop(handle, task).await;
    // The last changes (shutdown), then the end.
    while changes.next().await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn status_of_more_workers_than_one_copy_holds_lists_every_worker_as_it_is() {
    // 64 workers are copied per hold of the scheduler's lock: 150 take three.
    let workers = (0..150).map(|i| working(Box::leak(format!("w{i:03}").into_boxed_str()), 0).interval(secs(10)));
    let (handle, task) = start(builder().max_concurrent(200).workers(workers));
    wait(25_000).await;
    let status = handle.status();
    assert_eq!(status.workers.len(), 150);
    for (i, worker) in status.workers.iter().enumerate() {
        assert_eq!(worker.name, format!("w{i:03}"));
        assert_eq!((worker.runs, worker.successes), (3, 3), "{}", worker.name);
    }
    handle.disable("w149").expect("known");
    assert!(!handle.status().worker("w149").expect("listed").enabled, "a change after a sync is seen");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn the_status_table_says_when_a_retry_comes_and_why_a_worker_is_disabled() {
    let flaky = WorkerSpec::new("flaky", || async { Err::<(), _>("broker down") })
        .retries(1)
        .backoff(secs(2))
        .max_consecutive_failures(0);
    let broken = WorkerSpec::new("broken", || async { Err::<(), _>("disk full") }).max_consecutive_failures(1);
    let (handle, task) = start(builder().worker(flaky).worker(broken));
    handle.trigger("broken").await.expect("accepted");
    let flaky = tokio::spawn({
        let handle = handle.clone();
        async move { handle.trigger("flaky").await }
    });
    wait(10).await;
    let status = handle.status();
    let WorkerState::Retrying { next_attempt_at, .. } = status.worker("flaky").unwrap().state else {
        panic!("flaky is not retrying: {status}");
    };
    let ahead = (next_attempt_at - status.taken_at).to_std().expect("ahead");
    let table = status.to_string();
    assert!(table.contains(&format!("retrying, attempt 2 in {:.1}s", ahead.as_secs_f64())), "{table}");
    assert!(table.contains("disabled: after 1 consecutive failures; last error:"), "{table}");
    assert!(!table.contains("disabled: disabled"), "{table}");
    let reason = "after 1 consecutive failures; last error: disk full";
    assert_eq!(
        status.worker("broken").unwrap().state,
        WorkerState::Disabled { reason: reason.into(), cause: DisabledCause::Failures }
    );
    assert!(flaky.await.expect("task").is_ok());
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn the_status_table_names_the_concurrency_limit_a_worker_waits_for() {
    let (handle, task) = start(
        builder()
            .max_concurrent(1)
            .worker(working("hog", 10_000).interval(secs(60)))
            .worker(working("queued", 0).interval(secs(60)).initial_delay(Duration::from_millis(1))),
    );
    wait(10).await;
    assert_eq!(handle.status().worker("queued").unwrap().state, WorkerState::WaitingForSlot);
    let table = handle.status().to_string();
    assert!(table.contains("waiting for a free slot (max_concurrent = 1)"), "{table}");
    stop(handle, task).await;
}
