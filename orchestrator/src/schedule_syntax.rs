//! The one definition of which cron expressions and time zones orchestrator
//! accepts.
//!
//! This file is compiled twice: into the runtime crate, and (through
//! `#[path]`) into `orchestrator-macros`, so that the attribute rejects at
//! compile time exactly what the runtime would reject at startup. It must stay
//! free of anything but `croner` and `chrono-tz`.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses a cron expression of 5 fields (minute granularity) or 6 fields
/// (leading seconds field), as croner does with these settings.
///
/// The error is croner's own reason, prefixed with what was wrong.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    let is_alias = expr.trim_start().starts_with('@');
    if !is_alias && !(5..=6).contains(&fields) {
        return Err(format!(
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week) \
             or 6 (with a leading seconds field), this one has {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// Looks up an IANA time zone name such as `"Europe/Paris"` or `"UTC"`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone name (expected e.g. \"UTC\" or \"Europe/Paris\")"))
}
