//! Property tests: random worker graphs driven by random event sequences,
//! with the SPEC's invariants checked after every step against a reference
//! model that does not share the engine's bookkeeping.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::sim::{Sim, spec};
use super::{AttemptResult, Event, Phase};
use crate::graph::WorkerId;
use crate::spec::{Misfire, Mode, Priority, WorkerSpec};

#[derive(Debug, Clone)]
struct Plan {
    kind: u8,
    period: u64,
    skip: bool,
    priority: u8,
    retries: u32,
    backoff: u64,
    max_failures: u32,
    initial_delay: u64,
    /// Take the longest durations a worker accepts (a century) for the
    /// backoff or the period.
    extreme: u8,
    /// Candidate dependencies (indices of earlier workers, so the graph is acyclic).
    deps: Vec<usize>,
    blocks: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Op {
    /// Advance virtual time by this many half-seconds.
    Advance(u64),
    /// Move the clock on by this many quarter-seconds without handling the
    /// timers that come due: the driver is late, and the next events (a
    /// trigger, a report, an enable) reach the engine first.
    Late(u64),
    /// End the k-th executing attempt (modulo their number) with a result.
    Finish(usize, u8),
    Trigger(usize),
    Enable(usize),
    Disable(usize),
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        0u8..10,
        1u64..8,
        any::<bool>(),
        0u8..4,
        0u32..3,
        1u64..4,
        0u32..4,
        0u64..3,
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        proptest::collection::vec(0usize..8, 0..3),
        proptest::collection::vec(0usize..8, 0..2),
    )
        .prop_map(
            |(kind, period, skip, priority, retries, backoff, max_failures, initial_delay, extreme, deps, blocks)| {
                Plan {
                    kind,
                    period,
                    skip,
                    priority,
                    retries,
                    backoff,
                    max_failures,
                    initial_delay,
                    extreme,
                    deps,
                    blocks,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..12).prop_map(Op::Advance),
        2 => (1u64..12).prop_map(Op::Late),
        6 => (any::<usize>(), 0u8..4).prop_map(|(k, r)| Op::Finish(k, r)),
        1 => (0usize..8).prop_map(Op::Trigger),
        1 => (0usize..8).prop_map(Op::Enable),
        1 => (0usize..8).prop_map(Op::Disable),
    ]
}

fn name(i: usize) -> String {
    format!("w{i}")
}

fn build(plans: &[Plan]) -> Vec<WorkerSpec> {
    let continuous: Vec<bool> = plans.iter().map(|p| p.kind == 9).collect();
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let secs = Duration::from_secs;
            let century = crate::schedule_syntax::MAX_DURATION;
            let period = if p.extreme == 1 { century } else { secs(p.period) };
            let backoff = if p.extreme == 2 { century } else { secs(p.backoff) };
            let mut s = spec(&name(i))
                .priority([Priority::Low, Priority::Normal, Priority::High, Priority::Critical][p.priority as usize])
                .misfire(if p.skip { Misfire::Skip } else { Misfire::FireOnce })
                .initial_delay(secs(p.initial_delay));
            s = match p.kind {
                0..=3 => s.interval(period),
                4..=5 => s.delay(period),
                6..=8 => s,
                _ => s.mode(Mode::Continuous).restart_delay(period),
            };
            if p.kind != 9 {
                s = s
                    .max_consecutive_failures(p.max_failures)
                    .retries(p.retries)
                    .backoff(backoff)
                    .max_backoff(backoff.max(secs(300)));
                for &d in &p.deps {
                    if d < i && !continuous[d] {
                        s = s.depends_on(name(d));
                    }
                }
            }
            for &b in &p.blocks {
                if b < plans.len() && b != i {
                    s = s.blocks(name(b));
                }
            }
            s
        })
        .collect()
}

/// The reference model of the dependency rule: dependency `a`'s fire that
/// judges a dependent's fire due at `due`, among the first `logged` fires
/// that reached an outcome (what the engine could have seen) and any later
/// one due strictly before `due`: the latest due at or before `due`, or `a`'s
/// first fire if none is (a dependent waits for a dependency that never
/// ran).
fn relevant_fire(engine: &super::Engine, a: WorkerId, due: Instant, logged: usize) -> Option<&super::FireLog> {
    let log: Vec<_> = engine
        .fire_log
        .iter()
        .enumerate()
        .filter(|&(i, l)| l.worker == a && (l.first_due < due || i < logged))
        .map(|(_, l)| l)
        .collect();
    log.iter().rev().find(|l| l.first_due <= due).or(log.first()).copied()
}

/// Checks every invariant; `new_starts` are the runs just started: the
/// worker, its fire's due time, and how many fires had an outcome then.
fn check(sim: &Sim, new_starts: &[(WorkerId, Instant, usize)]) -> Result<(), TestCaseError> {
    let engine = &sim.engine;
    let graph = engine.graph();
    let n = engine.len();

    // Never more executing than max_concurrent (Continuous not counted).
    let executing = (0..n)
        .filter(|&w| {
            !matches!(engine.config(w).schedule, crate::spec::Schedule::Continuous { .. })
                && matches!(engine.state(w).run.as_ref().map(|r| r.phase), Some(Phase::Executing { .. }))
        })
        .count();
    prop_assert!(executing <= engine.max_concurrent(), "{executing} executing > {}", engine.max_concurrent());
    prop_assert_eq!(executing, engine.executing());

    // Conflicting workers (blocks either way, or a dependency relation)
    // never have runs in progress together.
    for w in 0..n {
        if engine.state(w).run.is_none() {
            continue;
        }
        for &c in &graph.edges[w].conflicts {
            prop_assert!(
                engine.state(c).run.is_none(),
                "{} and {} run together",
                engine.config(w).name,
                engine.config(c).name
            );
        }
    }

    // A dependent starts only when each dependency's latest fire due at or
    // before its own fire has succeeded. (A dependency's fire due at the
    // very same instant that reached its outcome after the start came
    // second: it does not count.)
    for &(w, due, logged) in new_starts {
        for &a in &graph.edges[w].depends_on {
            let relevant = relevant_fire(engine, a, due, logged);
            prop_assert!(
                relevant.is_some_and(|l| l.succeeded),
                "{} started (fire due {:?}) but dependency {}'s relevant fire is {:?}",
                engine.config(w).name,
                due - sim.t0,
                engine.config(a).name,
                relevant
            );
        }
    }

    // An enabled Scheduled or Continuous worker always has a next fire, a
    // pending fire or a run in progress: it never silently stops firing.
    if !engine.is_shutting_down() {
        for w in 0..n {
            let state = engine.state(w);
            let scheduled = !matches!(engine.config(w).schedule, crate::spec::Schedule::Triggered);
            prop_assert!(
                !(scheduled && state.enabled())
                    || state.slot.is_some()
                    || state.pending.is_some()
                    || state.run.is_some(),
                "{} is enabled but will never fire again",
                engine.config(w).name
            );
        }
    }

    // Every attempt the engine counts as executing was handed to a lane
    // (the simulation plays the lanes), and every lane's attempt is one the
    // engine knows: a run in progress always has a live lane.
    for w in 0..n {
        let executing = match engine.state(w).run.as_ref() {
            Some(run) if matches!(run.phase, Phase::Executing { .. }) => Some(run.id),
            _ => None,
        };
        let lane = sim.running.get(&*engine.config(w).name).map(|(run, _)| *run);
        prop_assert_eq!(executing, lane, "{}'s executing run and its lane disagree", engine.config(w).name);
    }

    // At most one slot timer and one retry timer per worker.
    prop_assert!(engine.timers.len() <= 2 * n, "{} timers for {n} workers", engine.timers.len());

    // A fire recorded upstream_failed was judged by a dependency's latest
    // fire due at or before its own, and that fire failed. (A dependency's
    // fire due at the very same instant, offered after the verdict, came
    // second: it does not count.)
    for (at, entry) in engine.fire_log.iter().enumerate().filter(|(_, l)| l.upstream_failed.is_some()) {
        let due = entry.upstream_failed.expect("filtered");
        let judged_by_a_failure = graph.edges[entry.worker]
            .depends_on
            .iter()
            .any(|&a| relevant_fire(engine, a, due, at).is_some_and(|l| !l.succeeded));
        prop_assert!(
            judged_by_a_failure,
            "{}'s fire due {:?} was recorded upstream_failed, but no dependency's relevant fire failed",
            engine.config(entry.worker).name,
            due - sim.t0
        );
    }

    // Liveness: with a free slot, nothing that may run is left waiting.
    for w in 0..n {
        let state = engine.state(w);
        if !state.enabled() || engine.is_shutting_down() {
            continue;
        }
        let continuous = matches!(engine.config(w).schedule, crate::spec::Schedule::Continuous { .. });
        let slot_free = continuous || engine.executing() < engine.max_concurrent();
        if let Some(run) = &state.run {
            if let Phase::Queued { .. } = run.phase {
                prop_assert!(!slot_free, "{}'s retry is due with a free slot", engine.config(w).name);
            }
            continue;
        }
        let Some(fire) = &state.pending else { continue };
        if graph.edges[w].conflicts.iter().any(|&c| engine.state(c).run.is_some()) {
            continue;
        }
        let mut dependencies_allow = true;
        for &a in &graph.edges[w].depends_on {
            let dep = engine.state(a);
            if !dep.enabled() || dep.run.is_some() || dep.pending.as_ref().is_some_and(|p| p.first_due <= fire.due) {
                dependencies_allow = false;
                continue;
            }
            match relevant_fire(engine, a, fire.due, engine.fire_log.len()) {
                None => dependencies_allow = false,
                Some(l) => prop_assert!(
                    l.succeeded,
                    "{} still pending although dependency {} failed its relevant fire",
                    engine.config(w).name,
                    engine.config(a).name
                ),
            }
        }
        if dependencies_allow {
            prop_assert!(!slot_free, "{} may run, a slot is free, yet it waits", engine.config(w).name);
        }
    }
    Ok(())
}

fn run_case(plans: Vec<Plan>, max_concurrent: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let specs = build(&plans);
    let mut sim = Sim::new(specs, max_concurrent);
    let mut seen = 0;
    let mut step = |sim: &mut Sim| -> Result<(), TestCaseError> {
        let starts = sim.engine.start_log[seen..].to_vec();
        seen = sim.engine.start_log.len();
        check(sim, &starts)
    };
    step(&mut sim)?;
    for op in ops {
        match op {
            Op::Advance(halves) => sim.advance(Duration::from_millis(500 * halves)),
            Op::Late(quarters) => {
                sim.now += Duration::from_millis(250 * quarters);
                continue;
            }
            Op::Finish(k, result) => {
                let executing: Vec<String> = sim.running.keys().cloned().collect();
                if executing.is_empty() {
                    continue;
                }
                let name = &executing[k % executing.len()];
                let result = match result {
                    0 | 1 => AttemptResult::Succeeded,
                    2 => AttemptResult::Failed("boom".into()),
                    _ => AttemptResult::Panicked("oops".into()),
                };
                sim.finish(name, result);
            }
            Op::Trigger(i) if i < plans.len() => {
                let _ = sim.trigger(&name(i));
            }
            Op::Enable(i) if i < plans.len() => {
                let w = sim.id(&name(i));
                sim.event(Event::Enable(w));
            }
            Op::Disable(i) if i < plans.len() => {
                let w = sim.id(&name(i));
                sim.event(Event::Disable(w));
            }
            _ => continue,
        }
        step(&mut sim)?;
    }
    // Shutdown ends every run once the executing attempts report back.
    sim.event(Event::Shutdown);
    let executing: Vec<String> = sim.running.keys().cloned().collect();
    for name in executing {
        sim.finish(&name, AttemptResult::Cancelled);
    }
    prop_assert!(sim.engine.is_stopped());
    Ok(())
}

proptest! {
    // 4,096 cases by default (CI); PROPTEST_CASES=500000 for a long soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4096),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_upholds_the_scheduling_invariants(
        plans in proptest::collection::vec(plan(), 1..7),
        max_concurrent in 1usize..4,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        run_case(plans, max_concurrent, ops)?;
    }
}

/// Same, with fixed seeds in a loop, so a regression shows the failing seed.
#[test]
fn engine_invariants_hold_on_a_dense_graph() {
    let plans: Vec<Plan> = (0..6)
        .map(|i| Plan {
            kind: (i % 3) as u8 * 3,
            period: 2 + i as u64,
            skip: i % 2 == 0,
            priority: (i % 4) as u8,
            retries: 1,
            backoff: 1,
            max_failures: 2,
            initial_delay: 0,
            extreme: 0,
            deps: (0..i).collect(),
            blocks: vec![(i + 2) % 6],
        })
        .collect();
    let ops: Vec<Op> = (0..300u64)
        .map(|k| if k % 3 == 0 { Op::Advance(k % 5) } else { Op::Finish(k as usize, (k % 4) as u8) })
        .collect();
    run_case(plans, 2, ops).expect("invariants hold");
}
