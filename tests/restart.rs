//! A restart on a persistent store, with real processes: a replica runs,
//! stops, stays down for a few slots, and starts again on the same store.
//! What must hold, checked in the database afterwards:
//! - a worker disabled at run time stays disabled, and runs no more;
//! - the failure count carries on from where it was;
//! - the downtime's fires of a `FireOnce` worker become one catch-up run,
//!   and those of a `Skip` worker become `missed` rows, one per slot: no
//!   slot of the grid is silent, none runs twice.
//!
//! The same scenario runs on SQLite and on PostgreSQL.

mod replicas;

use std::collections::BTreeMap;
use std::time::Duration;

use replicas::{Events, Replica, StoreArg};

/// A fire as the store keeps it.
#[derive(Debug, Clone)]
struct Row {
    at: i64,
    outcome: String,
}

/// What the store kept of a worker after both runs.
#[derive(Debug, Default)]
struct Kept {
    fires: Vec<Row>,
    enabled: bool,
    disabled_kind: Option<String>,
    consecutive_failures: i64,
}

async fn run_twice(store: &StoreArg) -> Events {
    let events = Events::default();
    let workers_ran = |events: &Events, replica: &str, worker: &str| {
        events.all().iter().filter(|e| e.replica == replica && e.worker() == worker && e.ev() == "end").count()
    };

    let mut first = Replica::start("first", store, "restart", &events).await;
    let ran = events.wait_until(Duration::from_secs(20), || workers_ran(&events, "first", "steady") >= 3).await;
    assert!(ran, "steady did not run 3 times:\n{}", first.log());
    let reply = first.ask("disable paused", Duration::from_secs(5)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    first.quit().await;

    // Down for more than three slots of the 1 s workers.
    tokio::time::sleep(Duration::from_millis(3600)).await;

    let mut second = Replica::start("second", store, "restart", &events).await;
    let ran = events.wait_until(Duration::from_secs(20), || workers_ran(&events, "second", "steady") >= 4).await;
    assert!(ran, "steady did not run 4 times after the restart:\n{}", second.log());
    let status = second.status().await;
    let paused = status["workers"].as_array().unwrap().iter().find(|w| w["name"] == "paused").unwrap().clone();
    assert_eq!(paused["enabled"], false, "disabled at run time, it stays disabled after a restart: {paused}");
    second.quit().await;
    events
}

/// Checks the rules above on what the store kept (`kept`, by worker).
fn check(events: &Events, kept: &BTreeMap<String, Kept>) {
    let all = events.all();
    // paused: no run of it after it was disabled, and disabled "manually".
    let paused = &kept["paused"];
    assert!(!paused.enabled);
    assert_eq!(paused.disabled_kind.as_deref(), Some("manual"));
    assert!(
        !all.iter().any(|e| e.replica == "second" && e.worker() == "paused"),
        "a worker disabled before the restart ran after it"
    );

    // flaky: fails every run; its count is every failed run, both processes'.
    let flaky = &kept["flaky"];
    let failed = flaky.fires.iter().filter(|r| r.outcome == "failed").count() as i64;
    assert!(all.iter().any(|e| e.replica == "second" && e.worker() == "flaky"), "flaky ran after the restart");
    assert_eq!(flaky.consecutive_failures, failed, "the failure count carries on across the restart");

    // Both grids: 1 s slots, each at most once (the store's key), none
    // silent between the first and the last.
    for name in ["steady", "skipper"] {
        let fires = &kept[name].fires;
        for pair in fires.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap > 0, "{name}: {pair:?} out of order or twice");
            if name == "skipper" {
                assert_eq!(gap, 1000, "{name}: a slot is silent between {pair:?}: {fires:?}");
            }
        }
    }
    let steady = &kept["steady"].fires;
    let odd: Vec<i64> = steady.windows(2).map(|p| p[1].at - p[0].at).filter(|&gap| gap != 1000).collect();
    assert!(
        odd.len() == 1 && odd[0] >= 3000,
        "steady: slots are 1 s apart except one catch-up fire standing for the downtime: {steady:?}"
    );

    // skipper: the downtime's slots are `missed` rows, recorded at restart.
    let skipper = &kept["skipper"].fires;
    let missed = skipper.iter().filter(|r| r.outcome == "missed").count();
    assert!(missed >= 3, "skipper: the downtime's slots are recorded missed: {skipper:?}");

    // steady: one catch-up run stands for the downtime's slots: the slot
    // after the last one of the first process runs (late), and the slots
    // it stands for have no row of their own.
    let steady = &kept["steady"].fires;
    assert!(steady.iter().all(|r| r.outcome != "missed"), "FireOnce records no missed rows: {steady:?}");
    let catch_up = all
        .iter()
        .filter(|e| e.replica == "second" && e.worker() == "steady" && e.ev() == "start")
        .min_by_key(|e| e.at())
        .expect("steady ran after the restart");
    assert!(
        catch_up.t() - catch_up.at() >= 2000,
        "the first run after the restart is the catch-up of a slot due while down: {catch_up:?}"
    );
    // Nothing that ran in the first process ran again in the second.
    for e in all.iter().filter(|e| e.replica == "second" && e.ev() == "start") {
        assert!(
            !all.iter()
                .any(|f| f.replica == "first" && f.ev() == "start" && f.worker() == e.worker() && f.at() == e.at()),
            "{} ran its fire at {} twice",
            e.worker(),
            e.at()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restart_carries_on() {
    let dir = std::env::temp_dir().join(format!("orchestrator-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let _ = std::fs::remove_file(&path);
    let store = StoreArg::Sqlite { path: path.clone() };
    let events = tokio::time::timeout(Duration::from_secs(90), run_twice(&store)).await.expect("bounded");

    let db = rusqlite::Connection::open(&path).unwrap();
    let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
    let mut workers =
        db.prepare("SELECT name, enabled, disabled_kind, consecutive_failures FROM workers ORDER BY name").unwrap();
    let rows = workers
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, i64>(3)?))
        })
        .unwrap();
    for row in rows {
        let (name, enabled, disabled_kind, consecutive_failures) = row.unwrap();
        kept.insert(name, Kept { fires: Vec::new(), enabled: enabled != 0, disabled_kind, consecutive_failures });
    }
    let mut fires =
        db.prepare("SELECT worker, scheduled_at, outcome FROM fires ORDER BY worker, scheduled_at").unwrap();
    let rows =
        fires.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))).unwrap();
    for row in rows {
        let (worker, micros, outcome) = row.unwrap();
        kept.get_mut(&worker).unwrap().fires.push(Row { at: micros / 1000, outcome });
    }
    check(&events, &kept);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_carries_on() {
    let Some(client) = replicas::database().await else { return };
    let schema = replicas::fresh_schema(&client, "restart").await;
    let store = StoreArg::Postgres { schema: schema.clone(), lease_ms: 3000, poll_ms: 300 };
    let events = tokio::time::timeout(Duration::from_secs(90), run_twice(&store)).await.expect("bounded");

    let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
    let workers = client
        .query(
            &format!(
                "SELECT name, enabled, disabled_kind, consecutive_failures::BIGINT FROM \"{schema}\".workers ORDER BY name"
            ),
            &[],
        )
        .await
        .unwrap();
    for row in workers {
        kept.insert(
            row.get(0),
            Kept {
                fires: Vec::new(),
                enabled: row.get(1),
                disabled_kind: row.get(2),
                consecutive_failures: row.get(3),
            },
        );
    }
    let fires = client
        .query(
            &format!(
                "SELECT worker, (extract(epoch FROM scheduled_at) * 1000)::BIGINT, outcome \
                 FROM \"{schema}\".fires ORDER BY worker, scheduled_at"
            ),
            &[],
        )
        .await
        .unwrap();
    for row in fires {
        let worker: String = row.get(0);
        kept.get_mut(&worker).unwrap().fires.push(Row { at: row.get(1), outcome: row.get(2) });
    }
    check(&events, &kept);
    replicas::drop_schema(&client, &schema).await;
}
