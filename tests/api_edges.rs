//! The small edges of the API: settings the builder refuses, did-you-mean
//! for unknown names given to the handle, cron values out of range, and
//! bodies that never return.

mod common;

use std::time::Duration;

use common::{builder, start, stop};
use orchestrator::{ControlError, ProblemKind, RunOutcome, TriggerError, WorkerSpec};

fn noop(name: &'static str) -> WorkerSpec {
    WorkerSpec::new(name, || async {})
}

#[test]
fn max_concurrent_zero_is_refused_by_build_with_the_option_named() {
    let error = match builder().worker(noop("a")).max_concurrent(0).build() {
        Ok(_) => panic!("max_concurrent(0) was accepted"),
        Err(error) => error,
    };
    assert!(matches!(&error.problems()[0].kind, ProblemKind::InvalidOption { key: "max_concurrent", .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "invalid worker graph: `max_concurrent`: must be at least 1: with 0, no scheduled or triggered run \
         could ever start"
    );
    assert!(builder().worker(noop("a")).max_concurrent(1).build().is_ok());
}

#[test]
fn max_concurrent_zero_is_reported_with_the_graphs_own_problems() {
    let error = builder().worker(noop("a").depends_on("b")).max_concurrent(0).validate().expect_err("invalid");
    let kinds: Vec<&ProblemKind> = error.problems().iter().map(|p| &p.kind).collect();
    assert!(matches!(kinds[..], [ProblemKind::InvalidOption { .. }, ProblemKind::UnknownWorker { .. }]), "{kinds:?}");
}

#[tokio::test(start_paused = true)]
async fn trigger_enable_and_disable_of_an_unknown_name_suggest_the_close_one() {
    let (handle, task) = start(builder().worker(noop("fetch_data")).worker(noop("cleanup")));
    let error = handle.trigger("fetch_dta").await.expect_err("unknown");
    assert_eq!(
        error,
        TriggerError::UnknownWorker { name: "fetch_dta".into(), did_you_mean: Some("fetch_data".into()) }
    );
    assert_eq!(error.to_string(), "no worker is named `fetch_dta`; did you mean `fetch_data`?");
    let error = handle.enable("Cleanup").expect_err("unknown");
    assert_eq!(error.to_string(), "no worker is named `Cleanup`; did you mean `cleanup`?");
    assert_eq!(
        handle.disable("reindex"),
        Err(ControlError::UnknownWorker { name: "reindex".into(), did_you_mean: None }),
        "nothing close: no suggestion"
    );
    assert_eq!(handle.disable("reindex").expect_err("unknown").to_string(), "no worker is named `reindex`");
    stop(handle, task).await;
}

#[test]
fn a_cron_value_out_of_range_at_run_time_names_the_field_and_its_range() {
    let error = builder().worker(noop("nightly").cron("0 25 * * *")).validate().expect_err("invalid");
    assert_eq!(
        error.problems()[0].kind,
        ProblemKind::InvalidOption {
            key: "cron",
            reason: "`0 25 * * *` is not a valid cron expression: hour 25 is out of range 0-23".into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_closure_whose_body_only_panics_is_a_worker_and_its_panic_a_failed_run() {
    let spec = WorkerSpec::new("doomed", || async { panic!("not implemented yet") });
    let (handle, task) = start(builder().worker(spec.timeout(Duration::from_secs(1))));
    assert_eq!(
        handle.trigger("doomed").await,
        Ok(RunOutcome::Failed { error: "panicked: not implemented yet".into() })
    );
    stop(handle, task).await;
}
