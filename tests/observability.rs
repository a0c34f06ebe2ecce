//! tracing: a span per attempt (worker, run_id, attempt) around the worker's
//! own events, and the orchestrator's events for start, success, failure,
//! retry, disable, enable and shutdown.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{builder, start, stop, wait};
use orchestrator::{Context, WorkerSpec};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Each event as `message {fields}` prefixed by its enclosing spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Fields(Vec<String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(format!("{}{{{}}}", attrs.metadata().name(), fields.0.join(" "))));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans: Vec<String> = ctx
            .event_scope(event)
            .into_iter()
            .flatten()
            .filter_map(|span| span.extensions().get::<SpanFields>().map(|f| f.0.clone()))
            .collect();
        let prefix = if spans.is_empty() { String::new() } else { format!("{}: ", spans.join(":")) };
        self.0.lock().unwrap().push(format!("{prefix}{}", fields.0.join(" ")));
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn has(&self, needles: &[&str]) -> bool {
        self.lines().iter().any(|line| needles.iter().all(|n| line.contains(n)))
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_run_in_a_span_and_every_transition_is_an_event() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));

    let flaky = WorkerSpec::new("flaky", |ctx: Context| async move {
        tracing::info!("working");
        if ctx.attempt() == 1 { Err("first attempt fails") } else { Ok(()) }
    })
    .retries(1)
    .backoff(Duration::from_secs(1));
    let broken = WorkerSpec::new("broken", || async { Err::<(), _>("always") }).max_consecutive_failures(1);
    let (handle, task) = start(builder().worker(flaky).worker(broken));
    handle.trigger("flaky").await.expect("accepted");
    handle.trigger("broken").await.expect("accepted");
    handle.enable("broken").expect("known");
    wait(10).await;
    stop(handle, task).await;

    // The worker's own event, inside the attempt's span.
    assert!(recorder.has(&["attempt{worker=flaky run_id=1 attempt=1}", "message=working"]), "{:#?}", recorder.lines());
    assert!(recorder.has(&["attempt{worker=flaky run_id=1 attempt=2}", "message=working"]));
    for needles in [
        &["message=run started", "worker=flaky", "attempt=1"][..],
        &["message=attempt failed, retrying", "worker=flaky", "first attempt fails"],
        &["message=run succeeded", "worker=flaky", "attempts=2"],
        &["message=run failed", "worker=broken", "always"],
        &["message=worker disabled", "worker=broken", "reason=after 1 consecutive failures"],
        &["message=worker enabled", "worker=broken"],
        &["message=graceful shutdown requested"],
        &["message=orchestrator stopped"],
    ] {
        assert!(recorder.has(needles), "no event with {needles:?} in {:#?}", recorder.lines());
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_blocks_its_thread_past_its_timeout_is_reported_by_name() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    // Each poll moves the clock 3 s before yielding: to the scheduler, a
    // body that blocks its thread for 3 s at a time.
    let blocking = WorkerSpec::new("blocking", || async {
        for _ in 0..u32::MAX {
            tokio::time::advance(Duration::from_secs(3)).await;
        }
    })
    .timeout(Duration::from_secs(1));
    let polite =
        WorkerSpec::new("polite", || async { std::future::pending::<()>().await }).timeout(Duration::from_secs(1));
    let (handle, task) = start(builder().worker(blocking).worker(polite));
    handle.trigger("blocking").await.expect("accepted");
    handle.trigger("polite").await.expect("accepted");
    stop(handle, task).await;
    let warning = "ran past its timeout without yielding";
    assert!(recorder.has(&["worker=blocking", warning]), "{:#?}", recorder.lines());
    assert!(!recorder.has(&["worker=polite", warning]), "a timely cancellation is not reported");
}

/// Events at WARN and above, each as its level and its own fields (no span
/// fields: under a WARN filter the INFO attempt span is disabled).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<LeveledEvent>>>);

/// An event's level and its fields as `name=value`.
type LeveledEvent = (tracing::Level, Vec<String>);

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push((*event.metadata().level(), fields.0));
    }
}

impl Warnings {
    /// Installs a subscriber whose only layer records events at WARN and above.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::filter::LevelFilter;
        let warnings = Warnings::default();
        let subscriber = tracing_subscriber::registry().with(warnings.clone().with_filter(LevelFilter::WARN));
        (warnings.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn events(&self) -> Vec<LeveledEvent> {
        self.0.lock().unwrap().clone()
    }

    /// The events that mention `worker`'s name as their `worker` field.
    fn of(&self, worker: &str) -> Vec<LeveledEvent> {
        let field = format!("worker={worker}");
        self.events().into_iter().filter(|(_, fields)| fields.contains(&field)).collect()
    }
}

fn has_field(fields: &[String], name: &str) -> bool {
    fields.iter().any(|f| f.starts_with(&format!("{name}=")))
}

#[tokio::test(start_paused = true)]
async fn under_a_warn_filter_a_failed_a_timed_out_and_a_panicking_attempt_each_name_their_worker_and_run() {
    let (warnings, _guard) = Warnings::install();
    let retried = |spec: WorkerSpec| spec.retries(1).backoff(Duration::from_secs(1)).max_consecutive_failures(0);
    let failing = retried(WorkerSpec::new("failing", || async { Err::<(), _>("boom") }));
    let slow = retried(WorkerSpec::new("slow", || wait(10_000)).timeout(Duration::from_secs(1)));
    let panicking = retried(WorkerSpec::new("panicking", || async {
        if true {
            panic!("kaboom");
        }
    }));
    let (handle, task) = start(builder().worker(failing).worker(slow).worker(panicking));
    for name in ["failing", "slow", "panicking"] {
        assert!(!handle.trigger(name).await.expect("accepted").is_success());
    }
    stop(handle, task).await;

    for (worker, error) in [("failing", "boom"), ("slow", "timed out after 1s"), ("panicking", "panicked: kaboom")] {
        let events = warnings.of(worker);
        // One WARN for the attempt that is retried, one ERROR for the run
        // that fails with its last attempt: each failure said once.
        assert_eq!(events.len(), 2, "{worker}: {events:#?} (all: {:#?})", warnings.events());
        let (level, retry) = &events[0];
        assert_eq!(*level, tracing::Level::WARN);
        assert!(retry.contains(&"message=attempt failed, retrying".to_string()), "{retry:?}");
        assert!(retry.iter().any(|f| f.starts_with("error=") && f.contains(error)), "{retry:?}");
        assert_eq!(events[1].0, tracing::Level::ERROR);
        assert!(events[1].1.contains(&"message=run failed".to_string()), "{:?}", events[1]);
        for (_, fields) in &events {
            assert!(has_field(fields, "run_id"), "{worker}: {fields:?}");
        }
    }
    // Nothing at WARN or above goes without a worker name.
    for (level, fields) in warnings.events() {
        assert!(has_field(&fields, "worker"), "{level} event without a worker: {fields:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_run_without_retries_is_one_event_at_warn_or_above_plus_the_auto_disable() {
    let (warnings, _guard) = Warnings::install();
    let once = WorkerSpec::new("once", || async { Err::<(), _>("boom") }).max_consecutive_failures(0);
    let fragile = WorkerSpec::new("fragile", || async { Err::<(), _>("boom") }).max_consecutive_failures(1);
    let (handle, task) = start(builder().worker(once).worker(fragile));
    handle.trigger("once").await.expect("accepted");
    handle.trigger("fragile").await.expect("accepted");
    stop(handle, task).await;

    let once = warnings.of("once");
    assert_eq!(once.len(), 1, "{once:#?}");
    assert_eq!(once[0].0, tracing::Level::ERROR);
    assert!(once[0].1.contains(&"message=run failed".to_string()), "{once:?}");
    assert!(has_field(&once[0].1, "run_id") && once[0].1.contains(&"error=boom".to_string()), "{once:?}");

    let fragile = warnings.of("fragile");
    let messages: Vec<&String> =
        fragile.iter().flat_map(|(_, fields)| fields.iter().filter(|f| f.starts_with("message="))).collect();
    assert_eq!(messages, ["message=run failed", "message=worker disabled"], "{fragile:#?}");
    assert!(fragile.iter().all(|(level, _)| *level == tracing::Level::ERROR));
    // And nothing else at WARN or above, with or without a worker name.
    assert_eq!(warnings.events().len(), 3, "{:#?}", warnings.events());
}
