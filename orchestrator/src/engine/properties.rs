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
    /// Candidate dependencies (indices of earlier workers, so the graph is acyclic).
    deps: Vec<usize>,
    blocks: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Op {
    /// Advance virtual time by this many half-seconds.
    Advance(u64),
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
        proptest::collection::vec(0usize..8, 0..3),
        proptest::collection::vec(0usize..8, 0..2),
    )
        .prop_map(|(kind, period, skip, priority, retries, backoff, max_failures, initial_delay, deps, blocks)| {
            Plan { kind, period, skip, priority, retries, backoff, max_failures, initial_delay, deps, blocks }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..12).prop_map(Op::Advance),
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
            let mut s = spec(&name(i))
                .priority([Priority::Low, Priority::Normal, Priority::High, Priority::Critical][p.priority as usize])
                .misfire(if p.skip { Misfire::Skip } else { Misfire::FireOnce })
                .max_consecutive_failures(p.max_failures)
                .initial_delay(secs(p.initial_delay));
            s = match p.kind {
                0..=3 => s.interval(secs(p.period)),
                4..=5 => s.delay(secs(p.period)),
                6..=8 => s,
                _ => s.mode(Mode::Continuous).restart_delay(secs(p.period)),
            };
            if p.kind != 9 {
                s = s.retries(p.retries).backoff(secs(p.backoff));
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

/// The fire a run or a dependent's pending fire stands for.
#[derive(Debug, Clone, Copy)]
struct FireDue {
    due: Instant,
}

/// Checks every invariant; `starts` are the first attempts just started,
/// with their fire's due time.
fn check(sim: &Sim, new_starts: &[(WorkerId, FireDue)]) -> Result<(), TestCaseError> {
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
    // before its own fire has succeeded.
    for &(w, fire) in new_starts {
        for &a in &graph.edges[w].depends_on {
            let log: Vec<_> = engine.fire_log.iter().filter(|l| l.worker == a).collect();
            let relevant = log.iter().rev().find(|l| l.first_due <= fire.due).or(log.first());
            prop_assert!(
                relevant.is_some_and(|l| l.succeeded),
                "{} started (fire due {:?}) but dependency {}'s relevant fire is {:?}",
                engine.config(w).name,
                fire.due - sim.t0,
                engine.config(a).name,
                relevant
            );
        }
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
            let log: Vec<_> = engine.fire_log.iter().filter(|l| l.worker == a).collect();
            match log.iter().rev().find(|l| l.first_due <= fire.due).or(log.first()) {
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
    let mut seen = sim.started.len();
    let mut step = |sim: &mut Sim| -> Result<(), TestCaseError> {
        let starts: Vec<(WorkerId, FireDue)> = sim.started[seen..]
            .iter()
            .filter(|s| s.attempt == 1)
            .filter_map(|s| {
                let w = sim.id(&s.worker);
                sim.engine.state(w).run.as_ref().map(|r| (w, FireDue { due: r.fire.due }))
            })
            .collect();
        seen = sim.started.len();
        check(sim, &starts)
    };
    step(&mut sim)?;
    for op in ops {
        match op {
            Op::Advance(halves) => sim.advance(Duration::from_millis(500 * halves)),
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
    // 512 cases by default; PROPTEST_CASES=100000 for a long soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
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
            deps: (0..i).collect(),
            blocks: vec![(i + 2) % 6],
        })
        .collect();
    let ops: Vec<Op> = (0..300u64)
        .map(|k| if k % 3 == 0 { Op::Advance(k % 5) } else { Op::Finish(k as usize, (k % 4) as u8) })
        .collect();
    run_case(plans, 2, ops).expect("invariants hold");
}
