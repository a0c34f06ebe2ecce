//! What the engine writes into the run history, rule by rule, on virtual
//! time (the history's own ring is tested in `history.rs`).

use std::time::Duration;

use super::sim::{Sim, spec};
use super::{AttemptResult, Event};
use crate::history::{FireOutcome, FireRecord};
use crate::spec::Misfire;

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// Seconds after the simulation's wall-clock start (2026-01-01T00:00:00Z).
fn at(sim: &Sim, t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| (t - sim.engine.clock().wall(sim.t0)).num_seconds())
}

fn history(sim: &Sim, name: &str) -> Vec<FireRecord> {
    sim.engine.history(sim.id(name), 100, "test-instance")
}

#[test]
fn runs_are_recorded_newest_first_with_their_attempts_times_and_outcome() {
    let mut sim = Sim::new(vec![spec("flaky").interval(s(10)).retries(1).backoff(s(2))], 5);
    sim.advance(s(1));
    sim.fail("flaky");
    let retry = sim.engine.next_deadline().expect("retry armed");
    sim.advance_to(retry - sim.t0);
    sim.succeed("flaky"); // run 1: two attempts, succeeded
    sim.advance_to(s(10));
    sim.advance(s(3));
    sim.fail("flaky");
    let retry = sim.engine.next_deadline().expect("retry armed");
    sim.advance_to(retry - sim.t0);
    sim.finish("flaky", AttemptResult::Panicked("boom".into())); // run 2: failed
    sim.advance_to(s(20)); // run 3 starts

    let records = history(&sim, "flaky");
    assert_eq!(records.len(), 3);
    let [running, failed, succeeded] = [&records[0], &records[1], &records[2]];
    assert_eq!(
        (running.outcome, running.attempts, at(&sim, Some(running.scheduled_at))),
        (FireOutcome::Running, 1, Some(20))
    );
    assert_eq!(running.finished_at, None);
    assert_eq!((failed.outcome, failed.attempts), (FireOutcome::Failed, 2));
    assert_eq!(failed.error.as_deref(), Some("panicked: boom"));
    assert_eq!((at(&sim, Some(failed.scheduled_at)), at(&sim, failed.started_at)), (Some(10), Some(10)));
    assert_eq!((succeeded.outcome, succeeded.attempts, succeeded.error.as_deref()), (FireOutcome::Succeeded, 2, None));
    assert_eq!(at(&sim, succeeded.started_at), Some(0));
    assert!(succeeded.finished_at.expect("ended") > succeeded.started_at.expect("started"));
    assert!(records.iter().all(|r| r.worker == "flaky" && r.instance == "test-instance"));
    assert_eq!(sim.engine.history(sim.id("flaky"), 2, "i").len(), 2, "limit");
}

#[test]
fn a_fire_skipped_for_a_failed_dependency_is_recorded_upstream_failed_naming_it() {
    let mut sim = Sim::new(vec![spec("fetch").interval(s(10)), spec("process").interval(s(10)).depends_on("fetch")], 5);
    sim.advance(s(1));
    sim.fail("fetch");
    let records = history(&sim, "process");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, FireOutcome::UpstreamFailed);
    assert_eq!(records[0].error.as_deref(), Some("dependency `fetch` failed"));
    assert_eq!((records[0].attempts, records[0].started_at), (0, None));
    assert_eq!((at(&sim, Some(records[0].scheduled_at)), at(&sim, records[0].finished_at)), (Some(0), Some(1)));
    assert_eq!(history(&sim, "fetch")[0].outcome, FireOutcome::Failed);
}

#[test]
fn slots_dropped_under_skip_are_recorded_missed_at_their_due_time() {
    let mut sim = Sim::new(vec![spec("slow").interval(s(10)).misfire(Misfire::Skip)], 5);
    sim.advance_to(s(25));
    sim.succeed("slow");
    let records = history(&sim, "slow");
    let outcomes: Vec<_> = records.iter().map(|r| (r.outcome, at(&sim, Some(r.scheduled_at)))).collect();
    assert_eq!(
        outcomes,
        [(FireOutcome::Missed, Some(20)), (FireOutcome::Missed, Some(10)), (FireOutcome::Succeeded, Some(0))],
        "newest first; the run's own entry ends although missed fires came after it"
    );
    assert_eq!(at(&sim, records[2].finished_at), Some(25));
}

#[test]
fn a_trigger_is_scheduled_at_its_acceptance() {
    let mut sim = Sim::new(vec![spec("reindex")], 5);
    sim.advance_to(s(7));
    sim.trigger("reindex").expect("accepted");
    sim.advance(s(2));
    sim.succeed("reindex");
    let records = history(&sim, "reindex");
    assert_eq!(at(&sim, Some(records[0].scheduled_at)), Some(7));
    assert_eq!((at(&sim, records[0].finished_at), records[0].outcome), (Some(9), FireOutcome::Succeeded));
}

#[test]
fn pending_fires_dropped_by_disable_or_shutdown_are_recorded_cancelled() {
    let mut sim = Sim::new(
        vec![
            spec("fetch").interval(s(100)),
            spec("process").interval(s(100)).depends_on("fetch"),
            spec("report").interval(s(100)).depends_on("fetch"),
        ],
        5,
    );
    // Both dependents wait on fetch's running fire.
    sim.event(Event::Disable(sim.id("process")));
    sim.event(Event::Shutdown);
    let process = history(&sim, "process");
    assert_eq!((process[0].outcome, process[0].error.as_deref()), (FireOutcome::Cancelled, Some("worker disabled")));
    let report = history(&sim, "report");
    assert_eq!((report[0].outcome, report[0].error.as_deref()), (FireOutcome::Cancelled, Some("shutdown")));
    sim.finish("fetch", AttemptResult::Cancelled);
    let fetch = history(&sim, "fetch");
    assert_eq!((fetch[0].outcome, fetch[0].error.as_deref()), (FireOutcome::Cancelled, Some("shutdown")));
}
