//! The benchmark program of BENCH.md: runs workloads W1–W6 for orchestrator,
//! for the plain-tokio floor and, where it can express them (W1 at
//! whole-second intervals, W2), for the peers tokio-cron-scheduler and
//! clokwerk, in the same run;
//! repeats them, and prints a markdown table of medians, ratios and verdicts
//! against the README's targets.
//!
//! ```text
//! cargo run --release -p orchestrator-bench                  # full run (~10 min)
//! cargo run --release -p orchestrator-bench -- --only W1,W4 --reps 5
//! cargo run -p orchestrator-bench -- --smoke                 # CI: tiny sizes, seconds
//! ```
//!
//! Every measurement runs in a fresh child process (this binary re-executed
//! with a hidden `--child` argument), so that the CPU time and peak RSS of one
//! workload are not polluted by another's. One child can be run by hand, to
//! profile it (see the README's "Where the time goes"):
//! `orchestrator-bench --child orchestrator W1 workers=10000 interval_ms=1000 run_for_ms=6000`
//! (`floor` for the floor, `tokio-cron-scheduler` or `clokwerk` for the peers; the keys are those of `Case::to_args`). The
//! parent only schedules children, collects what they print and renders the
//! report; it never measures.
//!
//! The exit status is non-zero when something is functionally wrong (a lost
//! fire, a violated priority order, a chain that does not complete, a child
//! that crashed), never because a performance target was missed: CI machines
//! are too noisy for that.

mod cli;
mod measure;
mod outcome;
mod plan;
mod report;
mod runner;
mod workloads;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Bench(options)) => runner::run(&options),
        Ok(cli::Command::Child { system, case }) => workloads::child_main(&case, system),
        #[cfg(feature = "postgres")]
        Ok(cli::Command::Replica(args)) => workloads::cluster::replica_main(&args),
        #[cfg(not(feature = "postgres"))]
        Ok(cli::Command::Replica(_)) => {
            eprintln!("error: C1 needs the `postgres` feature");
            ExitCode::from(2)
        }
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}
