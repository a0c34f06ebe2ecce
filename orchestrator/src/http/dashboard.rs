//! `GET /`: the dashboard, one page compiled into the binary (no build
//! step, nothing fetched from elsewhere: it works offline). Its style and
//! script are plain files beside this one, inlined into the page once.

use std::sync::LazyLock;

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use axum::response::{Html, IntoResponse, Response};

const HTML: &str = include_str!("dashboard.html");
const CSS: &str = include_str!("dashboard.css");
const JS: &str = include_str!("dashboard.js");

static PAGE: LazyLock<String> = LazyLock::new(|| HTML.replace("/*STYLE*/", CSS).replace("/*SCRIPT*/", JS));

/// The page; the script then reads `api/status` and `api/events` relative to
/// the page's address, so the router can be nested under any prefix.
pub(crate) async fn page() -> Response {
    let mut response = Html(PAGE.as_str()).into_response();
    let headers = response.headers_mut();
    // Everything is inline and same-origin; nothing else may load.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
