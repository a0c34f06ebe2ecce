//! Rules that involve several keys, or a key and the fn itself: one schedule,
//! a mode that agrees with it, keys that only apply to one mode, `timezone`
//! only with `cron`, backoff bounds, and no worker that depends on or blocks
//! itself.
//!
//! These mirror `WorkerSpec::check` in the runtime (which still runs at
//! startup, for programmatic workers): everything the attribute alone can
//! tell is a compile error instead of a startup error. A rule about a key
//! whose value was already rejected is skipped, so one mistake gives one
//! error.

use proc_macro2::Ident;
use syn::Path;
use syn::ext::IdentExt;

use crate::args::{Args, Given};
use crate::diag::Errors;
use crate::values::{Mode, WorkerName};

pub(crate) fn check(args: &Args, fn_ident: &Ident, errors: &mut Errors) {
    let schedule = one_schedule(args, errors);
    let mode = mode(args, schedule, errors);
    mode_specific_keys(args, mode, errors);
    timezone_needs_cron(args, schedule, errors);
    backoff_bounds(args, errors);
    not_itself(args, fn_ident, errors);
}

/// At most one of `interval`, `delay`, `cron`; returns the first one given.
fn one_schedule<'a>(args: &'a Args, errors: &mut Errors) -> Option<&'a Ident> {
    let keys = args.schedule_keys();
    let (first, extra) = keys.split_first()?;
    for key in extra {
        errors.at(
            key.span(),
            format!("a worker has one schedule, but `{first}` is already given: keep either `{first}` or `{key}`"),
        );
    }
    Some(first)
}

/// The worker's mode, explicit or inferred from the schedule; `None` when
/// `mode` was given with an invalid value (its error is already reported).
fn mode(args: &Args, schedule: Option<&Ident>, errors: &mut Errors) -> Option<Mode> {
    let Some(mode) = &args.mode else {
        return match (args.key("mode"), schedule) {
            (Some(_), _) => None,
            (None, Some(_)) => Some(Mode::Scheduled),
            (None, None) => Some(Mode::Triggered),
        };
    };
    match (mode.value, schedule) {
        (Mode::Triggered, Some(key)) => errors.at(
            key.span(),
            format!(
                "`{key}` gives a schedule, but `mode = Triggered` runs only when triggered or when its \
                 dependencies complete: remove `{key}`, or remove `mode` (a schedule makes the worker Scheduled)"
            ),
        ),
        (Mode::Continuous, Some(key)) => errors.at(
            key.span(),
            format!(
                "`{key}` gives a schedule, but a Continuous worker has none: it is restarted `restart_delay` \
                 after each return; remove `{key}`, or remove `mode = Continuous`"
            ),
        ),
        (Mode::Scheduled, None) => errors.spanned(
            &mode.tokens,
            "`mode = Scheduled` needs a schedule: add `interval`, `delay` or `cron`, \
             or remove `mode` (without a schedule a worker is Triggered)",
        ),
        _ => {}
    }
    Some(mode.value)
}

fn mode_specific_keys(args: &Args, mode: Option<Mode>, errors: &mut Errors) {
    let Some(mode) = mode else { return };
    if let Some(key) = args.key("restart_delay")
        && mode != Mode::Continuous
    {
        errors.at(
            key.span(),
            format!(
                "`restart_delay` only applies to `mode = Continuous`, and this worker is {}: remove it, \
                 or add `mode = Continuous`",
                mode_name(mode)
            ),
        );
    }
    if let Some(key) = args.key("retries")
        && mode == Mode::Continuous
    {
        errors.at(
            key.span(),
            "a Continuous worker is not retried: it is restarted `restart_delay` after it returns or fails; \
             remove `retries`",
        );
    }
    if let Some(key) = args.key("max_consecutive_failures")
        && mode == Mode::Continuous
    {
        errors.at(
            key.span(),
            "a Continuous worker is never disabled for failing: it is restarted with a backoff that grows from \
             `restart_delay` up to `max_backoff` while it keeps failing; remove `max_consecutive_failures`",
        );
    }
    if let Some(key) = args.key("depends_on")
        && mode == Mode::Continuous
    {
        errors.at(
            key.span(),
            "a Continuous worker never finishes, and a dependency never runs at the same time as its \
             dependents, so it would hold its dependencies off forever: remove `depends_on` \
             (use `blocks` to keep workers apart)",
        );
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Scheduled => "Scheduled",
        Mode::Triggered => "Triggered (it has no schedule)",
        Mode::Continuous => "Continuous",
    }
}

fn timezone_needs_cron(args: &Args, schedule: Option<&Ident>, errors: &mut Errors) {
    let Some(key) = args.key("timezone") else { return };
    if args.key("cron").is_some() {
        return;
    }
    let message = match schedule {
        Some(other) => format!(
            "`timezone` sets the zone a `cron` schedule is read in, but this worker's schedule is `{other}`, \
             which does not depend on the time zone: remove `timezone`"
        ),
        None => "`timezone` sets the zone a `cron` schedule is read in, and this worker has no `cron`: \
                 remove `timezone`, or add `cron = \"...\"`"
            .to_owned(),
    };
    errors.at(key.span(), message);
}

fn backoff_bounds(args: &Args, errors: &mut Errors) {
    if let (Some(backoff), Some(max)) = (&args.backoff, &args.max_backoff)
        && max.value < backoff.value
    {
        errors.spanned(
            &max.tokens,
            format!(
                "`max_backoff` ({}) is smaller than `backoff` ({}): the pause between attempts starts at \
                 `backoff` and doubles up to `max_backoff`",
                humantime::format_duration(max.value),
                humantime::format_duration(backoff.value)
            ),
        );
    }
}

/// A worker that depends on itself would never run; one that blocks itself
/// says nothing (a worker never overlaps with itself anyway) and is surely a
/// slip. Caught by string name and by a path that can only mean this fn.
fn not_itself(args: &Args, fn_ident: &Ident, errors: &mut Errors) {
    // With an invalid `name`, the worker's name is unknown: judge paths only.
    let name = match &args.name {
        Some(name) => Some(name.value.value()),
        None if args.key("name").is_some() => None,
        None => Some(fn_ident.unraw().to_string()),
    };
    let lists: [(&Option<Given<Vec<WorkerName>>>, &str); 2] = [
        (&args.depends_on, "cannot depend on itself: it would wait for its own run forever"),
        (&args.blocks, "cannot block itself: a worker never runs concurrently with itself anyway"),
    ];
    for (list, why) in lists {
        let Some(list) = list else { continue };
        let key = &list.key;
        for entry in &list.value {
            match entry {
                WorkerName::Name(s) if Some(s.value()) == name => {
                    errors.spanned(s, format!("worker `{}` {why}; remove it from `{key}`", s.value()));
                }
                WorkerName::Path(path) if is_this_fn(path, fn_ident) => {
                    errors.spanned(path, format!("worker `{fn_ident}` {why}; remove it from `{key}`"));
                }
                _ => {}
            }
        }
    }
}

/// `fetch_data` or `self::fetch_data` next to `async fn fetch_data`. A longer
/// path may or may not lead back here; the dependency graph at startup judges
/// it (as a cycle).
fn is_this_fn(path: &Path, fn_ident: &Ident) -> bool {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.unraw().to_string()).collect();
    let this = fn_ident.unraw().to_string();
    path.leading_colon.is_none()
        && match segments.as_slice() {
            [only] => *only == this,
            [module, last] => module == "self" && *last == this,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::{Span, TokenStream};
    use quote::quote;

    fn errors_of(tokens: TokenStream, fn_name: &str) -> Vec<String> {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        assert!(errors.is_empty(), "the arguments themselves must be valid");
        check(&args, &Ident::new(fn_name, Span::call_site()), &mut errors);
        errors.combined().into_iter().flat_map(|e| e.into_iter()).map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_valid_combination_passes() {
        assert!(errors_of(quote!(cron = "0 0 * * *", timezone = "Europe/Paris", retries = 3), "f").is_empty());
        assert!(errors_of(quote!(mode = Continuous, restart_delay = "5s"), "f").is_empty());
        assert!(errors_of(quote!(mode = Scheduled, delay = "5s"), "f").is_empty());
        assert!(errors_of(quote!(backoff = "1s", max_backoff = "1s"), "f").is_empty());
        assert!(errors_of(quote!(depends_on = [other, "other2", crate::f]), "f").is_empty());
    }

    #[test]
    fn two_schedules_are_refused_at_the_second() {
        let errors = errors_of(quote!(interval = "1s", cron = "* * * * *"), "f");
        assert_eq!(
            errors,
            ["a worker has one schedule, but `interval` is already given: keep either `interval` or `cron`"]
        );
    }

    #[test]
    fn mode_and_schedule_must_agree() {
        assert!(errors_of(quote!(interval = "1s", mode = Triggered), "f")[0].contains("`mode = Triggered` runs only"));
        assert!(errors_of(quote!(delay = "1s", mode = Continuous), "f")[0].contains("a Continuous worker has none"));
        assert!(errors_of(quote!(mode = Scheduled), "f")[0].contains("`mode = Scheduled` needs a schedule"));
    }

    #[test]
    fn mode_specific_keys_need_their_mode() {
        assert!(errors_of(quote!(interval = "1s", restart_delay = "1s"), "f")[0].contains("this worker is Scheduled"));
        assert!(errors_of(quote!(restart_delay = "1s"), "f")[0].contains("Triggered (it has no schedule)"));
        assert!(errors_of(quote!(mode = Continuous, retries = 1), "f")[0].contains("remove `retries`"));
        assert!(
            errors_of(quote!(mode = Continuous, max_consecutive_failures = 3), "f")[0]
                .contains("remove `max_consecutive_failures`")
        );
        assert!(errors_of(quote!(mode = Continuous, depends_on = "a"), "f")[0].contains("remove `depends_on`"));
    }

    #[test]
    fn timezone_needs_a_cron_schedule() {
        assert!(errors_of(quote!(timezone = "UTC"), "f")[0].contains("has no `cron`"));
        assert!(errors_of(quote!(interval = "1m", timezone = "UTC"), "f")[0].contains("schedule is `interval`"));
    }

    #[test]
    fn max_backoff_cannot_be_below_backoff() {
        let errors = errors_of(quote!(backoff = "10s", max_backoff = "5s"), "f");
        assert!(errors[0].starts_with("`max_backoff` (5s) is smaller than `backoff` (10s)"), "{errors:?}");
    }

    #[test]
    fn a_worker_cannot_name_itself() {
        assert_eq!(errors_of(quote!(depends_on = "f"), "f").len(), 1);
        assert_eq!(errors_of(quote!(depends_on = [a, f]), "f").len(), 1);
        assert_eq!(errors_of(quote!(blocks = self::f), "f").len(), 1);
        assert_eq!(errors_of(quote!(name = "custom", blocks = "custom"), "f").len(), 1);
        // Under a custom name, the fn name as a string is some other worker.
        assert!(errors_of(quote!(name = "custom", depends_on = "f"), "f").is_empty());
        // A path through a module may be another fn of the same name.
        assert!(errors_of(quote!(depends_on = crate::other::f), "f").is_empty());
    }
}
