//! What one child process reports, and the line protocol it travels in:
//! `metric <name> <value>` and `check <name> pass|fail <detail>`, one per
//! line on stdout (stderr stays free for panics and diagnostics).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The numbers and functional checks of one measurement.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub metrics: BTreeMap<String, f64>,
    pub checks: Vec<Check>,
}

/// A functional property that must hold whatever the machine's speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Outcome {
    pub fn metric(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.to_string(), value);
    }

    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check { name: name.to_string(), passed, detail: detail.into() });
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }

    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.metrics {
            // `{:?}` prints the shortest representation that parses back exactly.
            let _ = writeln!(out, "metric {name} {value:?}");
        }
        for check in &self.checks {
            let verdict = if check.passed { "pass" } else { "fail" };
            let _ = writeln!(out, "check {} {verdict} {}", check.name, check.detail.replace('\n', " "));
        }
        out
    }

    pub fn from_lines(text: &str) -> Result<Outcome, String> {
        let mut outcome = Outcome::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.splitn(4, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("metric"), Some(name), Some(value)) => {
                    let value = value.parse().map_err(|_| format!("bad metric line `{line}`"))?;
                    outcome.metric(name, value);
                }
                (Some("check"), Some(name), Some(verdict @ ("pass" | "fail"))) => {
                    outcome.check(name, verdict == "pass", words.next().unwrap_or(""));
                }
                _ => return Err(format!("unexpected line from child: `{line}`")),
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_survives_the_trip_through_lines() {
        let mut outcome = Outcome::default();
        outcome.metric("lateness_p99_ms", 0.1234567);
        outcome.metric("fires_run", 16000.0);
        outcome.check("no_fire_lost", false, "3 of 16000 fires\nlost");
        outcome.check("chain_completes", true, "");
        let parsed = Outcome::from_lines(&outcome.to_lines()).expect("own output parses");
        assert_eq!(parsed.metrics, outcome.metrics);
        assert_eq!(parsed.checks[0].detail, "3 of 16000 fires lost");
        assert!(parsed.checks[1].passed);
    }
}
