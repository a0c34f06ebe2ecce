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
        &["message=worker disabled", "worker=broken", "disabled after 1 consecutive failures"],
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
