//! The engine with a store: resuming from what it kept, the facts it
//! journals, and refused claims (cluster mode), on virtual time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::sim::{Sim, spec};
use super::worker::RecordView;
use super::{AttemptResult, Disabled, Event, LostFire, Refusal};
use crate::history::FireOutcome;
use crate::schedule::WallClock;
use crate::spec::{Misfire, WorkerSpec};
use crate::status::{Fixed, WorkerState, WorkerStatus};
use crate::store::{Fact, Restored, StoredDisable};

const START: &str = "2026-01-01T00:00:00Z";

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

fn wall(offset_secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START).expect("valid").with_timezone(&Utc) + chrono::Duration::seconds(offset_secs)
}

fn kept(anchor: i64, last: Option<(i64, FireOutcome)>) -> Restored {
    Restored {
        anchor: wall(anchor),
        disabled: None,
        consecutive_failures: 0,
        last_fire: last.map(|(at, outcome)| (wall(at), outcome)),
    }
}

fn sim(specs: Vec<WorkerSpec>, restored: Vec<Restored>) -> Sim {
    Sim::restored(specs, 5, START, Some(restored))
}

/// The `scheduled_at` of the facts `pick` picks among those journaled so
/// far, as seconds from START.
fn journaled(sim: &mut Sim, pick: impl Fn(&Fact) -> Option<DateTime<Utc>>) -> Vec<i64> {
    sim.engine.take_facts().iter().filter_map(&pick).map(|at| (at - wall(0)).num_seconds()).collect()
}

#[test]
fn fires_due_while_no_instance_ran_become_one_catch_up_run_of_the_oldest_slot() {
    // Anchored 35 s before this start, every 10 s; the slot at -25 ran.
    // Slots -15 and -5 passed while nothing ran.
    let mut sim = sim(vec![spec("sync").interval(s(10))], vec![kept(-35, Some((-25, FireOutcome::Succeeded)))]);
    assert_eq!(sim.starts_of("sync"), vec![0.0], "the catch-up run starts at once");
    let started = journaled(&mut sim, |f| match f {
        Fact::Started { scheduled_at, .. } => Some(*scheduled_at),
        _ => None,
    });
    assert_eq!(started, vec![-15], "it stands for the oldest missed slot");
    sim.succeed("sync");
    sim.advance_to(s(5));
    assert_eq!(sim.starts_of("sync"), vec![0.0, 5.0], "then the grid of the stored anchor: -35 + 4·10");
    assert_eq!(sim.engine.state(sim.id("sync")).stats.coalesced, 1);
}

#[test]
fn under_skip_the_downtime_fires_are_recorded_missed_and_nothing_runs_until_the_next_slot() {
    let mut sim = sim(
        vec![spec("sync").interval(s(10)).misfire(Misfire::Skip)],
        vec![kept(-35, Some((-25, FireOutcome::Succeeded)))],
    );
    assert!(sim.starts_of("sync").is_empty());
    let missed = journaled(&mut sim, |f| match f {
        Fact::Dropped { scheduled_at, outcome: FireOutcome::Missed, .. } => Some(*scheduled_at),
        _ => None,
    });
    assert_eq!(missed, vec![-15, -5]);
    sim.advance_to(s(5));
    assert_eq!(sim.starts_of("sync"), vec![5.0]);
}

#[test]
fn a_worker_the_store_has_never_seen_run_starts_on_its_own_anchor_without_catch_up() {
    let mut sim = sim(vec![spec("new").interval(s(10))], vec![kept(0, None)]);
    assert_eq!(sim.starts_of("new"), vec![0.0]);
    sim.succeed("new");
    sim.advance_to(s(10));
    assert_eq!(sim.starts_of("new"), vec![0.0, 10.0]);
}

#[test]
fn a_worker_disabled_at_runtime_stays_disabled_and_its_failure_count_continues() {
    let mut disabled = kept(-100, None);
    disabled.disabled = Some(StoredDisable::Manually);
    let mut failing = kept(0, None);
    failing.consecutive_failures = 2;
    let mut sim = sim(
        vec![spec("off").interval(s(10)), spec("flaky").interval(s(10)).max_consecutive_failures(3)],
        // By worker id, which follows name order.
        vec![failing, disabled],
    );
    sim.advance_to(s(30));
    assert!(sim.starts_of("off").is_empty(), "no fire, and no catch-up, for a disabled worker");
    assert_eq!(sim.engine.state(sim.id("off")).disabled, Some(Disabled::Manually));
    assert_eq!(sim.starts_of("flaky"), vec![0.0, 10.0, 20.0, 30.0][..1].to_vec());
    sim.fail("flaky");
    assert!(
        matches!(sim.engine.state(sim.id("flaky")).disabled, Some(Disabled::Failures { count: 3, .. })),
        "the third failure in a row, counting the two before the restart"
    );
}

#[test]
fn enabling_and_disabling_are_journaled_but_a_sync_from_the_store_is_not_written_back() {
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    sim.succeed("w");
    sim.engine.take_facts();
    let w = sim.id("w");
    sim.event(Event::Disable(w));
    let facts = sim.engine.take_facts();
    assert!(matches!(&facts[..], [Fact::State { disabled: Some(StoredDisable::Manually), .. }]), "{facts:?}");
    sim.event(Event::Sync { worker: w, disabled: None, consecutive_failures: 4 });
    assert!(sim.engine.state(w).enabled());
    assert_eq!(sim.engine.state(w).stats.consecutive_failures, 4);
    let facts = sim.engine.take_facts();
    assert!(!facts.iter().any(|f| matches!(f, Fact::State { .. })), "not written back: {facts:?}");
}

#[test]
fn a_fire_taken_by_another_instance_leaves_no_run_here_and_the_next_slot_still_fires() {
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    sim.finish("w", AttemptResult::Refused(Refusal::Taken { by: "other".into() }.into()));
    let record = sim.engine.state(sim.id("w"));
    assert!(record.run.is_none());
    assert_eq!(record.stats.runs, 0, "the run never was");
    assert!(sim.engine.history(sim.id("w"), 10, "i").is_empty());
    let facts = sim.engine.take_facts();
    assert!(facts.iter().all(|f| !matches!(f, Fact::Finished { .. })), "{facts:?}");
    sim.advance_to(s(10));
    assert_eq!(sim.starts_of("w"), vec![0.0, 10.0]);
}

#[test]
fn a_busy_claim_waits_and_is_tried_again_as_the_same_fire() {
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    sim.finish("w", AttemptResult::Refused(Refusal::Busy { why: "w runs on other".into(), retry: s(1) }.into()));
    assert!(!sim.is_running("w"));
    sim.advance_to(s(1));
    assert_eq!(sim.starts_of("w"), vec![0.0, 1.0]);
    assert_eq!(sim.started[1].attempt, 1, "the claim is retried as a first attempt");
    assert_eq!(sim.started[0].run, sim.started[1].run, "of the same run, for the same fire");
    sim.succeed("w");
    let record = sim.engine.state(sim.id("w"));
    assert_eq!((record.stats.runs, record.stats.successes), (1, 1));
    let history = sim.engine.history(sim.id("w"), 10, "i");
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].outcome, history[0].attempts), (FireOutcome::Succeeded, 1));
}

/// `name`'s state as status shows it.
fn status_state(sim: &Sim, name: &str) -> WorkerState {
    let fixed = Fixed::of_graph(sim.engine.graph());
    let mut view = RecordView::default();
    sim.engine.state(sim.id(name)).view_into(&mut view);
    WorkerStatus::of(&fixed, sim.id(name), &view, &WallClock::new(sim.t0, wall(0))).state
}

#[test]
fn status_says_a_fire_waits_for_the_cluster_and_why_not_that_it_retries() {
    let mut sim = sim(vec![spec("w").interval(s(10)).retries(1).backoff(s(2)).max_backoff(s(2))], vec![kept(0, None)]);
    sim.finish("w", AttemptResult::Refused(Refusal::Busy { why: "w runs on other".into(), retry: s(1) }.into()));
    assert_eq!(
        status_state(&sim, "w"),
        WorkerState::WaitingForCluster { reason: "w runs on other".into(), retry_at: wall(1) }
    );
    let words = status_state(&sim, "w").to_string();
    assert_eq!(words, "waiting for the cluster: w runs on other; claimed again at 00:00:01.000 UTC");

    // Claimed at last: its attempt runs, fails, and the run retries.
    sim.advance_to(s(1));
    assert!(matches!(status_state(&sim, "w"), WorkerState::Running { attempt: 1, .. }));
    sim.fail("w");
    assert!(
        matches!(status_state(&sim, "w"), WorkerState::Retrying { next_attempt: 2, .. }),
        "{:?}",
        status_state(&sim, "w")
    );
}

#[test]
fn a_claim_refused_for_a_failed_dependency_records_upstream_failed() {
    let mut sim = sim(
        vec![spec("fetch").interval(s(10)), spec("process").interval(s(10)).depends_on("fetch")],
        vec![kept(0, None), kept(0, None)],
    );
    sim.succeed("fetch");
    sim.finish("process", AttemptResult::Refused(Refusal::UpstreamFailed { dependency: "fetch".into() }.into()));
    let history = sim.engine.history(sim.id("process"), 10, "i");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, FireOutcome::UpstreamFailed);
    assert_eq!(sim.engine.state(sim.id("process")).stats.upstream_failed, 1);
}

#[test]
fn a_lost_lease_cancels_the_run_and_says_why() {
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    sim.finish("w", AttemptResult::LeaseLost);
    let history = sim.engine.history(sim.id("w"), 10, "i");
    assert_eq!(history[0].outcome, FireOutcome::Cancelled);
    assert!(history[0].error.as_deref().is_some_and(|e| e.contains("lease")), "{:?}", history[0].error);
}

/// The `scheduled_at` (ms from START) of every fire of a jittered worker
/// started in 10 minutes, on a simulated replica whose random source is
/// seeded with `seed`.
fn jittered_fires(worker: WorkerSpec, seed: u64) -> Vec<i64> {
    let mut sim = Sim::seeded(vec![worker], 5, START, Some(vec![kept(0, None)]), seed);
    let mut fires = Vec::new();
    for second in 1..=600 {
        sim.advance_to(s(second));
        if sim.is_running("sync") {
            sim.succeed("sync");
        }
        fires.extend(sim.engine.take_facts().iter().filter_map(|f| match f {
            Fact::Started { scheduled_at, .. } => Some((*scheduled_at - wall(0)).num_milliseconds()),
            _ => None,
        }));
    }
    fires
}

#[test]
fn replicas_compute_the_same_fires_of_a_jittered_cluster_worker() {
    let worker = || spec("sync").interval(s(60)).jitter(s(30));
    let one = jittered_fires(worker(), 1);
    assert_eq!(one.len(), 10, "{one:?}");
    assert_eq!(one, jittered_fires(worker(), 2), "another replica, another random source, the same fires");
    for (k, fire) in (0..).zip(&one) {
        let jitter = fire - k * 60_000;
        assert!((0..=30_000).contains(&jitter), "slot {k} jittered by {jitter} ms");
    }
    let mut jitters: Vec<_> = (0..).zip(&one).map(|(k, fire)| fire - k * 60_000).collect();
    jitters.dedup();
    assert!(jitters.len() > 5, "the jitter differs from slot to slot: {jitters:?}");

    // An Instance worker's fires are each replica's own: spread at random.
    let instance = || worker().scope(crate::spec::Scope::Instance);
    assert_ne!(jittered_fires(instance(), 1), jittered_fires(instance(), 2));
}

/// Seconds since the simulation's start, as an instant.
fn instant(sim: &Sim, secs: u64) -> std::time::Instant {
    sim.t0 + s(secs)
}

/// `(attempt, first here)` of `name`'s attempts started so far.
fn attempts_of(sim: &Sim, name: &str) -> Vec<(u32, bool)> {
    sim.started.iter().filter(|a| a.worker == name).map(|a| (a.attempt, a.first)).collect()
}

fn lost_written_off(sim: &mut Sim) -> Vec<(i64, Option<String>)> {
    sim.engine
        .take_facts()
        .into_iter()
        .filter_map(|f| match f {
            Fact::Dropped { scheduled_at, outcome: FireOutcome::Lost, error, .. } => {
                Some(((scheduled_at - wall(0)).num_seconds(), error))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_adopted_fire_runs_its_next_attempt_at_once_and_keeps_the_retry_budget() {
    let mut sim = sim(vec![spec("w").interval(s(60)).retries(2).backoff(s(1)).max_backoff(s(1))], vec![kept(0, None)]);
    // The fire at 0 ran on another instance, which died after one attempt.
    sim.finish("w", AttemptResult::Refused(Refusal::Taken { by: "other".into() }.into()));
    sim.advance_to(s(31));
    sim.engine.take_facts();
    let w = sim.id("w");
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 0), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    assert_eq!(attempts_of(&sim, "w"), vec![(1, true), (2, true)], "attempt 2 at once, claimed first");
    assert_eq!(sim.started[1].at, s(31));
    // The store hands it again until the claim is through: nothing changes.
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 0), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    assert_eq!(attempts_of(&sim, "w").len(), 2);
    assert!(sim.engine.state(w).pending.is_none());
    sim.fail("w");
    sim.advance(s(5));
    assert_eq!(attempts_of(&sim, "w"), vec![(1, true), (2, true), (3, false)], "a retry under the same claim");
    sim.fail("w");
    sim.advance(s(5));
    assert_eq!(attempts_of(&sim, "w").len(), 3, "retries = 2: three attempts in all, wherever they ran");
    let finished: Vec<_> = sim
        .engine
        .take_facts()
        .into_iter()
        .filter_map(|f| match f {
            Fact::Finished { scheduled_at, attempts, outcome, .. } => Some((scheduled_at, attempts, outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![(wall(0), 3, FireOutcome::Failed)], "the fire's identity, the total attempts");
    let history = sim.engine.history(w, 10, "i");
    assert_eq!((history[0].attempts, history[0].outcome), (3, FireOutcome::Failed));
    assert_eq!(sim.engine.state(w).stats.consecutive_failures, 1);
}

#[test]
fn an_adopted_fire_older_than_the_pending_one_takes_its_place_and_a_newer_one_is_written_off() {
    let mut sim = sim(vec![spec("w").interval(s(10)).retries(3)], vec![kept(0, None)]);
    let w = sim.id("w");
    // The run of the fire at 0 goes on here; the slot at 10 waits for it.
    sim.advance_to(s(11));
    assert!(sim.engine.state(w).pending.is_some());
    sim.engine.take_facts();
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 5), attempts_done: 2, lost_by: "other".into() }.into(),
    ));
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 8), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    assert_eq!(
        lost_written_off(&mut sim),
        vec![(8, Some("an older fire of the worker waits on the instance that took it over".into()))]
    );
    sim.succeed("w");
    assert_eq!(attempts_of(&sim, "w"), vec![(1, true), (3, true)], "the adopted fire's next attempt");
    sim.succeed("w");
    let finished: Vec<_> = sim
        .engine
        .take_facts()
        .into_iter()
        .filter_map(|f| match f {
            Fact::Finished { scheduled_at, attempts, .. } => Some(((scheduled_at - wall(0)).num_seconds(), attempts)),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![(0, 1), (5, 3)], "the slot at 10 merged into the adopted fire");
    assert_eq!(sim.engine.state(w).stats.coalesced, 1);
}

#[test]
fn a_disabled_worker_writes_an_adopted_fire_off_instead_of_running_it() {
    let mut sim = sim(vec![spec("w").interval(s(60)).retries(2)], vec![kept(0, None)]);
    let w = sim.id("w");
    sim.succeed("w");
    sim.event(Event::Disable(w));
    sim.engine.take_facts();
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 0), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    sim.advance_to(s(30));
    assert_eq!(attempts_of(&sim, "w"), vec![(1, true)], "nothing runs");
    assert_eq!(lost_written_off(&mut sim), vec![(0, Some("the worker is disabled".into()))]);

    // Disabled while the adopted fire's claim waits: written off too.
    sim.event(Event::Enable(w));
    sim.advance_to(s(60));
    sim.succeed("w");
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 50), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    sim.finish(
        "w",
        AttemptResult::Refused(Refusal::Busy { why: "a blocker runs elsewhere".into(), retry: s(1) }.into()),
    );
    sim.engine.take_facts();
    sim.event(Event::Disable(w));
    assert_eq!(lost_written_off(&mut sim), vec![(50, Some("the worker is disabled".into()))]);
    assert!(sim.engine.state(w).run.is_none());
}

#[test]
fn an_adoption_while_shutting_down_is_left_to_the_other_instances() {
    let mut sim = sim(vec![spec("w").interval(s(60)).retries(2)], vec![kept(0, None)]);
    let w = sim.id("w");
    sim.succeed("w");
    sim.event(Event::Shutdown);
    sim.engine.take_facts();
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 0), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    assert_eq!(attempts_of(&sim, "w"), vec![(1, true)]);
    assert!(sim.engine.take_facts().is_empty(), "not written off: the store hands it on once this one left");
}

#[test]
fn a_catch_up_fire_whose_oldest_slot_was_taken_elsewhere_still_claims_its_freshest_slot() {
    // `a` is held back here by `b` (which blocks it) while `b` waits for
    // the cluster; a's slots at 0 and 10 merge into one catch-up fire.
    let mut sim =
        sim(vec![spec("a").interval(s(10)), spec("b").interval(s(10)).blocks("a")], vec![kept(0, None), kept(0, None)]);
    assert_eq!(sim.order(), vec!["b"]);
    sim.finish("b", AttemptResult::Refused(Refusal::Busy { why: "b runs on other".into(), retry: s(12) }.into()));
    sim.advance_to(s(12));
    sim.engine.take_facts();
    sim.succeed("b");
    assert!(sim.is_running("a"), "the catch-up fire starts once b is done");
    // Another replica ran a's slot at 0: the slot at 10, merged into this
    // fire, is still due here, and is claimed on its own.
    sim.finish("a", AttemptResult::Refused(Refusal::Taken { by: "other".into() }.into()));
    // (b's own slot at 10 starts first, being older than a's claim now.)
    assert_eq!(sim.order(), vec!["b", "b", "a", "b"]);
    sim.succeed("b");
    assert!(sim.is_running("a"), "the freshest merged slot is claimed");
    let started = journaled(&mut sim, |f| match f {
        Fact::Started { worker, scheduled_at, .. } if &**worker == "a" => Some(*scheduled_at),
        _ => None,
    });
    assert_eq!(started, vec![0, 10], "first the oldest slot, then the freshest");
    sim.succeed("a");
    let history = sim.engine.history(sim.id("a"), 10, "i");
    assert_eq!(history.len(), 1, "{history:?}");
}

#[test]
fn a_fire_waiting_for_its_claim_gives_way_to_an_older_adopted_fire_and_merges_into_it() {
    // The fire at 10 waits for its claim (the store keeps the worker busy
    // while its fire at 0, lost elsewhere, awaits takeover); the adoption
    // of that fire arrives: it goes first, and the waiting one merges.
    let mut sim = sim(vec![spec("w").interval(s(10)).retries(2)], vec![kept(0, None)]);
    let w = sim.id("w");
    sim.finish("w", AttemptResult::Refused(Refusal::Taken { by: "other".into() }.into()));
    sim.advance_to(s(10));
    sim.finish(
        "w",
        AttemptResult::Refused(Refusal::Busy { why: "w's fire lost on other goes first".into(), retry: s(1) }.into()),
    );
    sim.engine.take_facts();
    sim.event(Event::Adopt(
        LostFire { worker: w, due: instant(&sim, 0), attempts_done: 1, lost_by: "other".into() }.into(),
    ));
    assert!(sim.is_running("w"), "the adopted fire starts at once");
    assert_eq!(sim.started.last().map(|s| s.attempt), Some(2), "as the lost run's second attempt");
    sim.succeed("w");
    sim.advance_to(s(15));
    assert!(!sim.is_running("w"), "the fire at 10 merged into it: nothing more until 20");
    let record = sim.engine.state(w);
    assert_eq!((record.stats.runs, record.stats.coalesced), (1, 1));
    sim.advance_to(s(20));
    assert!(sim.is_running("w"));
}

/// `(scheduled_at, error)` of the `missed` facts journaled so far, as
/// seconds from START.
fn missed_facts(sim: &mut Sim) -> Vec<(i64, Option<String>)> {
    sim.engine
        .take_facts()
        .into_iter()
        .filter_map(|f| match f {
            Fact::Dropped { scheduled_at, outcome: FireOutcome::Missed, error, .. } => {
                Some(((scheduled_at - wall(0)).num_seconds(), error))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn slots_merged_while_a_claim_waits_are_recorded_missed_not_dropped_silently() {
    // Found by benchmark C1 (3 replicas, 1,000 workers at 1 s): a fire's
    // claim waits (a slow round trip, or `busy` while the worker's previous
    // fire is still `running` in the database), the next slot comes due
    // and waits behind it, and the one after merges into that one
    // (`FireOnce`). Every replica merges alike, the catch-up run claims its
    // oldest slot, and the merged slots had no row in the database at all.
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    let w = sim.id("w");
    assert!(sim.is_running("w"), "the fire at 0: its claim is in flight");
    sim.advance_to(s(10));
    sim.advance_to(s(20));
    sim.advance_to(s(30));
    assert_eq!(sim.engine.state(w).stats.coalesced, 2, "20 and 30 merged into the fire at 10");
    let superseded = missed_facts(&mut sim);
    assert_eq!(superseded.len(), 1, "{superseded:?}");
    assert_eq!(superseded[0].0, 20, "the slot at 20, superseded by 30 as the freshest, at once");
    let why = superseded[0].1.as_deref().unwrap_or_default();
    assert!(why.contains("merged into the catch-up run of 2026-01-01T00:00:10.000Z"), "{why}");
    sim.succeed("w");
    assert!(sim.is_running("w"), "the catch-up run");
    assert!(missed_facts(&mut sim).is_empty(), "the freshest slot waits: a replica on time may still run it");
    sim.succeed("w");
    let missed = missed_facts(&mut sim);
    assert_eq!(missed.iter().map(|m| m.0).collect::<Vec<_>>(), vec![30], "recorded when the catch-up run ends");
    // Every slot has its fact: runs at 0 and 10, missed at 20 and 30.
    let history = sim.engine.history(w, 10, "i");
    let mut outcomes: Vec<_> = history.iter().map(|r| r.outcome).collect();
    outcomes.reverse();
    assert_eq!(
        outcomes,
        vec![FireOutcome::Succeeded, FireOutcome::Missed, FireOutcome::Succeeded, FireOutcome::Missed]
    );

    // Without a store (nothing to account to), merging stays as it was.
    let mut plain = Sim::new(vec![spec("w").interval(s(10))], 5);
    plain.advance_to(s(30));
    plain.succeed("w");
    plain.succeed("w");
    assert!(plain.engine.history(plain.id("w"), 10, "i").iter().all(|r| r.outcome != FireOutcome::Missed));
}

#[test]
fn a_claim_answered_busy_during_shutdown_ends_the_run_instead_of_waiting_to_retry() {
    // Found by benchmark C1: a replica's claims were in flight when it was
    // asked to stop; those answered `busy` went back to wait for a retry
    // that shutdown had already cleared the timers of, and the replica
    // never stopped (nor did the shutdown timeout end it: the run was not
    // executing, so nothing was left to cancel).
    let mut sim = sim(vec![spec("w").interval(s(10))], vec![kept(0, None)]);
    let w = sim.id("w");
    assert!(sim.is_running("w"), "the fire at 0: its claim is in flight");
    sim.event(Event::Shutdown);
    assert!(!sim.engine.is_stopped(), "the claim's answer is awaited");
    sim.engine.take_facts();
    sim.finish("w", AttemptResult::Refused(Refusal::Busy { why: "w runs on other".into(), retry: s(1) }.into()));
    assert!(sim.engine.state(w).run.is_none(), "the run never was");
    assert!(sim.engine.is_stopped(), "nothing is left in progress");
    let facts = sim.engine.take_facts();
    assert!(
        facts.iter().all(|f| !matches!(f, Fact::Finished { .. } | Fact::Started { .. })),
        "no run is recorded for a fire this instance never claimed: {facts:?}"
    );
}
