//! The attribute's `key = value, ...` list, parsed into typed settings that
//! remember where they were written.
//!
//! Parsing never stops at the first mistake: the list is cut at its top-level
//! commas and each entry is judged on its own, so a bad value, an unknown key
//! and a duplicate in one attribute are all reported together. A key whose
//! value is wrong is still recorded as given, so that the rules of
//! `check.rs` neither miss it nor pile a second error onto the same mistake.

use std::time::Duration;

use proc_macro2::{Ident, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::{LitStr, Path};

use crate::diag::{Errors, did_you_mean};
use crate::values::{self, Misfire, Mode, Priority, Scope, Value, WorkerName};

/// Every key the attribute accepts, in the order of the reference table.
pub(crate) const KEYS: &[&str] = &[
    "interval",
    "delay",
    "cron",
    "timezone",
    "mode",
    "restart_delay",
    "timeout",
    "retries",
    "backoff",
    "max_backoff",
    "priority",
    "depends_on",
    "blocks",
    "max_consecutive_failures",
    "name",
    "initial_delay",
    "jitter",
    "misfire",
    "enabled",
    "scope",
    "crate",
];

/// The keys that give a schedule; a worker has at most one.
pub(crate) const SCHEDULE_KEYS: &[&str] = &["interval", "delay", "cron"];

/// An example value per key, for messages that show how to write one.
fn example(key: &str) -> &'static str {
    match key {
        "interval" => "\"60s\"",
        "delay" | "initial_delay" => "\"10s\"",
        "cron" => "\"0 */5 * * * *\"",
        "timezone" => "\"Europe/Paris\"",
        "mode" => "Continuous",
        "restart_delay" | "backoff" | "jitter" => "\"1s\"",
        "timeout" => "\"30s\"",
        "retries" => "3",
        "max_backoff" => "\"5m\"",
        "priority" => "High",
        "depends_on" => "fetch_data",
        "blocks" => "[\"cleanup\"]",
        "max_consecutive_failures" => "5",
        "name" => "\"nightly-report\"",
        "misfire" => "Skip",
        "enabled" => "false",
        "scope" => "Instance",
        "crate" => "\"my_app::orchestrator\"",
        _ => "value",
    }
}

/// Names users reach for that the attribute spells differently, with the
/// hint to give (tokio-macros does the same for renamed flavors).
const OTHER_NAMES: &[(&str, &str)] = &[
    ("every", "for a fixed rate write `interval = \"...\"`; for a pause after each run, `delay = \"...\"`"),
    ("period", "for a fixed rate write `interval = \"...\"`; for a pause after each run, `delay = \"...\"`"),
    ("schedule", "a schedule is given with one of `interval`, `delay` or `cron`"),
    ("tz", "did you mean `timezone`?"),
    ("max_retries", "did you mean `retries`? (the number of extra attempts after a failed one)"),
    ("attempts", "did you mean `retries`? (the number of extra attempts after a failed one)"),
    ("after", "did you mean `depends_on`?"),
    ("requires", "did you mean `depends_on`?"),
    ("dependencies", "did you mean `depends_on`?"),
    ("excludes", "did you mean `blocks`? (mutual exclusion)"),
    ("exclusive_with", "did you mean `blocks`? (mutual exclusion)"),
    ("conflicts_with", "did you mean `blocks`? (mutual exclusion)"),
    ("disabled", "to start the worker disabled, write `enabled = false`"),
    ("start_delay", "did you mean `initial_delay`?"),
];

/// One setting as written: its key (for errors about the key), its value,
/// and the value's tokens (for errors about the value).
pub(crate) struct Given<T> {
    pub(crate) key: Ident,
    pub(crate) value: T,
    pub(crate) tokens: TokenStream,
}

/// Every setting of one `#[worker(...)]`; `None` when absent or invalid.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) interval: Option<Given<Duration>>,
    pub(crate) delay: Option<Given<Duration>>,
    pub(crate) cron: Option<Given<LitStr>>,
    pub(crate) timezone: Option<Given<LitStr>>,
    pub(crate) mode: Option<Given<Mode>>,
    pub(crate) restart_delay: Option<Given<Duration>>,
    pub(crate) timeout: Option<Given<Duration>>,
    pub(crate) retries: Option<Given<u32>>,
    pub(crate) backoff: Option<Given<Duration>>,
    pub(crate) max_backoff: Option<Given<Duration>>,
    pub(crate) priority: Option<Given<Priority>>,
    pub(crate) depends_on: Option<Given<Vec<WorkerName>>>,
    pub(crate) blocks: Option<Given<Vec<WorkerName>>>,
    pub(crate) max_consecutive_failures: Option<Given<u32>>,
    pub(crate) name: Option<Given<LitStr>>,
    pub(crate) initial_delay: Option<Given<Duration>>,
    pub(crate) jitter: Option<Given<Duration>>,
    pub(crate) misfire: Option<Given<Misfire>>,
    pub(crate) enabled: Option<Given<bool>>,
    pub(crate) scope: Option<Given<Scope>>,
    pub(crate) krate: Option<Given<Path>>,
    /// Every key written, valid value or not, in order, with its first spelling.
    given: Vec<(&'static str, Ident)>,
}

impl Args {
    /// Parses the attribute's arguments, recording every mistake in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let split = values::split_commas(tokens);
        for comma in split.stray_commas {
            errors.at(comma, "expected `key = value` before `,`");
        }
        for entry in split.items {
            if let Some((key, value)) = errors.ok(parse_entry(entry)) {
                args.set(key, value, errors);
            }
        }
        args
    }

    /// The key as written, if it was given (even with an invalid value).
    pub(crate) fn key(&self, name: &str) -> Option<&Ident> {
        self.given.iter().find(|(k, _)| *k == name).map(|(_, ident)| ident)
    }

    /// The schedule keys given, in the order they were written.
    pub(crate) fn schedule_keys(&self) -> Vec<&Ident> {
        self.given.iter().filter(|(k, _)| SCHEDULE_KEYS.contains(k)).map(|(_, ident)| ident).collect()
    }

    fn set(&mut self, key: Ident, value: Value, errors: &mut Errors) {
        let written = key.unraw().to_string();
        let Some(&known) = KEYS.iter().find(|k| **k == written) else {
            errors.at(key.span(), unknown_key(&written));
            return;
        };
        if self.key(known).is_some() {
            errors.at(key.span(), format!("duplicate key `{known}`: it is already set earlier in this attribute"));
            return;
        }
        self.given.push((known, key.clone()));
        let at = Place { key: &key, value: &value };
        match known {
            "interval" => {
                let why = "a fixed-rate schedule needs a period (for back-to-back runs use `mode = Continuous`)";
                self.interval = at.keep(errors.ok(values::positive_duration(&value, known, why)));
            }
            "delay" => self.delay = at.keep(errors.ok(values::duration(&value, known))),
            "cron" => self.cron = at.keep(errors.ok(values::cron(&value))),
            "timezone" => self.timezone = at.keep(errors.ok(values::timezone(&value))),
            "mode" => self.mode = at.keep(errors.ok(values::choice(&value))),
            "restart_delay" => self.restart_delay = at.keep(errors.ok(values::duration(&value, known))),
            "timeout" => {
                let why = "a run attempt that exceeds it is cancelled, so zero would fail every run";
                self.timeout = at.keep(errors.ok(values::positive_duration(&value, known, why)));
            }
            "retries" => self.retries = at.keep(errors.ok(values::integer(&value, known))),
            "backoff" => self.backoff = at.keep(errors.ok(values::duration(&value, known))),
            "max_backoff" => self.max_backoff = at.keep(errors.ok(values::duration(&value, known))),
            "priority" => self.priority = at.keep(errors.ok(values::choice(&value))),
            "depends_on" => self.depends_on = at.keep(errors.ok(values::worker_names(&value, known))),
            "blocks" => self.blocks = at.keep(errors.ok(values::worker_names(&value, known))),
            "max_consecutive_failures" => {
                self.max_consecutive_failures = at.keep(errors.ok(values::integer(&value, known)));
            }
            "name" => self.name = at.keep(errors.ok(values::name(&value))),
            "initial_delay" => self.initial_delay = at.keep(errors.ok(values::duration(&value, known))),
            "jitter" => self.jitter = at.keep(errors.ok(values::duration(&value, known))),
            "misfire" => self.misfire = at.keep(errors.ok(values::choice(&value))),
            "enabled" => self.enabled = at.keep(errors.ok(values::boolean(&value, known))),
            "scope" => self.scope = at.keep(errors.ok(values::choice(&value))),
            "crate" => self.krate = at.keep(errors.ok(values::crate_path(&value))),
            _ => errors.at(key.span(), unknown_key(&written)),
        }
    }
}

/// Where a setting was written, to wrap its parsed value.
struct Place<'a> {
    key: &'a Ident,
    value: &'a Value,
}

impl Place<'_> {
    fn keep<T>(&self, value: Option<T>) -> Option<Given<T>> {
        Some(Given { key: self.key.clone(), value: value?, tokens: self.value.tokens().clone() })
    }
}

/// `key = value`, with errors that say what the entry is missing.
fn parse_entry(entry: TokenStream) -> syn::Result<(Ident, Value)> {
    let mut trees = entry.into_iter();
    let key = match trees.next() {
        Some(TokenTree::Ident(key)) => key,
        Some(other) => {
            return Err(syn::Error::new(other.span(), "expected a key such as `interval`, followed by `= value`"));
        }
        None => return Err(syn::Error::new(proc_macro2::Span::call_site(), "expected `key = value`")),
    };
    let written = key.unraw().to_string();
    let example = example(&written);
    match trees.next() {
        Some(TokenTree::Punct(eq)) if eq.as_char() == '=' => {
            let value: TokenStream = trees.collect();
            if value.is_empty() {
                return Err(syn::Error::new(
                    eq.span(),
                    format!("expected a value after `{written} =`, e.g. `{written} = {example}`"),
                ));
            }
            Ok((key, Value::parse(value)))
        }
        Some(other) => {
            Err(syn::Error::new(other.span(), format!("expected `=` after `{written}`: write `{written} = {example}`")))
        }
        None => Err(syn::Error::new(key.span(), format!("`{written}` needs a value: write `{written} = {example}`"))),
    }
}

/// The message for a key the attribute does not know, with the closest valid
/// key or, failing that, the list of keys.
pub(crate) fn unknown_key(written: &str) -> String {
    if let Some((_, hint)) = OTHER_NAMES.iter().find(|(other, _)| *other == written) {
        return format!("unknown key `{written}`: {hint}");
    }
    match did_you_mean(written, KEYS) {
        Some(close) => format!("unknown key `{written}`: did you mean `{close}`?"),
        None => format!("unknown key `{written}`: the keys are {}", KEYS.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        let messages = errors.combined().into_iter().flat_map(|e| e.into_iter()).map(|e| e.to_string()).collect();
        (args, messages)
    }

    #[test]
    fn every_key_is_parsed() {
        let (args, errors) = parse(quote!(
            interval = "1m",
            timezone = "UTC",
            mode = Scheduled,
            restart_delay = "2s",
            timeout = "30s",
            retries = 2,
            backoff = "1s",
            max_backoff = "1m",
            priority = "High",
            depends_on = [a, "b"],
            blocks = c,
            max_consecutive_failures = 0,
            name = "n",
            initial_delay = "5s",
            jitter = "1s",
            misfire = Skip,
            enabled = false,
            scope = Instance,
            crate = "::orchestrator"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.interval.map(|g| g.value), Some(Duration::from_secs(60)));
        assert_eq!(args.priority.map(|g| g.value), Some(Priority::High));
        assert_eq!(args.depends_on.map(|g| g.value.len()), Some(2));
        assert_eq!(args.enabled.map(|g| g.value), Some(false));
        assert_eq!(args.max_consecutive_failures.map(|g| g.value), Some(0));
        assert!(args.krate.is_some());
    }

    #[test]
    fn unknown_keys_get_the_closest_valid_key() {
        assert_eq!(unknown_key("timout"), "unknown key `timout`: did you mean `timeout`?");
        assert_eq!(unknown_key("priorty"), "unknown key `priorty`: did you mean `priority`?");
        assert_eq!(unknown_key("tz"), "unknown key `tz`: did you mean `timezone`?");
        assert!(unknown_key("disabled").contains("enabled = false"));
        assert!(unknown_key("zzz").contains("the keys are interval, delay, cron"));
    }

    #[test]
    fn all_mistakes_are_reported_together() {
        let (args, errors) =
            parse(quote!(intervall = "1m", retries = "3", retries = 4, priority = Urgent, timeout 30, delay =));
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].contains("did you mean `interval`"));
        assert!(errors[1].contains("write `retries = 3`"));
        assert!(errors[2].contains("duplicate key `retries`"));
        assert!(errors[3].contains("unknown priority `Urgent`"));
        assert!(errors[4].contains("expected `=` after `timeout`"));
        assert!(errors[5].contains("expected a value after `delay =`"));
        // A key with a bad value still counts as given.
        assert!(args.retries.is_none());
        assert!(args.key("retries").is_some());
    }

    #[test]
    fn schedule_keys_come_in_written_order() {
        let (args, _) = parse(quote!(cron = "* * * * *", priority = Low, interval = "1s"));
        let keys: Vec<String> = args.schedule_keys().iter().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["cron", "interval"]);
    }

    #[test]
    fn empty_arguments_are_fine() {
        let (args, errors) = parse(quote!());
        assert!(errors.is_empty());
        assert!(args.schedule_keys().is_empty());
    }
}
