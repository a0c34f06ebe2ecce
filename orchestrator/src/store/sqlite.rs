//! `SqliteStore`: an orchestrator's state in a SQLite file, for one instance.
//!
//! Owns the file's schema (versioned by `PRAGMA user_version`) and turns
//! each [`Backend`] call into one short transaction. It never runs SQLite on
//! the async executor: every call goes to tokio's blocking pool, where it
//! takes the store's one connection. No cluster mode: a single instance owns
//! the file, so claims, leases and polls keep the trait's defaults.
//!
//! Timestamps are stored as integer microseconds since the Unix epoch, UTC
//! (PostgreSQL's precision): the millisecond identities of fires
//! (`scheduled_at`) round-trip exactly, and rows sort as numbers.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{Backend, Entry, Fact, FireOutcome, Restored, Store, StoreError, StoreFuture, StoreKind, StoredDisable};
use super::{WorkerInfo, sealed};
use crate::history::FireRecord;

/// The schema version this binary writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's lock (another
/// process on the same file, a backup tool) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1: the logical schema every store shares (see the module docs
/// of [`crate::store`]). `STRICT` makes SQLite check the column types.
const SCHEMA_V1: &str = "
CREATE TABLE workers (
    name TEXT PRIMARY KEY NOT NULL,
    anchor INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    disabled_kind TEXT,
    disabled_reason TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    max_consecutive_failures INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE fires (
    id INTEGER PRIMARY KEY,
    worker TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    scope_key TEXT NOT NULL,
    instance TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    token INTEGER,
    lease_until INTEGER,
    UNIQUE (worker, scheduled_at, scope_key)
) STRICT;

CREATE INDEX fires_by_worker ON fires (worker, scheduled_at DESC);
CREATE INDEX fires_running ON fires (outcome) WHERE outcome = 'running';
";

/// An orchestrator's state in a SQLite file: worker flags, failure counts,
/// schedule anchors and the run history survive restarts. For one
/// instance; replicas that share their state need `PostgresStore`.
///
/// Give it a file of its own: the store names its tables `workers` and
/// `fires` and versions them with `PRAGMA user_version`, which an
/// application's own tables and migrations could also use.
///
/// ```no_run
/// # async fn example() -> Result<(), orchestrator::store::StoreError> {
/// use orchestrator::store::SqliteStore;
///
/// let store = SqliteStore::open("orchestrator.db").await?;
/// # drop(store);
/// # Ok(()) }
/// ```
pub struct SqliteStore {
    /// The file, for error messages.
    path: Arc<Path>,
    // One connection, used from tokio's blocking pool. Not tokio-rusqlite:
    // it would add a dependency and a thread of its own to do what
    // `spawn_blocking` and a mutex do here; calls are short transactions,
    // nearly all from the runtime's single writer task, so the mutex is
    // rarely contended.
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens the SQLite file at `path`, creating it and orchestrator's
    /// tables if needed, in WAL mode (readers never wait for the writer)
    /// with a busy timeout of 5 s for locks held by other connections.
    /// Fires that a previous process left running (it was killed before
    /// they finished) are recorded `lost`, each counted as a failure of its
    /// worker.
    ///
    /// Fails with [`StoreError::Invalid`] naming the path when the file
    /// cannot be opened or created (its directory does not exist, say, or it
    /// is not a SQLite database), and with [`StoreError::SchemaTooNew`] when
    /// a newer orchestrator wrote its schema.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), orchestrator::store::StoreError> {
    /// use orchestrator::store::SqliteStore;
    ///
    /// let store = SqliteStore::open("/var/lib/my-app/orchestrator.db").await?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path: Arc<Path> = path.as_ref().into();
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_file(&path)).await
        };
        let conn = opened
            .map_err(|e| StoreError::Database(format!("opening `{}` did not complete: {e}", path.display())))??;
        Ok(SqliteStore { path, conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    ///
    /// The call completes even if the returned future is dropped: a
    /// transaction is never cut short halfway by a cancelled caller.
    fn call<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                // A panic while the lock was held unwound through the open
                // transaction, which rolled it back: the connection is fine.
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                f(&mut conn).map_err(|e| database(&path, &e))
            });
            task.await.map_err(|e| StoreError::Database(format!("a SQLite call did not complete: {e}")))?
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store for SqliteStore {}

impl sealed::Sealed for SqliteStore {
    fn into_backend(self) -> sealed::Opaque {
        sealed::Opaque(Arc::new(self))
    }
}

impl Backend for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn open(&self, _instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = micros(Utc::now());
            let mut restored = Vec::with_capacity(workers.len());
            {
                // A known worker keeps its anchor, flag and count: only its
                // threshold follows the binary.
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO workers (name, anchor, enabled, disabled_kind, disabled_reason,
                         consecutive_failures, max_consecutive_failures, updated_at, version)
                     VALUES (?1, ?2, ?3, CASE WHEN ?3 THEN NULL ELSE 'configured' END, NULL, 0, ?4, ?5, 0)
                     ON CONFLICT (name) DO UPDATE SET max_consecutive_failures = excluded.max_consecutive_failures",
                )?;
                let mut read = tx.prepare_cached(
                    "SELECT anchor, enabled, disabled_kind, disabled_reason, consecutive_failures
                     FROM workers WHERE name = ?1",
                )?;
                let mut last = tx.prepare_cached(
                    "SELECT scheduled_at, outcome FROM fires WHERE worker = ?1
                     ORDER BY scheduled_at DESC, id DESC LIMIT 1",
                )?;
                for w in &workers {
                    upsert.execute(params![&*w.name, micros(w.anchor), w.enabled, w.threshold, now])?;
                    let (anchor, enabled, kind, reason, failures) = read.query_row([&*w.name], |r| {
                        Ok((
                            time(r, 0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, u32>(4)?,
                        ))
                    })?;
                    let last_fire = last.query_row([&*w.name], |r| Ok((time(r, 0)?, outcome(r, 1)?))).optional()?;
                    restored.push(Restored {
                        anchor,
                        disabled: (!enabled).then(|| {
                            StoredDisable::from_columns(kind.as_deref().unwrap_or_default(), reason, failures)
                        }),
                        consecutive_failures: failures,
                        last_fire,
                    });
                }
            }
            tx.commit()?;
            Ok(restored)
        })
    }

    fn write(&self, instance: Arc<str>, entries: Vec<Entry>) -> StoreFuture<'_, u64> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut refused = 0;
            for entry in &entries {
                if !write_entry(&tx, &instance, entry)? {
                    refused += 1;
                }
            }
            tx.commit()?;
            Ok(refused)
        })
    }

    fn history(&self, worker: Arc<str>, limit: usize) -> StoreFuture<'_, Vec<FireRecord>> {
        self.call(move |conn| {
            let mut select = conn.prepare_cached(
                "SELECT worker, scheduled_at, instance, attempts, started_at, finished_at, outcome, error
                 FROM fires WHERE worker = ?1 ORDER BY scheduled_at DESC, id DESC LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            select
                .query_map(params![&*worker, limit], |r| {
                    Ok(FireRecord {
                        worker: r.get(0)?,
                        scheduled_at: time(r, 1)?,
                        instance: r.get(2)?,
                        attempts: r.get(3)?,
                        started_at: optional_time(r, 4)?,
                        finished_at: optional_time(r, 5)?,
                        outcome: outcome(r, 6)?,
                        error: r.get(7)?,
                    })
                })?
                .collect()
        })
    }

    fn prune(&self, before: DateTime<Utc>) -> StoreFuture<'_, u64> {
        self.call(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM fires WHERE outcome <> 'running' AND finished_at < ?1")?
                .execute([micros(before)])?;
            Ok(deleted as u64)
        })
    }
}

/// Writes one entry; `false` when its token no longer holds the fire
/// (refused: nothing changed).
fn write_entry(tx: &Connection, instance: &str, entry: &Entry) -> rusqlite::Result<bool> {
    let scope_key = if entry.shared { "" } else { instance };
    match &entry.fact {
        Fact::Started { worker, scheduled_at, started_at } => {
            // On conflict the fire runs again (a re-run of the same slot).
            tx.prepare_cached(
                "INSERT INTO fires (worker, scheduled_at, scope_key, instance, attempts, started_at, outcome, token)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 'running', ?6)
                 ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE SET
                     instance = excluded.instance, attempts = 1, started_at = excluded.started_at,
                     finished_at = NULL, outcome = 'running', error = NULL, token = excluded.token",
            )?
            .execute(params![
                &**worker,
                micros(*scheduled_at),
                scope_key,
                instance,
                micros(*started_at),
                entry.token
            ])?;
            Ok(true)
        }
        Fact::Attempt { worker, scheduled_at, attempt } => {
            let changed = match entry.token {
                None => tx
                    .prepare_cached(
                        "UPDATE fires SET attempts = ?4 WHERE worker = ?1 AND scheduled_at = ?2 AND scope_key = ?3",
                    )?
                    .execute(params![&**worker, micros(*scheduled_at), scope_key, attempt])?,
                Some(token) => tx
                    .prepare_cached(
                        "UPDATE fires SET attempts = ?4
                         WHERE worker = ?1 AND scheduled_at = ?2 AND scope_key = ?3
                           AND token = ?5 AND outcome = 'running'",
                    )?
                    .execute(params![&**worker, micros(*scheduled_at), scope_key, attempt, token])?,
            };
            Ok(entry.token.is_none() || changed > 0)
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
            let (scheduled_at, finished_at, outcome) =
                (micros(*scheduled_at), micros(*finished_at), FireOutcome::as_str(*outcome));
            let now = micros(Utc::now());
            match entry.token {
                None => {
                    // A fire whose start was never written is recorded all the same.
                    tx.prepare_cached(
                        "INSERT INTO fires (worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE SET
                             attempts = excluded.attempts, finished_at = excluded.finished_at,
                             outcome = excluded.outcome, error = excluded.error",
                    )?
                    .execute(params![&**worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error])?;
                    tx.prepare_cached("UPDATE workers SET consecutive_failures = ?2, updated_at = ?3 WHERE name = ?1")?
                        .execute(params![&**worker, consecutive_failures, now])?;
                }
                Some(token) => {
                    let changed = tx
                        .prepare_cached(
                            "UPDATE fires SET attempts = ?4, finished_at = ?5, outcome = ?6, error = ?7
                             WHERE worker = ?1 AND scheduled_at = ?2 AND scope_key = ?3
                               AND token = ?8 AND outcome = 'running'",
                        )?
                        .execute(params![
                            &**worker,
                            scheduled_at,
                            scope_key,
                            attempts,
                            finished_at,
                            outcome,
                            error,
                            token
                        ])?;
                    if changed == 0 {
                        return Ok(false);
                    }
                    // The count is the worker's across the cluster.
                    tx.prepare_cached(
                        "UPDATE workers SET updated_at = ?3, consecutive_failures = CASE ?2
                             WHEN 'succeeded' THEN 0
                             WHEN 'failed' THEN consecutive_failures + 1
                             ELSE consecutive_failures END
                         WHERE name = ?1",
                    )?
                    .execute(params![&**worker, outcome, now])?;
                    tx.prepare_cached(
                        "UPDATE workers SET enabled = 0, disabled_kind = 'failures', disabled_reason = ?3,
                             version = version + 1, updated_at = ?4
                         WHERE name = ?1 AND ?2 > 0 AND consecutive_failures >= ?2 AND enabled",
                    )?
                    .execute(params![&**worker, threshold, error, now])?;
                }
            }
            Ok(true)
        }
        Fact::Dropped { worker, scheduled_at, at, outcome, error } => {
            tx.prepare_cached(
                "INSERT INTO fires (worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)
                 ON CONFLICT (worker, scheduled_at, scope_key) DO NOTHING",
            )?
            .execute(params![
                &**worker,
                micros(*scheduled_at),
                scope_key,
                instance,
                micros(*at),
                FireOutcome::as_str(*outcome),
                error
            ])?;
            Ok(true)
        }
        Fact::State { worker, disabled, consecutive_failures } => {
            tx.prepare_cached(
                "UPDATE workers SET enabled = ?2, disabled_kind = ?3, disabled_reason = ?4, consecutive_failures = ?5,
                     version = version + 1, updated_at = ?6
                 WHERE name = ?1",
            )?
            .execute(params![
                &**worker,
                disabled.is_none(),
                disabled.as_ref().map(StoredDisable::kind),
                disabled.as_ref().and_then(StoredDisable::reason),
                consecutive_failures,
                micros(Utc::now()),
            ])?;
            Ok(true)
        }
    }
}

/// Opens (or creates) the file and brings its schema to this binary's version.
fn open_file(path: &Path) -> Result<Connection, StoreError> {
    let cannot_open = |e: rusqlite::Error| {
        let missing_dir = path.parent().filter(|dir| !dir.as_os_str().is_empty() && !dir.exists());
        StoreError::Invalid(match missing_dir {
            Some(dir) => format!(
                "cannot create the SQLite file `{}`: its directory `{}` does not exist",
                path.display(),
                dir.display()
            ),
            None => format!("cannot open the SQLite file `{}`: {e}", path.display()),
        })
    };
    let mut conn = Connection::open(path).map_err(cannot_open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| database(path, &e))?;
    // The first read is where SQLite finds out that the file is not a database.
    let found = user_version(&conn).map_err(cannot_open)?;
    check_version(found)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(|e| database(path, &e))?;
    // Durable across a crash of the process; a power loss may lose the last
    // transactions, never corrupt the file (the usual setting with WAL).
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| database(path, &e))?;
    migrate(&mut conn, path)?;
    record_lost(&mut conn).map_err(|e| database(path, &e))?;
    Ok(conn)
}

/// Records as `lost` every fire still `running` in the file, so that no
/// history shows a fire running forever.
///
/// A file has one instance (see [`SqliteStore`]), and opening it is where
/// that instance starts: a running fire found then belongs to a process that
/// stopped before its run finished (killed, crashed, the machine lost
/// power). As PostgreSQL does on a takeover, each such fire counts as a
/// failure of its worker, which is disabled at its threshold.
fn record_lost(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = micros(Utc::now());
    // The workers first, while their fires still read `running`.
    tx.execute(
        "UPDATE workers SET updated_at = ?1, consecutive_failures = consecutive_failures
             + (SELECT count(*) FROM fires f WHERE f.worker = workers.name AND f.outcome = 'running')
         WHERE name IN (SELECT worker FROM fires WHERE outcome = 'running')",
        [now],
    )?;
    tx.execute(
        "UPDATE workers SET enabled = 0, disabled_kind = 'failures', version = version + 1, updated_at = ?1,
             disabled_reason = (SELECT 'instance ' || f.instance || ' stopped before its run finished'
                                FROM fires f WHERE f.worker = workers.name AND f.outcome = 'running'
                                ORDER BY f.scheduled_at DESC LIMIT 1)
         WHERE name IN (SELECT worker FROM fires WHERE outcome = 'running')
           AND enabled AND max_consecutive_failures > 0 AND consecutive_failures >= max_consecutive_failures",
        [now],
    )?;
    tx.execute(
        "UPDATE fires SET outcome = 'lost', finished_at = ?1, token = NULL, lease_until = NULL,
             error = 'instance ' || instance || ' stopped before its run finished'
         WHERE outcome = 'running'",
        [now],
    )?;
    tx.commit()
}

/// Creates the tables of a new file. Several processes may open a new file
/// at once: the version is read again under the write lock.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let failed = |e: rusqlite::Error| {
        StoreError::Database(format!("cannot create orchestrator's tables in `{}`: {e}", path.display()))
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    let found = user_version(&tx).map_err(failed)?;
    check_version(found)?;
    if found < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(failed)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn check_version(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

fn database(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError::Database(format!("SQLite file `{}`: {e}", path.display()))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(row: &Row<'_>, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    let value: i64 = row.get(column)?;
    DateTime::from_timestamp_micros(value).ok_or(rusqlite::Error::IntegralValueOutOfRange(column, value))
}

fn optional_time(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(column)? {
        Some(_) => time(row, column).map(Some),
        None => Ok(None),
    }
}

fn outcome(row: &Row<'_>, column: usize) -> rusqlite::Result<FireOutcome> {
    Ok(FireOutcome::from_column(&row.get::<_, String>(column)?))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::conformance;

    /// Unique SQLite files under the temp directory, removed on drop (even
    /// when a test fails).
    struct TempFiles {
        dir: PathBuf,
        next: std::sync::atomic::AtomicU32,
    }

    impl TempFiles {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "orchestrator-sqlite-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).expect("the temp directory is writable");
            TempFiles { dir, next: 0.into() }
        }

        fn path(&self) -> PathBuf {
            let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.dir.join(format!("store-{n}.db"))
        }
    }

    impl Drop for TempFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn open(path: &Path) -> Arc<dyn Backend> {
        match SqliteStore::open(path).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("{} should open: {e}", path.display()),
        }
    }

    fn worker(name: &str) -> WorkerInfo {
        WorkerInfo {
            name: name.into(),
            anchor: DateTime::from_timestamp_millis(1_700_000_000_123).expect("in range"),
            enabled: true,
            threshold: 3,
            max_attempts: 1,
        }
    }

    #[tokio::test]
    async fn sqlite_store_passes_the_conformance_suite() {
        let files = TempFiles::new();
        let factory = || {
            let path = files.path();
            async move { open(&path).await }
        };
        conformance::run_all(factory, true).await;
        assert!(std::fs::read_dir(&files.dir).map(|d| d.count() > 0).unwrap_or(false), "the files were made there");
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused_with_both_versions() {
        let files = TempFiles::new();
        let path = files.path();
        drop(open(&path).await);
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", 99))
            .expect("the test can write the file");
        let err = SqliteStore::open(&path).await.expect_err("a newer schema is refused");
        assert!(matches!(err, StoreError::SchemaTooNew { found: 99, supported: SCHEMA_VERSION }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("99") && message.contains(&SCHEMA_VERSION.to_string()), "{message}");
    }

    #[tokio::test]
    async fn a_path_in_a_missing_directory_is_refused_naming_the_path() {
        let files = TempFiles::new();
        let path = files.dir.join("no-such-directory").join("orchestrator.db");
        let err = SqliteStore::open(&path).await.expect_err("the directory does not exist");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused_naming_the_path() {
        let files = TempFiles::new();
        let path = files.path();
        std::fs::write(&path, b"not a database, just some text that is long enough to have a header")
            .expect("the test can write the file");
        let err = SqliteStore::open(&path).await.expect_err("not a database");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[tokio::test]
    async fn the_same_file_opens_again_after_a_restart_and_while_open() {
        let files = TempFiles::new();
        let path = files.path();
        let first = open(&path).await;
        first.open("i-1".into(), vec![worker("w")]).await.expect("open");
        let disabled =
            Fact::State { worker: "w".into(), disabled: Some(StoredDisable::Manually), consecutive_failures: 2 };
        let entry = Entry { fact: disabled, token: None, shared: false };
        assert_eq!(first.write("i-1".into(), vec![entry]).await.expect("write"), 0);

        // A second process on the same file while the first still has it open.
        let second = open(&path).await;
        let restored = second.open("i-2".into(), vec![worker("w")]).await.expect("open");
        assert_eq!(restored[0].disabled, Some(StoredDisable::Manually));
        drop((first, second));

        // And after both stopped.
        let third = open(&path).await;
        let restored = third.open("i-3".into(), vec![worker("w")]).await.expect("open");
        assert_eq!(restored[0].disabled, Some(StoredDisable::Manually));
        assert_eq!(restored[0].consecutive_failures, 2);
    }

    #[tokio::test]
    async fn a_fire_left_running_by_a_dead_process_is_lost_when_the_file_opens_again() {
        let files = TempFiles::new();
        let path = files.path();
        let ms = |t| DateTime::from_timestamp_millis(t).expect("in range");
        let started = |worker: &str, at| Entry {
            fact: Fact::Started { worker: worker.into(), scheduled_at: ms(at), started_at: ms(at + 1) },
            token: None,
            shared: false,
        };
        let fragile = WorkerInfo { threshold: 1, ..worker("fragile") };
        let dead = open(&path).await;
        dead.open("i-1".into(), vec![worker("w"), fragile.clone()]).await.expect("open");
        let second_attempt = Fact::Attempt { worker: "w".into(), scheduled_at: ms(60_000), attempt: 2 };
        let entries = vec![
            started("w", 60_000),
            Entry { fact: second_attempt, token: None, shared: false },
            started("fragile", 60_000),
        ];
        assert_eq!(dead.write("i-1".into(), entries).await.expect("write"), 0);
        // The process is killed: nothing more is written.
        drop(dead);

        let before = Utc::now();
        let store = open(&path).await;
        let fires = store.history("w".into(), 10).await.expect("history");
        assert_eq!(fires.len(), 1);
        let fire = &fires[0];
        assert_eq!((fire.outcome, fire.attempts, fire.instance.as_str()), (FireOutcome::Lost, 2, "i-1"));
        assert_eq!(fire.started_at, Some(ms(60_001)), "when it started is kept");
        assert!(fire.finished_at.is_some_and(|at| at >= before - chrono::Duration::milliseconds(1)), "{fire:?}");
        assert_eq!(fire.error.as_deref(), Some("instance i-1 stopped before its run finished"));

        let restored = store.open("i-2".into(), vec![worker("w"), fragile]).await.expect("open");
        assert_eq!(restored[0].last_fire, Some((ms(60_000), FireOutcome::Lost)));
        assert_eq!((restored[0].consecutive_failures, restored[0].disabled.clone()), (1, None), "one failure");
        let reason = "instance i-1 stopped before its run finished".to_string();
        assert_eq!(
            restored[1].disabled,
            Some(StoredDisable::Failures { count: 1, last_error: reason }),
            "disabled at its threshold"
        );

        // A running fire of this instance stays running while it has the file.
        assert_eq!(store.write("i-2".into(), vec![started("w", 120_000)]).await.expect("write"), 0);
        let restored = store.open("i-2".into(), vec![worker("w")]).await.expect("open");
        assert_eq!(restored[0].last_fire, Some((ms(120_000), FireOutcome::Running)));
    }

    #[tokio::test]
    async fn a_stale_token_is_refused_and_changes_nothing() {
        let files = TempFiles::new();
        let store = open(&files.path()).await;
        store.open("i-1".into(), vec![worker("w")]).await.expect("open");
        let at = DateTime::from_timestamp_millis(1_700_000_001_000).expect("in range");
        let started = Fact::Started { worker: "w".into(), scheduled_at: at, started_at: at };
        let finished = Fact::Finished {
            worker: "w".into(),
            scheduled_at: at,
            finished_at: at,
            attempts: 2,
            outcome: FireOutcome::Failed,
            error: Some("boom".into()),
            consecutive_failures: 9,
            threshold: 1,
        };
        let attempt = Fact::Attempt { worker: "w".into(), scheduled_at: at, attempt: 2 };
        let held = |fact: Fact, token| Entry { fact, token: Some(token), shared: true };
        assert_eq!(store.write("i-1".into(), vec![held(started, 7)]).await.expect("write"), 0);
        let stale = vec![held(attempt.clone(), 6), held(finished.clone(), 6)];
        assert_eq!(store.write("i-1".into(), stale).await.expect("write"), 2);
        let fires = store.history("w".into(), 10).await.expect("history");
        assert_eq!((fires[0].outcome, fires[0].attempts), (FireOutcome::Running, 1));
        let restored = store.open("i-1".into(), vec![worker("w")]).await.expect("open");
        assert_eq!((restored[0].disabled.clone(), restored[0].consecutive_failures), (None, 0));

        // The holder's token writes, counts the failure cluster-wide and
        // disables the worker at its threshold.
        assert_eq!(store.write("i-1".into(), vec![held(attempt, 7), held(finished, 7)]).await.expect("write"), 0);
        let fires = store.history("w".into(), 10).await.expect("history");
        assert_eq!((fires[0].outcome, fires[0].attempts), (FireOutcome::Failed, 2));
        let restored = store.open("i-1".into(), vec![worker("w")]).await.expect("open");
        assert_eq!(restored[0].consecutive_failures, 1);
        assert_eq!(restored[0].disabled, Some(StoredDisable::Failures { count: 1, last_error: "boom".into() }));
    }
}
