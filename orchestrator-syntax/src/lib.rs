//! The one definition of which cron expressions and time zones orchestrator
//! accepts.
//!
//! A support crate of [`tokio-orchestrator`], not meant to be used on its
//! own: both the runtime and the `#[worker]` attribute
//! (`tokio-orchestrator-macros`) depend on it, so that the attribute rejects
//! at compile time exactly what the runtime would reject at startup. Its API
//! follows what those two crates need and carries no stability promise
//! beyond the exact version they pin. It must stay free of anything but
//! `croner` and `chrono-tz`.
//!
//! ```
//! assert!(orchestrator_syntax::parse_cron("0 */5 * * * *").is_ok());
//! assert!(orchestrator_syntax::parse_cron("every five minutes").is_err());
//! assert!(orchestrator_syntax::parse_timezone("Europe/Paris").is_ok());
//! ```
//!
//! [`tokio-orchestrator`]: https://docs.rs/tokio-orchestrator

#![warn(missing_docs)]

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
