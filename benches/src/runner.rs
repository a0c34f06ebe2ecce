//! The parent process: runs every selected case, for each system and
//! repetition, in a fresh child process (this binary with `--child`), then
//! prints the report. It measures nothing itself.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::cli::Options;
use crate::outcome::Outcome;
use crate::plan::{self, Case, System};
use crate::report::{self, CaseResults, RunInfo};

pub fn run(options: &Options) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this program's path to re-run it per workload: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cases: Vec<Case> = plan::plan(options.smoke).into_iter().filter(|c| options.selects(c)).collect();
    let load_before = load_average();
    let began = Instant::now();
    let mut results = Vec::new();
    for case in cases {
        let mut result = CaseResults { case, outcomes: Vec::new(), errors: Vec::new() };
        for rep in 0..options.reps {
            // Alternate which system goes first, so that a drift in the shared
            // machine's load does not always favour the same side.
            let mut systems = result.case.systems().to_vec();
            if rep % 2 == 1 {
                systems.reverse();
            }
            for system in systems {
                eprint!("{} · {} · rep {}/{} … ", result.case.label(), system.name(), rep + 1, options.reps);
                let started = Instant::now();
                match run_child(&exe, &result.case, system) {
                    Ok(outcome) => {
                        let failed = outcome.checks.iter().filter(|c| !c.passed).count();
                        let note = if failed > 0 { format!(" ({failed} checks FAILED)") } else { String::new() };
                        eprintln!("{:.1} s{note}", started.elapsed().as_secs_f64());
                        result.outcomes.push((system, outcome));
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        result.errors.push(format!("{} ({}): {e}", result.case.label(), system.name()));
                    }
                }
            }
        }
        results.push(result);
    }

    let info = RunInfo {
        command: command_line(options),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        profile: if cfg!(debug_assertions) { "debug" } else { "release" },
        reps: options.reps,
        commit: commit(),
        load_before,
        load_after: load_average(),
        took: began.elapsed(),
    };
    print!("{}", report::render(&info, &results));
    if report::all_sound(&results) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn run_child(exe: &Path, case: &Case, system: System) -> Result<Outcome, String> {
    let output = Command::new(exe)
        .arg("--child")
        .arg(system.name())
        .args(case.to_args())
        .stdin(Stdio::null())
        // The child's panics and errors go straight to the terminal.
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the child process: {e}"))?;
    if !output.status.success() {
        return Err(format!("the child process exited with {}", output.status));
    }
    Outcome::from_lines(&String::from_utf8_lossy(&output.stdout))
}

/// The command that reproduces this run, for the report.
fn command_line(options: &Options) -> String {
    let release = if cfg!(debug_assertions) { "" } else { " --release" };
    let args = if options.args.is_empty() { String::new() } else { format!(" -- {}", options.args.join(" ")) };
    format!("cargo run{release} -p orchestrator-bench{args}")
}

/// The 1-minute load average (Linux), a hint of how busy the shared machine
/// was.
fn load_average() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next().map(str::to_string)
}

/// The commit measured, marked `-dirty` when the working tree has changes.
fn commit() -> Option<String> {
    let output = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
