//! Dependencies through the real driver: per-fire all_success, upstream_failed,
//! Triggered pipelines.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Log, builder, marking, secs, start, stop, wait};
use orchestrator::{RunOutcome, WorkerSpec, WorkerState};
use tracing_subscriber::layer::SubscriberExt;

/// Counts the events, at any level, whose fields contain every needle.
#[derive(Clone, Default)]
struct Events(Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
}

impl Events {
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let events = Events::default();
        (events.clone(), tracing::subscriber::set_default(tracing_subscriber::registry().with(events)))
    }

    fn count(&self, needles: &[&str]) -> usize {
        self.0.lock().unwrap().iter().filter(|line| needles.iter().all(|n| line.contains(n))).count()
    }
}

const NEVER_RAN: &str = "waiting on a dependency that has never run";

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

#[tokio::test(start_paused = true)]
async fn a_trigger_waiting_on_a_never_run_dependency_is_explained_once_and_stays_pending_after_a_timeout() {
    let (events, _guard) = Events::install();
    let log = Log::new();
    let (handle, task) = start(
        builder()
            .worker(marking("a", &log, 0))
            // c succeeds every second: each of its runs re-evaluates b.
            .worker(marking("c", &log, 0).interval(secs(1)))
            .worker(marking("b", &log, 0).depends_on("a").depends_on("c")),
    );
    let gave_up = tokio::time::timeout(secs(5), handle.trigger("b")).await;
    assert!(gave_up.is_err(), "b cannot run before a has: {gave_up:?}");
    assert!(log.times("c").len() >= 5, "b was re-evaluated at each of c's runs");

    let status = handle.status();
    let expected = WorkerState::WaitingOnDependency {
        dependency: "a".into(),
        reason: "it has never run, and runs only when triggered".into(),
    };
    assert_eq!(status.worker("b").unwrap().state, expected);
    let table = status.to_string();
    assert!(table.contains("waiting on a: it has never run"), "{table}");
    assert_eq!(events.count(&[NEVER_RAN, "worker=b", "dependency=a"]), 1, "said once, when the wait started");

    // Giving up waiting did not withdraw the trigger: b runs once a has.
    assert_eq!(handle.trigger("a").await, Ok(RunOutcome::Succeeded));
    wait(1).await;
    assert_eq!(log.times("b").len(), 1, "{:?}", log.events());
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_worker_on_a_never_triggered_dependency_shows_why_it_never_runs() {
    let (events, _guard) = Events::install();
    let log = Log::new();
    let (handle, task) =
        start(builder().worker(marking("a", &log, 0)).worker(marking("b", &log, 0).interval(secs(1)).depends_on("a")));
    wait(10_500).await;
    assert!(log.times("b").is_empty());
    assert_eq!(
        handle.status().worker("b").unwrap().state,
        WorkerState::WaitingOnDependency {
            dependency: "a".into(),
            reason: "it has never run, and runs only when triggered".into()
        }
    );
    assert_eq!(events.count(&[NEVER_RAN, "worker=b", "dependency=a"]), 1, "ten slots, one event");
    stop(handle, task).await;
}
