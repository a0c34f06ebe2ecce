//! What every store must do, as checks any backend's tests can run.
//!
//! Each check takes a fresh, empty store from the backend's factory (a
//! SQLite file of its own, a PostgreSQL schema of its own) and exercises
//! the [`Backend`] contract through its trait object only. A store that
//! keeps nothing ([`MemoryStore`](super::MemoryStore)) runs the checks that
//! make sense for it: `persistent: false` skips the others.
//!
//! Timestamps in the checks are whole milliseconds: the precision fire
//! identities have, which every store must keep exactly.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Backend, Entry, Fact, FireOutcome, Restored, StoredDisable, WorkerInfo};
use crate::history::FireRecord;

/// Runs every check against fresh stores made by `factory`; the checks of
/// what a store keeps only when it is `persistent`.
pub(crate) async fn run_all<F, Fut>(factory: F, persistent: bool)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Backend>>,
{
    // Printed so that a failing assertion names its check (`--nocapture`
    // is not needed: the test harness shows a failed test's output).
    eprintln!("conformance: open_creates_workers_with_their_configured_values");
    open_creates_workers_with_their_configured_values(factory().await).await;
    eprintln!("conformance: an_empty_store_has_no_history_and_nothing_to_prune");
    an_empty_store_has_no_history_and_nothing_to_prune(factory().await).await;
    if !persistent {
        return;
    }
    eprintln!("conformance: reopen_keeps_the_runtime_state_and_ignores_the_new_definition");
    reopen_keeps_the_runtime_state_and_ignores_the_new_definition(factory().await).await;
    eprintln!("conformance: workers_unknown_to_the_binary_are_left_untouched");
    workers_unknown_to_the_binary_are_left_untouched(factory().await).await;
    eprintln!("conformance: a_run_round_trips_through_history");
    a_run_round_trips_through_history(factory().await).await;
    eprintln!("conformance: dropped_fires_are_recorded_without_a_run");
    dropped_fires_are_recorded_without_a_run(factory().await).await;
    eprintln!("conformance: a_duplicate_dropped_fire_is_ignored");
    a_duplicate_dropped_fire_is_ignored(factory().await).await;
    eprintln!("conformance: last_fire_is_the_fire_with_the_greatest_scheduled_at");
    last_fire_is_the_fire_with_the_greatest_scheduled_at(factory().await).await;
    eprintln!("conformance: history_is_newest_first_and_limited");
    history_is_newest_first_and_limited(factory().await).await;
    eprintln!("conformance: prune_deletes_only_finished_fires_older_than_the_cutoff");
    prune_deletes_only_finished_fires_older_than_the_cutoff(factory().await).await;
    eprintln!("conformance: scheduled_at_milliseconds_round_trip_exactly");
    scheduled_at_milliseconds_round_trip_exactly(factory().await).await;
    eprintln!("conformance: a_finished_fire_without_a_start_is_inserted");
    a_finished_fire_without_a_start_is_inserted(factory().await).await;
}

// ---- checks every store passes ----

/// A store that has never seen the workers creates them with the anchor,
/// flag and threshold given, and returns them in the order given.
pub(crate) async fn open_creates_workers_with_their_configured_values(store: Arc<dyn Backend>) {
    let workers = vec![worker("zeta", 1_000, true, 3), worker("alpha", 2_000, false, 0)];
    let restored = open(&store, INSTANCE, workers).await;
    assert_eq!(
        restored,
        vec![
            Restored { anchor: ms(1_000), disabled: None, consecutive_failures: 0, last_fire: None },
            Restored {
                anchor: ms(2_000),
                disabled: Some(StoredDisable::Configured),
                consecutive_failures: 0,
                last_fire: None
            },
        ],
        "a new worker starts from its definition"
    );
    assert!(open(&store, INSTANCE, vec![]).await.is_empty(), "no workers, nothing restored");
}

/// History of a worker without fires is empty; pruning an empty store deletes nothing.
pub(crate) async fn an_empty_store_has_no_history_and_nothing_to_prune(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 0)]).await;
    assert!(history(&store, "w", 10).await.is_empty());
    assert!(history(&store, "nobody", 10).await.is_empty());
    assert_eq!(prune(&store, ms(i64::from(i32::MAX))).await, 0);
}

// ---- checks of what a persistent store keeps ----

/// A worker disabled or enabled at run time keeps that state and its
/// failure count when it opens again; the definition's `enabled` and anchor
/// only matter the first time.
pub(crate) async fn reopen_keeps_the_runtime_state_and_ignores_the_new_definition(store: Arc<dyn Backend>) {
    let first = vec![
        worker("manual", 1_000, true, 3),
        worker("failing", 1_000, true, 3),
        worker("enabled_later", 1_000, false, 3),
        worker("configured", 1_000, false, 3),
    ];
    open(&store, INSTANCE, first).await;
    let failures = StoredDisable::Failures { count: 3, last_error: "boom".into() };
    write(
        &store,
        INSTANCE,
        vec![
            state("manual", Some(StoredDisable::Manually), 2),
            state("failing", Some(failures.clone()), 3),
            state("enabled_later", None, 1),
        ],
    )
    .await;

    // A restart: another instance name, other anchors, the flags flipped.
    let again = vec![
        worker("manual", 9_000, true, 5),
        worker("failing", 9_000, true, 5),
        worker("enabled_later", 9_000, false, 5),
        worker("configured", 9_000, true, 5),
    ];
    let restored = open(&store, "i-2", again).await;
    let kept: Vec<_> =
        restored.iter().map(|r| (r.anchor, r.disabled.clone(), r.consecutive_failures, r.last_fire)).collect();
    assert_eq!(
        kept,
        vec![
            (ms(1_000), Some(StoredDisable::Manually), 2, None),
            (ms(1_000), Some(failures), 3, None),
            (ms(1_000), None, 1, None),
            (ms(1_000), Some(StoredDisable::Configured), 0, None),
        ],
        "the stored anchor, flag and count win over the definition"
    );
}

/// Opening with a subset of the workers (an older or newer binary) neither
/// deletes nor changes the others.
pub(crate) async fn workers_unknown_to_the_binary_are_left_untouched(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("kept", 1_000, true, 3), worker("other", 2_000, true, 4)]).await;
    write(
        &store,
        INSTANCE,
        vec![
            started("other", 10_000, 10_001),
            finished("other", 10_000, 10_002, 1, FireOutcome::Failed, Some("boom"), 1),
            state("other", Some(StoredDisable::Manually), 1),
        ],
    )
    .await;
    let before = history(&store, "other", 10).await;

    let restored = open(&store, "i-2", vec![worker("kept", 5_000, false, 0)]).await;
    assert_eq!(restored.len(), 1, "one worker given, one restored");
    write(&store, "i-2", vec![started("kept", 20_000, 20_001)]).await;

    assert_eq!(history(&store, "other", 10).await, before, "its fires are kept");
    let restored = open(&store, INSTANCE, vec![worker("other", 9_000, true, 4)]).await;
    assert_eq!(
        restored[0],
        Restored {
            anchor: ms(2_000),
            disabled: Some(StoredDisable::Manually),
            consecutive_failures: 1,
            last_fire: Some((ms(10_000), FireOutcome::Failed)),
        },
        "a worker the binary did not know is as it was"
    );
}

/// Started, Attempt and Finished of one fire make one row of history, and
/// the worker's failure count follows the instance's.
pub(crate) async fn a_run_round_trips_through_history(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 3)]).await;
    write(&store, INSTANCE, vec![started("w", 60_000, 60_005)]).await;
    assert_eq!(
        history(&store, "w", 10).await,
        vec![FireRecord {
            worker: "w".into(),
            scheduled_at: ms(60_000),
            instance: INSTANCE.into(),
            attempts: 1,
            started_at: Some(ms(60_005)),
            finished_at: None,
            outcome: FireOutcome::Running,
            error: None,
        }],
        "a run in progress"
    );
    assert_eq!(last_fire(&store, "w").await, Some((ms(60_000), FireOutcome::Running)));

    write(&store, INSTANCE, vec![attempt("w", 60_000, 2)]).await;
    assert_eq!(history(&store, "w", 10).await[0].attempts, 2, "a second attempt");

    write(
        &store,
        INSTANCE,
        vec![attempt("w", 60_000, 3), finished("w", 60_000, 61_000, 3, FireOutcome::Failed, Some("boom"), 2)],
    )
    .await;
    assert_eq!(
        history(&store, "w", 10).await,
        vec![FireRecord {
            worker: "w".into(),
            scheduled_at: ms(60_000),
            instance: INSTANCE.into(),
            attempts: 3,
            started_at: Some(ms(60_005)),
            finished_at: Some(ms(61_000)),
            outcome: FireOutcome::Failed,
            error: Some("boom".into()),
        }],
        "the run ended"
    );
    let restored = open(&store, INSTANCE, vec![worker("w", 0, true, 3)]).await;
    assert_eq!(restored[0].consecutive_failures, 2, "the instance's count is kept");
    assert_eq!(restored[0].last_fire, Some((ms(60_000), FireOutcome::Failed)));
    assert_eq!(restored[0].disabled, None, "disabling is the engine's decision, written as State");

    write(
        &store,
        INSTANCE,
        vec![started("w", 120_000, 120_001), finished("w", 120_000, 120_500, 1, FireOutcome::Succeeded, None, 0)],
    )
    .await;
    let latest = &history(&store, "w", 10).await[0];
    assert_eq!((latest.outcome, latest.attempts, latest.error.as_deref()), (FireOutcome::Succeeded, 1, None));
    let restored = open(&store, INSTANCE, vec![worker("w", 0, true, 3)]).await;
    assert_eq!(restored[0].consecutive_failures, 0, "a success resets the count");
}

/// Fires that never ran (missed, cancelled, upstream failed) are rows with
/// no attempt and no start, finished when they were dropped.
pub(crate) async fn dropped_fires_are_recorded_without_a_run(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 0)]).await;
    write(
        &store,
        INSTANCE,
        vec![
            dropped("w", 1_000, 1_500, FireOutcome::Missed, None),
            dropped("w", 2_000, 2_500, FireOutcome::Cancelled, Some("shutting down")),
            dropped("w", 3_000, 3_500, FireOutcome::UpstreamFailed, Some("dependency `a` failed")),
        ],
    )
    .await;
    let never_ran = |scheduled, finished, outcome, error: Option<&str>| FireRecord {
        worker: "w".into(),
        scheduled_at: ms(scheduled),
        instance: INSTANCE.into(),
        attempts: 0,
        started_at: None,
        finished_at: Some(ms(finished)),
        outcome,
        error: error.map(str::to_string),
    };
    assert_eq!(
        history(&store, "w", 10).await,
        vec![
            never_ran(3_000, 3_500, FireOutcome::UpstreamFailed, Some("dependency `a` failed")),
            never_ran(2_000, 2_500, FireOutcome::Cancelled, Some("shutting down")),
            never_ran(1_000, 1_500, FireOutcome::Missed, None),
        ]
    );
}

/// A fire already recorded is not recorded again by a Dropped, whatever
/// the first record was.
pub(crate) async fn a_duplicate_dropped_fire_is_ignored(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 0)]).await;
    write(&store, INSTANCE, vec![dropped("w", 1_000, 1_500, FireOutcome::Missed, None)]).await;
    write(&store, INSTANCE, vec![started("w", 2_000, 2_001)]).await;
    let before = history(&store, "w", 10).await;
    assert_eq!(before.len(), 2);
    write(
        &store,
        INSTANCE,
        vec![
            dropped("w", 1_000, 9_000, FireOutcome::Cancelled, Some("again")),
            dropped("w", 2_000, 9_000, FireOutcome::Missed, None),
        ],
    )
    .await;
    assert_eq!(history(&store, "w", 10).await, before, "the first record stands");
}

/// `last_fire` is the fire due latest, whatever order the rows were
/// written in and whoever shares it.
pub(crate) async fn last_fire_is_the_fire_with_the_greatest_scheduled_at(store: Arc<dyn Backend>) {
    let workers = vec![worker("w", 0, true, 0), worker("other", 0, true, 0)];
    open(&store, INSTANCE, workers.clone()).await;
    write(
        &store,
        INSTANCE,
        vec![
            started("w", 3_000, 3_001),
            finished("w", 3_000, 3_100, 1, FireOutcome::Succeeded, None, 0),
            dropped("w", 5_000, 5_100, FireOutcome::Missed, None),
            dropped("w", 1_000, 6_000, FireOutcome::Cancelled, Some("late write")),
            dropped("other", 9_000, 9_100, FireOutcome::Missed, None),
        ],
    )
    .await;
    let restored = open(&store, INSTANCE, workers.clone()).await;
    assert_eq!(restored[0].last_fire, Some((ms(5_000), FireOutcome::Missed)));
    assert_eq!(restored[1].last_fire, Some((ms(9_000), FireOutcome::Missed)), "each worker's own");

    // A fire shared by the cluster (another scope key) counts too.
    let shared = Entry { fact: started("w", 7_000, 7_001).fact, token: None, shared: true };
    write(&store, INSTANCE, vec![shared]).await;
    let restored = open(&store, INSTANCE, workers).await;
    assert_eq!(restored[0].last_fire, Some((ms(7_000), FireOutcome::Running)));
}

/// History is newest first by `scheduled_at` (the later write first for
/// one `scheduled_at`), at most `limit` long, and the worker's only.
pub(crate) async fn history_is_newest_first_and_limited(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 0), worker("other", 0, true, 0)]).await;
    let mut entries: Vec<Entry> = [4_000, 1_000, 5_000, 3_000, 2_000]
        .into_iter()
        .map(|t| dropped("w", t, t + 1, FireOutcome::Missed, None))
        .collect();
    entries.push(dropped("other", 6_000, 6_001, FireOutcome::Missed, None));
    // The same slot once more, shared by the cluster: written last, listed first.
    entries.push(Entry {
        fact: dropped("w", 5_000, 5_002, FireOutcome::Cancelled, None).fact,
        token: None,
        shared: true,
    });
    write(&store, INSTANCE, entries).await;

    let due = |records: Vec<FireRecord>| records.iter().map(|r| r.scheduled_at.timestamp_millis()).collect::<Vec<_>>();
    let all = history(&store, "w", 100).await;
    assert_eq!(due(all.clone()), vec![5_000, 5_000, 4_000, 3_000, 2_000, 1_000]);
    assert_eq!(
        (all[0].outcome, all[1].outcome),
        (FireOutcome::Cancelled, FireOutcome::Missed),
        "the later write first"
    );
    assert_eq!(due(history(&store, "w", 3).await), vec![5_000, 5_000, 4_000]);
    assert!(history(&store, "w", 0).await.is_empty());
    assert_eq!(due(history(&store, "w", usize::MAX).await).len(), 6);
    assert_eq!(due(history(&store, "other", 10).await), vec![6_000]);
}

/// Pruning deletes the fires that finished strictly before the cutoff,
/// never a running one, and says how many.
pub(crate) async fn prune_deletes_only_finished_fires_older_than_the_cutoff(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 0)]).await;
    write(
        &store,
        INSTANCE,
        vec![
            started("w", 1_000, 1_000),
            finished("w", 1_000, 1_100, 1, FireOutcome::Succeeded, None, 0),
            dropped("w", 2_000, 2_000, FireOutcome::Missed, None),
            dropped("w", 3_000, 25_000, FireOutcome::Cancelled, None),
            dropped("w", 4_000, 30_000, FireOutcome::Missed, None),
            started("w", 500, 500),
        ],
    )
    .await;
    assert_eq!(prune(&store, ms(25_000)).await, 2, "the two that ended before the cutoff");
    let left: Vec<_> = history(&store, "w", 10).await.iter().map(|r| r.scheduled_at.timestamp_millis()).collect();
    assert_eq!(left, vec![4_000, 3_000, 500], "one at the cutoff, one after, one running");
    assert_eq!(prune(&store, ms(25_000)).await, 0, "nothing left to prune");
    assert_eq!(prune(&store, ms(1_000_000)).await, 2, "a running fire is never pruned");
    assert_eq!(history(&store, "w", 10).await.len(), 1);
}

/// A fire's `scheduled_at` (and the worker's anchor) come back to the millisecond.
pub(crate) async fn scheduled_at_milliseconds_round_trip_exactly(store: Arc<dyn Backend>) {
    const DUE: [i64; 4] = [1_700_000_000_123, 1_700_000_000_999, 1, 4_102_444_800_001];
    open(&store, INSTANCE, vec![worker("w", 1_700_000_000_007, true, 0)]).await;
    let entries = DUE.iter().map(|&t| dropped("w", t, t + 1, FireOutcome::Missed, None)).collect();
    write(&store, INSTANCE, entries).await;
    // The same identities again are the same rows.
    write(&store, INSTANCE, DUE.iter().map(|&t| dropped("w", t, t + 2, FireOutcome::Missed, None)).collect()).await;

    let mut due: Vec<_> = history(&store, "w", 10).await.iter().map(|r| r.scheduled_at).collect();
    due.reverse();
    let mut expected: Vec<_> = DUE.iter().map(|&t| ms(t)).collect();
    expected.sort();
    assert_eq!(due, expected);
    let restored = open(&store, INSTANCE, vec![worker("w", 0, true, 0)]).await;
    assert_eq!(restored[0].anchor, ms(1_700_000_000_007));
    assert_eq!(restored[0].last_fire, Some((ms(4_102_444_800_001), FireOutcome::Missed)));
}

/// A Finished whose Started was never written (a lost write, a start
/// before the store was reachable) still makes its row.
pub(crate) async fn a_finished_fire_without_a_start_is_inserted(store: Arc<dyn Backend>) {
    open(&store, INSTANCE, vec![worker("w", 0, true, 3)]).await;
    write(&store, INSTANCE, vec![finished("w", 8_000, 9_000, 2, FireOutcome::Failed, Some("boom"), 1)]).await;
    assert_eq!(
        history(&store, "w", 10).await,
        vec![FireRecord {
            worker: "w".into(),
            scheduled_at: ms(8_000),
            instance: INSTANCE.into(),
            attempts: 2,
            started_at: None,
            finished_at: Some(ms(9_000)),
            outcome: FireOutcome::Failed,
            error: Some("boom".into()),
        }]
    );
    let restored = open(&store, INSTANCE, vec![worker("w", 0, true, 3)]).await;
    assert_eq!(restored[0].consecutive_failures, 1);
}

// ---- helpers ----

const INSTANCE: &str = "i-1";

fn ms(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("a test timestamp in range")
}

fn worker(name: &str, anchor: i64, enabled: bool, threshold: u32) -> WorkerInfo {
    WorkerInfo { name: name.into(), anchor: ms(anchor), enabled, threshold, max_attempts: 1 }
}

fn entry(fact: Fact) -> Entry {
    Entry { fact, token: None, shared: false }
}

fn started(worker: &str, scheduled_at: i64, started_at: i64) -> Entry {
    entry(Fact::Started { worker: worker.into(), scheduled_at: ms(scheduled_at), started_at: ms(started_at) })
}

fn attempt(worker: &str, scheduled_at: i64, attempt: u32) -> Entry {
    entry(Fact::Attempt { worker: worker.into(), scheduled_at: ms(scheduled_at), attempt })
}

fn finished(
    worker: &str,
    scheduled_at: i64,
    finished_at: i64,
    attempts: u32,
    outcome: FireOutcome,
    error: Option<&str>,
    consecutive_failures: u32,
) -> Entry {
    entry(Fact::Finished {
        worker: worker.into(),
        scheduled_at: ms(scheduled_at),
        finished_at: ms(finished_at),
        attempts,
        outcome,
        error: error.map(str::to_string),
        consecutive_failures,
        threshold: 0,
    })
}

fn dropped(worker: &str, scheduled_at: i64, at: i64, outcome: FireOutcome, error: Option<&str>) -> Entry {
    entry(Fact::Dropped {
        worker: worker.into(),
        scheduled_at: ms(scheduled_at),
        at: ms(at),
        outcome,
        error: error.map(str::to_string),
    })
}

fn state(worker: &str, disabled: Option<StoredDisable>, consecutive_failures: u32) -> Entry {
    entry(Fact::State { worker: worker.into(), disabled, consecutive_failures })
}

async fn open(store: &Arc<dyn Backend>, instance: &str, workers: Vec<WorkerInfo>) -> Vec<Restored> {
    match store.open(instance.into(), workers).await {
        Ok(restored) => restored,
        Err(e) => panic!("open failed: {e}"),
    }
}

async fn write(store: &Arc<dyn Backend>, instance: &str, entries: Vec<Entry>) {
    match store.write(instance.into(), entries).await {
        Ok(refused) => assert_eq!(refused, 0, "entries without a token are never refused"),
        Err(e) => panic!("write failed: {e}"),
    }
}

async fn history(store: &Arc<dyn Backend>, worker: &str, limit: usize) -> Vec<FireRecord> {
    match store.history(worker.into(), limit).await {
        Ok(records) => records,
        Err(e) => panic!("history failed: {e}"),
    }
}

async fn prune(store: &Arc<dyn Backend>, before: DateTime<Utc>) -> u64 {
    match store.prune(before).await {
        Ok(deleted) => deleted,
        Err(e) => panic!("prune failed: {e}"),
    }
}

async fn last_fire(store: &Arc<dyn Backend>, worker: &str) -> Option<(DateTime<Utc>, FireOutcome)> {
    open(store, INSTANCE, vec![self::worker(worker, 0, true, 0)]).await[0].last_fire
}

#[tokio::test]
async fn memory_store_passes_the_checks_of_a_store_that_keeps_nothing() {
    run_all(|| async { Arc::new(super::MemoryStore) as Arc<dyn Backend> }, false).await;
}
