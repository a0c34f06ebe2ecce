//! Cluster mode with real processes on one PostgreSQL database: three
//! replicas of `orchestrator-replica` (scenario `cluster`, 1 s Cluster
//! workers), run for more than 30 s while the test
//! - disables and enables a worker on one replica and times how long the
//!   others take to see it (at most a second);
//! - triggers a worker on one replica (it runs once in the cluster, the
//!   others' status says where within a second, the caller gets the outcome);
//! - SIGKILLs the replica running `long` mid-run and times the takeover
//!   (at most `lease_ttl` + 1 s), then starts a replacement;
//! - freezes (SIGSTOP) a replica running `long` past its lease, then
//!   resumes it: the fire is taken over, and the frozen replica's late
//!   write is refused by the fencing token.
//!
//! While a replica runs `long`, the others' status names it (`running_on`).
//!
//! Afterwards, from what the replicas printed and what the database kept:
//! no fire ran twice, every slot of the 1 s worker is accounted for (a row,
//! or a catch-up run that started after it was due and stood for it), runs
//! of `left` and `right` (which block each other) never overlapped, nor
//! did `up` and `down` (a dependency), every replica ran the Instance
//! worker, and no fire is left `running`.

mod replicas;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use replicas::{Event, Events, Replica, Span, StoreArg, never_overlap};

const LEASE_MS: u64 = 3000;
const POLL_MS: u64 = 300;
const CLUSTER_WORKERS: [&str; 8] = ["tick", "long", "left", "right", "up", "down", "manual", "ctl"];

/// Polls `replica`'s status until `ctl`'s `enabled` is `want`; how long it took.
async fn sees_ctl(replica: &mut Replica, want: bool, since: Instant) -> Duration {
    loop {
        let status = replica.status().await;
        let ctl = status["workers"].as_array().unwrap().iter().find(|w| w["name"] == "ctl").unwrap().clone();
        if ctl["enabled"] == want {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(5), "{} never saw ctl enabled={want}", replica.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `replica`'s status until `worker`'s `running_on` is `on`; how long
/// it took from `since` (at most `limit`, or the test fails).
async fn sees_running_on(replica: &mut Replica, worker: &str, on: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        let status = replica.status().await;
        let entry = status["workers"].as_array().unwrap().iter().find(|w| w["name"] == worker).unwrap().clone();
        if entry["running_on"] == on {
            return since.elapsed();
        }
        assert!(since.elapsed() < limit, "{}'s status never said {worker} runs on {on}: {entry}", replica.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for `long` to start its first attempt somewhere after event `from`.
async fn long_starts(events: &Events, from: usize, among: &[&str]) -> Event {
    let among: Vec<String> = among.iter().map(|s| s.to_string()).collect();
    events
        .wait_after(from, Duration::from_secs(15), |e| {
            e.ev() == "start" && e.worker() == "long" && e.attempt() == 1 && among.contains(&e.replica)
        })
        .await
        .expect("long starts within 15 s")
}

/// Asserts that no two spans of `a` overlap.
fn never_overlap_itself(a: &[Span], what: &str) {
    for (i, x) in a.iter().enumerate() {
        for y in &a[i + 1..] {
            assert!(x.3 <= y.2 || y.3 <= x.2, "{what}: {x:?} overlaps {y:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_each_fire_once_through_kills_freezes_and_control() {
    let Some(client) = replicas::database().await else { return };
    let schema = replicas::fresh_schema(&client, "cluster").await;
    let store = StoreArg::Postgres { schema: schema.clone(), lease_ms: LEASE_MS, poll_ms: POLL_MS };
    let events = Events::default();
    let began = Instant::now();

    let mut live: BTreeMap<String, Replica> = BTreeMap::new();
    for name in ["r1", "r2", "r3"] {
        live.insert(name.to_string(), Replica::start(name, &store, "cluster", &events).await);
    }

    // Control reaches every replica within a second.
    let mut reach = Vec::new();
    let mut switched = Vec::new();
    for (on, want, others) in [("r1", false, ["r2", "r3"]), ("r3", true, ["r1", "r2"])] {
        let verb = if want { "enable ctl" } else { "disable ctl" };
        let reply = live.get_mut(on).unwrap().ask(verb, Duration::from_secs(5)).await;
        assert_eq!(reply["ok"], true, "{reply}");
        let since = Instant::now();
        switched.push(since);
        for other in others {
            let took = sees_ctl(live.get_mut(other).unwrap(), want, since).await;
            reach.push(took);
            assert!(took <= Duration::from_secs(1), "{verb} on {on} reached {other} after {took:?}");
        }
    }
    let (disabled_at, enabled_at) = (switched[0], switched[1]);

    // A trigger runs once in the cluster, the others see where within a
    // second, and its caller gets the outcome.
    let from = events.len();
    live.get_mut("r2").unwrap().send("trigger manual").await;
    let since = Instant::now();
    for other in ["r1", "r3"] {
        let took = sees_running_on(live.get_mut(other).unwrap(), "manual", "r2", since, Duration::from_secs(1)).await;
        reach.push(took);
    }
    let reply = events
        .wait_after(from, Duration::from_secs(10), |e| e.ev() == "reply" && e.json["cmd"] == "trigger manual")
        .await
        .expect("the trigger is answered");
    assert_eq!(reply.json["ok"], true, "{:?}", reply.json);
    assert_eq!(reply.json["detail"]["outcome"], "succeeded", "{:?}", reply.json);

    // SIGKILL the replica running `long`, mid-run: another replica runs the
    // fire's next attempt within lease_ttl + 1 s.
    let from = events.len();
    let victim = long_starts(&events, from, &["r1", "r2", "r3"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    let killed_ms = chrono::Utc::now().timestamp_millis();
    let mut killed = live.remove(&victim.replica).unwrap();
    killed.kill().await;
    let taken = events
        .wait_after(from, Duration::from_millis(LEASE_MS + 3000), |e| {
            e.ev() == "start" && e.worker() == "long" && e.at() == victim.at() && e.attempt() == 2
        })
        .await;
    let taken = taken.unwrap_or_else(|| panic!("the fire of {} was not taken over:\n{}", victim.replica, killed.log()));
    let takeover = taken.seen.duration_since(killed_at);
    assert!(takeover <= Duration::from_millis(LEASE_MS + 1000), "takeover took {takeover:?}");
    assert_ne!(taken.replica, victim.replica);
    // While it runs there, the other live replicas' status says where.
    let onlookers: Vec<String> = live.keys().filter(|n| **n != taken.replica).cloned().collect();
    for name in onlookers {
        // As of its last poll (every 300 ms): the victim until then.
        let onlooker = live.get_mut(&name).unwrap();
        sees_running_on(onlooker, "long", &taken.replica, Instant::now(), Duration::from_millis(1500)).await;
    }
    live.insert("r4".into(), Replica::start("r4", &store, "cluster", &events).await);

    // SIGSTOP a replica running `long` past its lease, then SIGCONT it.
    let from = events.len();
    let names: Vec<&str> = live.keys().map(String::as_str).collect();
    let frozen = long_starts(&events, from, &names).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let freeze_ms = chrono::Utc::now().timestamp_millis();
    live[&frozen.replica].signal("STOP");
    let adopted = events
        .wait_after(from, Duration::from_millis(LEASE_MS + 3000), |e| {
            e.ev() == "start" && e.worker() == "long" && e.at() == frozen.at() && e.attempt() == 2
        })
        .await;
    live[&frozen.replica].signal("CONT");
    let resumed_ms = chrono::Utc::now().timestamp_millis();
    let adopted = adopted.expect("the frozen replica's fire was taken over");
    assert_ne!(adopted.replica, frozen.replica);
    let fenced = events.wait_until(Duration::from_secs(5), || live[&frozen.replica].log().contains("(fencing)")).await;
    assert!(fenced, "the frozen replica's late write was not refused:\n{}", live[&frozen.replica].log());

    // Run for at least 32 s in all, then stop every replica gracefully.
    let rest = Duration::from_secs(32).saturating_sub(began.elapsed());
    tokio::time::sleep(rest).await;
    let quit_ms = chrono::Utc::now().timestamp_millis();
    for (_, replica) in std::mem::take(&mut live) {
        replica.quit().await;
    }
    let all = events.all();
    eprintln!("control (disable, enable, trigger) reached the others after {reach:?}; takeover after {takeover:?}");

    // No fire's attempt ran twice: a Cluster worker's (worker, scheduled_at,
    // attempt) starts on one replica at most.
    let mut starts: HashMap<(String, i64, u64), Vec<String>> = HashMap::new();
    for e in all.iter().filter(|e| e.ev() == "start" && CLUSTER_WORKERS.contains(&e.worker())) {
        starts.entry((e.worker().to_string(), e.at(), e.attempt())).or_default().push(e.replica.clone());
    }
    for (fire, on) in &starts {
        assert_eq!(on.len(), 1, "{fire:?} started on {on:?}");
    }

    // ctl started nowhere while it was disabled (from a second after the
    // disable until the enable), and runs again afterwards.
    let ctl: Vec<&Event> = all.iter().filter(|e| e.worker() == "ctl" && e.ev() == "start").collect();
    let quiet = disabled_at + Duration::from_secs(1)..enabled_at;
    assert!(!ctl.iter().any(|e| quiet.contains(&e.seen)), "ctl started while disabled cluster-wide");
    assert!(ctl.iter().any(|e| e.seen > enabled_at), "ctl runs again once enabled");

    // Blocks and dependencies held across replicas. Runs of the frozen
    // replica that spanned the freeze are left out: a frozen process's
    // code does not run, and its lease lapsed (fencing guards its writes).
    let spanned = |s: &(String, i64, i64, i64)| s.0 == frozen.replica && s.2 <= resumed_ms && s.3 >= freeze_ms;
    let ended = |replica: &str| if replica == victim.replica { killed_ms } else { quit_ms };
    let runs = |worker: &str| -> Vec<Span> {
        replicas::spans(&all, worker, Event::t, ended).into_iter().filter(|s| !spanned(s)).collect()
    };
    never_overlap(&runs("left"), &runs("right"), "left blocks right");
    never_overlap(&runs("up"), &runs("down"), "down depends on up");
    for worker in CLUSTER_WORKERS {
        never_overlap_itself(&runs(worker), worker);
    }
    let downs = runs("down").len();
    assert!(downs >= 10, "down ran {downs} times");

    // Every replica ran the Instance worker.
    for name in ["r1", "r2", "r3", "r4"] {
        assert!(all.iter().any(|e| e.replica == name && e.worker() == "local" && e.ev() == "end"), "{name}");
    }

    // The database: every 1 s slot of `tick` has one row, none is left
    // running, the taken-over fires ran their second attempt elsewhere.
    let rows = client
        .query(
            &format!(
                "SELECT worker, (extract(epoch FROM scheduled_at) * 1000)::BIGINT, instance, attempts, outcome, \
                 (extract(epoch FROM started_at) * 1000)::BIGINT, (extract(epoch FROM finished_at) * 1000)::BIGINT \
                 FROM \"{schema}\".fires ORDER BY worker, scheduled_at"
            ),
            &[],
        )
        .await
        .unwrap();
    let row = |r: &tokio_postgres::Row| -> (String, i64, String, i32, String, Option<i64>) {
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
    };
    let running: Vec<_> = rows.iter().map(row).filter(|r| r.4 == "running").collect();
    assert!(running.is_empty(), "fires left running: {running:?}");
    let ticks: Vec<_> = rows.iter().map(row).filter(|r| r.0 == "tick").collect();
    // A slot without a row of its own is accounted for only by a catch-up
    // run (`misfire = FireOnce`): the fire before it started after it was
    // due (held by a conflict, here a frozen replica's lease), so that run
    // stood for it.
    let mut coalesced = 0;
    for pair in ticks.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!((after.1 - before.1) % 1000, 0, "off the 1 s grid: {pair:?}");
        for slot in (before.1 + 1000..after.1).step_by(1000) {
            let started = before.5.unwrap_or(i64::MIN);
            assert!(started >= slot, "the slot {slot} of tick is not accounted for: {pair:?}");
            coalesced += 1;
        }
    }
    eprintln!("tick: {} fires, {coalesced} slots stood for by a late catch-up run", ticks.len());
    assert!(ticks.len() + coalesced >= 28, "tick's grid covers {} slots in 32 s", ticks.len() + coalesced);
    for fire in [&victim, &frozen] {
        let kept = rows.iter().map(row).find(|r| r.0 == "long" && r.1 == fire.at()).expect("the fire has a row");
        assert_ne!(kept.2, fire.replica, "{kept:?}");
        assert_eq!((kept.3, kept.4.as_str()), (2, "succeeded"), "lost once, then retried: {kept:?}");
    }
    let locals: Vec<String> = rows.iter().map(row).filter(|r| r.0 == "local").map(|r| r.2).collect();
    for name in ["r1", "r2", "r3", "r4"] {
        assert!(locals.contains(&name.to_string()), "the Instance worker's history names {name}");
    }

    replicas::drop_schema(&client, &schema).await;
}
