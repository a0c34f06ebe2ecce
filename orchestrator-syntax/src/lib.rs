//! The one definition of which cron expressions and time zones orchestrator
//! accepts.
//!
//! A support crate of [`tokio-orchestrator`], not meant to be used on its
//! own: both the runtime and the `#[worker]` attribute
//! (`tokio-orchestrator-macros`) depend on it, so that the attribute rejects
//! at compile time exactly what the runtime would reject at startup. Its API
//! follows what those two crates need and carries no stability promise
//! beyond the exact version they pin. It must stay free of anything but
//! `croner`, `chrono` and `chrono-tz`.
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
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| value_out_of_range(expr).unwrap_or_else(|| e.to_string()))?;
    // The Gregorian calendar repeats every 400 years, weekdays included: an
    // expression that matches nothing in the search croner makes from 2000
    // (to year 5000) matches nothing ever. Refused here, such a worker
    // never reaches the scheduler, where every next-slot computation would
    // repeat that search.
    let start = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0));
    if start.is_some_and(|start| cron.find_next_occurrence(&start, true).is_err()) {
        return Err("it never fires: no date matches it (is the day of the month in that month, \
                    e.g. not `30 2` for February 30th?)"
            .to_string());
    }
    Ok(cron)
}

/// The longest duration a worker option accepts: 100 years. Anything longer
/// is surely a mistake (`Duration::MAX` meaning "never"), and could not be
/// added to a clock reading without overflowing.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// Refuses a duration longer than [`MAX_DURATION`] for the option `key`.
pub fn check_duration(key: &str, duration: std::time::Duration) -> Result<(), String> {
    if duration <= MAX_DURATION {
        return Ok(());
    }
    Err(format!(
        "`{key}` is longer than the limit of 100 years ({} days): to never do something, leave it out \
         or disable the worker instead",
        duration.as_secs() / 86_400
    ))
}

/// Names the field and its range when a rejected expression has a number
/// out of range (croner says only "Number out of bounds."): `hour 25 is out
/// of range 0-23`. `None` when every number is in range, so that croner's
/// own reason is kept for other mistakes. Only consulted after croner
/// refused the expression, so it can never reject one croner accepts.
fn value_out_of_range(expr: &str) -> Option<String> {
    const MINUTE_FIELDS: [(&str, u32, u32); 5] =
        [("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7)];
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names = match fields.len() {
        5 => &MINUTE_FIELDS[..],
        6 => &[("second", 0, 59)][..],
        _ => return None,
    };
    let names = names.iter().chain(if fields.len() == 6 { &MINUTE_FIELDS[..] } else { &[] });
    for (field, &(name, min, max)) in fields.iter().zip(names) {
        // `1-5,10/2`: the values are the range bounds before any `/step`;
        // `5#3` (nth weekday) and `15W`/`5L` carry a modifier after them.
        for item in field.trim_start_matches('+').split(',') {
            let range = item.split('/').next().unwrap_or_default();
            for bound in range.split('-') {
                let digits = bound.split('#').next().unwrap_or_default().trim_end_matches(['L', 'l', 'W', 'w']);
                if let Ok(value) = digits.parse::<u32>()
                    && !(min..=max).contains(&value)
                {
                    let note = if name == "day-of-week" { " (0 and 7 are Sunday)" } else { "" };
                    return Some(format!("{name} {value} is out of range {min}-{max}{note}"));
                }
            }
        }
    }
    None
}

/// Looks up an IANA time zone name such as `"Europe/Paris"` or `"UTC"`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone name (expected e.g. \"UTC\" or \"Europe/Paris\")"))
}
