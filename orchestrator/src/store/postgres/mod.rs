//! `PostgresStore`: persistence and cluster mode on PostgreSQL.
//!
//! This module owns the store's connections (a pool for statements, one
//! dedicated connection for LISTEN), the schema and its migration, and
//! the translation of each [`Backend`] call into SQL. It must never keep
//! state on a pooled session (no named prepared statements, no SET, no
//! session advisory locks: it works behind PgBouncer in transaction mode),
//! never splice a value into SQL text, never judge a lease on its own
//! clock, and never show the database password.
//!
//! Costs, in round trips (see [`PostgresStore::round_trips`]): a claim is
//! one (the `claim` function), a fire's end is one (the `finish`
//! function), a poll is one (the `poll` function), and a write of several
//! entries at once is one too (its statements and their `BEGIN` and
//! `COMMIT` pipelined).

mod errors;
mod listen;
mod sql;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, NoTls, Row};

use self::errors::{Target, describe};
use self::listen::Listener;
use self::sql::Sql;
use super::{
    Adoption, Backend, Claim, ClaimRequest, ClusterSettings, Entry, Fact, FireOutcome, InstanceInfo, Polled, Restored,
    Store, StoreError, StoreFuture, StoreKind, StoredDisable, WorkerInfo, sealed, to_millis,
};
use crate::history::FireRecord;

/// The default lease of a claimed fire.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// The default interval between two polls of a replica.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The default number of pooled connections.
const DEFAULT_POOL_SIZE: usize = 4;
/// How long connecting may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest time an operation may take before its connection is
/// deemed dead (a longer lease raises it).
const MIN_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long LISTEN stays given up when notifications do not reach this
/// replica (behind a pooler in transaction mode).
const LISTEN_RETRY: Duration = Duration::from_secs(600);
/// The default schema.
const DEFAULT_SCHEMA: &str = "orchestrator";

/// A store on PostgreSQL: what must outlive the process, and cluster mode.
///
/// Several replicas of an application that share a `PostgresStore` (the
/// same database and schema) run each fire of a `scope = Cluster` worker
/// once across the cluster: a replica claims a fire in the database before
/// running it, holds a lease on it (judged by the database's clock) and
/// renews it while it runs; a replica that dies loses its leases and
/// another records its fires `lost` and, when the worker has retries left,
/// runs the next attempt itself (within a lease and a poll of the death);
/// otherwise the run fails. Every write about a claimed fire
/// carries its lease token, so a replica that lost its lease cannot
/// overwrite the new owner's record.
///
/// Connecting creates or migrates the store's schema (`orchestrator` by
/// default) in one transaction, safely when several replicas start at
/// once, and fails with a clear error for an unreachable URL, wrong
/// credentials or a schema written by a newer orchestrator.
///
/// It works through PgBouncer in transaction mode: every statement is an
/// unnamed one, and no state is kept on a session. Notifications between
/// replicas (LISTEN/NOTIFY) are an optimisation; polling always works.
///
/// A clone shares the connections and the [`round_trips`](Self::round_trips)
/// counter. Pass the store to the orchestrator's builder (its `store`
/// method) to use it.
///
/// ```no_run
/// use orchestrator::store::PostgresStore;
///
/// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
/// println!("connected, {} statements so far", store.round_trips());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

/// Settings of a [`PostgresStore`], from [`PostgresStore::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use orchestrator::store::PostgresStore;
///
/// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
/// let store = PostgresStore::builder("postgres://app@db.internal/app")
///     .schema("jobs")
///     .lease_ttl(Duration::from_secs(20))
///     .poll_interval(Duration::from_millis(500))
///     .pool_size(8)
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `connect` is awaited"]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    lease_ttl: Duration,
    poll_interval: Duration,
    pool_size: usize,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("url", &Target::new(&self.url, None).shown())
            .field("schema", &self.schema)
            .field("lease_ttl", &self.lease_ttl)
            .field("poll_interval", &self.poll_interval)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.target.shown())
            .field("schema", &self.inner.schema)
            .field("lease_ttl", &self.inner.lease_ttl)
            .field("poll_interval", &self.inner.poll_interval)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with the default settings (schema `orchestrator`, leases of
    /// 30 s, a poll every second, 4 pooled connections), creating or
    /// migrating the schema.
    ///
    /// `url` is a PostgreSQL connection string, as a URL
    /// (`postgres://user:password@host:5432/database`) or as key-value
    /// pairs (`host=db user=app dbname=app`). TLS is not supported: reach
    /// the database over a trusted network or a local proxy.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unreachable`] when the database cannot be reached,
    /// [`StoreError::Credentials`] when it refuses the user or password,
    /// [`StoreError::SchemaTooNew`] when a newer orchestrator wrote the
    /// schema, [`StoreError::Invalid`] for a URL that cannot be read or a
    /// database that does not exist. Messages never contain the password.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::connect("postgres://app:secret@db.internal:5432/app").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::builder(url).connect().await
    }

    /// A store with other settings than [`connect`](Self::connect)'s.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::builder("postgres://app@db.internal/app").schema("billing_jobs").connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_string(),
            lease_ttl: DEFAULT_LEASE_TTL,
            poll_interval: DEFAULT_POLL_INTERVAL,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }

    /// The store's cost counter: how many round trips it has made to the
    /// database so far (migrations, claims, writes, polls, LISTEN and its
    /// checks; statements sent together, as the entries of one write,
    /// count once; a migration's `BEGIN` and `COMMIT` count). A fire of a cluster
    /// worker that ends within its first lease costs two: its claim and
    /// its finish. Shared by the clones of a store.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
    /// let before = store.round_trips();
    /// // ... run for a while ...
    /// println!("{} statements", store.round_trips() - before);
    /// # Ok(())
    /// # }
    /// ```
    pub fn round_trips(&self) -> u64 {
        self.inner.trips.iter().map(|trips| trips.load(Ordering::Relaxed)).sum()
    }

    /// [`round_trips`](Self::round_trips) by what they were made for, as
    /// `(kind, count)` in a fixed order, every kind listed: `migrate`,
    /// `open`, `write` (a fire's end, and every other write), `history`,
    /// `prune`, `claim`, `renew`, `poll`, `notify`, `listen`, `instances`,
    /// `clock`, `leave`.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
    /// for (kind, count) in store.round_trips_by_kind() {
    ///     println!("{kind}: {count}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn round_trips_by_kind(&self) -> Vec<(&'static str, u64)> {
        Op::ALL.iter().map(|&op| (op.name(), self.inner.trips[op as usize].load(Ordering::Relaxed))).collect()
    }

    /// The part of [`round_trips`](Self::round_trips) made for `op`.
    #[cfg(test)]
    pub(crate) fn round_trips_of(&self, op: Op) -> u64 {
        self.inner.trips[op as usize].load(Ordering::Relaxed)
    }
}

impl PostgresStoreBuilder {
    /// The PostgreSQL schema the store keeps its tables in (default
    /// `orchestrator`); created if missing. Replicas that share a schema
    /// form a cluster. A name is lowercase letters, digits and `_`, at most
    /// 63 characters, not starting with a digit or `pg_`.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let staging = PostgresStore::builder("postgres://app@db.internal/app").schema("orchestrator_staging").connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// How long a claimed fire stays a replica's without renewal (default
    /// 30 s, at least 1 ms). The holder renews every third of it; after a
    /// replica dies, its fires are taken over within about this long.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::builder("postgres://app@db.internal/app").lease_ttl(Duration::from_secs(10)).connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How often each replica polls the store (default 1 s, at most the
    /// lease TTL): its heartbeat, the takeover of expired leases, and the
    /// shared worker states when no notification arrives.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::builder("postgres://app@db.internal/app").poll_interval(Duration::from_secs(2)).connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How many pooled connections the store opens at most (default 4; at
    /// least 1). Listening uses one more, of its own.
    ///
    /// ```no_run
    /// use orchestrator::store::PostgresStore;
    ///
    /// # async fn demo() -> Result<(), orchestrator::store::StoreError> {
    /// let store = PostgresStore::builder("postgres://app@db.internal/app").pool_size(2).connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Checks the settings, connects, and creates or migrates the schema.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`], and [`StoreError::Invalid`] for an
    /// invalid schema name (checked before anything is sent), a zero lease
    /// or poll interval, a poll interval longer than the lease, or a pool
    /// of no connection.
    ///
    /// ```no_run
    /// use orchestrator::store::{PostgresStore, StoreError};
    ///
    /// # async fn demo() {
    /// match PostgresStore::builder("postgres://app@db.internal/app").connect().await {
    ///     Ok(store) => println!("{store:?}"),
    ///     Err(StoreError::Unreachable(why)) => eprintln!("database down: {why}"),
    ///     Err(other) => eprintln!("{other}"),
    /// }
    /// # }
    /// ```
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let PostgresStoreBuilder { url, schema, lease_ttl, poll_interval, pool_size } = self;
        if !sql::valid_schema(&schema) {
            return Err(StoreError::Invalid(format!(
                "schema name {schema:?}: use lowercase letters, digits and _ (at most 63, not starting with a digit \
                 or pg_)"
            )));
        }
        let lease_ms = i64::try_from(lease_ttl.as_millis()).unwrap_or(i64::MAX);
        if !(1..=i64::MAX / 4).contains(&lease_ms) {
            return Err(StoreError::Invalid(format!("lease_ttl {lease_ttl:?}: use at least 1 ms")));
        }
        if poll_interval.is_zero() || poll_interval > lease_ttl {
            return Err(StoreError::Invalid(format!(
                "poll_interval {poll_interval:?}: use more than zero and at most the lease TTL ({lease_ttl:?}), \
                 or replicas would judge each other dead between two polls"
            )));
        }
        if pool_size == 0 {
            return Err(StoreError::Invalid("pool_size 0: use at least 1 connection".to_string()));
        }
        let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::Invalid(format!(
                "cannot read the database URL {}: {}",
                Target::new(&url, None).shown(),
                describe(&e)
            ))
        })?;
        let target = Target::new(&url, config.get_password());
        if config.get_application_name().is_none() {
            config.application_name("orchestrator");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let listener_name = format!("{} listen {schema}", config.get_application_name().unwrap_or("orchestrator"));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            // Fast: a checkout costs no statement (a closed connection is
            // still replaced).
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Invalid(format!("connection pool: {e}")))?;
        let inner = Inner {
            pool,
            config,
            target,
            sql: Sql::new(&schema),
            channel: sql::channel(&schema),
            listener_name,
            schema,
            lease_ttl,
            poll_interval,
            trips: Default::default(),
            listener: tokio::sync::Mutex::new(None),
            listen_given_up: AtomicBool::new(false),
            claimant: fastrand::i64(..),
            #[cfg(test)]
            scratch: None,
        };
        inner.migrate().await?;
        tracing::debug!(url = inner.target.shown(), schema = inner.schema, "connected to the PostgreSQL store");
        Ok(PostgresStore { inner: Arc::new(inner) })
    }
}

/// What the clones of a store share.
struct Inner {
    pool: Pool,
    /// The parsed URL, for the listening connection.
    config: tokio_postgres::Config,
    target: Target,
    sql: Sql,
    channel: String,
    listener_name: String,
    schema: String,
    lease_ttl: Duration,
    poll_interval: Duration,
    /// Statements sent (see [`PostgresStore::round_trips`]).
    trips: [AtomicU64; Op::COUNT],
    listener: tokio::sync::Mutex<Option<Listener>>,
    /// Said once in the log: notifications do not reach this replica.
    listen_given_up: AtomicBool,
    /// This store's name in its claims, random per connect: a claim it
    /// repeats after losing the answer is told granted, not taken.
    claimant: i64,
    /// A test's schema, dropped with the store (declared last: dropped
    /// after the connections).
    #[cfg(test)]
    scratch: Option<tests::Scratch>,
}

/// What a round trip to the database is made for: the store's cost,
/// counted by kind, and the operation named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Migrate,
    Open,
    Write,
    History,
    Prune,
    Claim,
    Renew,
    Poll,
    Notify,
    Listen,
    Instances,
    Clock,
    Leave,
}

impl Op {
    const COUNT: usize = Op::Leave as usize + 1;
    const ALL: [Op; Op::COUNT] = [
        Op::Migrate,
        Op::Open,
        Op::Write,
        Op::History,
        Op::Prune,
        Op::Claim,
        Op::Renew,
        Op::Poll,
        Op::Notify,
        Op::Listen,
        Op::Instances,
        Op::Clock,
        Op::Leave,
    ];

    /// The kind, in one word (see [`PostgresStore::round_trips_by_kind`]).
    fn name(self) -> &'static str {
        match self {
            Op::Migrate => "migrate",
            Op::Open => "open",
            Op::Write => "write",
            Op::History => "history",
            Op::Prune => "prune",
            Op::Claim => "claim",
            Op::Renew => "renew",
            Op::Poll => "poll",
            Op::Notify => "notify",
            Op::Listen => "listen",
            Op::Instances => "instances",
            Op::Clock => "clock",
            Op::Leave => "leave",
        }
    }

    /// The operation, in words, for errors.
    fn what(self) -> &'static str {
        match self {
            Op::Migrate => "creating or checking the schema",
            Op::Open => "opening the store",
            Op::Write => "writing to the store",
            Op::History => "reading the history",
            Op::Prune => "pruning the history",
            Op::Claim => "claiming a fire",
            Op::Renew => "renewing leases",
            Op::Poll => "polling the store",
            Op::Notify => "notifying the replicas",
            Op::Listen => "listening for notifications",
            Op::Instances => "listing the replicas",
            Op::Clock => "reading the database's clock",
            Op::Leave => "leaving the cluster",
        }
    }
}

/// A statement's parameter.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);
type PgResult<T> = Result<T, tokio_postgres::Error>;
/// The statements of one operation, on one pooled connection.
type PgFuture<'c, T> = Pin<Box<dyn Future<Output = PgResult<T>> + Send + 'c>>;

/// A pooled connection lent to one operation.
struct Conn<'c> {
    client: &'c mut tokio_postgres::Client,
    inner: &'c Inner,
    /// What it is lent for (for the cost counters).
    op: Op,
}

impl Conn<'_> {
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> PgResult<Vec<Row>> {
        self.inner.query(&*self.client, self.op, sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> PgResult<u64> {
        self.inner.execute(&*self.client, self.op, sql, params).await
    }
}

/// How a migration ended.
enum Migration {
    Done,
    TooNew(i64),
}

impl Inner {
    /// Counts a round trip about to be made, for `op`.
    fn count(&self, op: Op) {
        self.trips[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// How long an operation may take before its connection is deemed
    /// dead (a silently dead TCP connection would otherwise hang for the
    /// kernel's retransmission timeout, many minutes).
    fn op_timeout(&self) -> Duration {
        self.lease_ttl.max(MIN_OPERATION_TIMEOUT)
    }

    async fn query<C: GenericClient + Sync>(
        &self,
        client: &C,
        op: Op,
        sql: &str,
        params: &[Param<'_>],
    ) -> PgResult<Vec<Row>> {
        self.count(op);
        client.query_typed(sql, params).await
    }

    async fn execute<C: GenericClient + Sync>(
        &self,
        client: &C,
        op: Op,
        sql: &str,
        params: &[Param<'_>],
    ) -> PgResult<u64> {
        self.count(op);
        client.execute_typed(sql, params).await
    }

    async fn batch<C: GenericClient + Sync>(&self, client: &C, op: Op, sql: &str) -> PgResult<()> {
        self.count(op);
        client.batch_execute(sql).await
    }

    /// Runs `op` on a pooled connection, within the operation timeout. A
    /// connection that times out is closed rather than returned to the pool.
    async fn run<T, F>(&self, kind: Op, op: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(Conn<'c>) -> PgFuture<'c, T>,
    {
        let what = kind.what();
        let limit = self.op_timeout();
        let mut pooled = match tokio::time::timeout(limit, self.pool.get()).await {
            Ok(Ok(pooled)) => pooled,
            Ok(Err(PoolError::Backend(e))) => return Err(self.target.connect_error(&e)),
            Ok(Err(e)) => {
                return Err(StoreError::Unreachable(format!("{what} on {}: {e}", self.target.shown())));
            }
            Err(_) => return Err(self.target.timed_out(what)),
        };
        let client: &mut tokio_postgres::Client = &mut pooled;
        match tokio::time::timeout(limit, op(Conn { client, inner: self, op: kind })).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.target.query_error(what, &e)),
            Err(_) => {
                drop(deadpool_postgres::Object::take(pooled));
                Err(self.target.timed_out(what))
            }
        }
    }

    /// Creates the schema, or checks and migrates it, in one transaction
    /// that holds a lock on the schema's name: replicas starting together
    /// take turns, and each finds what the previous one made.
    async fn migrate(&self) -> Result<(), StoreError> {
        let schema = self.schema.clone();
        let migration = self
            .run(Op::Migrate, move |conn| {
                Box::pin(async move {
                    let inner = conn.inner;
                    inner.count(Op::Migrate);
                    let tx = conn.client.transaction().await?;
                    let key = format!("orchestrator migrate {schema}");
                    inner.query(&tx, Op::Migrate, sql::MIGRATION_LOCK, &[(&key, Type::TEXT)]).await?;
                    let state = inner.query(&tx, Op::Migrate, sql::MIGRATION_STATE, &[(&schema, Type::TEXT)]).await?;
                    let (has_schema, has_version) = match state.first() {
                        Some(row) => (row.try_get::<_, bool>(0)?, row.try_get::<_, bool>(1)?),
                        None => (false, false),
                    };
                    if has_version {
                        let rows = inner.query(&tx, Op::Migrate, &inner.sql.version, &[]).await?;
                        let found = match rows.first() {
                            Some(row) => row.try_get::<_, Option<i64>>(0)?.unwrap_or(0),
                            None => 0,
                        };
                        if found > sql::VERSION {
                            // Explicitly: a dropped transaction's rollback
                            // waits for the connection's next use.
                            inner.count(Op::Migrate);
                            tx.rollback().await?;
                            return Ok(Migration::TooNew(found));
                        }
                        if found == sql::VERSION {
                            inner.count(Op::Migrate);
                            tx.commit().await?;
                            return Ok(Migration::Done);
                        }
                    }
                    if !has_schema {
                        inner.batch(&tx, Op::Migrate, &inner.sql.create_schema).await?;
                    }
                    inner.batch(&tx, Op::Migrate, &inner.sql.schema_v1).await?;
                    inner.count(Op::Migrate);
                    tx.commit().await?;
                    tracing::info!(schema, version = sql::VERSION, "created the orchestrator schema");
                    Ok(Migration::Done)
                })
            })
            .await?;
        match migration {
            Migration::Done => Ok(()),
            Migration::TooNew(found) => Err(StoreError::SchemaTooNew { found, supported: sql::VERSION }),
        }
    }
}

impl Store for PostgresStore {}

impl sealed::Sealed for PostgresStore {
    fn into_backend(self) -> sealed::Opaque {
        sealed::Opaque(Arc::new(self))
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A worker's disable state from its columns.
fn disabled_from(enabled: bool, kind: Option<&str>, reason: Option<String>, failures: u32) -> Option<StoredDisable> {
    (!enabled).then(|| StoredDisable::from_columns(kind.unwrap_or("manual"), reason, failures))
}

/// Runs `steps`, statements on one connection, as one round trip: each is
/// polled once in order before any answer is awaited, and tokio-postgres
/// sends a statement when its future is first polled, so all are on the
/// wire together and the server answers them in order. The answers, in
/// the same order.
async fn pipelined<T>(mut steps: Vec<PgFuture<'_, T>>) -> Vec<PgResult<T>> {
    let mut answers: Vec<Option<PgResult<T>>> = steps.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (step, answer) in steps.iter_mut().zip(answers.iter_mut()).filter(|(_, answer)| answer.is_none()) {
            match step.as_mut().poll(cx) {
                std::task::Poll::Ready(done) => *answer = Some(done),
                std::task::Poll::Pending => waiting = true,
            }
        }
        if waiting { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// One entry of a write, as a statement.
struct Write {
    statement: Statement,
    params: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
    check: Check,
}

#[derive(Clone, Copy)]
enum Statement {
    Started,
    StartedFenced,
    Attempt,
    AttemptFenced,
    Finish,
    Dropped,
    State,
}

/// How a statement tells that its entry was refused.
#[derive(Clone, Copy)]
enum Check {
    /// It is never refused.
    Never,
    /// Refused when it changed no row (its token no longer holds the fire).
    NoRow,
    /// The `finish` function returns 1 when refused.
    Returned,
}

impl Statement {
    fn text(self, sql: &Sql) -> &str {
        match self {
            Statement::Started => &sql.started,
            Statement::StartedFenced => &sql.started_fenced,
            Statement::Attempt => &sql.attempt,
            Statement::AttemptFenced => &sql.attempt_fenced,
            Statement::Finish => &sql.finish,
            Statement::Dropped => &sql.dropped,
            Statement::State => &sql.state,
        }
    }
}

fn param<T: ToSql + Sync + Send + 'static>(value: T, ty: Type) -> (Box<dyn ToSql + Sync + Send>, Type) {
    (Box::new(value), ty)
}

impl Write {
    /// The statement of `entry`, written by `instance`.
    fn of(entry: Entry, instance: &str, lease_ms: i64) -> Write {
        let Entry { fact, token, shared } = entry;
        let scope = if shared { String::new() } else { instance.to_string() };
        let key = |worker: &str, at: DateTime<Utc>| {
            vec![
                param(worker.to_string(), Type::TEXT),
                param(to_millis(at), Type::TIMESTAMPTZ),
                param(scope.clone(), Type::TEXT),
            ]
        };
        match fact {
            Fact::Started { worker, scheduled_at, started_at } => {
                let mut params = key(&worker, scheduled_at);
                params.push(param(instance.to_string(), Type::TEXT));
                params.push(param(started_at, Type::TIMESTAMPTZ));
                match token {
                    None => Write { statement: Statement::Started, params, check: Check::Never },
                    Some(token) => {
                        params.push(param(token, Type::INT8));
                        params.push(param(lease_ms, Type::INT8));
                        Write { statement: Statement::StartedFenced, params, check: Check::NoRow }
                    }
                }
            }
            Fact::Attempt { worker, scheduled_at, attempt } => {
                let mut params = key(&worker, scheduled_at);
                params.push(param(to_i32(attempt), Type::INT4));
                match token {
                    None => Write { statement: Statement::Attempt, params, check: Check::Never },
                    Some(token) => {
                        params.push(param(token, Type::INT8));
                        Write { statement: Statement::AttemptFenced, params, check: Check::NoRow }
                    }
                }
            }
            Fact::Finished {
                worker,
                scheduled_at,
                finished_at,
                attempts,
                outcome,
                error,
                consecutive_failures,
                threshold,
            } => {
                let mut params = key(&worker, scheduled_at);
                params.extend([
                    param(instance.to_string(), Type::TEXT),
                    param(token, Type::INT8),
                    param(finished_at, Type::TIMESTAMPTZ),
                    param(to_i32(attempts), Type::INT4),
                    param(FireOutcome::as_str(outcome), Type::TEXT),
                    param(error, Type::TEXT),
                    param(to_i32(consecutive_failures), Type::INT4),
                    param(to_i32(threshold), Type::INT4),
                ]);
                Write { statement: Statement::Finish, params, check: Check::Returned }
            }
            Fact::Dropped { worker, scheduled_at, at, outcome, error } => {
                let mut params = key(&worker, scheduled_at);
                params.extend([
                    param(instance.to_string(), Type::TEXT),
                    param(at, Type::TIMESTAMPTZ),
                    param(FireOutcome::as_str(outcome), Type::TEXT),
                    param(error, Type::TEXT),
                ]);
                Write { statement: Statement::Dropped, params, check: Check::Never }
            }
            Fact::State { worker, disabled, consecutive_failures } => {
                let params = vec![
                    param(worker.to_string(), Type::TEXT),
                    param(disabled.is_none(), Type::BOOL),
                    param(disabled.as_ref().map(StoredDisable::kind), Type::TEXT),
                    param(disabled.as_ref().and_then(|d| d.reason().map(str::to_string)), Type::TEXT),
                    param(to_i32(consecutive_failures), Type::INT4),
                ];
                Write { statement: Statement::State, params, check: Check::Never }
            }
        }
    }

    /// Sends it (when first polled, without waiting: see [`pipelined`]);
    /// returns 1 when it was refused. The caller counts the round trip.
    async fn apply(&self, inner: &Inner, client: &tokio_postgres::Client) -> PgResult<u64> {
        let params: Vec<Param<'_>> =
            self.params.iter().map(|(value, ty)| (&**value as &(dyn ToSql + Sync), ty.clone())).collect();
        let text = self.statement.text(&inner.sql);
        match self.check {
            Check::Never => client.execute_typed(text, &params).await.map(|_| 0),
            Check::NoRow => client.execute_typed(text, &params).await.map(|changed| u64::from(changed == 0)),
            Check::Returned => {
                let rows = client.query_typed(text, &params).await?;
                let refused = match rows.first() {
                    Some(row) => row.try_get::<_, i32>(0)?,
                    None => 0,
                };
                Ok(u64::from(refused != 0))
            }
        }
    }
}

impl Backend for PostgresStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    fn cluster(&self) -> Option<ClusterSettings> {
        Some(ClusterSettings { lease_ttl: self.inner.lease_ttl, poll_interval: self.inner.poll_interval })
    }

    fn open(&self, instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>> {
        Box::pin(async move {
            let mut seen = HashSet::new();
            let unique: Vec<&WorkerInfo> = workers.iter().filter(|w| seen.insert(w.name.clone())).collect();
            let names: Vec<String> = unique.iter().map(|w| w.name.to_string()).collect();
            let anchors: Vec<DateTime<Utc>> = unique.iter().map(|w| to_millis(w.anchor)).collect();
            let enabled: Vec<bool> = unique.iter().map(|w| w.enabled).collect();
            let thresholds: Vec<i32> = unique.iter().map(|w| to_i32(w.threshold)).collect();
            let max_attempts: Vec<i32> = unique.iter().map(|w| to_i32(w.max_attempts.max(1))).collect();
            let kept = self
                .inner
                .run(Op::Open, move |conn| {
                    Box::pin(async move {
                        let rows = conn
                            .query(
                                &conn.inner.sql.open,
                                &[
                                    (&&*instance, Type::TEXT),
                                    (&names, Type::TEXT_ARRAY),
                                    (&anchors, Type::TIMESTAMPTZ_ARRAY),
                                    (&enabled, Type::BOOL_ARRAY),
                                    (&thresholds, Type::INT4_ARRAY),
                                    (&max_attempts, Type::INT4_ARRAY),
                                ],
                            )
                            .await?;
                        let mut kept = HashMap::with_capacity(rows.len());
                        for row in rows {
                            let failures = to_u32(row.try_get(5)?);
                            let last_fire = match row.try_get::<_, Option<DateTime<Utc>>>(6)? {
                                Some(at) => Some((at, FireOutcome::from_column(row.try_get(7)?))),
                                None => None,
                            };
                            let restored = Restored {
                                anchor: row.try_get(1)?,
                                disabled: disabled_from(row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, failures),
                                consecutive_failures: failures,
                                last_fire,
                            };
                            kept.insert(row.try_get::<_, String>(0)?, restored);
                        }
                        Ok(kept)
                    })
                })
                .await?;
            workers
                .iter()
                .map(|w| {
                    kept.get(&*w.name).cloned().ok_or_else(|| {
                        StoreError::Database(format!("worker {} is missing from the store after opening it", w.name))
                    })
                })
                .collect()
        })
    }

    fn write(&self, instance: Arc<str>, entries: Vec<Entry>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(0);
            }
            let lease_ms = self.inner.lease_ms();
            let writes: Vec<Write> = entries.into_iter().map(|e| Write::of(e, &instance, lease_ms)).collect();
            self.inner
                .run(Op::Write, move |conn| {
                    Box::pin(async move {
                        let (inner, client) = (conn.inner, &*conn.client);
                        inner.count(Op::Write);
                        if let [write] = writes.as_slice() {
                            // One statement, atomic on its own.
                            return write.apply(inner, client).await;
                        }
                        // One transaction, sent at once: one round trip
                        // however many entries. After a failed statement
                        // the rest fail too and COMMIT rolls back.
                        let mut steps: Vec<PgFuture<'_, u64>> = Vec::with_capacity(writes.len() + 2);
                        steps.push(Box::pin(async move { client.execute_typed("BEGIN", &[]).await.map(|_| 0) }));
                        steps.extend(
                            writes.iter().map(|write| Box::pin(write.apply(inner, client)) as PgFuture<'_, u64>),
                        );
                        steps.push(Box::pin(async move { client.execute_typed("COMMIT", &[]).await.map(|_| 0) }));
                        let mut refused = 0;
                        for answer in pipelined(steps).await {
                            refused += answer?;
                        }
                        Ok(refused)
                    })
                })
                .await
        })
    }

    fn history(&self, worker: Arc<str>, limit: usize) -> StoreFuture<'_, Vec<FireRecord>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.inner
                .run(Op::History, move |conn| {
                    Box::pin(async move {
                        let rows = conn
                            .query(&conn.inner.sql.history, &[(&&*worker, Type::TEXT), (&limit, Type::INT8)])
                            .await?;
                        rows.iter()
                            .map(|row| {
                                Ok(FireRecord {
                                    worker: row.try_get(0)?,
                                    scheduled_at: row.try_get(1)?,
                                    instance: row.try_get(2)?,
                                    attempts: to_u32(row.try_get(3)?),
                                    started_at: row.try_get(4)?,
                                    finished_at: row.try_get(5)?,
                                    outcome: FireOutcome::from_column(row.try_get(6)?),
                                    error: row.try_get(7)?,
                                })
                            })
                            .collect()
                    })
                })
                .await
        })
    }

    fn prune(&self, before: DateTime<Utc>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.inner
                .run(Op::Prune, move |conn| {
                    Box::pin(async move { conn.execute(&conn.inner.sql.prune, &[(&before, Type::TIMESTAMPTZ)]).await })
                })
                .await
        })
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let lease_ms = self.inner.lease_ms();
            self.inner
                .run(Op::Claim, move |conn| {
                    Box::pin(async move {
                        let conflicts: Vec<&str> = request.conflicts.iter().map(|c| &**c).collect();
                        let depends_on: Vec<&str> = request.depends_on.iter().map(|d| &**d).collect();
                        let rows = conn
                            .query(
                                &conn.inner.sql.claim,
                                &[
                                    (&&*request.worker, Type::TEXT),
                                    (&to_millis(request.scheduled_at), Type::TIMESTAMPTZ),
                                    (&&*request.instance, Type::TEXT),
                                    (&conflicts, Type::TEXT_ARRAY),
                                    (&depends_on, Type::TEXT_ARRAY),
                                    (&lease_ms, Type::INT8),
                                    (&conn.inner.claimant, Type::INT8),
                                ],
                            )
                            .await?;
                        let Some(row) = rows.first() else {
                            return Ok(Err("the claim function returned nothing".to_string()));
                        };
                        let detail = row.try_get::<_, Option<String>>(2)?.unwrap_or_default();
                        Ok(match row.try_get::<_, &str>(0)? {
                            "granted" => match row.try_get::<_, Option<i64>>(1)? {
                                Some(token) => Ok(Claim::Granted { token }),
                                None => Err("the claim function granted no token".to_string()),
                            },
                            "taken" => Ok(Claim::Taken { by: detail }),
                            "busy" => Ok(Claim::Busy { why: detail }),
                            "upstream_failed" => Ok(Claim::UpstreamFailed { dependency: detail }),
                            other => Err(format!("the claim function answered {other:?}")),
                        })
                    })
                })
                .await?
                .map_err(StoreError::Database)
        })
    }

    fn renew(&self, instance: Arc<str>, tokens: Vec<i64>) -> StoreFuture<'_, Vec<i64>> {
        Box::pin(async move {
            if tokens.is_empty() {
                return Ok(tokens);
            }
            let lease_ms = self.inner.lease_ms();
            let renewed = self
                .inner
                .run(Op::Renew, {
                    let tokens = tokens.clone();
                    move |conn| {
                        Box::pin(async move {
                            let rows = conn
                                .query(
                                    &conn.inner.sql.renew,
                                    &[(&tokens, Type::INT8_ARRAY), (&&*instance, Type::TEXT), (&lease_ms, Type::INT8)],
                                )
                                .await?;
                            rows.iter().map(|row| row.try_get::<_, i64>(0)).collect::<PgResult<HashSet<i64>>>()
                        })
                    }
                })
                .await?;
            Ok(tokens.into_iter().filter(|token| renewed.contains(token)).collect())
        })
    }

    fn poll(&self, instance: Arc<str>) -> StoreFuture<'_, Polled> {
        Box::pin(async move {
            let lease_ms = self.inner.lease_ms();
            self.inner
                .run(Op::Poll, move |conn| {
                    Box::pin(async move {
                        let rows = conn
                            .query(&conn.inner.sql.poll, &[(&&*instance, Type::TEXT), (&lease_ms, Type::INT8)])
                            .await?;
                        let mut polled = Polled::default();
                        for row in &rows {
                            let name: String = row.try_get(1)?;
                            match row.try_get::<_, &str>(0)? {
                                "lost" => polled.lost.push((name, row.try_get(6)?, row.try_get(7)?)),
                                "running" => polled.running.push((name, row.try_get(6)?, row.try_get(7)?)),
                                "adopt" => polled.adopt.push(Adoption {
                                    worker: name,
                                    scheduled_at: row.try_get(6)?,
                                    attempts: to_u32(row.try_get(5)?),
                                    lost_by: row.try_get(7)?,
                                }),
                                _ => {
                                    let failures = to_u32(row.try_get(5)?);
                                    let disabled =
                                        disabled_from(row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, failures);
                                    polled.workers.push((name, disabled, failures));
                                }
                            }
                        }
                        Ok(polled)
                    })
                })
                .await
        })
    }

    fn notify(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.inner
                .run(Op::Notify, move |conn| {
                    Box::pin(async move {
                        conn.execute("SELECT pg_notify($1, '')", &[(&conn.inner.channel, Type::TEXT)]).await?;
                        Ok(())
                    })
                })
                .await
        })
    }

    fn listen(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let inner = &*self.inner;
            let mut slot = inner.listener.lock().await;
            let listener = match &mut *slot {
                Some(listener) => listener,
                None => {
                    let mut listener = Listener::connect(inner).await?;
                    if !listener.probe(inner).await? {
                        // A pooler in transaction mode: polling it is, and
                        // LISTEN is tried again now and then (the pooler
                        // may be gone).
                        drop(listener);
                        if !inner.listen_given_up.swap(true, Ordering::Relaxed) {
                            tracing::info!(
                                url = inner.target.shown(),
                                poll_interval_ms = inner.poll_interval.as_millis() as u64,
                                "notifications do not reach this replica (a pooler in transaction mode?): \
                                 LISTEN given up, other replicas' changes are seen at each poll; tried again \
                                 every 10 minutes"
                            );
                        }
                        tokio::time::sleep(LISTEN_RETRY).await;
                        return Err(StoreError::Unreachable(format!(
                            "notifications sent on {} do not reach the listening connection",
                            inner.target.shown()
                        )));
                    }
                    slot.insert(listener)
                }
            };
            let heard = listener.wait(inner).await;
            if heard.is_err() {
                // The next call reconnects.
                *slot = None;
            }
            heard
        })
    }

    fn instances(&self) -> StoreFuture<'_, Vec<InstanceInfo>> {
        Box::pin(async move {
            let window = self.inner.lease_ms().saturating_mul(3);
            self.inner
                .run(Op::Instances, move |conn| {
                    Box::pin(async move {
                        let rows = conn.query(&conn.inner.sql.instances, &[(&window, Type::INT8)]).await?;
                        rows.iter()
                            .map(|row| {
                                Ok(InstanceInfo {
                                    name: row.try_get(0)?,
                                    started_at: row.try_get(1)?,
                                    last_heartbeat: row.try_get(2)?,
                                })
                            })
                            .collect()
                    })
                })
                .await
        })
    }

    fn clock_offset(&self) -> StoreFuture<'_, chrono::Duration> {
        Box::pin(async move {
            self.inner
                .run(Op::Clock, move |conn| {
                    Box::pin(async move {
                        // The database's reading is taken to be halfway
                        // through the round trip.
                        let sent = Utc::now();
                        let rows = conn.query("SELECT clock_timestamp()", &[]).await?;
                        let received = Utc::now();
                        let theirs: DateTime<Utc> =
                            rows.first().map(|row| row.try_get(0)).transpose()?.unwrap_or(received);
                        Ok(theirs - (sent + (received - sent) / 2))
                    })
                })
                .await
        })
    }

    fn leave(&self, instance: Arc<str>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.inner
                .run(Op::Leave, move |conn| {
                    Box::pin(async move {
                        conn.execute(&conn.inner.sql.leave, &[(&&*instance, Type::TEXT)]).await?;
                        Ok(())
                    })
                })
                .await
        })
    }
}
