//! The engine's rules, one test each, on virtual time.

use std::time::Duration;

use super::sim::{Sim, spec};
use super::{AttemptResult, Event, TriggerRefusal, Wait};
use crate::engine::DependencyWait;
use crate::spec::{Misfire, Mode, Priority};
use crate::status::RunOutcome;

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

// ----- schedules -----------------------------------------------------------

#[test]
fn interval_fires_at_start_then_every_period_without_drift() {
    let mut sim = Sim::new(vec![spec("tick").interval(s(10))], 5);
    for _ in 0..4 {
        // Each run takes 3 s; the grid does not move.
        sim.advance(s(3));
        sim.succeed("tick");
        sim.advance_to(sim.elapsed() + s(7));
    }
    assert_eq!(sim.starts_of("tick"), [0.0, 10.0, 20.0, 30.0, 40.0]);
}

#[test]
fn initial_delay_postpones_the_first_fire_and_the_grid() {
    let mut sim = Sim::new(vec![spec("tick").interval(s(10)).initial_delay(s(5))], 5);
    sim.advance_to(s(5));
    sim.succeed("tick");
    sim.advance_to(s(15));
    assert_eq!(sim.starts_of("tick"), [5.0, 15.0]);
}

#[test]
fn fixed_delay_counts_from_the_end_of_the_previous_run() {
    let mut sim = Sim::new(vec![spec("drain").delay(s(10))], 5);
    sim.advance(s(3));
    sim.succeed("drain"); // ends at 3 -> next at 13
    sim.advance_to(s(13));
    sim.advance(s(4));
    sim.succeed("drain"); // ends at 17 -> next at 27
    sim.advance_to(s(30));
    assert_eq!(sim.starts_of("drain"), [0.0, 13.0, 27.0]);
}

#[test]
fn cron_fires_on_the_wall_clock() {
    // Starts at 00:00:10 UTC; every 30 s on the wall clock: :30, :00, :30.
    let mut sim = Sim::with_wall(vec![spec("report").cron("*/30 * * * * *")], 5, "2026-01-01T00:00:10Z");
    for _ in 0..3 {
        let next = sim.engine.next_deadline().expect("armed");
        sim.advance_to(next - sim.t0);
        sim.succeed("report");
    }
    assert_eq!(sim.starts_of("report"), [20.0, 50.0, 80.0]);
}

#[test]
fn cron_reads_the_expression_in_its_timezone() {
    // 09:00 in New York is 14:00 UTC in January; the sim starts at 13:00 UTC.
    let mut sim =
        Sim::with_wall(vec![spec("open").cron("0 9 * * *").timezone("America/New_York")], 5, "2026-01-05T13:00:00Z");
    sim.advance_to(s(3600));
    assert_eq!(sim.starts_of("open"), [3600.0]);
}

#[test]
fn jitter_delays_each_fire_by_at_most_the_jitter() {
    let mut sim = Sim::new(vec![spec("tick").interval(s(10)).jitter(s(2))], 5);
    for k in 0..20u64 {
        sim.advance_to(s(10 * k + 2));
        sim.succeed("tick");
    }
    let starts = sim.starts_of("tick");
    assert_eq!(starts.len(), 20);
    for (k, at) in starts.iter().enumerate() {
        let slot = 10.0 * k as f64;
        assert!((slot..=slot + 2.0).contains(at), "fire {k} at {at}");
    }
    assert!(starts.iter().enumerate().any(|(k, at)| *at > 10.0 * k as f64), "jitter never applied");
}

// ----- misfire -------------------------------------------------------------

#[test]
fn fire_once_merges_slots_missed_while_running_into_one_catch_up_run() {
    let mut sim = Sim::new(vec![spec("slow").interval(s(10))], 5);
    sim.advance_to(s(25)); // slots 10 and 20 pass while the first run is still going
    sim.succeed("slow"); // catch-up run starts at once
    sim.advance(s(1));
    sim.succeed("slow");
    sim.advance_to(s(30));
    assert_eq!(sim.starts_of("slow"), [0.0, 25.0, 30.0]);
    let stats = &sim.engine.state(sim.id("slow")).stats;
    assert_eq!(stats.coalesced, 1);
    assert_eq!(stats.missed, 0);
}

#[test]
fn skip_drops_slots_missed_while_running_until_the_next_slot() {
    let mut sim = Sim::new(vec![spec("slow").interval(s(10)).misfire(Misfire::Skip)], 5);
    sim.advance_to(s(25));
    sim.succeed("slow");
    sim.advance_to(s(30));
    assert_eq!(sim.starts_of("slow"), [0.0, 30.0]);
    assert_eq!(sim.engine.state(sim.id("slow")).stats.missed, 2);
}

#[test]
fn skip_drops_a_slot_that_arrives_while_a_blocker_runs() {
    let mut sim = Sim::new(
        vec![
            spec("backup").interval(s(100)).blocks("sync"),
            spec("sync").interval(s(10)).initial_delay(s(5)).misfire(Misfire::Skip),
        ],
        5,
    );
    sim.advance_to(s(12)); // backup runs 0..12; sync's slot at 5 arrives during it
    sim.succeed("backup");
    assert!(!sim.is_running("sync"), "the skipped fire must not start when backup ends");
    sim.advance_to(s(15));
    assert_eq!(sim.starts_of("sync"), [15.0]);
    assert_eq!(sim.engine.state(sim.id("sync")).stats.missed, 1);
}

#[test]
fn fire_once_runs_an_excluded_fire_as_soon_as_the_blocker_ends() {
    let mut sim = Sim::new(
        vec![spec("backup").interval(s(100)).blocks("sync"), spec("sync").interval(s(10)).initial_delay(s(5))],
        5,
    );
    sim.advance_to(s(12));
    sim.succeed("backup");
    assert_eq!(sim.starts_of("sync"), [12.0]);
}

// ----- dependencies --------------------------------------------------------

#[test]
fn dependent_waits_for_the_dependency_fire_due_at_or_before_its_own() {
    let mut sim = Sim::new(vec![spec("fetch").interval(s(10)), spec("process").interval(s(10)).depends_on("fetch")], 5);
    // Both due at 0: process waits for fetch's fire at 0.
    assert!(sim.is_running("fetch"));
    assert!(!sim.is_running("process"));
    let process = sim.id("process");
    assert_eq!(
        sim.engine.state(process).wait,
        Some(Wait::Dependency { dependency: sim.id("fetch"), why: DependencyWait::NotFinished })
    );
    sim.advance_to(s(2));
    sim.succeed("fetch");
    // ...and starts the moment it succeeded, without waiting for a tick.
    assert_eq!(sim.starts_of("process"), [2.0]);
}

#[test]
fn dependency_failure_records_upstream_failed_without_counting_a_failure() {
    let mut sim = Sim::new(
        vec![
            spec("fetch").interval(s(10)),
            spec("process").interval(s(10)).depends_on("fetch").max_consecutive_failures(1),
        ],
        5,
    );
    sim.advance(s(1));
    sim.fail("fetch");
    assert!(!sim.is_running("process"));
    let stats = &sim.engine.state(sim.id("process")).stats;
    assert_eq!((stats.upstream_failed, stats.failures, stats.consecutive_failures), (1, 0, 0));
    assert!(sim.engine.state(sim.id("process")).enabled());
    // The next fire runs once fetch succeeds again.
    sim.advance_to(s(10));
    sim.succeed("fetch");
    assert_eq!(sim.starts_of("process"), [10.0]);
}

#[test]
fn dependent_waits_on_a_dependency_that_never_ran() {
    let mut sim = Sim::new(
        vec![spec("fetch").interval(s(60)).initial_delay(s(30)), spec("process").interval(s(10)).depends_on("fetch")],
        5,
    );
    let process = sim.id("process");
    assert_eq!(
        sim.engine.state(process).wait,
        Some(Wait::Dependency { dependency: sim.id("fetch"), why: DependencyWait::NeverRan })
    );
    sim.advance_to(s(31));
    sim.succeed("fetch");
    // The fire due at 0 merged the slots up to 30; it runs after fetch's first success.
    assert_eq!(sim.starts_of("process"), [31.0]);
}

#[test]
fn dependent_waits_on_a_disabled_dependency_until_it_is_enabled() {
    let mut sim = Sim::new(
        vec![spec("fetch").interval(s(10)).enabled(false), spec("process").interval(s(10)).depends_on("fetch")],
        5,
    );
    let (fetch, process) = (sim.id("fetch"), sim.id("process"));
    assert_eq!(
        sim.engine.state(process).wait,
        Some(Wait::Dependency { dependency: fetch, why: DependencyWait::Disabled })
    );
    sim.advance_to(s(5));
    sim.event(Event::Enable(fetch));
    sim.advance_to(s(10)); // fetch resumes on its grid
    assert!(sim.is_running("fetch"));
    sim.advance(s(1));
    sim.succeed("fetch");
    assert_eq!(sim.starts_of("process"), [11.0]);
}

#[test]
fn an_older_successful_fire_keeps_counting_after_the_dependency_fails_later() {
    // process (due at 0) is settled on fetch's success at 1, then has to wait
    // for a slot; fetch's later failure must not turn it into upstream_failed.
    let mut sim = Sim::new(
        vec![
            spec("fetch").interval(s(5)).priority(Priority::High),
            spec("hog").interval(s(100)).initial_delay(s(1)).priority(Priority::High),
            spec("process").interval(s(100)).depends_on("fetch"),
        ],
        1,
    );
    sim.advance_to(s(1));
    sim.succeed("fetch"); // process is settled on this success; hog (High) takes the slot first
    assert!(sim.is_running("hog"));
    sim.advance_to(s(6));
    sim.succeed("hog"); // fetch (due 5, High) takes the slot first
    assert!(sim.is_running("fetch"));
    sim.fail("fetch");
    assert_eq!(sim.starts_of("process"), [6.0]);
}

#[test]
fn triggered_dependents_form_a_pipeline() {
    let mut sim = Sim::new(
        vec![
            spec("extract").interval(s(60)),
            spec("transform").depends_on("extract"),
            spec("load").depends_on("transform"),
        ],
        5,
    );
    sim.advance(s(1));
    sim.succeed("extract");
    sim.advance(s(1));
    sim.succeed("transform");
    sim.advance(s(1));
    sim.succeed("load");
    assert_eq!(sim.order(), ["extract", "transform", "load"]);
    assert_eq!(sim.starts_of("load"), [2.0]);
    // A failure stops the pipeline there.
    sim.advance_to(s(60));
    sim.fail("extract");
    sim.advance_to(s(200));
    assert_eq!(sim.starts_of("transform"), [1.0]);
}

#[test]
fn triggered_worker_with_two_dependencies_runs_once_both_have_succeeded() {
    let mut sim = Sim::new(
        vec![spec("a").interval(s(10)), spec("b").interval(s(30)), spec("join").depends_on("a").depends_on("b")],
        5,
    );
    sim.advance(s(1));
    sim.succeed("a");
    sim.succeed("b");
    assert_eq!(sim.starts_of("join"), [1.0]);
    sim.succeed("join");
    sim.advance_to(s(10));
    sim.succeed("a"); // b has not succeeded again: join waits
    sim.advance_to(s(20));
    sim.succeed("a");
    assert_eq!(sim.starts_of("join"), [1.0]);
    sim.advance_to(s(30));
    sim.succeed("a");
    sim.succeed("b");
    assert_eq!(sim.starts_of("join"), [1.0, 30.0]);
}

#[test]
fn a_dependency_does_not_start_while_its_dependent_runs() {
    let mut sim = Sim::new(vec![spec("fetch").interval(s(10)), spec("process").interval(s(10)).depends_on("fetch")], 5);
    sim.advance(s(1));
    sim.succeed("fetch");
    assert!(sim.is_running("process"));
    sim.advance_to(s(12)); // fetch's slot at 10 waits for process
    assert!(!sim.is_running("fetch"));
    assert_eq!(sim.engine.state(sim.id("fetch")).wait, Some(Wait::Excluded { by: sim.id("process") }));
    sim.succeed("process");
    assert_eq!(sim.starts_of("fetch"), [0.0, 12.0]);
}

// ----- exclusion, priority, concurrency ------------------------------------

#[test]
fn blocks_holds_off_both_directions() {
    let mut sim =
        Sim::new(vec![spec("a").interval(s(10)).blocks("b"), spec("b").interval(s(10)).initial_delay(s(1))], 5);
    sim.advance_to(s(1));
    assert!(!sim.is_running("b"), "b must wait for a");
    sim.advance_to(s(3));
    sim.succeed("a");
    assert!(sim.is_running("b"));
    sim.advance_to(s(10)); // a's slot: b is running, declared on the other side
    assert!(!sim.is_running("a"));
    sim.succeed("b");
    assert!(sim.is_running("a"));
}

#[test]
fn priority_then_due_time_then_name_order_the_slot() {
    let mut specs: Vec<_> = ["low", "normal-b", "normal-a", "critical", "high"]
        .iter()
        .map(|n| spec(n).interval(s(100)).initial_delay(s(1)))
        .collect();
    specs[0] = specs[0].clone().priority(Priority::Low);
    specs[3] = specs[3].clone().priority(Priority::Critical);
    specs[4] = specs[4].clone().priority(Priority::High);
    specs.push(spec("early").interval(s(100)).priority(Priority::Low));
    specs.push(spec("blocker").interval(s(100)).initial_delay(s(0)).priority(Priority::Critical));
    let mut sim = Sim::new(specs, 1);
    // At 0 the blocker and early are due; blocker (Critical) wins.
    sim.advance_to(s(2));
    for _ in 0..6 {
        let name = sim.running.keys().next().cloned().expect("one running");
        sim.succeed(&name);
    }
    // early (Low, due 0) waited longer than low (Low, due 1).
    assert_eq!(sim.order(), ["blocker", "critical", "high", "normal-a", "normal-b", "early", "low"]);
}

#[test]
fn never_more_than_max_concurrent_and_continuous_workers_do_not_count() {
    let mut specs: Vec<_> = (0..10).map(|i| spec(&format!("w{i}")).interval(s(10))).collect();
    specs.push(spec("consumer").mode(Mode::Continuous));
    let sim = Sim::new(specs, 3);
    assert!(sim.is_running("consumer"));
    assert_eq!(sim.engine.executing(), 3);
    assert_eq!(sim.running.len(), 4);
}

// ----- failures ------------------------------------------------------------

#[test]
fn retries_back_off_exponentially_within_one_run() {
    let mut sim = Sim::new(vec![spec("flaky").interval(s(1000)).retries(3).backoff(s(4))], 5);
    let mut attempts = Vec::new();
    for _ in 0..3 {
        sim.fail("flaky");
        let until = sim.engine.next_deadline().expect("retry armed");
        attempts.push((until - sim.now).as_secs_f64());
        sim.advance_to(until - sim.t0);
        assert!(sim.is_running("flaky"));
    }
    sim.succeed("flaky");
    // Equal jitter: each pause in [b/2, b] for b = 4, 8, 16.
    for (pause, full) in attempts.iter().zip([4.0, 8.0, 16.0]) {
        assert!((full / 2.0..=full).contains(pause), "pause {pause} not in [{}, {full}]", full / 2.0);
    }
    let stats = &sim.engine.state(sim.id("flaky")).stats;
    assert_eq!((stats.runs, stats.successes, stats.failures, stats.failed_attempts), (1, 1, 0, 3));
    assert_eq!(sim.started.iter().map(|s| s.attempt).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[test]
fn a_run_fails_when_its_last_attempt_fails() {
    let mut sim = Sim::new(vec![spec("flaky").retries(1).backoff(s(1))], 5);
    let waiter = sim.trigger("flaky").expect("accepted");
    sim.fail("flaky");
    sim.advance(s(1));
    sim.finish("flaky", AttemptResult::TimedOut(s(60)));
    assert_eq!(sim.outcomes[&waiter], RunOutcome::Failed { error: "timed out after 1m".into() });
}

#[test]
fn retry_gives_back_its_slot_during_backoff() {
    let mut sim =
        Sim::new(vec![spec("flaky").interval(s(100)).retries(1).backoff(s(10)), spec("other").interval(s(100))], 1);
    // flaky (name order after "other"? no: "flaky" < "other") runs first.
    assert!(sim.is_running("flaky"));
    sim.fail("flaky");
    assert!(sim.is_running("other"), "the backoff must not hold the slot");
}

#[test]
fn worker_is_disabled_after_max_consecutive_failures_and_enable_resets() {
    let mut sim = Sim::new(vec![spec("broken").interval(s(10)).max_consecutive_failures(3)], 5);
    for k in 0..3u64 {
        sim.advance_to(s(10 * k));
        sim.fail("broken");
    }
    let broken = sim.id("broken");
    let state = sim.engine.state(broken);
    assert!(!state.enabled());
    assert_eq!(
        state.disabled.as_ref().map(ToString::to_string).as_deref(),
        Some("after 3 consecutive failures; last error: broken broke")
    );
    sim.advance_to(s(100));
    assert_eq!(sim.starts_of("broken").len(), 3, "a disabled worker does not fire");
    sim.event(Event::Enable(broken));
    assert_eq!(sim.engine.state(broken).stats.consecutive_failures, 0);
    sim.advance_to(s(110));
    assert_eq!(sim.starts_of("broken"), [0.0, 10.0, 20.0, 110.0]);
}

#[test]
fn a_success_resets_the_consecutive_failure_count() {
    let mut sim = Sim::new(vec![spec("w").interval(s(10)).max_consecutive_failures(2)], 5);
    sim.fail("w");
    sim.advance_to(s(10));
    sim.succeed("w");
    sim.advance_to(s(20));
    sim.fail("w");
    assert!(sim.engine.state(sim.id("w")).enabled());
}

#[test]
fn panics_count_as_failures() {
    let mut sim = Sim::new(vec![spec("w").interval(s(10)).max_consecutive_failures(1)], 5);
    sim.finish("w", AttemptResult::Panicked("boom".into()));
    let stats = &sim.engine.state(sim.id("w")).stats;
    assert_eq!(stats.last_error.as_deref(), Some("panicked: boom"));
    assert!(!sim.engine.state(sim.id("w")).enabled());
}

// ----- control -------------------------------------------------------------

#[test]
fn trigger_runs_now_and_answers_with_the_outcome() {
    let mut sim = Sim::new(vec![spec("reindex")], 5);
    let waiter = sim.trigger("reindex").expect("accepted");
    assert!(sim.is_running("reindex"));
    sim.succeed("reindex");
    assert_eq!(sim.outcomes[&waiter], RunOutcome::Succeeded);
}

#[test]
fn trigger_is_refused_for_running_and_disabled_workers() {
    let mut sim = Sim::new(vec![spec("a").interval(s(10)), spec("b").enabled(false)], 5);
    assert_eq!(sim.trigger("a"), Err(TriggerRefusal::AlreadyRunning));
    assert!(matches!(sim.trigger("b"), Err(TriggerRefusal::Disabled(_))));
    sim.event(Event::Shutdown);
    sim.succeed("a");
    assert_eq!(sim.trigger("a"), Err(TriggerRefusal::ShuttingDown));
}

#[test]
fn trigger_waits_for_a_slot_in_priority_order() {
    let mut sim = Sim::new(
        vec![spec("busy").interval(s(100)), spec("low").priority(Priority::Low), spec("high").priority(Priority::High)],
        1,
    );
    let low = sim.trigger("low").expect("accepted");
    let high = sim.trigger("high").expect("accepted");
    sim.succeed("busy");
    sim.succeed("high");
    sim.succeed("low");
    assert_eq!(sim.order(), ["busy", "high", "low"]);
    assert!(sim.outcomes[&low].is_success() && sim.outcomes[&high].is_success());
}

#[test]
fn disable_drops_the_pending_fire_and_lets_the_running_attempt_finish() {
    let mut sim = Sim::new(vec![spec("w").interval(s(10))], 5);
    sim.advance_to(s(15)); // the fire due at 10 is pending behind the run
    let w = sim.id("w");
    sim.event(Event::Disable(w));
    assert!(sim.is_running("w"));
    sim.succeed("w");
    sim.advance_to(s(50));
    assert_eq!(sim.starts_of("w"), [0.0]);
    assert_eq!(sim.engine.state(w).stats.successes, 1);
}

#[test]
fn shutdown_cancels_running_attempts_and_pending_fires() {
    let mut sim = Sim::new(vec![spec("a").interval(s(10)), spec("b").retries(2).backoff(s(5)), spec("c")], 1);
    let c = sim.trigger("c").expect("accepted"); // waits for the slot a holds
    sim.advance(s(1));
    sim.event(Event::Shutdown);
    assert_eq!(sim.cancelled.len(), 1);
    assert_eq!(sim.outcomes[&c], RunOutcome::Cancelled { reason: "shutdown".into() });
    assert!(!sim.engine.is_stopped());
    sim.finish("a", AttemptResult::Cancelled);
    assert!(sim.engine.is_stopped());
    sim.advance_to(s(100));
    assert_eq!(sim.order(), ["a"]);
}

#[test]
fn continuous_worker_restarts_after_restart_delay() {
    let mut sim = Sim::new(vec![spec("consumer").mode(Mode::Continuous).restart_delay(s(2))], 5);
    sim.advance(s(5));
    sim.fail("consumer");
    sim.advance(s(2));
    sim.succeed("consumer");
    sim.advance(s(2));
    assert_eq!(sim.starts_of("consumer"), [0.0, 7.0, 9.0]);
}

#[test]
fn an_event_stamped_before_the_latest_one_is_handled_at_the_latest_instant() {
    // The runtime reads the clock before taking the engine lock, so a report
    // may reach the engine after an event stamped later.
    let mut sim = Sim::new(vec![spec("job").delay(s(10))], 5);
    let job = sim.id("job");
    let (run, _) = sim.running["job"];
    sim.running.clear();
    let later = sim.t0 + s(3);
    sim.engine.handle(later, Event::Timeout);
    sim.engine.handle(sim.t0 + s(1), Event::AttemptFinished { worker: job, run, result: AttemptResult::Succeeded });
    let stats = &sim.engine.state(job).stats;
    assert_eq!(stats.last_finished, Some(later), "time went backwards");
    assert_eq!(stats.last_duration, Some(s(3)));
    // The next fixed-delay slot counts from the end as the engine saw it.
    assert_eq!(sim.engine.next_deadline(), Some(later + s(10)));
}

#[test]
fn traits_keep_what_every_fire_reads_of_the_configuration() {
    use super::worker::{Kind, Traits};
    let specs = vec![
        spec("a").interval(Duration::from_millis(1500)).timeout(Duration::from_millis(250)).priority(Priority::High),
        spec("b").delay(s(3)).jitter(Duration::from_millis(20)).misfire(Misfire::Skip),
        spec("c").mode(Mode::Triggered).blocks("b"),
        spec("d").mode(Mode::Continuous),
    ];
    let graph = crate::graph::validate(specs, &crate::worker_fn::StateMap::default()).expect("valid");
    let traits: Vec<Traits> = graph.workers.iter().zip(&graph.edges).map(|(c, e)| Traits::new(c, e)).collect();
    let (a, b, c, d) = (traits[0], traits[1], traits[2], traits[3]);
    assert_eq!(
        (a.kind, a.period(), a.timeout(), a.priority),
        (Kind::Interval, Duration::from_millis(1500), Some(Duration::from_millis(250)), Priority::High)
    );
    assert_eq!(
        (b.kind, b.period(), b.timeout(), b.jitter(), b.misfire),
        (Kind::Delay, s(3), Some(s(60)), Duration::from_millis(20), Misfire::Skip)
    );
    assert_eq!(c.kind, Kind::Triggered);
    // Continuous: no timeout by default; the period is the restart delay.
    assert_eq!((d.kind, d.timeout(), d.period()), (Kind::Continuous, None, s(1)));
    // `b` and `c` conflict; `a` stands alone.
    assert_eq!((a.isolated, b.isolated, c.isolated), (true, false, false));
}

// ----- control at any moment -----------------------------------------------

#[test]
fn a_grid_worker_disabled_and_enabled_during_its_run_keeps_firing() {
    for spec in [spec("tick").interval(s(10)), spec("tick").cron("*/10 * * * * *")] {
        let mut sim = Sim::new(vec![spec], 5);
        sim.advance_to(s(2)); // running since 0
        let w = sim.id("tick");
        sim.event(Event::Disable(w));
        sim.event(Event::Enable(w));
        sim.advance(s(1));
        sim.succeed("tick");
        assert!(sim.engine.state(w).slot.is_some(), "an enabled grid worker has a next fire");
        for _ in 0..2 {
            sim.advance_to(sim.elapsed() + s(10));
            sim.succeed("tick");
        }
        assert_eq!(sim.starts_of("tick"), [0.0, 10.0, 20.0]);
    }
}

#[test]
fn a_trigger_handled_before_a_late_driver_meets_the_dependency_fire_already_due() {
    // a fires every 10 s; b is triggered at 12 s, while the driver has not yet
    // handled a's fire due at 10 s. b is judged by that fire, not by the
    // failed one due at 0.
    let mut sim = Sim::new(vec![spec("a").interval(s(10)), spec("b").depends_on("a")], 5);
    sim.fail("a"); // the fire due at 0 failed
    sim.now = sim.t0 + Duration::from_millis(12_000); // the driver is late
    let waiter = sim.trigger("b").expect("accepted");
    assert_eq!(sim.outcomes.get(&waiter), None, "b waits for a's fire due at 10 s");
    assert!(sim.is_running("a"));
    sim.succeed("a");
    assert!(sim.is_running("b"));
    sim.succeed("b");
    assert_eq!(sim.outcomes.get(&waiter), Some(&RunOutcome::Succeeded));
}

#[test]
fn a_scheduled_dependent_is_judged_by_the_dependency_fire_due_before_it_even_when_the_driver_is_late() {
    // b's slot is due at 5 s; a is triggered at 6 s, before the late driver
    // handled b's slot. b's fire is judged by a's fire at 1 s (a success),
    // not by the one triggered at 6 s (a failure).
    let mut sim = Sim::new(vec![spec("a"), spec("b").interval(s(100)).initial_delay(s(5)).depends_on("a")], 5);
    sim.advance_to(s(1));
    sim.trigger("a").expect("accepted");
    sim.succeed("a");
    sim.now = sim.t0 + s(6);
    let _ = sim.trigger("a");
    assert!(sim.is_running("b"), "b's fire due at 5 s runs on a's success at 1 s");
    assert_eq!(sim.starts_of("b"), [6.0]);
}

#[test]
fn a_continuous_worker_triggered_between_restarts_keeps_one_chain_and_its_restart_delay() {
    let mut sim = Sim::new(vec![spec("consumer").mode(Mode::Continuous).restart_delay(s(2))], 5);
    sim.advance_to(s(3));
    sim.succeed("consumer"); // next start at 5
    sim.advance_to(s(4));
    sim.trigger("consumer").expect("accepted"); // starts now, at 4
    sim.advance_to(s(7));
    sim.succeed("consumer"); // next at 9
    sim.advance_to(s(12));
    sim.succeed("consumer"); // next at 14
    sim.advance_to(s(15));
    assert_eq!(sim.starts_of("consumer"), [0.0, 4.0, 9.0, 14.0]);
}

#[test]
fn a_fixed_delay_worker_triggered_during_its_delay_counts_the_next_delay_from_that_run() {
    let mut sim = Sim::new(vec![spec("drain").delay(s(10))], 5);
    sim.advance(s(1));
    sim.succeed("drain"); // next at 11
    sim.advance_to(s(5));
    sim.trigger("drain").expect("accepted");
    sim.advance_to(s(8));
    sim.succeed("drain"); // next at 18, and nothing at 11
    sim.advance_to(s(18));
    assert_eq!(sim.starts_of("drain"), [0.0, 5.0, 18.0]);
}

#[test]
fn disable_and_enable_storms_keep_the_timer_set_bounded() {
    let mut sim = Sim::new(vec![spec("hourly").delay(s(3600)), spec("ticker").interval(s(1))], 5);
    sim.succeed("hourly");
    let w = sim.id("hourly");
    for _ in 0..5_000 {
        sim.event(Event::Disable(w));
        sim.advance(Duration::from_millis(1));
        sim.event(Event::Enable(w));
    }
    assert!(sim.engine.timers.len() <= 4, "{} timers for two workers", sim.engine.timers.len());
    // Still fires an hour after the last enable.
    let enabled_at = sim.elapsed();
    sim.advance_to(enabled_at + s(3600));
    assert_eq!(sim.starts_of("hourly").len(), 2);
}

#[test]
fn a_fixed_delay_fire_skipped_while_a_blocker_runs_is_followed_by_the_next_one_after_the_delay() {
    let mut sim = Sim::new(
        vec![spec("drain").delay(s(10)).misfire(Misfire::Skip).initial_delay(s(1)), spec("lock").blocks("drain")],
        5,
    );
    sim.trigger("lock").expect("accepted"); // runs from 0 to 5
    sim.advance_to(s(5));
    assert_eq!(sim.engine.state(sim.id("drain")).stats.missed, 1, "the fire due at 1 s was skipped");
    sim.succeed("lock");
    sim.advance_to(s(11));
    assert_eq!(sim.starts_of("drain"), [11.0], "the next fire follows the skipped one after the delay");
}

#[test]
fn a_continuous_worker_that_keeps_failing_restarts_with_a_growing_delay_and_is_never_disabled() {
    let mut sim = Sim::new(vec![spec("consumer").mode(Mode::Continuous).restart_delay(s(1)).max_backoff(s(8))], 5);
    // Seven quick failures in a row: restarts after 1, 2, 4, 8, 8, 8, 8 s.
    for _ in 0..7 {
        sim.fail("consumer");
        let next = sim.engine.next_deadline().expect("a restart is armed");
        sim.advance_to(next - sim.t0);
    }
    assert_eq!(sim.starts_of("consumer"), [0.0, 1.0, 3.0, 7.0, 15.0, 23.0, 31.0, 39.0]);
    let w = sim.id("consumer");
    assert!(sim.engine.state(w).enabled(), "a Continuous worker is not disabled for failing");
    assert_eq!(sim.engine.state(w).stats.consecutive_failures, 7);
    // It ran well: the restart delay is back to 1 s.
    sim.advance(s(5));
    sim.succeed("consumer");
    sim.advance(s(1));
    assert_eq!(sim.starts_of("consumer").last(), Some(&45.0));
}

#[test]
fn a_continuous_failure_after_a_long_run_restarts_after_the_plain_delay() {
    let mut sim = Sim::new(vec![spec("consumer").mode(Mode::Continuous).restart_delay(s(1)).max_backoff(s(8))], 5);
    for _ in 0..3 {
        sim.advance(s(10)); // ran longer than max_backoff, then failed
        sim.fail("consumer");
        sim.advance(s(1));
    }
    assert_eq!(sim.starts_of("consumer"), [0.0, 11.0, 22.0, 33.0]);
}
