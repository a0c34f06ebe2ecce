//! W4: on-demand runs back to back. `loops` concurrent loops, each
//! triggering its own Triggered no-op worker and waiting for the outcome, for
//! `run_for`: completed runs per second and CPU per run. The floor's loop
//! spawns a no-op task and awaits it.

use std::time::Duration;

use orchestrator::WorkerSpec;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Running;
use crate::measure::cpu_seconds;
use crate::outcome::Outcome;

/// What one loop did.
#[derive(Default)]
struct Tally {
    runs: u64,
    failures: u64,
    first_failure: Option<String>,
}

pub async fn orchestrator(loops: usize, run_for: Duration) -> Result<Outcome, String> {
    let specs = (0..loops).map(|i| WorkerSpec::new(name(i), || std::future::ready(())));
    let running = Running::start(super::build(specs, loops)?);
    running.started().await?;
    let outcome = measure(loops, run_for, |i, until| {
        let handle = running.handle.clone();
        async move {
            let name = name(i);
            let mut tally = Tally::default();
            while Instant::now() < until {
                match handle.trigger(&name).await {
                    Ok(run) if run.is_success() => tally.runs += 1,
                    Ok(run) => tally.fail(format!("run {run}")),
                    Err(e) => tally.fail(e.to_string()),
                }
            }
            tally
        }
    })
    .await;
    running.stop().await?;
    Ok(outcome)
}

pub async fn floor(loops: usize, run_for: Duration) -> Result<Outcome, String> {
    Ok(measure(loops, run_for, |_, until| async move {
        let mut tally = Tally::default();
        while Instant::now() < until {
            match tokio::spawn(async {}).await {
                Ok(()) => tally.runs += 1,
                Err(e) => tally.fail(e.to_string()),
            }
        }
        tally
    })
    .await)
}

/// Runs `loops` copies of `body` as separate tasks until `run_for` has
/// passed, timing them together.
async fn measure<F, Fut>(loops: usize, run_for: Duration, body: F) -> Outcome
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = Tally> + Send + 'static,
{
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let until = started + run_for;
    let mut tasks = JoinSet::new();
    for i in 0..loops {
        tasks.spawn(body(i, until));
    }
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => {
                total.runs += tally.runs;
                total.failures += tally.failures;
                total.first_failure = total.first_failure.or(tally.first_failure);
            }
            Err(e) => total.fail(format!("a loop's task failed: {e}")),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;

    let mut outcome = Outcome::default();
    outcome.metric("runs", total.runs as f64);
    outcome.metric("runs_per_s", total.runs as f64 / elapsed);
    outcome.metric("cpu_per_run_us", cpu / total.runs.max(1) as f64 * 1e6);
    outcome.check(
        "every_trigger_succeeds",
        total.failures == 0 && total.runs > 0,
        format!(
            "{} runs, {} failed{}",
            total.runs,
            total.failures,
            total.first_failure.map(|f| format!(" (first: {f})")).unwrap_or_default()
        ),
    );
    outcome
}

impl Tally {
    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }
}

fn name(i: usize) -> String {
    format!("on-demand-{i:02}")
}
