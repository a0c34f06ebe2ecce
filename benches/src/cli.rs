//! Command-line parsing: the public flags, and the hidden `--child` form the
//! runner uses to re-execute this binary for one measurement.

use crate::plan::{Case, System};

pub const USAGE: &str = "\
usage: orchestrator-bench [--smoke] [--reps N] [--only W1,W3,...]

  --smoke      tiny sizes and durations (seconds, debug builds included);
               exits non-zero on functional failures only
  --reps N     repetitions of each workload and system (default 3; 1 with --smoke)
  --only LIST  run only these workloads (comma-separated, repeatable), e.g. W1,W4
  --help       this text";

pub enum Command {
    /// The benchmark: plan, run children, report.
    Bench(Options),
    /// One measurement in this process (hidden; used by the runner).
    Child {
        system: System,
        case: Case,
    },
    /// One replica of C1 (hidden; started by C1's coordinator).
    Replica(#[cfg_attr(not(feature = "postgres"), allow(dead_code))] Vec<String>),
    Help,
}

pub struct Options {
    pub smoke: bool,
    pub reps: usize,
    /// Workload ids (`W1`...), upper-cased; empty means all.
    pub only: Vec<String>,
    /// The arguments as given, for the report's command line.
    pub args: Vec<String>,
}

impl Options {
    pub fn selects(&self, case: &Case) -> bool {
        self.only.is_empty() || self.only.iter().any(|id| id == case.workload())
    }
}

pub fn parse(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let args: Vec<String> = args.collect();
    if args.first().map(String::as_str) == Some("--child") {
        let system = args.get(1).ok_or("--child needs a system")?;
        let system = System::parse(system)?;
        let case = Case::from_args(&args[2..])?;
        return Ok(Command::Child { system, case });
    }
    if args.first().map(String::as_str) == Some("--replica") {
        return Ok(Command::Replica(args[1..].to_vec()));
    }
    let mut smoke = false;
    let mut reps = None;
    let mut only = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--reps" => {
                let value = rest.next().ok_or("--reps needs a number")?;
                let n: usize = value.parse().map_err(|_| format!("--reps: `{value}` is not a number"))?;
                if n == 0 {
                    return Err("--reps must be at least 1".into());
                }
                reps = Some(n);
            }
            "--only" => {
                let value = rest.next().ok_or("--only needs a list of workloads, e.g. W1,W3")?;
                for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                    let Some(known) = crate::plan::WORKLOADS.iter().find(|w| w.eq_ignore_ascii_case(id)) else {
                        return Err(format!(
                            "--only: unknown workload `{id}` (known: {})",
                            crate::plan::WORKLOADS.join(", ")
                        ));
                    };
                    only.push(known.to_string());
                }
            }
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let reps = reps.unwrap_or(if smoke { 1 } else { 3 });
    Ok(Command::Bench(Options { smoke, reps, only, args }))
}
