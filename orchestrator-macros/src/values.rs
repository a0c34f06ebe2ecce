//! What one attribute value is, and what it means for a key: durations, cron
//! expressions, time zones, the fixed choices (priority, mode, misfire,
//! scope), integers, booleans, strings, and worker names or paths.
//!
//! Each parser judges a single value and errs at that value with a message
//! that says what to write instead. Rules that involve several keys live in
//! `check.rs`; nothing here knows about other keys.

use std::time::Duration;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::Parser;
use syn::{Lit, LitStr, Path};

use crate::diag::{did_you_mean, one_of};
use crate::schedule_syntax;

/// A value as written after `key =`, classified by shape only.
pub(crate) struct Value {
    pub(crate) kind: ValueKind,
    /// The value's tokens, to underline all of it in an error.
    tokens: TokenStream,
}

pub(crate) enum ValueKind {
    /// `"60s"`, `3`, `true`.
    Lit(Lit),
    /// `High`, `fetch_data`, `crate::jobs::fetch_data`.
    Path(Path),
    /// `[a, "b"]`: items, and the spans of commas with nothing before them.
    List(Vec<Value>, Vec<Span>),
    /// Anything else (`-1`, `1 + 2`, `foo()`); only good for an error.
    Other,
}

impl Value {
    /// Classifies a non-empty run of tokens.
    pub(crate) fn parse(tokens: TokenStream) -> Value {
        Value { kind: classify(&tokens), tokens }
    }

    /// An error underlining the whole value.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> syn::Error {
        syn::Error::new_spanned(&self.tokens, message)
    }

    pub(crate) fn tokens(&self) -> &TokenStream {
        &self.tokens
    }

    fn as_str(&self) -> Option<&LitStr> {
        match &self.kind {
            ValueKind::Lit(Lit::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The value's single identifier, as in `priority = High`.
    fn as_ident(&self) -> Option<String> {
        match &self.kind {
            ValueKind::Path(p) => p.get_ident().map(|i| syn::ext::IdentExt::unraw(i).to_string()),
            _ => None,
        }
    }
}

fn classify(tokens: &TokenStream) -> ValueKind {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    if let [tree] = trees.as_slice() {
        match tree {
            TokenTree::Literal(_) => {
                if let Ok(lit) = syn::parse2::<Lit>(tokens.clone()) {
                    return ValueKind::Lit(lit);
                }
            }
            TokenTree::Ident(ident) if ident == "true" || ident == "false" => {
                if let Ok(lit) = syn::parse2::<Lit>(tokens.clone()) {
                    return ValueKind::Lit(lit);
                }
            }
            TokenTree::Group(group) if group.delimiter() == Delimiter::Bracket => {
                let split = split_commas(group.stream());
                return ValueKind::List(split.items.into_iter().map(Value::parse).collect(), split.stray_commas);
            }
            // An invisible group comes from a `macro_rules!` fragment such as
            // `$interval:expr`: look through it.
            TokenTree::Group(group) if group.delimiter() == Delimiter::None => return classify(&group.stream()),
            _ => {}
        }
    }
    match Path::parse_mod_style.parse2(tokens.clone()) {
        Ok(path) => ValueKind::Path(path),
        Err(_) => ValueKind::Other,
    }
}

/// Tokens cut at top-level commas (commas inside brackets or parentheses stay
/// in their item). A trailing comma is allowed.
pub(crate) struct Split {
    pub(crate) items: Vec<TokenStream>,
    /// Commas with nothing before them, as in `a,, b`.
    pub(crate) stray_commas: Vec<Span>,
}

pub(crate) fn split_commas(tokens: TokenStream) -> Split {
    let mut split = Split { items: Vec::new(), stray_commas: Vec::new() };
    let mut current = TokenStream::new();
    for tree in tokens {
        match tree {
            TokenTree::Punct(comma) if comma.as_char() == ',' => {
                if current.is_empty() {
                    split.stray_commas.push(comma.span());
                } else {
                    split.items.push(std::mem::take(&mut current));
                }
            }
            other => current.extend([other]),
        }
    }
    if !current.is_empty() {
        split.items.push(current);
    }
    split
}

// ----- durations -----

/// A duration written as a humantime string: `"500ms"`, `"60s"`, `"1h 30m"`.
pub(crate) fn duration(value: &Value, key: &str) -> syn::Result<Duration> {
    match &value.kind {
        ValueKind::Lit(Lit::Str(s)) => duration_text(&s.value())
            .and_then(|d| schedule_syntax::check_duration(key, d).map(|()| d))
            .map_err(|reason| value.error(reason)),
        ValueKind::Lit(Lit::Int(n)) if n.suffix().is_empty() => Err(value.error(format!(
            "a duration needs a unit and quotes: write `{key} = \"{}s\"` (or \"{0}ms\", \"{0}m\", ...)",
            n.base10_digits()
        ))),
        // `60s` and `1.5` lex as number literals: the user meant a string.
        ValueKind::Lit(Lit::Int(_) | Lit::Float(_)) => Err(value.error(format!(
            "a duration is a string: write `{key} = \"{}\"`",
            value.tokens.to_string().replace(' ', "")
        ))),
        _ => Err(value.error(format!("`{key}` takes a duration string such as \"500ms\", \"60s\" or \"1h 30m\""))),
    }
}

/// Parses the text of a duration string, with humantime's reason on failure.
pub(crate) fn duration_text(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|reason| format!("`{text}` is not a duration: {reason} (write e.g. \"500ms\", \"60s\" or \"1h 30m\")"))
}

/// A duration that must be greater than zero (`interval`, `timeout`).
pub(crate) fn positive_duration(value: &Value, key: &str, why: &str) -> syn::Result<Duration> {
    let duration = duration(value, key)?;
    if duration.is_zero() {
        return Err(value.error(format!("`{key}` must be greater than zero: {why}")));
    }
    Ok(duration)
}

// ----- cron and time zone -----

/// A cron expression, validated exactly as the runtime would at startup.
pub(crate) fn cron(value: &Value) -> syn::Result<LitStr> {
    let Some(s) = value.as_str() else {
        return Err(value.error(
            "`cron` takes a cron expression as a string, with 5 fields (minute hour day-of-month month \
             day-of-week) or 6 (leading seconds), e.g. \"0 */5 * * * *\"",
        ));
    };
    cron_text(&s.value()).map_err(|reason| value.error(reason))?;
    Ok(s.clone())
}

pub(crate) fn cron_text(text: &str) -> Result<(), String> {
    schedule_syntax::parse_cron(text).map(drop).map_err(|reason| format!("invalid cron expression `{text}`: {reason}"))
}

/// An IANA time zone name, validated exactly as the runtime would at startup.
pub(crate) fn timezone(value: &Value) -> syn::Result<LitStr> {
    let Some(s) = value.as_str() else {
        return Err(
            value.error("`timezone` takes an IANA time zone name as a string, e.g. \"Europe/Paris\" or \"UTC\"")
        );
    };
    timezone_text(&s.value()).map_err(|reason| value.error(reason))?;
    Ok(s.clone())
}

pub(crate) fn timezone_text(text: &str) -> Result<(), String> {
    schedule_syntax::parse_timezone(text).map(drop).map_err(|reason| {
        let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        match did_you_mean(text, &zones) {
            Some(close) => format!("{reason}; did you mean \"{close}\"?"),
            None => reason,
        }
    })
}

// ----- fixed choices -----

/// A key whose value is one of a few names, written bare (`High`) or as a
/// string (`"High"`), mirroring an enum of the runtime.
pub(crate) trait Choice: Copy + PartialEq + 'static {
    /// The attribute key, as in messages.
    const KEY: &'static str;
    /// The runtime enum, reached through `__private`.
    const TYPE: &'static str;
    /// Every variant with its name.
    const VARIANTS: &'static [(&'static str, Self)];

    fn name(self) -> &'static str {
        Self::VARIANTS.iter().find(|(_, v)| *v == self).map_or("", |(name, _)| name)
    }
}

macro_rules! choice {
    ($(#[$doc:meta])* $ty:ident, $key:literal: $($variant:ident),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $ty { $($variant),+ }

        impl Choice for $ty {
            const KEY: &'static str = $key;
            const TYPE: &'static str = stringify!($ty);
            const VARIANTS: &'static [(&'static str, Self)] = &[$((stringify!($variant), $ty::$variant)),+];
        }
    };
}

choice!(
    /// How a worker is started (runtime: `orchestrator::Mode`).
    Mode, "mode": Scheduled, Triggered, Continuous
);
choice!(
    /// Order in which ready workers take free slots (runtime: `orchestrator::Priority`).
    Priority, "priority": Low, Normal, High, Critical
);
choice!(
    /// What missed fires become (runtime: `orchestrator::Misfire`).
    Misfire, "misfire": FireOnce, Skip
);
choice!(
    /// Once per fire across the cluster, or on every replica (runtime: `orchestrator::Scope`).
    Scope, "scope": Cluster, Instance
);

pub(crate) fn choice<T: Choice>(value: &Value) -> syn::Result<T> {
    let names: Vec<&str> = T::VARIANTS.iter().map(|(name, _)| *name).collect();
    let text = match &value.kind {
        ValueKind::Lit(Lit::Str(s)) => s.value(),
        ValueKind::Path(_) if value.as_ident().is_some() => value.as_ident().unwrap_or_default(),
        // `Priority::High`: accept only the variant, and say so.
        ValueKind::Path(path) => {
            let last = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            let hint = if names.contains(&last.as_str()) {
                format!("write the variant alone: `{} = {last}`", T::KEY)
            } else {
                format!("expected {}", one_of(&names))
            };
            return Err(value.error(format!("`{}` takes a bare variant name; {hint}", T::KEY)));
        }
        _ => return Err(value.error(format!("`{}` takes one of {}", T::KEY, one_of(&names)))),
    };
    choice_text::<T>(&text).map_err(|reason| value.error(reason))
}

pub(crate) fn choice_text<T: Choice>(text: &str) -> Result<T, String> {
    if let Some((_, variant)) = T::VARIANTS.iter().find(|(name, _)| *name == text) {
        return Ok(*variant);
    }
    let names: Vec<&str> = T::VARIANTS.iter().map(|(name, _)| *name).collect();
    Err(match did_you_mean(text, &names) {
        Some(close) => format!("unknown {} `{text}`: did you mean `{close}`? (expected {})", T::KEY, one_of(&names)),
        None => format!("unknown {} `{text}`: expected {}", T::KEY, one_of(&names)),
    })
}

// ----- integers, booleans, strings -----

/// A non-negative integer that fits in a `u32` (`retries`, `max_consecutive_failures`).
pub(crate) fn integer(value: &Value, key: &str) -> syn::Result<u32> {
    match &value.kind {
        ValueKind::Lit(Lit::Int(n)) if matches!(n.suffix(), "" | "u32") => {
            n.base10_parse::<u32>().map_err(|_| value.error(format!("`{key}` is too large: at most {}", u32::MAX)))
        }
        ValueKind::Lit(Lit::Str(s)) if s.value().trim().parse::<u32>().is_ok() => {
            Err(value.error(format!("`{key}` takes an integer, not a string: write `{key} = {}`", s.value().trim())))
        }
        ValueKind::Other if value.tokens.to_string().starts_with('-') => {
            Err(value.error(format!("`{key}` cannot be negative")))
        }
        _ => Err(value.error(format!("`{key}` takes a non-negative integer, e.g. `{key} = 3`"))),
    }
}

pub(crate) fn boolean(value: &Value, key: &str) -> syn::Result<bool> {
    match &value.kind {
        ValueKind::Lit(Lit::Bool(b)) => Ok(b.value()),
        ValueKind::Lit(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => {
            Err(value.error(format!("`{key}` takes a bool, not a string: write `{key} = {}`", s.value())))
        }
        _ => Err(value.error(format!("`{key}` takes `true` or `false`"))),
    }
}

/// The worker's name: a non-empty string.
pub(crate) fn name(value: &Value) -> syn::Result<LitStr> {
    match &value.kind {
        ValueKind::Lit(Lit::Str(s)) if s.value().trim().is_empty() => Err(value.error("a worker name cannot be empty")),
        ValueKind::Lit(Lit::Str(s)) => Ok(s.clone()),
        ValueKind::Path(_) if value.as_ident().is_some() => {
            Err(value
                .error(format!("`name` takes a string: write `name = \"{}\"`", value.as_ident().unwrap_or_default())))
        }
        _ => Err(value.error("`name` takes a string, e.g. `name = \"nightly-report\"`")),
    }
}

/// The path orchestrator is reached through, written as a string as in
/// serde's and tokio's `crate = "..."`.
pub(crate) fn crate_path(value: &Value) -> syn::Result<Path> {
    match &value.kind {
        ValueKind::Lit(Lit::Str(s)) => s.parse_with(Path::parse_mod_style).map_err(|_| {
            value.error(format!(
                "`{}` is not a path: `crate` takes the path orchestrator is reached through, e.g. \
                 `crate = \"my_app::orchestrator\"`",
                s.value()
            ))
        }),
        ValueKind::Path(_) => Err(value.error(format!(
            "`crate` takes the path as a string: write `crate = \"{}\"`",
            value.tokens.to_string().replace(' ', "")
        ))),
        _ => Err(value
            .error("`crate` takes the path orchestrator is reached through, e.g. `crate = \"my_app::orchestrator\"`")),
    }
}

// ----- worker names and paths -----

/// One entry of `depends_on` or `blocks`.
pub(crate) enum WorkerName {
    /// `"fetch_data"`: a registered name, checked at startup.
    Name(LitStr),
    /// `fetch_data`, `crate::jobs::fetch_data`: a `#[worker]` fn, checked by the compiler.
    Path(Path),
}

/// A name, a path, or a list of either; every bad item is reported.
pub(crate) fn worker_names(value: &Value, key: &str) -> syn::Result<Vec<WorkerName>> {
    let expected = format!(
        "`{key}` takes a worker name (\"fetch_data\"), a path to a #[worker] fn (fetch_data, \
         crate::jobs::fetch_data), or a list of them ([\"a\", b])"
    );
    let items: Vec<&Value> = match &value.kind {
        ValueKind::List(items, stray_commas) => {
            let stray = stray_commas.iter().map(|span| syn::Error::new(*span, "expected a worker before `,`"));
            if let Some(error) = stray.reduce(|mut all, e| {
                all.combine(e);
                all
            }) {
                return Err(error);
            }
            items.iter().collect()
        }
        _ => vec![value],
    };
    let mut names = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut fail = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for item in items {
        let name = match &item.kind {
            ValueKind::Lit(Lit::Str(s)) if s.value().trim().is_empty() => {
                fail(item.error("a worker name cannot be empty"));
                continue;
            }
            ValueKind::Lit(Lit::Str(s)) => WorkerName::Name(s.clone()),
            ValueKind::Path(p) => WorkerName::Path(p.clone()),
            ValueKind::List(..) => {
                fail(item.error(format!("lists do not nest: write `{key} = [\"a\", b]`")));
                continue;
            }
            _ => {
                fail(item.error(&expected));
                continue;
            }
        };
        if names.iter().any(|seen| same_worker(seen, &name)) {
            fail(item.error(format!("{} is listed twice in `{key}`: remove one", item.tokens)));
            continue;
        }
        names.push(name);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(names),
    }
}

/// Whether two entries are written the same (a path and a string may still
/// name the same worker; startup validation does not mind the repetition).
fn same_worker(a: &WorkerName, b: &WorkerName) -> bool {
    match (a, b) {
        (WorkerName::Name(a), WorkerName::Name(b)) => a.value() == b.value(),
        (WorkerName::Path(a), WorkerName::Path(b)) => {
            quote::ToTokens::to_token_stream(a).to_string() == quote::ToTokens::to_token_stream(b).to_string()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn value(tokens: TokenStream) -> Value {
        Value::parse(tokens)
    }

    fn message(result: syn::Result<impl Sized>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn duration_text_accepts_humantime_forms() {
        assert_eq!(duration_text("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration_text("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration_text("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration_text("2 days"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(duration_text("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_text_gives_humantime_reason() {
        let err = duration_text("60").unwrap_err();
        assert!(err.contains("time unit needed"), "{err}");
        let err = duration_text("5 fortnights").unwrap_err();
        assert!(err.contains("unknown time unit"), "{err}");
        assert!(duration_text("").unwrap_err().contains("empty"));
    }

    #[test]
    fn duration_wants_a_string_with_a_unit() {
        let err = message(duration(&value(quote!(5)), "interval"));
        assert!(err.contains("write `interval = \"5s\"`"), "{err}");
        let err = message(duration(&value(quote!(60s)), "timeout"));
        assert!(err.contains("write `timeout = \"60s\"`"), "{err}");
        let err = message(duration(&value(quote!(fast)), "delay"));
        assert!(err.contains("`delay` takes a duration string"), "{err}");
    }

    #[test]
    fn zero_is_refused_where_a_positive_duration_is_needed() {
        let err = message(positive_duration(&value(quote!("0s")), "interval", "why"));
        assert!(err.contains("`interval` must be greater than zero"), "{err}");
        assert!(positive_duration(&value(quote!("1ms")), "interval", "why").is_ok());
    }

    #[test]
    fn cron_accepts_five_and_six_fields() {
        assert!(cron_text("*/5 * * * *").is_ok());
        assert!(cron_text("0 */5 * * * *").is_ok());
        assert!(cron_text("0 0 9 * * Mon-Fri").is_ok());
    }

    #[test]
    fn cron_gives_the_parser_reason() {
        let err = cron_text("* * *").unwrap_err();
        assert!(err.contains("this one has 3"), "{err}");
        let err = cron_text("61 * * * *").unwrap_err();
        assert!(err.starts_with("invalid cron expression `61 * * * *`: "), "{err}");
        let err = message(cron(&value(quote!(5))));
        assert!(err.contains("`cron` takes a cron expression as a string"), "{err}");
    }

    #[test]
    fn timezone_must_be_an_iana_name() {
        assert!(timezone(&value(quote!("Europe/Paris"))).is_ok());
        assert!(timezone(&value(quote!("UTC"))).is_ok());
        let err = message(timezone(&value(quote!("Mars/Olympus"))));
        assert!(err.contains("is not an IANA time zone name"), "{err}");
        let err = timezone_text("Europe/Pariss").unwrap_err();
        assert!(err.ends_with("did you mean \"Europe/Paris\"?"), "{err}");
    }

    #[test]
    fn choices_accept_bare_and_string_forms() {
        assert_eq!(choice::<Priority>(&value(quote!(High))).ok(), Some(Priority::High));
        assert_eq!(choice::<Priority>(&value(quote!("Critical"))).ok(), Some(Priority::Critical));
        assert_eq!(choice::<Mode>(&value(quote!(Continuous))).ok(), Some(Mode::Continuous));
        assert_eq!(choice::<Misfire>(&value(quote!(Skip))).ok(), Some(Misfire::Skip));
        assert_eq!(choice::<Scope>(&value(quote!("Instance"))).ok(), Some(Scope::Instance));
    }

    #[test]
    fn choices_suggest_the_closest_variant_and_list_all() {
        let err = choice_text::<Priority>("high").unwrap_err();
        assert_eq!(
            err,
            "unknown priority `high`: did you mean `High`? (expected `Low`, `Normal`, `High` or `Critical`)"
        );
        let err = choice_text::<Misfire>("Never").unwrap_err();
        assert_eq!(err, "unknown misfire `Never`: expected `FireOnce` or `Skip`");
        let err = message(choice::<Priority>(&value(quote!(Priority::High))));
        assert!(err.contains("write the variant alone: `priority = High`"), "{err}");
        let err = message(choice::<Scope>(&value(quote!(3))));
        assert!(err.contains("`scope` takes one of `Cluster` or `Instance`"), "{err}");
    }

    #[test]
    fn choice_names_round_trip() {
        assert_eq!(Priority::Critical.name(), "Critical");
        assert_eq!(Mode::Triggered.name(), "Triggered");
        assert_eq!(Misfire::FireOnce.name(), "FireOnce");
        assert_eq!(Scope::Cluster.name(), "Cluster");
    }

    #[test]
    fn integers_are_unsuffixed_non_negative_u32() {
        assert_eq!(integer(&value(quote!(3)), "retries").ok(), Some(3));
        assert_eq!(integer(&value(quote!(0)), "retries").ok(), Some(0));
        let err = message(integer(&value(quote!("3")), "retries"));
        assert!(err.contains("write `retries = 3`"), "{err}");
        let err = message(integer(&value(quote!(-1)), "retries"));
        assert!(err.contains("cannot be negative"), "{err}");
        let err = message(integer(&value(quote!(99999999999)), "retries"));
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn booleans_are_bare() {
        assert_eq!(boolean(&value(quote!(false)), "enabled").ok(), Some(false));
        let err = message(boolean(&value(quote!("false")), "enabled"));
        assert!(err.contains("write `enabled = false`"), "{err}");
        let err = message(boolean(&value(quote!(1)), "enabled"));
        assert!(err.contains("`enabled` takes `true` or `false`"), "{err}");
    }

    #[test]
    fn names_and_crate_paths_are_strings() {
        assert_eq!(name(&value(quote!("report"))).map(|s| s.value()).ok(), Some("report".to_owned()));
        assert!(message(name(&value(quote!("")))).contains("cannot be empty"));
        assert!(message(name(&value(quote!(report)))).contains("write `name = \"report\"`"));
        assert!(crate_path(&value(quote!("::my_app::orchestrator"))).is_ok());
        assert!(
            message(crate_path(&value(quote!(my_app::orchestrator))))
                .contains("write `crate = \"my_app::orchestrator\"`")
        );
        assert!(message(crate_path(&value(quote!("not a path")))).contains("is not a path"));
    }

    fn describe(names: &[WorkerName]) -> Vec<String> {
        names
            .iter()
            .map(|n| match n {
                WorkerName::Name(s) => format!("name {}", s.value()),
                WorkerName::Path(p) => format!("path {}", quote!(#p).to_string().replace(' ', "")),
            })
            .collect()
    }

    #[test]
    fn worker_names_take_every_form() {
        let one = |tokens| worker_names(&value(tokens), "depends_on").map(|n| describe(&n)).ok();
        assert_eq!(one(quote!("a")), Some(vec!["name a".to_owned()]));
        assert_eq!(one(quote!(fetch)), Some(vec!["path fetch".to_owned()]));
        assert_eq!(one(quote!(crate::jobs::fetch)), Some(vec!["path crate::jobs::fetch".to_owned()]));
        assert_eq!(one(quote!(["a", "b",])), Some(vec!["name a".to_owned(), "name b".to_owned()]));
        assert_eq!(
            one(quote!([a, super::b, "c"])),
            Some(vec!["path a".into(), "path super::b".into(), "name c".into()])
        );
        assert_eq!(one(quote!([])), Some(vec![]));
    }

    #[test]
    fn worker_names_report_every_bad_item() {
        let err = message(worker_names(&value(quote!([1, "a", f(), "a"])), "blocks"));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(lines[0].starts_with("`blocks` takes a worker name"), "{err}");
        assert!(lines[2].contains("listed twice"), "{err}");
        assert!(message(worker_names(&value(quote!([[a]])), "blocks")).contains("lists do not nest"));
        assert!(message(worker_names(&value(quote!([a,, b])), "blocks")).contains("expected a worker before `,`"));
        assert!(message(worker_names(&value(quote!("")), "blocks")).contains("cannot be empty"));
    }

    #[test]
    fn split_commas_keeps_nested_commas_and_allows_a_trailing_one() {
        let split = split_commas(quote!(a = [1, 2], b = 3,));
        assert_eq!(split.items.len(), 2);
        assert!(split.stray_commas.is_empty());
        assert_eq!(split_commas(quote!(, a)).stray_commas.len(), 1);
    }
}
