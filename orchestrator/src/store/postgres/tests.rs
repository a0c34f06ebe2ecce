//! The PostgreSQL store against a real database.
//!
//! The database is `ORCHESTRATOR_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in a schema
//! of its own, dropped when its store goes. Without a database the tests
//! say so and pass, unless `CI=true`, where they fail.

use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use anyhow::Context as _;
use chrono::TimeZone;

use super::*;
use crate::store::redact;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("ORCHESTRATOR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// The test database's URL, or `None` (after saying so) when it cannot be
/// reached outside CI.
async fn database() -> Option<String> {
    let url = url();
    let reached = tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(&url, NoTls)).await;
    let error = match reached {
        Ok(Ok(_)) => return Some(url),
        Ok(Err(e)) => describe(&e),
        Err(_) => "no answer within 5 s".to_string(),
    };
    let message = format!("no test database at {} ({error})", redact(&url));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}; set ORCHESTRATOR_TEST_DATABASE_URL");
    eprintln!("skipped: {message}; set ORCHESTRATOR_TEST_DATABASE_URL to run the PostgreSQL tests");
    None
}

/// A schema name no other test uses.
fn fresh_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("orch_t_{}_{}_{:08x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), fastrand::u32(..))
}

/// A test's schema: dropped with the store that owns it.
pub(super) struct Scratch {
    url: String,
    schema: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own, on a thread of its own: this runs inside
        // the test's runtime, which is blocked meanwhile. Whatever that
        // runtime still had to send (a dropped transaction's rollback)
        // waits, so the sessions blocking the DROP, all this test's, are
        // terminated.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let connect = || async {
                    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                    tokio::spawn(connection);
                    Some(client)
                };
                let (Some(dropper), Some(watcher)) = (connect().await, connect().await) else { return };
                let Ok(pid) = dropper.query_one("SELECT pg_backend_pid()", &[]).await else { return };
                let pid: i32 = pid.get(0);
                let drop_schema = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                let unblock = async {
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let _ = watcher
                            .query("SELECT pg_terminate_backend(b) FROM unnest(pg_blocking_pids($1)) AS b", &[&pid])
                            .await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), async {
                    tokio::select! {
                        _ = dropper.batch_execute(&drop_schema) => {}
                        () = unblock => {}
                    }
                })
                .await;
            });
        });
        let _ = dropped.join();
    }
}

/// A store on a fresh schema, set up by `settings`.
async fn store_with(settings: impl FnOnce(PostgresStoreBuilder) -> PostgresStoreBuilder) -> Option<PostgresStore> {
    let url = database().await?;
    let schema = fresh_schema();
    let mut store = settings(PostgresStore::builder(&url).schema(&schema)).connect().await.expect("connecting");
    Arc::get_mut(&mut store.inner).expect("a store nobody shares yet").scratch = Some(Scratch { url, schema });
    Some(store)
}

async fn store() -> Option<PostgresStore> {
    store_with(|b| b).await
}

/// A store on a fresh schema with 1 s leases, for takeovers.
async fn short_lease_store() -> Option<PostgresStore> {
    store_with(|b| b.lease_ttl(Duration::from_secs(1)).poll_interval(Duration::from_millis(500))).await
}

/// A store for the shared conformance suite: a fresh schema each call
/// (dropped with the store), or `None` without a database outside CI.
pub(crate) async fn test_store() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(store().await?))
}

/// Another replica on the same schema, with the same settings.
async fn replica(of: &PostgresStore) -> PostgresStore {
    PostgresStore::builder(url())
        .schema(&of.inner.schema)
        .lease_ttl(of.inner.lease_ttl)
        .poll_interval(of.inner.poll_interval)
        .connect()
        .await
        .expect("connecting a replica")
}

/// A plain connection, to look at the tables.
async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client
}

/// `SELECT ... FROM "schema".table ...`: `{s}` in `query` is the store's schema.
async fn rows(store: &PostgresStore, query: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Row> {
    let query = query.replace("{s}", &format!("\"{}\"", store.inner.schema));
    admin().await.query(&query, params).await.expect(&query)
}

fn at(seconds: i64) -> DateTime<Utc> {
    // Whole milliseconds, and not whole seconds: they must round-trip exactly.
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(678 + seconds * 1000)
}

fn info(name: &str, threshold: u32) -> WorkerInfo {
    WorkerInfo { name: name.into(), anchor: at(0), enabled: true, threshold, max_attempts: 1 }
}

fn names(list: &[&str]) -> Arc<[Arc<str>]> {
    list.iter().map(|n| Arc::from(*n)).collect()
}

fn request(worker: &str, scheduled_at: DateTime<Utc>, instance: &str) -> ClaimRequest {
    ClaimRequest {
        worker: worker.into(),
        scheduled_at,
        instance: instance.into(),
        conflicts: names(&[]),
        depends_on: names(&[]),
    }
}

fn finished(worker: &str, scheduled_at: DateTime<Utc>, outcome: FireOutcome, token: Option<i64>) -> Entry {
    let error = (outcome == FireOutcome::Failed).then(|| "boom".to_string());
    Entry {
        fact: Fact::Finished {
            worker: worker.into(),
            scheduled_at,
            finished_at: Utc::now(),
            attempts: 1,
            outcome,
            error,
            consecutive_failures: 0,
            threshold: 2,
        },
        token,
        shared: true,
    }
}

fn started(worker: &str, scheduled_at: DateTime<Utc>, shared: bool) -> Entry {
    Entry { fact: Fact::Started { worker: worker.into(), scheduled_at, started_at: Utc::now() }, token: None, shared }
}

async fn granted(store: &PostgresStore, request: ClaimRequest) -> anyhow::Result<i64> {
    match store.claim(request).await? {
        Claim::Granted { token } => Ok(token),
        other => anyhow::bail!("expected a grant, got {other:?}"),
    }
}

/// Polls as `instance` until a takeover happens (bounded).
async fn poll_until_lost(store: &PostgresStore, instance: &str) -> anyhow::Result<Polled> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let polled = store.poll(instance.into()).await?;
        if !polled.lost.is_empty() {
            return Ok(polled);
        }
        anyhow::ensure!(Instant::now() < deadline, "no takeover within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn failures_and_enabled(store: &PostgresStore, worker: &str) -> (i32, bool) {
    let row =
        &rows(store, "SELECT consecutive_failures, enabled FROM {s}.workers WHERE name = $1", &[&worker]).await[0];
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn the_test_factory_gives_a_cluster_store_on_a_fresh_schema() -> anyhow::Result<()> {
    let (Some(one), Some(two)) = (test_store().await, test_store().await) else { return Ok(()) };
    assert_eq!(one.kind(), StoreKind::Postgres);
    assert!(one.cluster().is_some());
    one.open("a".into(), vec![info("w", 0)]).await?;
    assert!(two.history("w".into(), 10).await?.is_empty(), "another schema");
    assert!(two.instances().await?.is_empty(), "another schema");
    assert!(two.open("b".into(), vec![]).await?.is_empty());
    assert_eq!(two.instances().await?.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["b"]);
    Ok(())
}

#[tokio::test]
async fn postgres_store_passes_the_conformance_suite() {
    // Reachability is settled once, before the suite: after that, a store
    // the factory cannot make is a failure, never a skip.
    if database().await.is_none() {
        return;
    }
    let factory = || async { test_store().await.expect("the test database was reachable a moment ago") };
    crate::store::conformance::run_all(factory, true).await;
}

#[tokio::test]
async fn open_creates_unknown_workers_and_keeps_what_it_knows() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let mut disabled = info("w2", 0);
    disabled.enabled = false;
    let restored = store.open("a".into(), vec![info("w1", 3), disabled]).await?;
    assert_eq!(
        restored,
        vec![
            Restored { anchor: at(0), disabled: None, consecutive_failures: 0, last_fire: None },
            Restored {
                anchor: at(0),
                disabled: Some(StoredDisable::Configured),
                consecutive_failures: 0,
                last_fire: None
            },
        ]
    );
    rows(&store, "INSERT INTO {s}.workers (name, anchor, enabled) VALUES ('stranger', $1, false)", &[&at(9)]).await;

    let mut again = info("w1", 5);
    again.anchor = at(100);
    again.enabled = false;
    let restored = store.open("b".into(), vec![again.clone(), info("w2", 0), again]).await?;
    assert_eq!(restored.len(), 3, "one per given worker, in order");
    assert_eq!((restored[0].anchor, restored[0].disabled.clone()), (at(0), None), "stored anchor and flag win");
    assert_eq!(restored[1].disabled, Some(StoredDisable::Configured));
    assert_eq!(restored[2], restored[0]);
    let threshold = rows(&store, "SELECT max_consecutive_failures FROM {s}.workers WHERE name = 'w1'", &[]).await;
    assert_eq!(threshold[0].get::<_, i32>(0), 5, "the threshold follows the binary");
    let stranger = rows(&store, "SELECT anchor, enabled FROM {s}.workers WHERE name = 'stranger'", &[]).await;
    assert_eq!((stranger[0].get::<_, DateTime<Utc>>(0), stranger[0].get::<_, bool>(1)), (at(9), false));
    let instances = rows(&store, "SELECT name FROM {s}.instances ORDER BY name", &[]).await;
    assert_eq!(instances.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(), ["a", "b"]);
    Ok(())
}

#[tokio::test]
async fn writes_keep_a_history_newest_first_with_exact_timestamps() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let started_at = at(1);
    let entries = vec![
        Entry {
            fact: Fact::Started { worker: "w".into(), scheduled_at: at(1), started_at },
            token: None,
            shared: true,
        },
        Entry {
            fact: Fact::Attempt { worker: "w".into(), scheduled_at: at(1), attempt: 2 },
            token: None,
            shared: true,
        },
        Entry {
            fact: Fact::Finished {
                worker: "w".into(),
                scheduled_at: at(1),
                finished_at: at(2),
                attempts: 2,
                outcome: FireOutcome::Failed,
                error: Some("boom".into()),
                consecutive_failures: 1,
                threshold: 0,
            },
            token: None,
            shared: true,
        },
        Entry {
            fact: Fact::Dropped {
                worker: "w".into(),
                scheduled_at: at(3),
                at: at(3),
                outcome: FireOutcome::Missed,
                error: None,
            },
            token: None,
            shared: true,
        },
    ];
    assert_eq!(store.write("a".into(), entries).await?, 0);
    let history = store.history("w".into(), 10).await?;
    assert_eq!(
        history,
        vec![
            FireRecord {
                worker: "w".into(),
                scheduled_at: at(3),
                instance: "a".into(),
                attempts: 0,
                started_at: None,
                finished_at: Some(at(3)),
                outcome: FireOutcome::Missed,
                error: None,
            },
            FireRecord {
                worker: "w".into(),
                scheduled_at: at(1),
                instance: "a".into(),
                attempts: 2,
                started_at: Some(started_at),
                finished_at: Some(at(2)),
                outcome: FireOutcome::Failed,
                error: Some("boom".into()),
            },
        ]
    );
    assert_eq!(store.history("w".into(), 1).await?.len(), 1);

    let restored = store.open("a".into(), vec![info("w", 0)]).await?;
    assert_eq!(restored[0].consecutive_failures, 1);
    assert_eq!(restored[0].last_fire, Some((at(3), FireOutcome::Missed)));

    let state = |disabled| Entry {
        fact: Fact::State { worker: "w".into(), disabled, consecutive_failures: 1 },
        token: None,
        shared: true,
    };
    store.write("a".into(), vec![state(Some(StoredDisable::Manually))]).await?;
    assert_eq!(store.open("a".into(), vec![info("w", 0)]).await?[0].disabled, Some(StoredDisable::Manually));
    store.write("a".into(), vec![state(None)]).await?;
    assert_eq!(store.open("a".into(), vec![info("w", 0)]).await?[0].disabled, None);

    // A finish without a start, and a re-run of a finished fire.
    store.write("a".into(), vec![finished("w", at(4), FireOutcome::Succeeded, None)]).await?;
    store.write("a".into(), vec![started("w", at(1), true)]).await?;
    let outcomes: Vec<_> = store.history("w".into(), 10).await?.into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [FireOutcome::Succeeded, FireOutcome::Missed, FireOutcome::Running]);

    // An instance's own fires are keyed by the instance too.
    store.write("a".into(), vec![started("w", at(5), false)]).await?;
    store.write("b".into(), vec![started("w", at(5), false)]).await?;
    let instances: Vec<_> = store.history("w".into(), 2).await?.into_iter().map(|r| r.instance).collect();
    assert_eq!(instances.len(), 2);
    assert!(instances.contains(&"a".to_string()) && instances.contains(&"b".to_string()));
    Ok(())
}

#[tokio::test]
async fn prune_deletes_finished_fires_and_keeps_running_ones() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, None)]).await?;
    store.write("a".into(), vec![finished("w", at(2), FireOutcome::Failed, None)]).await?;
    store.write("a".into(), vec![started("w", at(3), true)]).await?;
    assert_eq!(store.prune(Utc::now() - chrono::Duration::hours(1)).await?, 0);
    assert_eq!(store.prune(Utc::now() + chrono::Duration::hours(1)).await?, 2);
    let left = store.history("w".into(), 10).await?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].outcome, FireOutcome::Running);
    Ok(())
}

#[tokio::test]
async fn a_claim_repeated_after_its_answer_was_lost_is_granted_again_to_the_same_store_only() -> anyhow::Result<()> {
    // A connection that dies after the claim's commit loses the answer; the
    // runtime claims again. Told `taken` by itself, the fire would run
    // nowhere until its lease expired.
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let token = granted(&store, request("w", at(1), "a")).await?;
    assert_eq!(store.claim(request("w", at(1), "a")).await?, Claim::Granted { token });
    // Another process, even under the same instance name (a restarted pod
    // that keeps its name), is not the claimant.
    let restarted = replica(&store).await;
    assert_eq!(restarted.claim(request("w", at(1), "a")).await?, Claim::Taken { by: "a".into() });
    // Once the run has ended the fire is taken, for the claimant too.
    store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    assert_eq!(store.claim(request("w", at(1), "a")).await?, Claim::Taken { by: "a".into() });
    Ok(())
}

#[tokio::test]
async fn a_claim_of_a_fire_already_claimed_is_answered_without_waiting_for_the_workers_lock() -> anyhow::Result<()> {
    // Every replica claims every fire: the ones that lost it must not queue
    // behind the winner's locks (C1).
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    granted(&store, request("w", at(1), "a")).await?;
    let (mut admin, connection) = tokio_postgres::connect(&url(), NoTls).await?;
    tokio::spawn(connection);
    let schema = &store.inner.schema;
    let tx = admin.transaction().await?;
    tx.execute(&format!("SELECT 1 FROM \"{schema}\".workers WHERE name = 'w' FOR UPDATE"), &[]).await?;
    let answer = tokio::time::timeout(Duration::from_secs(2), store.claim(request("w", at(1), "b")))
        .await
        .context("the claim waited for the worker's lock")??;
    assert_eq!(answer, Claim::Taken { by: "a".into() });
    // A fire not claimed yet does wait for the lock, and is answered once
    // it is released (busy: w's fire at 1 s still runs).
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.claim(request("w", at(2), "b")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a claim of a new fire must take the worker's lock");
    tx.rollback().await?;
    assert_eq!(waiting.await??, Claim::Busy { why: "w runs on a".into() });
    Ok(())
}

#[tokio::test]
async fn a_second_claim_of_a_fire_is_taken_by_the_first_instance() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let token = granted(&store, request("w", at(1), "a")).await?;
    assert!(token > 0);
    assert_eq!(store.claim(request("w", at(1), "b")).await?, Claim::Taken { by: "a".into() });
    store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    assert_eq!(store.claim(request("w", at(1), "b")).await?, Claim::Taken { by: "a".into() });
    let later = granted(&store, request("w", at(2), "b")).await?;
    assert!(later > token, "tokens only grow");
    let row =
        &rows(&store, "SELECT instance, attempts, outcome, token FROM {s}.fires WHERE token = $1", &[&later]).await;
    assert_eq!(row[0].get::<_, String>(0), "b");
    assert_eq!((row[0].get::<_, i32>(1), row[0].get::<_, String>(2)), (1, "running".to_string()));
    Ok(())
}

#[tokio::test]
async fn claim_is_busy_while_the_workers_other_fire_runs() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let token = granted(&store, request("w", at(1), "a")).await?;
    assert_eq!(store.claim(request("w", at(2), "a")).await?, Claim::Busy { why: "w runs on a".into() });
    assert_eq!(store.claim(request("w", at(2), "b")).await?, Claim::Busy { why: "w runs on a".into() });
    store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    granted(&store, request("w", at(2), "b")).await?;
    Ok(())
}

#[tokio::test]
async fn claim_is_busy_while_a_conflicting_worker_runs_elsewhere() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0), info("x", 0)]).await?;
    let token = granted(&store, request("x", at(1), "b")).await?;
    let mut claim = request("w", at(1), "a");
    claim.conflicts = names(&["x"]);
    assert_eq!(store.claim(claim.clone()).await?, Claim::Busy { why: "x runs on b".into() });
    store.write("b".into(), vec![finished("x", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    granted(&store, claim).await?;
    Ok(())
}

#[tokio::test]
async fn claim_records_upstream_failed_when_the_dependencys_relevant_fire_failed() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0), info("d", 0)]).await?;
    let with_dependency = |scheduled_at| {
        let mut claim = request("w", scheduled_at, "a");
        claim.depends_on = names(&["d"]);
        claim
    };
    // No fire of the dependency yet: nothing to wait for.
    let token = granted(&store, with_dependency(at(0))).await?;
    store.write("a".into(), vec![finished("w", at(0), FireOutcome::Succeeded, Some(token))]).await?;

    let d1 = granted(&store, request("d", at(1), "b")).await?;
    store.write("b".into(), vec![finished("d", at(1), FireOutcome::Failed, Some(d1))]).await?;
    // A later fire of the dependency is not the relevant one.
    let d9 = granted(&store, request("d", at(9), "b")).await?;
    store.write("b".into(), vec![finished("d", at(9), FireOutcome::Succeeded, Some(d9))]).await?;

    assert_eq!(store.claim(with_dependency(at(2))).await?, Claim::UpstreamFailed { dependency: "d".into() });
    let row = &rows(
        &store,
        "SELECT instance, outcome, error, attempts, finished_at IS NOT NULL FROM {s}.fires \
                             WHERE worker = 'w' AND scheduled_at = $1",
        &[&at(2)],
    )
    .await[0];
    assert_eq!(row.get::<_, String>(0), "a");
    assert_eq!(row.get::<_, String>(1), "upstream_failed");
    assert_eq!(row.get::<_, String>(2), "dependency d failed");
    assert_eq!((row.get::<_, i32>(3), row.get::<_, bool>(4)), (0, true));
    assert_eq!(store.claim(with_dependency(at(2))).await?, Claim::Taken { by: "a".into() });
    assert_eq!(failures_and_enabled(&store, "w").await, (0, true), "an upstream failure is not the worker's");

    granted(&store, with_dependency(at(10))).await?;
    Ok(())
}

#[tokio::test]
async fn claim_is_busy_while_the_dependencys_fire_runs() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0), info("d", 0)]).await?;
    let token = granted(&store, request("d", at(1), "b")).await?;
    let mut claim = request("w", at(1), "a");
    claim.depends_on = names(&["d"]);
    assert_eq!(store.claim(claim.clone()).await?, Claim::Busy { why: "d's fire has not finished".into() });
    store.write("b".into(), vec![finished("d", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    granted(&store, claim).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_fire_grant_exactly_one() -> anyhow::Result<()> {
    let Some(store) = store_with(|b| b.pool_size(8)).await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim(request("w", at(1), &format!("i{i}"))).await })
        })
        .collect();
    let mut grants = Vec::new();
    let mut taken = Vec::new();
    for claim in claims {
        match claim.await?? {
            Claim::Granted { token } => grants.push(token),
            Claim::Taken { by } => taken.push(by),
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!((grants.len(), taken.len()), (1, 7));
    let fires = rows(&store, "SELECT instance, token FROM {s}.fires WHERE worker = 'w'", &[]).await;
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].get::<_, i64>(1), grants[0]);
    let winner: String = fires[0].get(0);
    assert!(taken.iter().all(|by| *by == winner), "{taken:?} should all name {winner}");
    Ok(())
}

#[tokio::test]
async fn renew_extends_the_lease_on_the_database_clock() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let token = granted(&store, request("w", at(1), "a")).await?;
    let lease = "SELECT lease_until, lease_until - now() FROM {s}.fires WHERE token = $1";
    let before: DateTime<Utc> = rows(&store, lease, &[&token]).await[0].get(0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.renew("a".into(), vec![token, 123_456_789]).await?, vec![token]);
    let after: DateTime<Utc> = rows(&store, lease, &[&token]).await[0].get(0);
    assert!(after > before, "{after} should be later than {before}");
    assert_eq!(store.renew("b".into(), vec![token]).await?, Vec::<i64>::new(), "only the holder renews");
    assert_eq!(store.renew("a".into(), vec![]).await?, Vec::<i64>::new());
    Ok(())
}

#[tokio::test]
async fn poll_takes_over_expired_leases_counts_failures_and_disables_at_the_threshold() -> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 2), info("quiet", 0)]).await?;
    granted(&store, request("w", at(1), "a")).await?;
    let polled = store.poll("b".into()).await?;
    assert!(polled.lost.is_empty(), "a live lease is not taken over");
    assert_eq!(polled.running, vec![("w".to_string(), at(1), "a".to_string())]);

    let polled = poll_until_lost(&store, "b").await?;
    assert_eq!(polled.lost, vec![("w".to_string(), at(1), "a".to_string())]);
    let row =
        &rows(&store, "SELECT outcome, error, finished_at IS NOT NULL FROM {s}.fires WHERE worker = 'w'", &[]).await[0];
    assert_eq!(row.get::<_, String>(0), "lost");
    assert_eq!(row.get::<_, String>(1), "instance a stopped renewing its lease");
    assert!(row.get::<_, bool>(2));
    assert_eq!(failures_and_enabled(&store, "w").await, (1, true));
    assert!(polled.workers.contains(&("w".to_string(), None, 1)));
    assert!(polled.workers.contains(&("quiet".to_string(), None, 0)));
    assert!(polled.running.is_empty(), "a lost fire runs nowhere: {:?}", polled.running);
    assert!(store.poll("b".into()).await?.lost.is_empty(), "a fire is lost once");

    granted(&store, request("w", at(2), "a")).await?;
    let polled = poll_until_lost(&store, "c").await?;
    assert_eq!(polled.lost, vec![("w".to_string(), at(2), "a".to_string())]);
    assert_eq!(failures_and_enabled(&store, "w").await, (2, false));
    let disabled = StoredDisable::Failures { count: 2, last_error: "instance a stopped renewing its lease".into() };
    assert!(polled.workers.contains(&("w".to_string(), Some(disabled), 2)), "{:?}", polled.workers);
    Ok(())
}

#[tokio::test]
async fn poll_returns_the_cluster_fires_running_under_a_live_lease_with_their_instance() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0), info("x", 0), info("local", 0)]).await?;
    let w = granted(&store, request("w", at(1), "a")).await?;
    granted(&store, request("x", at(2), "b")).await?;
    // An Instance worker's run is its instance's own.
    store.write("a".into(), vec![started("local", at(3), false)]).await?;
    let running = |polled: Polled| polled.running;
    assert_eq!(
        running(store.poll("c".into()).await?),
        vec![("w".to_string(), at(1), "a".to_string()), ("x".to_string(), at(2), "b".to_string())]
    );
    store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(w))]).await?;
    assert_eq!(running(store.poll("c".into()).await?), vec![("x".to_string(), at(2), "b".to_string())]);
    Ok(())
}

/// A worker with `retries` retries.
fn retrying(name: &str, threshold: u32, retries: u32) -> WorkerInfo {
    WorkerInfo { max_attempts: retries + 1, ..info(name, threshold) }
}

/// Polls as `instance` until an expired fire is handed to it (bounded).
async fn poll_until_adopted(store: &PostgresStore, instance: &str) -> anyhow::Result<Polled> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let polled = store.poll(instance.into()).await?;
        if !polled.adopt.is_empty() || !polled.lost.is_empty() {
            return Ok(polled);
        }
        anyhow::ensure!(Instant::now() < deadline, "no takeover within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn adoption(worker: &str, scheduled_at: DateTime<Utc>, attempts: u32, lost_by: &str) -> Adoption {
    Adoption { worker: worker.into(), scheduled_at, attempts, lost_by: lost_by.into() }
}

/// outcome, finished, attempts, instance, adopter, error of `worker`'s fire at `at`.
async fn fire_row(
    store: &PostgresStore,
    worker: &str,
    at: DateTime<Utc>,
) -> (String, bool, i32, String, Option<String>, Option<String>) {
    let row = &rows(
        store,
        "SELECT outcome, finished_at IS NOT NULL, attempts, instance, adopter, error FROM {s}.fires \
          WHERE worker = $1 AND scheduled_at = $2",
        &[&worker, &at],
    )
    .await[0];
    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5))
}

#[tokio::test]
async fn an_expired_fire_with_retries_left_is_adopted_by_the_poller_alone_and_runs_its_next_attempt()
-> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![retrying("w", 1, 2)]).await?;
    let token = granted(&store, request("w", at(1), "a")).await?;
    let attempt = Fact::Attempt { worker: "w".into(), scheduled_at: at(1), attempt: 2 };
    assert_eq!(store.write("a".into(), vec![Entry { fact: attempt, token: Some(token), shared: true }]).await?, 0);

    let polled = poll_until_adopted(&store, "b").await?;
    assert!(polled.lost.is_empty(), "an attempt is left: not lost for good");
    assert_eq!(polled.adopt, vec![adoption("w", at(1), 2, "a")]);
    let (outcome, done, attempts, instance, adopter, error) = fire_row(&store, "w", at(1)).await;
    assert_eq!((outcome.as_str(), done, attempts, instance.as_str()), ("lost", false, 2, "a"));
    assert_eq!(adopter.as_deref(), Some("b"));
    assert_eq!(error.as_deref(), Some("instance a stopped renewing its lease"));
    assert_eq!(failures_and_enabled(&store, "w").await, (0, true), "not a failure while it is retried");
    assert!(store.poll("c".into()).await?.adopt.is_empty(), "adopted once");

    assert_eq!(store.claim(request("w", at(1), "c")).await?, Claim::Taken { by: "a".into() });
    let adopted = granted(&store, request("w", at(1), "b")).await?;
    assert_ne!(adopted, token, "a new fencing token");
    let (outcome, done, attempts, instance, adopter, _) = fire_row(&store, "w", at(1)).await;
    assert_eq!((outcome.as_str(), done, attempts, instance.as_str(), adopter), ("running", false, 3, "b", None));
    let other = replica(&store).await;
    assert_eq!(other.claim(request("w", at(1), "b")).await?, Claim::Taken { by: "b".into() }, "claimed once");
    // The adopter's own repeat (its answer lost) is the same grant.
    assert_eq!(store.claim(request("w", at(1), "b")).await?, Claim::Granted { token: adopted });
    assert_eq!(store.renew("a".into(), vec![token]).await?, Vec::<i64>::new(), "the old holder is fenced off");

    let mut end = finished("w", at(1), FireOutcome::Failed, Some(adopted));
    if let Fact::Finished { attempts: total, threshold, .. } = &mut end.fact {
        *total = 3;
        *threshold = 1;
    }
    assert_eq!(store.write("b".into(), vec![end]).await?, 0);
    let (outcome, done, attempts, instance, _, error) = fire_row(&store, "w", at(1)).await;
    assert_eq!((outcome.as_str(), done, attempts, instance.as_str()), ("failed", true, 3, "b"));
    assert_eq!(error.as_deref(), Some("boom"));
    assert_eq!(failures_and_enabled(&store, "w").await, (1, false), "the run failed once, with all its attempts");
    Ok(())
}

#[tokio::test]
async fn an_expired_fire_without_attempts_left_or_of_a_disabled_worker_is_lost_for_good() -> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![retrying("spent", 0, 1), retrying("off", 0, 3)]).await?;
    let token = granted(&store, request("spent", at(1), "a")).await?;
    let attempt = Fact::Attempt { worker: "spent".into(), scheduled_at: at(1), attempt: 2 };
    store.write("a".into(), vec![Entry { fact: attempt, token: Some(token), shared: true }]).await?;
    granted(&store, request("off", at(1), "a")).await?;
    let state = Fact::State { worker: "off".into(), disabled: Some(StoredDisable::Manually), consecutive_failures: 0 };
    store.write("a".into(), vec![Entry { fact: state, token: None, shared: true }]).await?;

    let polled = poll_until_lost(&store, "b").await?;
    assert!(polled.adopt.is_empty(), "{:?}", polled.adopt);
    assert_eq!(
        polled.lost,
        vec![("off".to_string(), at(1), "a".to_string()), ("spent".to_string(), at(1), "a".to_string())]
    );
    for worker in ["spent", "off"] {
        let (outcome, done, ..) = fire_row(&store, worker, at(1)).await;
        assert_eq!((outcome.as_str(), done), ("lost", true), "{worker}");
        assert_eq!(failures_and_enabled(&store, worker).await.0, 1, "{worker}: counted");
    }
    assert_eq!(store.claim(request("spent", at(1), "b")).await?, Claim::Taken { by: "a".into() });
    Ok(())
}

#[tokio::test]
async fn a_run_that_ended_during_an_outage_longer_than_its_lease_keeps_its_outcome_unless_claimed_since()
-> anyhow::Result<()> {
    // The database was down past the lease: a poll recorded the fires lost
    // before their holder could write how they ended (tests/faults_server.rs).
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![retrying("spent", 0, 0), retrying("again", 0, 1)]).await?;
    let spent = granted(&store, request("spent", at(1), "a")).await?;
    let again = granted(&store, request("again", at(1), "a")).await?;
    let polled = poll_until_lost(&store, "b").await?;
    assert_eq!(polled.lost, vec![("spent".to_string(), at(1), "a".to_string())]);
    assert_eq!(store.poll("b".into()).await?.adopt, vec![adoption("again", at(1), 1, "a")]);
    assert_eq!(failures_and_enabled(&store, "spent").await.0, 1, "lost for good: counted");

    // Lost for good, claimed by nobody since: the late end is kept, and the
    // failure the loss counted is taken back by the success.
    assert_eq!(store.write("a".into(), vec![finished("spent", at(1), FireOutcome::Succeeded, Some(spent))]).await?, 0);
    let (outcome, done, attempts, instance, ..) = fire_row(&store, "spent", at(1)).await;
    assert_eq!((outcome.as_str(), done, attempts, instance.as_str()), ("succeeded", true, 1, "a"));
    assert_eq!(failures_and_enabled(&store, "spent").await.0, 0);

    // Adopted and claimed since: the next attempt runs under a new token,
    // and the late end is refused (fencing), as is a cancellation ever.
    let adopted = granted(&store, request("again", at(1), "b")).await?;
    assert_ne!(adopted, again);
    assert_eq!(store.write("a".into(), vec![finished("again", at(1), FireOutcome::Succeeded, Some(again))]).await?, 1);
    let (outcome, _, _, instance, ..) = fire_row(&store, "again", at(1)).await;
    assert_eq!((outcome.as_str(), instance.as_str()), ("running", "b"));
    assert_eq!(
        store.write("b".into(), vec![finished("again", at(1), FireOutcome::Cancelled, Some(adopted))]).await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_polls_adopt_an_expired_fire_once() -> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![retrying("w", 0, 1)]).await?;
    granted(&store, request("w", at(1), "a")).await?;
    let replicas = [replica(&store).await, replica(&store).await, replica(&store).await, replica(&store).await];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let polls = replicas.iter().enumerate().map(|(i, r)| r.poll(format!("r{i}").into()));
    let polled = futures_util::future::join_all(polls).await;
    let mut adopters = Vec::new();
    for (i, polled) in polled.into_iter().enumerate() {
        let polled = polled?;
        assert!(polled.lost.is_empty());
        if !polled.adopt.is_empty() {
            assert_eq!(polled.adopt, vec![adoption("w", at(1), 1, "a")]);
            adopters.push(format!("r{i}"));
        }
    }
    assert_eq!(adopters.len(), 1, "{adopters:?}");
    let others = ["r0", "r1", "r2", "r3"].into_iter().filter(|r| *r != adopters[0]);
    for other in others {
        assert_eq!(store.claim(request("w", at(1), other)).await?, Claim::Taken { by: "a".into() });
    }
    granted(&store, request("w", at(1), &adopters[0])).await?;
    Ok(())
}

#[tokio::test]
async fn an_adoption_is_kept_while_its_adopter_polls_written_off_by_it_or_passed_on_when_it_leaves()
-> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![retrying("w", 0, 1)]).await?;
    granted(&store, request("w", at(1), "a")).await?;
    assert_eq!(poll_until_adopted(&store, "b").await?.adopt, vec![adoption("w", at(1), 1, "a")]);
    // The adopter polls on; another replica's polls leave its adoption alone.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let polled = store.poll("b".into()).await?;
        assert_eq!(polled.adopt, vec![adoption("w", at(1), 1, "a")], "handed again until claimed");
        let polled = store.poll("c".into()).await?;
        assert!(polled.adopt.is_empty() && polled.lost.is_empty(), "{polled:?}");
    }
    // It leaves without running it: the next poll of another replica adopts it.
    store.leave("b".into()).await?;
    assert_eq!(store.poll("c".into()).await?.adopt, vec![adoption("w", at(1), 1, "a")]);
    assert_eq!(store.claim(request("w", at(1), "b")).await?, Claim::Taken { by: "a".into() });

    // The new adopter writes it off (its worker is disabled there, say).
    let dropped = Entry {
        fact: Fact::Dropped {
            worker: "w".into(),
            scheduled_at: at(1),
            at: Utc::now(),
            outcome: FireOutcome::Lost,
            error: Some("the worker is disabled".into()),
        },
        token: None,
        shared: true,
    };
    // Another replica's write-off changes nothing.
    assert_eq!(store.write("b".into(), vec![dropped.clone()]).await?, 0);
    assert!(!fire_row(&store, "w", at(1)).await.1, "still adoptable");
    store.write("c".into(), vec![dropped]).await?;
    let (outcome, done, attempts, _, _, error) = fire_row(&store, "w", at(1)).await;
    assert_eq!((outcome.as_str(), done, attempts), ("lost", true, 1));
    assert_eq!(error.as_deref(), Some("instance a stopped renewing its lease; not retried: the worker is disabled"));
    assert_eq!(store.claim(request("w", at(1), "c")).await?, Claim::Taken { by: "a".into() });
    let polled = store.poll("d".into()).await?;
    assert!(polled.adopt.is_empty() && polled.lost.is_empty(), "accounted for: {polled:?}");
    Ok(())
}

#[tokio::test]
async fn a_replica_runs_the_next_attempt_of_a_fire_its_dead_peer_lost() -> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    // A replica claims the worker's fire, makes its first attempt, and dies.
    let anchor = to_millis(Utc::now() - chrono::Duration::seconds(1));
    let info = WorkerInfo { name: "w".into(), anchor, enabled: true, threshold: 0, max_attempts: 2 };
    store.open("dead".into(), vec![info]).await?;
    granted(&store, request("w", anchor, "dead")).await?;

    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let worker = crate::WorkerSpec::new("w", move |ctx: crate::Context| {
        let log = log.clone();
        async move {
            log.lock().expect("not poisoned").push((ctx.attempt(), ctx.scheduled_at()));
            Ok::<(), String>(())
        }
    })
    .interval(Duration::from_secs(3600))
    .retries(1);
    let orchestrator = crate::Orchestrator::builder()
        .without_registered_workers()
        .store(store.clone())
        .instance("b")
        .worker(worker)
        .build()?;
    let handle = orchestrator.handle();
    let task = tokio::spawn(orchestrator.run_until(std::future::pending()));

    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let history = handle.history("w", 10).await?;
        if let Some(done) = history.into_iter().find(|f| f.outcome != FireOutcome::Running && f.instance == "b") {
            break done;
        }
        anyhow::ensure!(Instant::now() < deadline, "not taken over within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    handle.shutdown().await;
    task.await??;
    assert_eq!(*seen.lock().expect("not poisoned"), vec![(2, anchor)], "its second attempt, of the same fire");
    assert_eq!((record.scheduled_at, record.attempts, record.outcome), (anchor, 2, FireOutcome::Succeeded));
    assert_eq!(failures_and_enabled(&store, "w").await, (0, true));
    Ok(())
}

#[tokio::test]
async fn a_stale_token_cannot_renew_or_write_and_changes_nothing() -> anyhow::Result<()> {
    let Some(store) = short_lease_store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 1)]).await?;
    let stale = granted(&store, request("w", at(1), "a")).await?;
    poll_until_lost(&store, "b").await?;
    assert_eq!(store.renew("a".into(), vec![stale]).await?, Vec::<i64>::new());

    let fire = "SELECT outcome, error, finished_at, attempts, lease_until FROM {s}.fires WHERE worker = 'w' \
                AND scheduled_at = $1";
    let worker = "SELECT consecutive_failures, enabled, disabled_kind, disabled_reason, version, updated_at \
                  FROM {s}.workers WHERE name = 'w'";
    let fire_before = rows(&store, fire, &[&at(1)]).await;
    let worker_before = rows(&store, worker, &[]).await;
    let fire_before = (fire_before[0].get::<_, String>(0), fire_before[0].get::<_, Option<DateTime<Utc>>>(2));
    let worker_before = (
        worker_before[0].get::<_, i32>(0),
        worker_before[0].get::<_, bool>(1),
        worker_before[0].get::<_, Option<String>>(3),
        worker_before[0].get::<_, i64>(4),
        worker_before[0].get::<_, DateTime<Utc>>(5),
    );

    let attempt = Entry {
        fact: Fact::Attempt { worker: "w".into(), scheduled_at: at(1), attempt: 2 },
        token: Some(stale),
        shared: true,
    };
    let start = Entry {
        fact: Fact::Started { worker: "w".into(), scheduled_at: at(1), started_at: Utc::now() },
        token: Some(stale),
        shared: true,
    };
    // What the stale holder writes: its run cancelled by itself (the end
    // of a run that did finish is kept while nobody claimed the fire since:
    // a_run_that_ended_during_an_outage_longer_than_its_lease_...).
    let cancelled = finished("w", at(1), FireOutcome::Cancelled, Some(stale));
    assert_eq!(store.write("a".into(), vec![cancelled]).await?, 1);
    assert_eq!(store.write("a".into(), vec![attempt, start]).await?, 2);
    let fire_after = rows(&store, fire, &[&at(1)]).await;
    assert_eq!((fire_after[0].get::<_, String>(0), fire_after[0].get::<_, Option<DateTime<Utc>>>(2)), fire_before);
    assert_eq!(fire_after[0].get::<_, i32>(3), 1, "attempts unchanged");
    let worker_after = rows(&store, worker, &[]).await;
    assert_eq!(
        (
            worker_after[0].get::<_, i32>(0),
            worker_after[0].get::<_, bool>(1),
            worker_after[0].get::<_, Option<String>>(3),
            worker_after[0].get::<_, i64>(4),
            worker_after[0].get::<_, DateTime<Utc>>(5),
        ),
        worker_before
    );

    // A stale token against a fire that another claim holds now.
    store
        .write(
            "a".into(),
            vec![Entry {
                fact: Fact::State { worker: "w".into(), disabled: None, consecutive_failures: 0 },
                token: None,
                shared: true,
            }],
        )
        .await?;
    let current = granted(&store, request("w", at(2), "b")).await?;
    assert_eq!(store.write("a".into(), vec![finished("w", at(2), FireOutcome::Failed, Some(stale))]).await?, 1);
    let row = &rows(&store, "SELECT outcome, token FROM {s}.fires WHERE scheduled_at = $1", &[&at(2)]).await[0];
    assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1)), ("running".to_string(), current));
    assert_eq!(failures_and_enabled(&store, "w").await, (0, true));
    Ok(())
}

#[tokio::test]
async fn a_running_fire_without_token_of_a_dead_instance_becomes_lost() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("ghost".into(), vec![info("w", 0)]).await?;
    store.open("b".into(), vec![info("w", 0)]).await?;
    store.write("ghost".into(), vec![started("w", at(1), false)]).await?;
    store.write("b".into(), vec![started("w", at(1), false)]).await?;
    store.write("never-registered".into(), vec![started("w", at(2), false)]).await?;
    assert_eq!(store.poll("b".into()).await?.lost, vec![("w".to_string(), at(2), "never-registered".to_string())]);

    rows(&store, "UPDATE {s}.instances SET last_heartbeat = now() - interval '1 hour' WHERE name = 'ghost'", &[]).await;
    let polled = store.poll("b".into()).await?;
    assert_eq!(polled.lost, vec![("w".to_string(), at(1), "ghost".to_string())]);
    assert_eq!(failures_and_enabled(&store, "w").await, (2, true));
    let running = rows(&store, "SELECT instance FROM {s}.fires WHERE outcome = 'running'", &[]).await;
    assert_eq!(
        running.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(),
        ["b"],
        "a live instance keeps its own"
    );
    let ghost = rows(&store, "SELECT 1 FROM {s}.instances WHERE name = 'ghost'", &[]).await;
    assert!(ghost.is_empty(), "a silent instance is forgotten");
    Ok(())
}

#[tokio::test]
async fn instances_lists_live_replicas_and_leave_removes_one() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("b".into(), vec![info("w", 0)]).await?;
    store.open("a".into(), vec![info("w", 0)]).await?;
    store.poll("c".into()).await?;
    rows(&store, "UPDATE {s}.instances SET last_heartbeat = now() - interval '1 hour' WHERE name = 'c'", &[]).await;
    let live = store.instances().await?;
    assert_eq!(live.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(live.iter().all(|i| i.last_heartbeat >= i.started_at));

    let token = granted(&store, request("w", at(1), "a")).await?;
    store.leave("a".into()).await?;
    let live = store.instances().await?;
    assert_eq!(live.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["b"]);
    let released = rows(&store, "SELECT lease_until <= now() FROM {s}.fires WHERE token = $1", &[&token]).await;
    assert!(released[0].get::<_, bool>(0), "leaving releases the leases still held");
    assert_eq!(store.poll("b".into()).await?.lost, vec![("w".to_string(), at(1), "a".to_string())]);
    Ok(())
}

#[tokio::test]
async fn notify_reaches_listen() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let other = replica(&store).await;
    for round in 0..2 {
        let listening = tokio::spawn({
            let store = store.clone();
            async move { store.listen().await }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening.is_finished() {
            anyhow::ensure!(Instant::now() < deadline, "round {round}: no notification within 10 s");
            other.notify().await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        listening.await?.context("listen")?;
    }
    // One that arrives between two calls is not lost.
    other.notify().await?;
    tokio::time::timeout(Duration::from_secs(5), store.listen()).await.context("a notification was lost")??;
    Ok(())
}

#[tokio::test]
async fn listen_fails_when_its_connection_is_terminated() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let listening = tokio::spawn({
        let store = store.clone();
        async move { store.listen().await }
    });
    let admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&store.inner.listener_name],
            )
            .await?;
        if !killed.is_empty() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the listening connection never showed up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let heard = tokio::time::timeout(Duration::from_secs(10), listening).await.context("listen did not fail")??;
    assert!(matches!(heard, Err(StoreError::Unreachable(_))), "{heard:?}");

    // The next call reconnects.
    let listening = tokio::spawn({
        let store = store.clone();
        async move { store.listen().await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening.is_finished() {
        anyhow::ensure!(Instant::now() < deadline, "no notification after reconnecting");
        store.notify().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listening.await??;
    Ok(())
}

#[tokio::test]
async fn a_listening_connection_that_no_longer_listens_is_given_up() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let listener = Listener::connect(&store.inner).await?;
    listener.check(&store.inner).await?;
    // What a pooler that dropped the session, or a failover, looks like.
    listener.client.batch_execute("UNLISTEN *").await?;
    let checked = listener.check(&store.inner).await;
    assert!(matches!(&checked, Err(StoreError::Unreachable(why)) if why.contains("no longer listens")), "{checked:?}");
    Ok(())
}

#[tokio::test]
async fn a_direct_listener_hears_its_probe() -> anyhow::Result<()> {
    // Behind a pooler in transaction mode it does not (tests/faults_server.rs).
    let Some(store) = store().await else { return Ok(()) };
    let mut listener = Listener::connect(&store.inner).await?;
    anyhow::ensure!(listener.probe(&store.inner).await?, "the probe sent through the pool did not come back");
    Ok(())
}

#[tokio::test]
async fn a_listener_whose_connection_dies_during_its_probe_fails_instead_of_giving_up_listen() -> anyhow::Result<()> {
    // Found by CI: a connection terminated between LISTEN and the probe's
    // return was taken for a pooler, and LISTEN was given up for 10 minutes.
    let Some(store) = store().await else { return Ok(()) };
    let mut listener = Listener::connect(&store.inner).await?;
    admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&store.inner.listener_name],
        )
        .await?;
    let probed = tokio::time::timeout(Duration::from_secs(4), listener.probe(&store.inner))
        .await
        .context("the probe waited out its timeout on a dead connection")?;
    assert!(matches!(&probed, Err(StoreError::Unreachable(why)) if why.contains("closed")), "{probed:?}");
    Ok(())
}

#[tokio::test]
async fn claim_and_finish_cost_one_round_trip_each() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 0)]).await?;
    let before = store.round_trips();
    let token = granted(&store, request("w", at(1), "a")).await?;
    assert_eq!(store.round_trips() - before, 1, "claim");
    let before = store.round_trips();
    assert_eq!(store.write("a".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(token))]).await?, 0);
    assert_eq!(store.round_trips() - before, 1, "finish");
    let before = store.round_trips();
    store.poll("a".into()).await?;
    store.renew("a".into(), vec![token]).await?;
    assert_eq!(store.round_trips() - before, 2, "poll and renew");

    // Several entries at once: one transaction, pipelined.
    store.open("a".into(), vec![info("x", 0), info("y", 0)]).await?;
    let (x, y) = (granted(&store, request("x", at(2), "a")).await?, granted(&store, request("y", at(2), "a")).await?);
    let before = store.round_trips();
    let entries = vec![
        finished("x", at(2), FireOutcome::Succeeded, Some(x)),
        finished("w", at(1), FireOutcome::Failed, Some(token)),
        finished("y", at(2), FireOutcome::Failed, Some(y)),
    ];
    assert_eq!(store.write("a".into(), entries).await?, 1, "the spent token's entry is refused");
    assert_eq!(store.round_trips() - before, 1, "a write of several entries");
    for (worker, outcome, failures) in [("x", FireOutcome::Succeeded, 0), ("y", FireOutcome::Failed, 1)] {
        let history = store.history(worker.into(), 10).await?;
        assert_eq!(history.iter().map(|f| f.outcome).collect::<Vec<_>>(), [outcome], "{worker}");
        assert_eq!(failures_and_enabled(&store, worker).await, (failures, true), "{worker}");
    }
    assert_eq!(store.history("w".into(), 10).await?[0].outcome, FireOutcome::Succeeded, "kept");
    Ok(())
}

#[tokio::test]
async fn finish_with_a_token_counts_failures_cluster_wide_and_disables_at_the_threshold() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    store.open("a".into(), vec![info("w", 2)]).await?;
    let mut fire = 0;
    let mut run = async |instance: &str, outcome| -> anyhow::Result<()> {
        fire += 1;
        let token = granted(&store, request("w", at(fire), instance)).await?;
        assert_eq!(store.write(instance.into(), vec![finished("w", at(fire), outcome, Some(token))]).await?, 0);
        Ok(())
    };
    run("a", FireOutcome::Failed).await?;
    assert_eq!(failures_and_enabled(&store, "w").await, (1, true));
    run("b", FireOutcome::Succeeded).await?;
    assert_eq!(failures_and_enabled(&store, "w").await, (0, true));
    run("a", FireOutcome::Failed).await?;
    run("b", FireOutcome::Cancelled).await?;
    assert_eq!(failures_and_enabled(&store, "w").await, (1, true), "a cancelled run does not count");
    run("b", FireOutcome::Failed).await?;
    assert_eq!(failures_and_enabled(&store, "w").await, (2, false));
    let restored = store.open("a".into(), vec![info("w", 2)]).await?;
    assert_eq!(restored[0].disabled, Some(StoredDisable::Failures { count: 2, last_error: "boom".into() }));

    // Without a token the count is the writer's own.
    let mut own = finished("w", at(100), FireOutcome::Failed, None);
    if let Fact::Finished { consecutive_failures, threshold, .. } = &mut own.fact {
        (*consecutive_failures, *threshold) = (7, 0);
    }
    store.write("a".into(), vec![own]).await?;
    assert_eq!(failures_and_enabled(&store, "w").await, (7, false));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_create_the_schema_once() -> anyhow::Result<()> {
    let Some(url) = database().await else { return Ok(()) };
    let schema = fresh_schema();
    let _scratch = Scratch { url: url.clone(), schema: schema.clone() };
    let starts: Vec<_> =
        (0..4).map(|_| tokio::spawn(PostgresStore::builder(url.clone()).schema(schema.clone()).connect())).collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await??);
    }
    let versions = rows(&stores[0], "SELECT version FROM {s}.schema_version", &[]).await;
    assert_eq!(versions.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), [sql::VERSION]);
    for (i, store) in stores.iter().enumerate() {
        store.open(format!("i{i}").into(), vec![info("w", 0)]).await?;
    }
    assert_eq!(stores[3].instances().await?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_schema_written_by_a_newer_version_is_refused() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    rows(&store, "UPDATE {s}.schema_version SET version = 2", &[]).await;
    let again = PostgresStore::builder(url()).schema(&store.inner.schema).connect().await;
    assert!(matches!(again, Err(StoreError::SchemaTooNew { found: 2, supported: 1 })), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_settings_are_refused_before_connecting() {
    // Port 1: nothing is sent, so nothing can be refused by a server.
    let builder = || PostgresStore::builder("postgres://postgres@127.0.0.1:1/test");
    for schema in ["x; drop table", "pg_catalog", "Upper", ""] {
        let refused = builder().schema(schema).connect().await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{schema}: {refused:?}");
    }
    for refused in [
        builder().lease_ttl(Duration::ZERO).connect().await,
        builder().poll_interval(Duration::ZERO).connect().await,
        builder().lease_ttl(Duration::from_secs(1)).poll_interval(Duration::from_secs(2)).connect().await,
        builder().pool_size(0).connect().await,
        PostgresStore::connect("postgres://postgres@127.0.0.1:notaport/test").await,
    ] {
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    }
}

/// The error, as a log line and as a debug print, never shows `secret`.
fn assert_hidden(error: &StoreError, secret: &str) {
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(secret), "the password leaked: {shown}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_reported_without_the_password() {
    let secret = "s3cret-Pa55word";
    let url = format!("postgres://postgres:{secret}@127.0.0.1:1/test");
    let refused = PostgresStore::connect(&url).await.expect_err("nothing listens on port 1");
    assert!(matches!(refused, StoreError::Unreachable(_)), "{refused:?}");
    assert_hidden(&refused, secret);
    assert!(refused.to_string().contains("postgres://postgres:***@127.0.0.1:1/test"), "{refused}");
    assert!(format!("{:?}", PostgresStore::builder(&url)).contains("***"));
    assert!(!format!("{:?}", PostgresStore::builder(&url)).contains(secret));

    let in_query = format!("postgres://postgres@127.0.0.1:1/test?password={secret}");
    let refused = PostgresStore::connect(&in_query).await.expect_err("nothing listens on port 1");
    assert_hidden(&refused, secret);
}

#[tokio::test]
async fn a_wrong_user_is_a_credentials_error_without_the_password() -> anyhow::Result<()> {
    let Some(url) = database().await else { return Ok(()) };
    let config: tokio_postgres::Config = url.parse()?;
    let (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) =
        (config.get_hosts().first(), config.get_ports().first())
    else {
        eprintln!("skipped: the test database is not reached over TCP");
        return Ok(());
    };
    let secret = "s3cret-Pa55word";
    let dbname = config.get_dbname().unwrap_or("postgres");
    let wrong = format!("postgres://no_such_user_orch:{secret}@{host}:{port}/{dbname}");
    let refused = PostgresStore::connect(&wrong).await.expect_err("an unknown user");
    assert!(matches!(refused, StoreError::Credentials(_)), "{refused:?}");
    assert_hidden(&refused, secret);
    Ok(())
}

#[tokio::test]
async fn an_orchestrators_fires_cost_a_claim_and_a_finish_each() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let mut builder = crate::Orchestrator::builder().without_registered_workers().store(store.clone()).instance("a");
    for name in ["one", "two", "three"] {
        // On one grid: their fires are due, and end, together.
        builder = builder.worker(crate::WorkerSpec::new(name, || async {}).interval(Duration::from_millis(200)));
    }
    let orchestrator = builder.build()?;
    let ran = orchestrator.run_until(tokio::time::sleep(Duration::from_secs(3)));
    tokio::time::timeout(Duration::from_secs(30), ran).await.context("stopped within 30 s")??;

    let outcomes = rows(&store, "SELECT outcome, count(*) FROM {s}.fires GROUP BY outcome", &[]).await;
    let outcomes: Vec<(String, i64)> = outcomes.iter().map(|row| (row.get(0), row.get(1))).collect();
    let fires: i64 = outcomes.iter().map(|(_, n)| n).sum();
    assert!(fires >= 6, "a few fires at least: {outcomes:?}");
    assert!(outcomes.iter().all(|(outcome, _)| outcome == "succeeded"), "{outcomes:?}");
    let per_fire = store.round_trips_of(Op::Claim) + store.round_trips_of(Op::Write);
    let periodic: Vec<(Op, u64)> = [Op::Poll, Op::Renew, Op::Notify, Op::Listen, Op::Prune]
        .into_iter()
        .map(|op| (op, store.round_trips_of(op)))
        .collect();
    let fires = u64::try_from(fires)?;
    assert!(
        per_fire <= 2 * fires,
        "{per_fire} round trips for {fires} fires (claims {}, writes {}); periodic: {periodic:?}",
        store.round_trips_of(Op::Claim),
        store.round_trips_of(Op::Write),
    );
    assert_eq!(store.round_trips_of(Op::Notify), 0, "nothing to notify: no worker changed state");
    Ok(())
}

#[tokio::test]
async fn status_shows_the_instance_that_runs_a_cluster_worker_elsewhere() -> anyhow::Result<()> {
    let Some(store) = store_with(|b| b.poll_interval(Duration::from_millis(100))).await else { return Ok(()) };
    let worker = crate::WorkerSpec::new("w", || async {}).interval(Duration::from_secs(3600));
    let idle = crate::WorkerSpec::new("idle", || async {}).interval(Duration::from_secs(3600));
    let orchestrator = crate::Orchestrator::builder()
        .without_registered_workers()
        .store(store.clone())
        .instance("here")
        .worker(worker)
        .worker(idle)
        .build()?;
    let handle = orchestrator.handle();
    let task = tokio::spawn(orchestrator.run_until(std::future::pending()));
    let running_on = |handle: &crate::Handle| {
        let status = handle.status();
        let of = |name: &str| status.workers.iter().find(|w| w.name == name).and_then(|w| w.running_on.clone());
        (of("w"), of("idle"))
    };
    let until = |wanted: (Option<String>, Option<String>)| {
        let handle = handle.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let seen = running_on(&handle);
                if seen == wanted {
                    return Ok(());
                }
                anyhow::ensure!(Instant::now() < deadline, "running_on stayed {seen:?}, not {wanted:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // Another replica claims a fire of `w` (the store, acting as it would).
    let token = granted(&store, request("w", at(1), "there")).await?;
    until((Some("there".to_string()), None)).await?;
    let status = handle.status();
    let w = status.workers.iter().find(|w| w.name == "w").context("w in status")?;
    assert!(!matches!(w.state, crate::WorkerState::Running { .. }), "it does not run here: {:?}", w.state);
    // Its run ends: the next poll says so.
    store.write("there".into(), vec![finished("w", at(1), FireOutcome::Succeeded, Some(token))]).await?;
    until((None, None)).await?;
    handle.shutdown().await;
    task.await??;
    Ok(())
}

#[tokio::test]
async fn the_clock_offset_is_the_databases_clock_minus_ours_in_one_round_trip() -> anyhow::Result<()> {
    let Some(store) = store().await else { return Ok(()) };
    let before = store.round_trips();
    let offset = store.clock_offset().await?;
    assert_eq!(store.round_trips() - before, 1);
    // The database runs on this machine: one clock, read half a round trip apart.
    assert!(offset.abs() < chrono::Duration::milliseconds(50), "{offset}");
    Ok(())
}
