//! The error accumulator of one expansion, and the did-you-mean its messages
//! use.
//!
//! Owns no rule: callers decide what is wrong. This file only collects errors
//! so that every mistake of an attribute is reported at once (serde_derive's
//! `Ctxt`), instead of making the user fix them one compile at a time.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// Every error found while expanding one `#[worker]`.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// An error at one token.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// An error underlining all of `tokens` (a value, a type, a path).
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds an error that may already hold several messages.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// The value, or `None` after recording the error.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every error as `compile_error!` invocations, in the order they were found.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.errors.iter().map(syn::Error::to_compile_error).collect()
    }

    /// Every error combined into one `syn::Error` (`None` when there is none).
    #[cfg(test)]
    pub(crate) fn combined(self) -> Option<syn::Error> {
        self.errors.into_iter().reduce(|mut all, e| {
            all.combine(e);
            all
        })
    }
}

/// The candidate closest to what the user wrote, if one is close enough to be
/// what they meant: `timout` -> `timeout`, `high` -> `High`, `depends` ->
/// `depends_on`.
///
/// Jaro-Winkler rather than edit distance, because it favours a shared prefix:
/// the common mistakes here are truncations (`depends`, `max_failures`) and
/// typos, both of which keep the start of the word.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input = input.to_lowercase();
    candidates
        .iter()
        .map(|c| (*c, strsim::jaro_winkler(&input, &c.to_lowercase())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// `a`, `b` and `c`: a list of choices for a message, each in backticks.
pub(crate) fn one_of(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "interval",
        "delay",
        "cron",
        "timezone",
        "timeout",
        "retries",
        "depends_on",
        "blocks",
        "max_consecutive_failures",
        "name",
        "mode",
        "initial_delay",
    ];

    #[test]
    fn did_you_mean_corrects_a_typo() {
        assert_eq!(did_you_mean("timout", KEYS), Some("timeout"));
        assert_eq!(did_you_mean("intervall", KEYS), Some("interval"));
        assert_eq!(did_you_mean("retires", KEYS), Some("retries"));
    }

    #[test]
    fn did_you_mean_completes_a_truncated_key() {
        assert_eq!(did_you_mean("depends", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("max_consecutive", KEYS), Some("max_consecutive_failures"));
    }

    #[test]
    fn did_you_mean_ignores_case() {
        assert_eq!(did_you_mean("high", &["Low", "Normal", "High", "Critical"]), Some("High"));
        assert_eq!(did_you_mean("Interval", KEYS), Some("interval"));
    }

    #[test]
    fn did_you_mean_stays_silent_when_nothing_is_close() {
        assert_eq!(did_you_mean("banana", KEYS), None);
        assert_eq!(did_you_mean("x", KEYS), None);
        assert_eq!(did_you_mean("anything", &[]), None);
    }

    #[test]
    fn one_of_lists_choices_in_prose() {
        assert_eq!(one_of(&["Low"]), "`Low`");
        assert_eq!(one_of(&["Skip", "FireOnce"]), "`Skip` or `FireOnce`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn errors_combine_in_order() {
        let mut errors = Errors::default();
        assert!(errors.is_empty());
        errors.at(Span::call_site(), "first");
        errors.at(Span::call_site(), "second");
        let messages: Vec<String> =
            errors.combined().into_iter().flat_map(|e| e.into_iter()).map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }
}
