//! Turns the outcomes of every repetition into the markdown table: medians
//! per system (orchestrator, the floor, and the peers in the cases they
//! can express), the ratio orchestrator / floor, and verdicts — PASS/MISS
//! against the README's performance targets (informative: never fails the
//! run), PASS/FAIL for functional checks (fail the run).

use std::fmt::Write as _;

use crate::measure::median;
use crate::outcome::Outcome;
use crate::plan::{Case, SYSTEMS, System, thousands};

/// Everything measured for one case.
pub struct CaseResults {
    pub case: Case,
    /// One entry per successful child, in the order run.
    pub outcomes: Vec<(System, Outcome)>,
    /// Children that crashed or printed nonsense.
    pub errors: Vec<String>,
}

impl CaseResults {
    fn of(&self, system: System) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(move |(s, _)| *s == system).map(|(_, o)| o)
    }

    fn median(&self, system: System, metric: &str) -> Option<f64> {
        let values: Vec<f64> = self.of(system).filter_map(|o| o.get(metric)).collect();
        median(&values)
    }

    /// Functional checks that failed, with their system and detail.
    pub fn failed_checks(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for (system, outcome) in &self.outcomes {
            for check in outcome.checks.iter().filter(|c| !c.passed) {
                failed.push(format!("{} ({}): {}: {}", self.case.label(), system.name(), check.name, check.detail));
            }
        }
        failed
    }

    fn check_passed(&self, system: System, name: &str) -> Option<bool> {
        let mut verdicts = self.of(system).flat_map(|o| &o.checks).filter(|c| c.name == name).peekable();
        verdicts.peek()?;
        Some(verdicts.all(|c| c.passed))
    }
}

/// A performance target of the README, judged on the medians.
#[derive(Clone, Copy)]
enum Target {
    None,
    /// orchestrator ≤ factor × floor
    RatioAtMost(f64),
    /// orchestrator ≥ factor × floor
    RatioAtLeast(f64),
    /// orchestrator ≤ floor + margin (in the metric's unit)
    FloorPlusAtMost(f64, &'static str),
    /// orchestrator < limit (in the metric's unit)
    Below(f64, &'static str),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::None => String::new(),
            Target::RatioAtMost(f) => format!("≤ {f}× floor"),
            Target::RatioAtLeast(f) => format!("≥ {f}× floor"),
            Target::FloorPlusAtMost(m, unit) => format!("≤ floor + {m} {unit}"),
            Target::Below(limit, unit) => format!("< {} {unit}", number(limit)),
        }
    }

    fn met(self, orchestrator: Option<f64>, floor: Option<f64>) -> Option<bool> {
        let o = orchestrator?;
        match self {
            Target::None => None,
            Target::RatioAtMost(f) => Some(o <= f * floor?),
            Target::RatioAtLeast(f) => Some(o >= f * floor?),
            Target::FloorPlusAtMost(m, _) => Some(o <= floor? + m),
            Target::Below(limit, _) => Some(o < limit),
        }
    }
}

/// One line of the table.
enum Row {
    /// The medians of a metric, with a target or none.
    Metric { label: &'static str, metric: &'static str, target: Target },
    /// Fires run against fires due, worst repetition; judged by a check.
    Fires { check: &'static str },
    /// A functional check, showing a count metric per system.
    Check { label: &'static str, check: &'static str, count: &'static str },
}

fn rows(case: &Case) -> Vec<Row> {
    use Row::*;
    let metric = |label, metric| Metric { label, metric, target: Target::None };
    match *case {
        Case::FixedRate { workers, .. } => {
            // The README's W1 targets are stated for N = 10,000.
            let judged = workers >= 10_000;
            let target = |t| if judged { t } else { Target::None };
            vec![
                Fires { check: "no_fire_lost" },
                metric("lateness p50 (ms)", "lateness_p50_ms"),
                Metric {
                    label: "lateness p99 (ms)",
                    metric: "lateness_p99_ms",
                    target: target(Target::FloorPlusAtMost(1.0, "ms")),
                },
                metric("lateness max (ms)", "lateness_max_ms"),
                Metric {
                    label: "CPU per 1,000 fires (s)",
                    metric: "cpu_per_1000_fires_s",
                    target: target(Target::RatioAtMost(1.5)),
                },
                metric("peak RSS (MiB)", "peak_rss_mib"),
                metric("starts on a burst's busiest CPU (%, info)", "burst_busiest_cpu_pct"),
            ]
        }
        Case::StatusLoad { .. } => vec![
            Fires { check: "no_fire_lost" },
            metric("lateness p50 (ms)", "lateness_p50_ms"),
            metric("lateness p99 (ms)", "lateness_p99_ms"),
            metric("lateness max (ms)", "lateness_max_ms"),
            metric("CPU per 1,000 fires (s)", "cpu_per_1000_fires_s"),
            metric("status() calls/s", "status_calls_per_s"),
            metric("status() p50 (ms)", "status_p50_ms"),
            metric("status() p99 (ms)", "status_p99_ms"),
            metric("status() max (ms)", "status_max_ms"),
        ],
        Case::Cluster { .. } => vec![
            Fires { check: "no_fire_lost" },
            metric("fires run per second", "fires_per_s"),
            metric("slots recorded missed, with a reason", "fires_missed"),
            Check { label: "lost fires (slot without a row)", check: "no_fire_lost", count: "fires_lost" },
            Check { label: "doubled fires", check: "no_fire_doubled", count: "fires_doubled" },
            metric("lateness p50 (ms)", "lateness_p50_ms"),
            metric("lateness p99 (ms)", "lateness_p99_ms"),
            metric("lateness max (ms)", "lateness_max_ms"),
            metric("DB round trips per fire, cluster-wide", "round_trips_per_fire"),
            metric("… of which claims", "claim_round_trips_per_fire"),
            metric("… of which writes (finish)", "write_round_trips_per_fire"),
            metric("… of which polls, renewals, other", "other_round_trips_per_fire"),
            metric("DB function time per fire (ms)", "db_ms_per_fire"),
            metric("DB time per claim (ms)", "db_ms_per_claim"),
        ],
        Case::Idle { .. } => vec![
            Metric { label: "CPU while idle (s)", metric: "cpu_s", target: Target::RatioAtMost(1.01) },
            metric("peak RSS (MiB)", "peak_rss_mib"),
        ],
        Case::Chain { .. } => vec![
            Metric {
                label: "first start → last start (µs)",
                metric: "chain_total_us",
                target: Target::Below(5_000.0, "µs"),
            },
            metric("per hop (µs)", "chain_per_hop_us"),
        ],
        Case::TriggerLoops { .. } => vec![
            Metric { label: "runs/s", metric: "runs_per_s", target: Target::RatioAtLeast(0.5) },
            metric("CPU per run (µs)", "cpu_per_run_us"),
        ],
        Case::Build { workers } => vec![
            Metric {
                label: "build + validate (ms)",
                metric: "build_ms",
                // The README's target is stated for N = 100,000.
                target: if workers >= 100_000 { Target::Below(200.0, "ms") } else { Target::None },
            },
            Metric {
                label: "heap per worker after build (B)",
                metric: "heap_per_worker_bytes",
                target: Target::Below(2048.0, "B"),
            },
            metric("peak heap per worker, specs + build (B)", "peak_heap_per_worker_bytes"),
            metric("RSS growth per worker (B)", "rss_per_worker_bytes"),
        ],
        Case::PriorityBurst { .. } => vec![
            metric("runs/s", "runs_per_s"),
            Check {
                label: "start order respects priority",
                check: "start_order_respects_priority",
                count: "priority_violations",
            },
            metric("body starts out of priority order (info)", "body_start_inversions"),
        ],
    }
}

/// What the table's header says about the run.
pub struct RunInfo {
    pub command: String,
    pub date: String,
    pub cores: usize,
    pub profile: &'static str,
    pub reps: usize,
    pub commit: Option<String>,
    pub load_before: Option<String>,
    pub load_after: Option<String>,
    pub took: std::time::Duration,
}

pub fn render(info: &RunInfo, results: &[CaseResults]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## orchestrator benchmark — {}\n", info.date);
    let _ = writeln!(out, "`{}`\n", info.command);
    let mut facts = vec![
        format!("{} cores", info.cores),
        format!("{} build", info.profile),
        format!("medians of {} repetitions, each workload in a fresh process", info.reps),
    ];
    facts.extend(info.commit.as_ref().map(|c| format!("commit {c}")));
    if let (Some(before), Some(after)) = (&info.load_before, &info.load_after) {
        facts.push(format!("load average {before} before, {after} after"));
    }
    facts.push(format!("took {:.0} s", info.took.as_secs_f64()));
    let _ = writeln!(out, "{}\n", facts.join(" · "));

    let names: Vec<&str> = SYSTEMS.iter().map(|s| s.name()).collect();
    let _ = writeln!(out, "| workload | metric | {} | ratio | target | verdict |", names.join(" | "));
    let _ = writeln!(out, "|---|---|{}--:|---|---|", "--:|".repeat(SYSTEMS.len()));
    for result in results {
        let label = result.case.label();
        for row in rows(&result.case) {
            let cells = match row {
                Row::Metric { label: metric_label, metric, target } => {
                    let o = result.median(System::Orchestrator, metric);
                    let f = result.median(System::Floor, metric);
                    let verdict = match target.met(o, f) {
                        Some(true) => "PASS",
                        Some(false) => "MISS",
                        None => "",
                    };
                    let values = SYSTEMS.map(|s| cell(result.median(s, metric)));
                    [metric_label.to_string(), values.join(" | "), ratio(o, f), target.describe(), verdict.into()]
                }
                Row::Fires { check } => {
                    let fires = |system| {
                        let worst = result
                            .of(system)
                            .filter_map(|o| Some((o.get("fires_run")?, o.get("fires_expected")?)))
                            .min_by(|a, b| a.0.total_cmp(&b.0));
                        worst.map_or("–".into(), |(run, due)| {
                            format!("{} / {}", thousands(run as usize), thousands(due as usize))
                        })
                    };
                    let verdict = verdict(result.check_passed(System::Orchestrator, check));
                    [
                        "fires run / due (worst rep)".into(),
                        SYSTEMS.map(fires).join(" | "),
                        String::new(),
                        "none lost".into(),
                        verdict.into(),
                    ]
                }
                Row::Check { label: check_label, check, count } => {
                    let orchestrator_passed = result.check_passed(System::Orchestrator, check);
                    let shown = SYSTEMS.map(|s| {
                        let worst = result
                            .of(s)
                            .filter_map(|o| o.get(count))
                            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                        worst.map_or("–".into(), |v| format!("{} violations", v as u64))
                    });
                    [
                        check_label.into(),
                        shown.join(" | "),
                        String::new(),
                        "0 violations".into(),
                        verdict(orchestrator_passed).into(),
                    ]
                }
            };
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        if !result.errors.is_empty() {
            let blanks = " |".repeat(SYSTEMS.len() + 2);
            let _ = writeln!(out, "| {label} | {} failed repetitions |{blanks} FAIL |", result.errors.len());
        }
    }
    let _ = writeln!(
        out,
        "\nratio = orchestrator / floor (plain tokio doing the same by hand). tokio-cron-scheduler, clokwerk: peers, \
         in the cases they can express (W1 at whole-second intervals, W2; – elsewhere), measured the same way; \
         their lost fires are shown, not judged. PASS/MISS: the README's performance targets, on the medians (a MISS never \
         fails the run). PASS/FAIL: functional checks, which fail the run."
    );
    let failures: Vec<String> =
        results.iter().flat_map(|r| r.failed_checks().into_iter().chain(r.errors.iter().cloned())).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n**Functional failures:**\n");
        for failure in failures {
            let _ = writeln!(out, "- {failure}");
        }
    }
    out
}

/// Whether the run is functionally sound: no failed check, no failed child.
pub fn all_sound(results: &[CaseResults]) -> bool {
    results.iter().all(|r| r.errors.is_empty() && r.failed_checks().is_empty())
}

fn verdict(passed: Option<bool>) -> &'static str {
    match passed {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "–",
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or("–".into(), number)
}

fn ratio(orchestrator: Option<f64>, floor: Option<f64>) -> String {
    match (orchestrator, floor) {
        (Some(o), Some(f)) if f > 0.0 => format!("{}×", number(o / f)),
        _ => String::new(),
    }
}

/// Three significant digits below 1,000; whole numbers with separators above.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let rounded = value.round();
        let sign = if rounded < 0.0 { "-" } else { "" };
        return format!("{sign}{}", thousands(rounded.abs() as usize));
    }
    if magnitude == 0.0 {
        return "0".into();
    }
    let decimals = (2 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(number(12345.6), "12,346");
        assert_eq!(number(123.456), "123");
        assert_eq!(number(1.23456), "1.23");
        assert_eq!(number(0.0123456), "0.0123");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "–");
    }

    #[test]
    fn targets_judge_the_orchestrator_against_the_floor() {
        assert_eq!(Target::RatioAtMost(1.5).met(Some(1.4), Some(1.0)), Some(true));
        assert_eq!(Target::RatioAtLeast(0.5).met(Some(0.4), Some(1.0)), Some(false));
        assert_eq!(Target::FloorPlusAtMost(1.0, "ms").met(Some(2.5), Some(1.6)), Some(true));
        assert_eq!(Target::Below(200.0, "ms").met(Some(250.0), None), Some(false));
        assert_eq!(Target::RatioAtMost(1.5).met(Some(1.0), None), None);
    }
}
