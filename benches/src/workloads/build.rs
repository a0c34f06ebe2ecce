//! W5: building (and so validating) a large random graph: the time of
//! `build()` and the memory each worker holds afterwards. No floor: plain
//! tokio has no graph.
//!
//! The graph, the same in every run (seeded): worker i depends on a uniform
//! 0..=4 distinct workers among 0..i (2 on average, acyclic by construction)
//! and blocks a uniform 0..=2 distinct other workers anywhere (1 on average).
//! Every worker runs every minute, with one shared no-op body.
//!
//! Memory is counted by the counting allocator from before the specs are
//! made to after `build()` returns, with the orchestrator alive: the bytes
//! live per worker, everything the worker costs the application, its spec
//! included. The resident-set growth over the same span is reported too, as
//! the kernel sees it (allocator slack included).

use std::time::Duration;

use orchestrator::{Orchestrator, WorkerSpec};
use tokio::time::Instant;

use crate::measure;
use crate::outcome::Outcome;

async fn noop() {}

pub fn orchestrator(workers: usize) -> Result<Outcome, String> {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0000 ^ workers as u64);
    let name = |i: usize| format!("w{i:06}");

    measure::counting(true);
    let rss_before = measure::current_rss_bytes();
    let heap_before = measure::live_heap_bytes();
    measure::reset_peak_heap();

    let mut picked = Vec::new();
    let specs: Vec<WorkerSpec> = (0..workers)
        .map(|i| {
            let mut spec = WorkerSpec::new(name(i), noop).interval(Duration::from_secs(60));
            let dependencies = rng.usize(0..=4).min(i);
            for j in distinct(&mut rng, &mut picked, dependencies, |rng| rng.usize(0..i)) {
                spec = spec.depends_on(name(j));
            }
            let others = rng.usize(0..=2).min(workers - 1);
            let other = |rng: &mut fastrand::Rng| (i + 1 + rng.usize(0..workers - 1)) % workers;
            for j in distinct(&mut rng, &mut picked, others, other) {
                spec = spec.blocks(name(j));
            }
            spec
        })
        .collect();
    drop(picked);

    let started = Instant::now();
    let built = Orchestrator::builder().without_registered_workers().seed(1).workers(specs).build();
    let build_time = started.elapsed();

    let heap_after = measure::live_heap_bytes();
    let heap_peak = measure::peak_heap_bytes();
    let rss_after = measure::current_rss_bytes();
    measure::counting(false);

    let mut outcome = Outcome::default();
    outcome.check(
        "random_graph_builds",
        built.is_ok(),
        built.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
    );
    outcome.metric("build_ms", build_time.as_secs_f64() * 1e3);
    outcome.metric("heap_per_worker_bytes", (heap_after - heap_before) as f64 / workers as f64);
    outcome.metric("peak_heap_per_worker_bytes", (heap_peak - heap_before) as f64 / workers as f64);
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        outcome.metric("rss_per_worker_bytes", (after - before) / workers as f64);
    }
    drop(built);
    Ok(outcome)
}

/// `count` distinct values drawn with `draw` (which must be able to yield at
/// least `count` distinct values), in `picked` (reused to spare allocations).
fn distinct<'a>(
    rng: &mut fastrand::Rng,
    picked: &'a mut Vec<usize>,
    count: usize,
    mut draw: impl FnMut(&mut fastrand::Rng) -> usize,
) -> impl Iterator<Item = usize> + 'a {
    picked.clear();
    while picked.len() < count {
        let value = draw(rng);
        if !picked.contains(&value) {
            picked.push(value);
        }
    }
    picked.iter().copied()
}
