#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
//! Stores: what must outlive the process, and what replicas share.
//!
//! The engine stays a pure state machine. It records *facts* (`Fact`: a
//! run started, a run ended, a fire was dropped, a worker was enabled or
//! disabled) at the points where it decides them, and the runtime hands
//! them, in order, to one writer task that passes them to the store. At
//! start the runtime asks the store what it kept of each worker
//! (`Restored`) and the engine carries on from there. In cluster mode a
//! worker's lane claims each fire from the store before its first attempt;
//! a refused claim comes back to the engine as the attempt's result.
//!
//! Three stores exist: [`MemoryStore`] (the default: keeps nothing),
//! `SqliteStore` (feature `sqlite`: one instance, persistent) and
//! `PostgresStore` (feature `postgres`: persistent, and cluster mode).
//! What a store does is the crate-private `Backend` trait; the public
//! [`Store`] trait only marks the types an application may pass to
//! [`OrchestratorBuilder::store`](crate::OrchestratorBuilder::store).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::history::FireOutcome;
use crate::history::FireRecord;
pub use crate::runtime::StoreStatus;

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(test)]
pub(crate) mod switchable;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A future a [`Backend`] returns.
pub(crate) type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store an orchestrator can keep its state in: [`MemoryStore`],
/// `SqliteStore` (feature `sqlite`) or `PostgresStore` (feature
/// `postgres`). Sealed: the stores are part of orchestrator.
pub trait Store: sealed::Sealed + Send + Sync + 'static {}

pub(crate) mod sealed {
    /// A store's backend, opaque outside the crate.
    pub struct Opaque(pub(crate) std::sync::Arc<dyn super::Backend>);

    /// Turns a public store into the backend the runtime talks to.
    pub trait Sealed {
        fn into_backend(self) -> Opaque;
    }
}

/// Which store an orchestrator keeps its state in (in [`Status`](crate::Status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Nothing outlives the process.
    Memory,
    /// A SQLite file: one instance, persistent.
    Sqlite,
    /// PostgreSQL: persistent, and cluster mode.
    Postgres,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::Memory => "memory",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        })
    }
}

/// A store could not do what was asked.
///
/// The message never contains a database password: URLs are shown with
/// their password replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached (or the connection was lost).
    #[error("the store is unreachable: {0}")]
    Unreachable(String),
    /// The database refused the credentials.
    #[error("the store refused the credentials: {0}")]
    Credentials(String),
    /// The store's schema was written by a newer orchestrator.
    #[error(
        "the store's schema is version {found}, newer than this orchestrator's {supported}; \
         upgrade orchestrator, or point it at another schema"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// A setting is invalid (a schema name, a path, a duration).
    #[error("invalid store setting: {0}")]
    Invalid(String),
    /// Any other database error.
    #[error("store error: {0}")]
    Database(String),
}

/// Replaces every password in a connection string with `***`, for logs and
/// errors: in a URL, the `user:password@` part and the `password` and
/// `sslpassword` query parameters; in a key-value string (`host=db
/// password='...'`), the values of those keys, quoted or not.
pub(crate) fn redact(target: &str) -> String {
    match target.find("://") {
        Some(scheme_end) => redact_url(target, scheme_end + 3),
        None => redact_key_values(target),
    }
}

/// The connection parameters whose values are secrets.
fn is_secret(key: &str) -> bool {
    ["password", "sslpassword"].iter().any(|secret| key.eq_ignore_ascii_case(secret))
}

/// `url` with its userinfo password and secret query parameters hidden;
/// `authority_start` is where its `user@host` part begins.
fn redact_url(url: &str, authority_start: usize) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let rest = &head[authority_start..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let mut shown = head[..authority_start].to_string();
    match authority.rfind('@').and_then(|at| Some((at, authority[..at].find(':')?))) {
        Some((at, colon)) => {
            shown.push_str(&rest[..colon]);
            shown.push_str(":***");
            shown.push_str(&rest[at..]);
        }
        None => shown.push_str(rest),
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret(key) => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// A libpq key-value string (`key = value`, values quoted with `'` and
/// escaped with `\`) with the values of secret keys hidden.
fn redact_key_values(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    // Copies the whitespace at the start of `rest`.
    let skip_space = |rest: &mut &str, shown: &mut String| {
        let trimmed = rest.trim_start();
        shown.push_str(&rest[..rest.len() - trimmed.len()]);
        *rest = trimmed;
    };
    loop {
        skip_space(&mut rest, &mut shown);
        if rest.is_empty() {
            return shown;
        }
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let key = &rest[..key_end];
        shown.push_str(key);
        rest = &rest[key_end..];
        if !rest.trim_start().starts_with('=') {
            continue;
        }
        skip_space(&mut rest, &mut shown);
        shown.push('=');
        rest = &rest[1..];
        skip_space(&mut rest, &mut shown);
        let value_end = value_len(rest);
        shown.push_str(if is_secret(key) { "***" } else { &rest[..value_end] });
        rest = &rest[value_end..];
    }
}

/// The length of the value at the start of `text`: up to the closing quote
/// of a quoted value, else up to whitespace (backslash escapes either).
fn value_len(text: &str) -> usize {
    let quoted = text.starts_with('\'');
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(usize::from(quoted)) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' if quoted => return i + 1,
            c if !quoted && c.is_whitespace() => return i,
            _ => {}
        }
    }
    text.len()
}

/// Why a worker is disabled, as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredDisable {
    /// `enabled = false` in its definition, when the store first saw it.
    Configured,
    /// Through a handle (of any replica).
    Manually,
    /// After `count` failed runs in a row.
    Failures { count: u32, last_error: String },
}

impl StoredDisable {
    /// The `kind` column.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            StoredDisable::Configured => "configured",
            StoredDisable::Manually => "manual",
            StoredDisable::Failures { .. } => "failures",
        }
    }

    /// The `reason` column (the last error, for failures).
    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            StoredDisable::Failures { last_error, .. } => Some(last_error),
            _ => None,
        }
    }

    /// Back from the columns; an unknown kind (a newer binary's) reads as manual.
    pub(crate) fn from_columns(kind: &str, reason: Option<String>, failures: u32) -> Self {
        match kind {
            "configured" => StoredDisable::Configured,
            "failures" => StoredDisable::Failures { count: failures, last_error: reason.unwrap_or_default() },
            _ => StoredDisable::Manually,
        }
    }
}

/// What the runtime tells a store about a worker when it opens.
#[derive(Debug, Clone)]
pub(crate) struct WorkerInfo {
    pub name: Arc<str>,
    /// The anchor this instance would use if the store has none yet (its
    /// start plus the worker's initial delay, whole milliseconds).
    pub anchor: DateTime<Utc>,
    /// Enabled in its definition: the stored flag's first value.
    pub enabled: bool,
    /// Its `max_consecutive_failures` (0: never), kept so that a takeover
    /// on any replica can count a lost run toward auto-disable.
    pub threshold: u32,
    /// Its attempts per fire (`retries + 1`), kept so that a takeover on
    /// any replica knows whether a lost fire has an attempt left.
    pub max_attempts: u32,
}

/// What a store kept of a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    /// The schedule's anchor: fixed-rate slots are `anchor + k·interval`.
    pub anchor: DateTime<Utc>,
    /// Why it is disabled, if it is.
    pub disabled: Option<StoredDisable>,
    pub consecutive_failures: u32,
    /// The latest fire recorded for it (any outcome, any instance): when it
    /// was scheduled and how it ended (`running` for one in progress).
    pub last_fire: Option<(DateTime<Utc>, FireOutcome)>,
}

/// Something the engine decided that a store keeps, in the order decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fact {
    /// A fire's first attempt started here.
    Started { worker: Arc<str>, scheduled_at: DateTime<Utc>, started_at: DateTime<Utc> },
    /// Another attempt of the run of that fire started here.
    Attempt { worker: Arc<str>, scheduled_at: DateTime<Utc>, attempt: u32 },
    /// The run of a fire ended here. `consecutive_failures` is this
    /// instance's count after it; `threshold` the worker's
    /// `max_consecutive_failures` (0: never), for a cluster-wide count.
    Finished {
        worker: Arc<str>,
        scheduled_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        attempts: u32,
        outcome: FireOutcome,
        error: Option<String>,
        consecutive_failures: u32,
        threshold: u32,
    },
    /// A fire that never ran: `missed`, `cancelled` or `upstream_failed`.
    Dropped {
        worker: Arc<str>,
        scheduled_at: DateTime<Utc>,
        at: DateTime<Utc>,
        outcome: FireOutcome,
        error: Option<String>,
    },
    /// The worker was enabled (`disabled: None`) or disabled here.
    State { worker: Arc<str>, disabled: Option<StoredDisable>, consecutive_failures: u32 },
}

impl Fact {
    pub(crate) fn worker(&self) -> &Arc<str> {
        match self {
            Fact::Started { worker, .. }
            | Fact::Attempt { worker, .. }
            | Fact::Finished { worker, .. }
            | Fact::Dropped { worker, .. }
            | Fact::State { worker, .. } => worker,
        }
    }
}

/// A fact as written: with the claim's token for a claimed fire (cluster
/// mode: the write is refused unless the token still holds the fire), and
/// whether the fire is shared by the cluster (`shared`: a Cluster-scope
/// worker in cluster mode, whose fire row is keyed by `(worker,
/// scheduled_at)` alone) or this instance's own (keyed by the instance too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub fact: Fact,
    pub token: Option<i64>,
    pub shared: bool,
}

/// A claim of a fire, for cluster mode.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest {
    pub worker: Arc<str>,
    pub scheduled_at: DateTime<Utc>,
    pub instance: Arc<str>,
    /// Workers that may not run at the same time (`blocks` either way, and
    /// dependency relations), Cluster scope only.
    pub conflicts: Arc<[Arc<str>]>,
    /// The worker's dependencies, Cluster scope only.
    pub depends_on: Arc<[Arc<str>]>,
}

/// A store's answer to a [`ClaimRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This instance runs the fire; every later write about it carries `token`.
    Granted { token: i64 },
    /// The fire is, or was, another instance's (named).
    Taken { by: String },
    /// Not now: a conflicting run is in progress elsewhere (the worker
    /// itself, a blocker, a dependency's relevant fire). Try again later.
    Busy { why: String },
    /// The dependency's relevant fire failed: the fire is recorded
    /// `upstream_failed` by the claim.
    UpstreamFailed { dependency: String },
}

/// What a replica learns from a poll of the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Polled {
    /// Every worker's shared state, by name (the flag, the failure count).
    pub workers: Vec<(String, Option<StoredDisable>, u32)>,
    /// Fires whose holder stopped renewing their lease, recorded `lost`
    /// for good by this poll (no attempt left, or the worker is disabled):
    /// `(worker, scheduled_at, instance that held it)`.
    pub lost: Vec<(String, DateTime<Utc>, String)>,
    /// Fires lost the same way that have attempts left: recorded `lost`,
    /// and handed to the polling instance, which alone may claim them now
    /// (see [`Adoption`]); handed again at each of its polls until it
    /// claims or writes them off.
    pub adopt: Vec<Adoption>,
    /// The fires of Cluster-scope workers running now under a live lease,
    /// on any instance (this one's too): `(worker, scheduled_at, instance)`.
    pub running: Vec<(String, DateTime<Utc>, String)>,
}

/// A lost fire handed to a replica to run its next attempt (cluster mode).
///
/// In the store it is `lost` with no `finished_at` and this replica as its
/// adopter, until the adopter claims it (it then runs again, its attempts
/// continuing from `attempts`), writes it off (a `Dropped` fact), or stops
/// polling: then, after a lease, another replica's poll takes it over again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Adoption {
    pub worker: String,
    pub scheduled_at: DateTime<Utc>,
    /// The attempts the run made before it was lost.
    pub attempts: u32,
    /// The instance that held it and stopped renewing its lease.
    pub lost_by: String,
}

/// A replica of the cluster, from [`Handle::instances`](crate::Handle::instances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceInfo {
    /// Its name (see [`OrchestratorBuilder::instance`](crate::OrchestratorBuilder::instance)).
    pub name: String,
    /// When it registered.
    pub started_at: DateTime<Utc>,
    /// Its latest heartbeat, on the database's clock.
    pub last_heartbeat: DateTime<Utc>,
}

/// Cluster settings of a store that coordinates replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClusterSettings {
    pub lease_ttl: Duration,
    pub poll_interval: Duration,
}

/// What a store does (crate-private; see [`Store`]).
///
/// Every method is one short transaction (or none, in memory). Failures
/// are returned, never panicked: the runtime logs them, reports the store
/// unreachable in status, and retries with backoff.
pub(crate) trait Backend: Send + Sync + 'static {
    fn kind(&self) -> StoreKind;

    /// `Some` for a store that coordinates replicas (cluster mode).
    fn cluster(&self) -> Option<ClusterSettings> {
        None
    }

    /// Registers `instance` and its workers (creating the ones the store
    /// does not know, with their anchor and enabled flag; never touching
    /// workers this binary does not know), and returns what the store kept
    /// of each, in the order given.
    fn open(&self, instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>>;

    /// Keeps `entries`, in order, as `instance`'s. Returns how many were
    /// refused because their token no longer holds the fire (fencing).
    fn write(&self, instance: Arc<str>, entries: Vec<Entry>) -> StoreFuture<'_, u64>;

    /// The latest `limit` fires of `worker`, newest first.
    fn history(&self, worker: Arc<str>, limit: usize) -> StoreFuture<'_, Vec<FireRecord>>;

    /// Deletes finished fires that ended before `before`; returns how many.
    fn prune(&self, before: DateTime<Utc>) -> StoreFuture<'_, u64>;

    /// Claims a fire (cluster mode). Stores without cluster mode grant at once.
    fn claim(&self, _request: ClaimRequest) -> StoreFuture<'_, Claim> {
        Box::pin(async { Ok(Claim::Granted { token: 0 }) })
    }

    /// Extends the leases of `tokens` by the lease TTL; returns the ones
    /// still held (a lease that expired and was taken over is not).
    fn renew(&self, _instance: Arc<str>, tokens: Vec<i64>) -> StoreFuture<'_, Vec<i64>> {
        Box::pin(async move { Ok(tokens) })
    }

    /// Heartbeat of `instance`, takeover of expired leases, and the shared
    /// worker states (cluster mode).
    fn poll(&self, _instance: Arc<str>) -> StoreFuture<'_, Polled> {
        Box::pin(async { Ok(Polled::default()) })
    }

    /// Tells the other replicas that the shared state changed (NOTIFY);
    /// they find out by polling otherwise.
    fn notify(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Waits until another replica notifies, or the connection used for
    /// listening is lost (an `Err`: the caller reconnects with backoff).
    /// Stores without notifications never return.
    fn listen(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    /// How far the store's clock is ahead of this process's wall clock.
    /// In cluster mode fire times follow the database's clock, so that a
    /// replica whose clock is off computes the same fires at the same
    /// moments as the others; stores on this machine answer zero.
    fn clock_offset(&self) -> StoreFuture<'_, chrono::Duration> {
        Box::pin(async { Ok(chrono::Duration::zero()) })
    }

    /// The live replicas, with their last heartbeat.
    fn instances(&self) -> StoreFuture<'_, Vec<InstanceInfo>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// `instance` stops: its leases are released and it deregisters.
    fn leave(&self, _instance: Arc<str>) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// The default store: keeps nothing beyond the process (history lives in
/// memory, the last 100 fires per worker).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {}

impl sealed::Sealed for MemoryStore {
    fn into_backend(self) -> sealed::Opaque {
        sealed::Opaque(Arc::new(self))
    }
}

impl Backend for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    fn open(&self, _instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>> {
        Box::pin(async move {
            Ok(workers
                .into_iter()
                .map(|w| Restored {
                    anchor: w.anchor,
                    disabled: (!w.enabled).then_some(StoredDisable::Configured),
                    consecutive_failures: 0,
                    last_fire: None,
                })
                .collect())
        })
    }

    fn write(&self, _instance: Arc<str>, _entries: Vec<Entry>) -> StoreFuture<'_, u64> {
        Box::pin(async { Ok(0) })
    }

    fn history(&self, _worker: Arc<str>, _limit: usize) -> StoreFuture<'_, Vec<FireRecord>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn prune(&self, _before: DateTime<Utc>) -> StoreFuture<'_, u64> {
        Box::pin(async { Ok(0) })
    }
}

/// `at` truncated to whole milliseconds: the precision fire identities
/// are stored with, so that every replica and every store agrees on them.
pub(crate) fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("postgres://db/app?x=1"), "postgres://db/app?x=1");
        assert_eq!(redact("host=db user=app password=s3cret dbname=app"), "host=db user=app password=*** dbname=app");
        assert!(!redact("postgres://u:p%40ss@h/d").contains("p%40ss"));
        assert_eq!(redact("postgres://u:a:b@c@h/d"), "postgres://u:***@h/d", "the last @ ends the password");
    }

    #[test]
    fn passwords_never_leave_a_urls_query() {
        assert_eq!(redact("postgres://host/db?user=u&password=secret"), "postgres://host/db?user=u&password=***");
        assert_eq!(redact("postgres://host/db?sslpassword=secret"), "postgres://host/db?sslpassword=***");
        assert_eq!(
            redact("postgres://u:one@h/db?PassWord=two&sslmode=require&sslpassword=three"),
            "postgres://u:***@h/db?PassWord=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            redact("postgres://h/db?user=u&password"),
            "postgres://h/db?user=u&password",
            "no value, nothing hidden"
        );
        assert_eq!(redact("postgres://h/db?mypassword=x"), "postgres://h/db?mypassword=x", "another key");
    }

    #[test]
    fn passwords_never_leave_a_key_value_string() {
        assert_eq!(redact("host=db sslpassword=key dbname=app"), "host=db sslpassword=*** dbname=app");
        assert_eq!(redact("host=db password = 'se cret' user=u"), "host=db password = *** user=u");
        assert_eq!(redact(r"password='it\'s me' user=u"), "password=*** user=u");
        assert_eq!(redact(r"PASSWORD=a\ b user=u"), "PASSWORD=*** user=u");
        assert_eq!(redact("  host = db  "), "  host = db  ", "the rest is kept as written");
        assert_eq!(redact("password= user=u"), "password= ***", "as libpq reads it, the value is `user=u`");
        assert_eq!(redact("password"), "password");
        assert_eq!(redact("password='unterminated"), "password=***");
    }
}
