//! What is measured: the cases of BENCH.md with their sizes (full or smoke),
//! the two systems, and the encoding of a case as child-process arguments.

use std::collections::HashMap;
use std::time::Duration;

pub const WORKLOADS: [&str; 8] = ["W1", "W1s", "W2", "W3", "W4", "W5", "W6", "C1"];

/// Who runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Orchestrator,
    /// Plain tokio doing the same job by hand: the best a scheduler on tokio
    /// can hope for.
    Floor,
    /// tokio-cron-scheduler, a peer: for the workloads it can express (W1
    /// at whole-second intervals, W2).
    TokioCronScheduler,
    /// clokwerk, a peer: for the same workloads.
    Clokwerk,
}

/// Every system, in the order of the table's columns.
pub const SYSTEMS: [System; 4] = [System::Orchestrator, System::Floor, System::TokioCronScheduler, System::Clokwerk];

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Orchestrator => "orchestrator",
            System::Floor => "floor",
            System::TokioCronScheduler => "tokio-cron-scheduler",
            System::Clokwerk => "clokwerk",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "orchestrator" => Ok(System::Orchestrator),
            "floor" => Ok(System::Floor),
            "tokio-cron-scheduler" => Ok(System::TokioCronScheduler),
            "clokwerk" => Ok(System::Clokwerk),
            other => Err(format!("unknown system `{other}`")),
        }
    }
}

/// One workload at one size.
#[derive(Debug, Clone, PartialEq)]
pub enum Case {
    /// W1: `workers` fixed-rate workers, no-op body, for `run_for`.
    FixedRate { workers: usize, interval: Duration, run_for: Duration },
    /// W2: `workers` hourly workers, none due, for `idle_for`.
    Idle { workers: usize, idle_for: Duration },
    /// W3: `length` Triggered workers, each depending on the previous one; the
    /// first is triggered `rounds` times.
    Chain { length: usize, rounds: usize },
    /// W4: `loops` concurrent loops, each triggering its own no-op worker back
    /// to back, for `run_for`.
    TriggerLoops { loops: usize, run_for: Duration },
    /// W5: build and validate a random graph of `workers` workers.
    Build { workers: usize },
    /// W6: `workers` workers due at the same instant, `max_concurrent` slots,
    /// bodies sleeping `body`.
    PriorityBurst { workers: usize, max_concurrent: usize, body: Duration },
    /// W1s: W1 with a task calling `Handle::status()` in a loop (a dashboard
    /// gone wild). Its "floor" column is W1 itself, without the loop, run in
    /// the same way: the ratio is what status costs the scheduler.
    StatusLoad { workers: usize, interval: Duration, run_for: Duration },
    /// C1: `replicas` processes on one PostgreSQL schema, each with the
    /// same `workers` Cluster workers every `interval`, measured for
    /// `run_for`. Its "floor" column is one orchestrator on the in-memory
    /// store with the same workers (W1 at that size), in the same run.
    Cluster { replicas: usize, workers: usize, interval: Duration, run_for: Duration },
}

/// The cases of a run, in the order they are run and reported.
pub fn plan(smoke: bool) -> Vec<Case> {
    let ms = Duration::from_millis;
    let s = Duration::from_secs;
    if smoke {
        // Small enough for a debug build on a busy CI machine, large enough
        // that every functional check has something to check.
        vec![
            Case::FixedRate { workers: 20, interval: ms(100), run_for: ms(500) },
            Case::FixedRate { workers: 200, interval: ms(100), run_for: ms(500) },
            // Whole seconds, so that the peer's code runs too.
            Case::FixedRate { workers: 20, interval: s(1), run_for: s(2) },
            Case::Idle { workers: 100, idle_for: ms(500) },
            Case::Chain { length: 50, rounds: 3 },
            Case::TriggerLoops { loops: 1, run_for: ms(300) },
            Case::TriggerLoops { loops: 64, run_for: ms(300) },
            Case::Build { workers: 1_000 },
            Case::Build { workers: 5_000 },
            Case::PriorityBurst { workers: 300, max_concurrent: 4, body: ms(1) },
            Case::StatusLoad { workers: 200, interval: ms(100), run_for: ms(500) },
        ]
        .into_iter()
        .chain(cfg!(feature = "postgres").then_some(Case::Cluster {
            replicas: 3,
            workers: 20,
            interval: s(1),
            run_for: s(3),
        }))
        .collect()
    } else {
        vec![
            Case::FixedRate { workers: 1_000, interval: s(1), run_for: s(15) },
            Case::FixedRate { workers: 10_000, interval: s(1), run_for: s(15) },
            Case::Idle { workers: 1_000, idle_for: s(20) },
            Case::Chain { length: 50, rounds: 21 },
            Case::TriggerLoops { loops: 1, run_for: s(10) },
            Case::TriggerLoops { loops: 64, run_for: s(10) },
            Case::Build { workers: 10_000 },
            Case::Build { workers: 100_000 },
            Case::PriorityBurst { workers: 10_000, max_concurrent: 4, body: ms(1) },
            Case::StatusLoad { workers: 10_000, interval: s(1), run_for: s(15) },
        ]
        .into_iter()
        .chain(cfg!(feature = "postgres").then_some(Case::Cluster {
            replicas: 3,
            workers: 1_000,
            interval: s(1),
            run_for: s(15),
        }))
        .collect()
    }
}

impl Case {
    pub fn workload(&self) -> &'static str {
        match self {
            Case::FixedRate { .. } => "W1",
            Case::Idle { .. } => "W2",
            Case::Chain { .. } => "W3",
            Case::TriggerLoops { .. } => "W4",
            Case::Build { .. } => "W5",
            Case::PriorityBurst { .. } => "W6",
            Case::StatusLoad { .. } => "W1s",
            Case::Cluster { .. } => "C1",
        }
    }

    /// The case as the table's first column shows it.
    pub fn label(&self) -> String {
        let id = self.workload();
        match self {
            Case::FixedRate { workers, interval, run_for } => {
                format!("{id} N={} every {interval:?}, {run_for:?}", thousands(*workers))
            }
            Case::Idle { workers, idle_for } => format!("{id} N={} hourly, {idle_for:?} idle", thousands(*workers)),
            Case::Chain { length, rounds } => format!("{id} chain of {length} (×{rounds})"),
            Case::TriggerLoops { loops: 1, run_for } => format!("{id} 1 worker back to back, {run_for:?}"),
            Case::TriggerLoops { loops, run_for } => format!("{id} {loops} workers concurrently, {run_for:?}"),
            Case::Build { workers } => format!("{id} build N={}", thousands(*workers)),
            Case::PriorityBurst { workers, max_concurrent, body } => {
                format!("{id} N={} at once, {max_concurrent} slots, {body:?} bodies", thousands(*workers))
            }
            Case::StatusLoad { workers, interval, run_for } => format!(
                "{id} N={} every {interval:?}, {run_for:?}, status() in a loop (\"floor\": W1 without it)",
                thousands(*workers)
            ),
            Case::Cluster { replicas, workers, interval, run_for } => format!(
                "{id} {replicas} replicas on PostgreSQL, N={} every {interval:?}, {run_for:?} (\"floor\": one process, \
                 in-memory store)",
                thousands(*workers)
            ),
        }
    }

    /// Who runs the case. W5 has no floor: plain tokio has no graph to
    /// validate. The peers (tokio-cron-scheduler, clokwerk) run W1 when the
    /// interval is whole seconds, and W2; they have no dependencies (W3), no
    /// trigger awaiting a run (W4), no graph (W5), no concurrency limit or
    /// priorities (W6).
    pub fn systems(&self) -> &'static [System] {
        use System::*;
        match self {
            Case::Build { .. } => &[Orchestrator],
            Case::FixedRate { interval, .. } if crate::workloads::peers_express(*interval) => {
                &[Orchestrator, Floor, TokioCronScheduler, Clokwerk]
            }
            Case::Idle { .. } => &[Orchestrator, Floor, TokioCronScheduler, Clokwerk],
            _ => &[Orchestrator, Floor],
        }
    }

    /// The case as `--child` arguments: the workload id, then `key=value`
    /// pairs (durations in milliseconds).
    pub fn to_args(&self) -> Vec<String> {
        let ms = |d: &Duration| d.as_millis().to_string();
        let pairs: Vec<(&str, String)> = match self {
            Case::FixedRate { workers, interval, run_for } | Case::StatusLoad { workers, interval, run_for } => {
                vec![("workers", workers.to_string()), ("interval_ms", ms(interval)), ("run_for_ms", ms(run_for))]
            }
            Case::Idle { workers, idle_for } => vec![("workers", workers.to_string()), ("idle_for_ms", ms(idle_for))],
            Case::Chain { length, rounds } => vec![("length", length.to_string()), ("rounds", rounds.to_string())],
            Case::TriggerLoops { loops, run_for } => vec![("loops", loops.to_string()), ("run_for_ms", ms(run_for))],
            Case::Build { workers } => vec![("workers", workers.to_string())],
            Case::Cluster { replicas, workers, interval, run_for } => vec![
                ("replicas", replicas.to_string()),
                ("workers", workers.to_string()),
                ("interval_ms", ms(interval)),
                ("run_for_ms", ms(run_for)),
            ],
            Case::PriorityBurst { workers, max_concurrent, body } => vec![
                ("workers", workers.to_string()),
                ("max_concurrent", max_concurrent.to_string()),
                ("body_ms", ms(body)),
            ],
        };
        std::iter::once(self.workload().to_string()).chain(pairs.into_iter().map(|(k, v)| format!("{k}={v}"))).collect()
    }

    pub fn from_args(args: &[String]) -> Result<Case, String> {
        let (id, pairs) = args.split_first().ok_or("--child needs a workload")?;
        let mut values = HashMap::new();
        for pair in pairs {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let value: u64 = value.parse().map_err(|_| format!("`{pair}`: not a number"))?;
            values.insert(key, value);
        }
        let get = |key: &str| values.get(key).copied().ok_or_else(|| format!("{id}: missing {key}="));
        let count = |key: &str| get(key).and_then(|v| usize::try_from(v).map_err(|_| format!("{key} too large")));
        let millis = |key: &str| get(key).map(Duration::from_millis);
        Ok(match id.as_str() {
            "W1" => Case::FixedRate {
                workers: count("workers")?,
                interval: millis("interval_ms")?,
                run_for: millis("run_for_ms")?,
            },
            "W1s" => Case::StatusLoad {
                workers: count("workers")?,
                interval: millis("interval_ms")?,
                run_for: millis("run_for_ms")?,
            },
            "C1" => Case::Cluster {
                replicas: count("replicas")?,
                workers: count("workers")?,
                interval: millis("interval_ms")?,
                run_for: millis("run_for_ms")?,
            },
            "W2" => Case::Idle { workers: count("workers")?, idle_for: millis("idle_for_ms")? },
            "W3" => Case::Chain { length: count("length")?, rounds: count("rounds")? },
            "W4" => Case::TriggerLoops { loops: count("loops")?, run_for: millis("run_for_ms")? },
            "W5" => Case::Build { workers: count("workers")? },
            "W6" => Case::PriorityBurst {
                workers: count("workers")?,
                max_concurrent: count("max_concurrent")?,
                body: millis("body_ms")?,
            },
            other => return Err(format!("unknown workload `{other}`")),
        })
    }
}

/// `10000` as `10,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planned_case_survives_the_trip_through_child_arguments() {
        for case in plan(false).into_iter().chain(plan(true)) {
            assert_eq!(Case::from_args(&case.to_args()), Ok(case));
        }
    }

    #[test]
    fn the_peer_runs_only_the_cases_it_can_express() {
        let peer_runs = |case: &Case| {
            let peers = [System::TokioCronScheduler, System::Clokwerk].map(|p| case.systems().contains(&p));
            assert_eq!(peers[0], peers[1], "both peers express the same cases");
            peers[0]
        };
        let s = Duration::from_secs;
        assert!(peer_runs(&Case::FixedRate { workers: 10, interval: s(1), run_for: s(2) }));
        assert!(!peer_runs(&Case::FixedRate { workers: 10, interval: Duration::from_millis(100), run_for: s(2) }));
        assert!(peer_runs(&Case::Idle { workers: 10, idle_for: s(1) }));
        assert!(!peer_runs(&Case::Chain { length: 3, rounds: 1 }));
        // Both plans run it somewhere, so that --smoke keeps its code working.
        assert!(plan(true).iter().any(peer_runs) && plan(false).iter().any(peer_runs));
    }

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
    }
}
