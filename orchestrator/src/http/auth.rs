//! The bearer token that guards the control routes.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The environment variable the admin token is read from when
/// [`HttpConfig::admin_token`](super::HttpConfig::admin_token) is not set.
pub const ADMIN_TOKEN_ENV: &str = "ORCHESTRATOR_ADMIN_TOKEN";

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token is configured: writes are off.
    WritesOff,
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// The wrong token.
    Wrong,
}

/// Checks the request's bearer token against `expected`. The comparison
/// takes the same time wherever the tokens differ (`subtle`), so the
/// response time does not reveal how much of a guess was right; only the
/// length can show.
pub(crate) fn check(expected: Option<&str>, headers: &HeaderMap) -> Result<(), Refusal> {
    let expected = expected.ok_or(Refusal::WritesOff)?;
    let header = headers.get(AUTHORIZATION).ok_or(Refusal::Missing)?;
    let value = header.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Refusal::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Malformed);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Refusal::Malformed);
    }
    if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) { Ok(()) } else { Err(Refusal::Wrong) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("valid header"));
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert_eq!(check(Some("s3cret"), &with("Bearer s3cret")), Ok(()));
        assert_eq!(check(Some("s3cret"), &with("bearer s3cret")), Ok(()));
        assert_eq!(check(Some("s3cret"), &with("Bearer s3cre")), Err(Refusal::Wrong));
        assert_eq!(check(Some("s3cret"), &with("Bearer s3cret2")), Err(Refusal::Wrong));
        assert_eq!(check(Some("s3cret"), &with("Basic czNjcmV0")), Err(Refusal::Malformed));
        assert_eq!(check(Some("s3cret"), &with("s3cret")), Err(Refusal::Malformed));
        assert_eq!(check(Some("s3cret"), &with("Bearer ")), Err(Refusal::Malformed));
        assert_eq!(check(Some("s3cret"), &HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(check(None, &with("Bearer s3cret")), Err(Refusal::WritesOff));
    }
}
