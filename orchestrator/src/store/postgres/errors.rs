//! From driver errors to [`StoreError`]s a user can act on, without ever
//! showing the database password.

use std::error::Error as _;

use tokio_postgres::error::SqlState;

use super::super::{StoreError, redact};

/// Where the store connects, as errors show it, and the secret they must
/// never show.
#[derive(Clone)]
pub(super) struct Target {
    /// The URL with its password replaced by `***`.
    shown: String,
    /// The password itself, masked wherever it might appear.
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    pub(super) fn new(url: &str, password: Option<&[u8]>) -> Target {
        let password = password.map(|p| String::from_utf8_lossy(p).into_owned()).filter(|p| !p.is_empty());
        let target = Target { shown: String::new(), password };
        let shown = target.mask(&redact(url));
        Target { shown, ..target }
    }

    /// The URL to show.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// `text` with any occurrence of the password replaced by `***`: the
    /// messages come from the driver and the server, which do not echo a
    /// password, but a log line is forever.
    pub(super) fn mask(&self, text: &str) -> String {
        match &self.password {
            Some(password) => text.replace(password.as_str(), "***"),
            None => text.to_string(),
        }
    }

    /// An error of connecting (at [`connect`](super::PostgresStoreBuilder::connect)
    /// or for a new pooled connection), with what to do about it.
    pub(super) fn connect_error(&self, error: &tokio_postgres::Error) -> StoreError {
        let shown = &self.shown;
        match error.code() {
            Some(code) if is_credentials(code) => StoreError::Credentials(self.mask(&format!(
                "{shown}: {}; check the user name and password of the URL (and pg_hba.conf)",
                describe(error)
            ))),
            Some(code) if *code == SqlState::INVALID_CATALOG_NAME => StoreError::Invalid(
                self.mask(&format!("{shown}: {}; create the database or fix its name in the URL", describe(error))),
            ),
            Some(code) if !is_connection(code) => self.query_error("connecting", error),
            _ if is_missing_password(error) => StoreError::Credentials(
                self.mask(&format!("{shown}: the server asks for a password and the URL has none; add it to the URL")),
            ),
            _ => StoreError::Unreachable(self.mask(&format!(
                "cannot connect to {shown}: {}; check that PostgreSQL runs there and that the URL's host and port \
                 are right (and reachable from here)",
                describe(error)
            ))),
        }
    }

    /// An error of a statement (`what`: the operation, for the message).
    pub(super) fn query_error(&self, what: &str, error: &tokio_postgres::Error) -> StoreError {
        let message = self.mask(&format!("{what} on {}: {}", self.shown, describe(error)));
        match error.code() {
            None => StoreError::Unreachable(message),
            Some(code) if is_connection(code) => StoreError::Unreachable(message),
            Some(code) if is_credentials(code) => StoreError::Credentials(message),
            Some(_) => StoreError::Database(message),
        }
    }

    /// An operation that did not answer in time.
    pub(super) fn timed_out(&self, what: &str) -> StoreError {
        StoreError::Unreachable(format!("{what} on {}: no answer in time; the connection was dropped", self.shown))
    }
}

/// The error and its causes, one line (the driver's `Display` shows only
/// the outermost, such as "db error").
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_credentials(code: &SqlState) -> bool {
    *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
}

/// The server is there but will not serve now: it is going away, starting,
/// or full, or the connection broke.
fn is_connection(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
}

/// The driver's own error when the server wants a password the URL lacks.
fn is_missing_password(error: &tokio_postgres::Error) -> bool {
    describe(error).contains("password missing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_never_shows_its_password() {
        let target = Target::new("postgres://app:hunter22@db:5432/app", Some(b"hunter22"));
        assert_eq!(target.shown(), "postgres://app:***@db:5432/app");
        let target = Target::new("postgres://app@db/app?sslmode=disable&password=hunter22", Some(b"hunter22"));
        assert_eq!(target.shown(), "postgres://app@db/app?sslmode=disable&password=***");
        assert_eq!(target.mask("failed for hunter22"), "failed for ***");
        let target = Target::new("postgres://app@db/app?sslpassword=key&password=hunter22", Some(b"hunter22"));
        assert_eq!(target.shown(), "postgres://app@db/app?sslpassword=***&password=***");
        let target = Target::new("host=db user=app password=hunter22", Some(b"hunter22"));
        assert_eq!(target.shown(), "host=db user=app password=***");
        // The password is masked wherever the driver's messages might show it.
        let target = Target::new("host=db password='hunter 22'", Some(b"hunter 22"));
        assert_eq!(target.shown(), "host=db password=***");
        assert_eq!(target.mask("auth as hunter 22 failed"), "auth as *** failed");
    }
}
