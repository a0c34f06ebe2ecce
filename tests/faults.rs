//! Cluster mode under faults, with real processes on one PostgreSQL
//! database: three replicas of `orchestrator-replica` (scenario `faults`:
//! 1 s Cluster workers, one with a retry, two that block each other, a
//! triggered one, and an Instance worker) while the test
//! - SIGKILLs a replica mid-run every 30 s and starts a replacement
//!   (`a_replica_killed_every_30_s...`; 2 minutes, or
//!   `ORCHESTRATOR_FAULT_SECONDS`: the long profile is 600);
//! - terminates the replicas' database connections from the server
//!   (`pg_terminate_backend`) right after a claim, right before a finish is
//!   written, and at the moments claims are in flight;
//! - runs one replica's clock 5 minutes ahead and one 5 minutes behind
//!   (`faketime`), and kills the one ahead mid-run;
//! - restarts every replica in turn, twice, across fire times.
//!
//! Each scenario ends with the same audit of what the replicas printed and
//! what the database kept: no fire's attempt started twice; every 1 s slot
//! in the window has a row (run, `missed` with its reason, `lost` to a
//! kill) or came due while the fire before it had not finished, and so
//! merged into the catch-up run that followed (`FireOnce`); no finished run's
//! outcome was lost; `left` and `right` never overlapped; no fire is left
//! `running`; every trigger was answered; every replica ran the Instance
//! worker. It prints one line of the README's results table.

mod replicas;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use replicas::{Event, Events, Replica, StoreArg};

const LEASE_MS: u64 = 3000;
const POLL_MS: u64 = 300;
/// The 1 s Cluster workers of the `faults` scenario.
const GRID: [&str; 4] = ["tick", "slow", "left", "right"];
/// Every Cluster worker of the scenario.
const CLUSTER: [&str; 5] = ["tick", "slow", "left", "right", "manual"];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One scenario's cluster: its replicas, what they printed, and what the
/// test did to them.
struct Cluster {
    scenario: &'static str,
    client: tokio_postgres::Client,
    schema: String,
    store: StoreArg,
    events: Events,
    live: BTreeMap<String, Replica>,
    /// Per replica that is gone: when (test wall clock, ms), and whether
    /// it was killed (a kill may lose what it had not written yet).
    gone: HashMap<String, (i64, bool)>,
    /// Per replica: its clock minus the real one, in ms (faketime).
    skew: HashMap<String, i64>,
    /// Per replica: the environment it was started with (a replacement
    /// gets the same).
    envs: HashMap<String, Vec<(String, String)>>,
    named: usize,
    /// Triggers sent: the replica and the event count at the time.
    triggers: Vec<(String, usize)>,
    takeovers: Vec<Duration>,
    began: Instant,
}

impl Cluster {
    async fn new(scenario: &'static str) -> Option<Cluster> {
        let client = replicas::database().await?;
        let schema = replicas::fresh_schema(&client, &format!("faults_{scenario}")).await;
        let store = StoreArg::Postgres { schema: schema.clone(), lease_ms: LEASE_MS, poll_ms: POLL_MS };
        Some(Cluster {
            scenario,
            client,
            schema,
            store,
            events: Events::default(),
            live: BTreeMap::new(),
            gone: HashMap::new(),
            skew: HashMap::new(),
            envs: HashMap::new(),
            named: 0,
            triggers: Vec::new(),
            takeovers: Vec::new(),
            began: Instant::now(),
        })
    }

    /// Starts a replica (`r1`, `r2`, ...) with `env` (a faked clock), whose
    /// clock is `skew_ms` off; its name.
    async fn start(&mut self, env: &[(String, String)], skew_ms: i64) -> String {
        self.named += 1;
        let name = format!("r{}", self.named);
        let replica = Replica::start_with(&name, &self.store, "faults", &self.events, env).await;
        self.live.insert(name.clone(), replica);
        self.skew.insert(name.clone(), skew_ms);
        self.envs.insert(name.clone(), env.to_vec());
        name
    }

    /// SIGKILLs `name`.
    async fn kill(&mut self, name: &str) {
        let mut replica = self.live.remove(name).expect("a live replica");
        self.gone.insert(name.to_string(), (now_ms(), true));
        replica.kill().await;
    }

    /// Stops `name` gracefully.
    async fn quit(&mut self, name: &str) {
        let replica = self.live.remove(name).expect("a live replica");
        replica.quit().await;
        self.gone.insert(name.to_string(), (now_ms(), false));
    }

    /// Triggers `manual` on `name` (answered later, checked by the audit).
    async fn trigger(&mut self, name: &str) {
        self.triggers.push((name.to_string(), self.events.len()));
        self.live.get_mut(name).expect("a live replica").send("trigger manual").await;
    }

    /// Waits for `slow` to start its first attempt on a live replica,
    /// after event `from`.
    async fn slow_starts(&self, from: usize) -> Event {
        let live: Vec<String> = self.live.keys().cloned().collect();
        self.events
            .wait_after(from, Duration::from_secs(20), |e| {
                e.ev() == "start" && e.worker() == "slow" && e.attempt() == 1 && live.contains(&e.replica)
            })
            .await
            .expect("slow starts within 20 s")
    }

    /// SIGKILLs the replica running `victim` 150 ms into its run, starts a
    /// replacement (with the same clock), and times the takeover: the
    /// fire's second attempt starts elsewhere within `lease_ttl` + 1 s.
    /// Returns the takeover's time.
    async fn kill_mid_run(&mut self, victim: Event) -> Duration {
        let env = self.envs.get(&victim.replica).cloned().unwrap_or_default();
        let skew_ms = self.skew.get(&victim.replica).copied().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let from = self.events.len();
        let killed_at = Instant::now();
        self.kill(&victim.replica).await;
        let taken = self
            .events
            .wait_after(from, Duration::from_millis(LEASE_MS + 4000), |e| {
                e.ev() == "start" && e.worker() == "slow" && e.at() == victim.at() && e.attempt() == 2
            })
            .await
            .unwrap_or_else(|| panic!("{}'s fire of slow at {} was not taken over", victim.replica, victim.at()));
        // The next attempt also waits for a run of `slow` in progress on
        // the replica that takes it over (no overlap), up to its 400 ms.
        let took = taken.seen.duration_since(killed_at);
        assert!(took <= Duration::from_millis(LEASE_MS + 1000), "takeover after {took:?}");
        assert_ne!(taken.replica, victim.replica);
        self.takeovers.push(took);
        self.start(&env, skew_ms).await;
        took
    }

    /// Stops every replica and audits the run; prints the results line.
    async fn finish(mut self) -> Audit {
        let names: Vec<String> = self.live.keys().cloned().collect();
        for name in names {
            self.quit(&name).await;
        }
        let audit = self.audit().await;
        let worst = self.takeovers.iter().max().map_or("—".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
        let missed: Vec<String> = audit.missed.iter().map(|(why, n)| format!("{n} {why}")).collect();
        let missed = if missed.is_empty() { "0".to_string() } else { missed.join(", ") };
        eprintln!(
            "RESULT | {} | {} s | {} | {} | {} | {} | {} | {} | {} kills, takeovers {:?} | Instance worker's worst gap {} ms |",
            self.scenario,
            self.began.elapsed().as_secs(),
            audit.due,
            audit.run,
            missed,
            audit.doubled,
            audit.lost,
            worst,
            self.gone.values().filter(|g| g.1).count(),
            self.takeovers,
            audit.instance_gap_ms,
        );
        replicas::drop_schema(&self.client, &self.schema).await;
        audit
    }

    async fn audit(&self) -> Audit {
        let all = self.events.all();
        let real = |e: &Event| e.t() - self.skew.get(&e.replica).copied().unwrap_or(0);
        let killed_at = |replica: &str| self.gone.get(replica).filter(|g| g.1).map(|g| g.0);

        // No fire's attempt started twice.
        let mut starts: HashMap<(String, i64, u64), Vec<String>> = HashMap::new();
        for e in all.iter().filter(|e| e.ev() == "start" && CLUSTER.contains(&e.worker())) {
            starts.entry((e.worker().to_string(), e.at(), e.attempt())).or_default().push(e.replica.clone());
        }
        let doubled: Vec<_> = starts.iter().filter(|(_, on)| on.len() > 1).collect();
        assert!(doubled.is_empty(), "attempts started on two replicas: {doubled:?}");

        let rows = self
            .client
            .query(
                &format!(
                    "SELECT worker, (extract(epoch FROM scheduled_at) * 1000)::BIGINT, instance, attempts, outcome, \
                     coalesce(error, ''), (extract(epoch FROM started_at) * 1000)::BIGINT, \
                     (extract(epoch FROM finished_at) * 1000)::BIGINT \
                     FROM \"{}\".fires WHERE scope_key = '' ORDER BY worker, scheduled_at",
                    self.schema
                ),
                &[],
            )
            .await
            .expect("read the fires");
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                worker: r.get(0),
                at: r.get(1),
                instance: r.get(2),
                attempts: r.get(3),
                outcome: r.get(4),
                error: r.get(5),
                started: r.get(6),
                finished: r.get(7),
            })
            .collect();

        // Nothing is left running: every replica has stopped.
        let running: Vec<_> = rows.iter().filter(|r| r.outcome == "running").collect();
        assert!(running.is_empty(), "fires left running: {running:?}");

        // Every slot of every 1 s worker is accounted for.
        let mut due = 0;
        let mut run = 0;
        let mut missed: BTreeMap<String, usize> = BTreeMap::new();
        let span_s = self.began.elapsed().as_secs() as usize;
        for worker in GRID {
            let fires: Vec<&Row> = rows.iter().filter(|r| r.worker == worker).collect();
            let covered = match (fires.first(), fires.last()) {
                (Some(first), Some(last)) => ((last.at - first.at) / 1000 + 1) as usize,
                _ => 0,
            };
            assert!(covered + 8 >= span_s, "{worker}'s rows cover {covered} slots of {span_s} s");
            due += 1;
            for pair in fires.windows(2) {
                let (before, after) = (pair[0], pair[1]);
                assert_eq!((after.at - before.at) % 1000, 0, "off the 1 s grid: {pair:?}");
                due += ((after.at - before.at) / 1000) as usize;
                // A slot without a row came due while the fire before it
                // had not finished (it waited or ran): under `FireOnce` it
                // merged into the catch-up run that followed.
                for slot in (before.at + 1000..after.at).step_by(1000) {
                    let finished = before.finished.unwrap_or(i64::MAX);
                    assert!(finished >= slot, "the slot {slot} of {worker} is not accounted for: {pair:?}");
                    *missed.entry("merged into a catch-up run".into()).or_default() += 1;
                }
            }
            for fire in fires {
                match fire.outcome.as_str() {
                    "succeeded" | "failed" => run += 1,
                    "lost" => *missed.entry(format!("lost ({})", fire.error)).or_default() += 1,
                    other => {
                        // "merged into the catch-up run of <time> (...)": one line per kind.
                        let why = fire.error.split(" of ").next().unwrap_or_default();
                        *missed.entry(format!("{other} ({why})")).or_default() += 1
                    }
                }
            }
        }

        // No finished run's outcome was lost: the last attempt that ended
        // is what its row says, unless its replica was killed before it
        // could write it (within 2 s of the end).
        let mut lost = Vec::new();
        for end in all.iter().filter(|e| e.ev() == "end" && CLUSTER.contains(&e.worker())) {
            let later = all.iter().any(|e| {
                e.ev() == "start" && e.worker() == end.worker() && e.at() == end.at() && e.attempt() > end.attempt()
            });
            if later || killed_at(&end.replica).is_some_and(|k| k - real(end) < 2000) {
                continue;
            }
            let row = rows.iter().find(|r| r.worker == end.worker() && r.at == end.at());
            let kept = row.is_some_and(|r| {
                r.outcome == "succeeded" && r.attempts as u64 == end.attempt() && r.instance == end.replica
            });
            if !kept {
                lost.push(format!(
                    "{} at {} attempt {} on {}: {row:?}",
                    end.worker(),
                    end.at(),
                    end.attempt(),
                    end.replica
                ));
            }
        }
        assert!(lost.is_empty(), "outcomes lost: {lost:#?}");

        // `left` and `right` never overlapped (a run without an end stops
        // when it was cancelled, or when its replica went away).
        let gone = |replica: &str| self.gone.get(replica).map_or(i64::MAX, |g| g.0);
        let (left, right) = (replicas::spans(&all, "left", real, gone), replicas::spans(&all, "right", real, gone));
        replicas::never_overlap(&left, &right, "left blocks right");

        // Every trigger sent to a replica that was not killed was answered.
        for (replica, from) in &self.triggers {
            let answered = all[*from..]
                .iter()
                .find(|e| e.replica == *replica && e.ev() == "reply" && e.json["cmd"] == "trigger manual");
            match answered {
                Some(reply) => assert_eq!(reply.json["ok"], true, "{:?}", reply.json),
                None => assert!(killed_at(replica).is_some(), "a trigger on {replica} was never answered"),
            }
        }

        // Every replica ran the Instance worker, without a pause.
        let mut instance_gap_ms = 0;
        for replica in self.gone.keys() {
            let locals: Vec<i64> = all
                .iter()
                .filter(|e| e.replica == *replica && e.worker() == "local" && e.ev() == "start")
                .map(real)
                .collect();
            assert!(!locals.is_empty(), "{replica} never ran the Instance worker");
            let gap = locals.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            instance_gap_ms = instance_gap_ms.max(gap);
        }
        assert!(instance_gap_ms < 2500, "the Instance worker paused for {instance_gap_ms} ms");

        Audit { due, run, missed, doubled: doubled.len(), lost: lost.len(), instance_gap_ms, rows }
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct Row {
    worker: String,
    at: i64,
    instance: String,
    attempts: i32,
    outcome: String,
    error: String,
    started: Option<i64>,
    finished: Option<i64>,
}

/// What the audit counted.
struct Audit {
    due: usize,
    run: usize,
    missed: BTreeMap<String, usize>,
    doubled: usize,
    lost: usize,
    instance_gap_ms: i64,
    rows: Vec<Row>,
}

/// How long the kill scenario runs (CI: 2 minutes).
fn kill_seconds() -> u64 {
    std::env::var("ORCHESTRATOR_FAULT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_every_30_s_mid_run_is_taken_over_within_the_lease_and_nothing_doubles() {
    let Some(mut cluster) = Cluster::new("kill").await else { return };
    for _ in 0..3 {
        cluster.start(&[], 0).await;
    }
    let seconds = kill_seconds();
    let mut next = Duration::from_secs(15);
    while next + Duration::from_secs(15) <= Duration::from_secs(seconds) {
        tokio::time::sleep(next.saturating_sub(cluster.began.elapsed())).await;
        // A trigger on a replica that stays, then a kill of whichever
        // replica starts `slow` next.
        let from = cluster.events.len();
        let victim = cluster.slow_starts(from).await;
        let bystander = cluster.live.keys().find(|n| **n != victim.replica).cloned().expect("three replicas");
        cluster.trigger(&bystander).await;
        cluster.kill_mid_run(victim).await;
        next += Duration::from_secs(30);
    }
    tokio::time::sleep(Duration::from_secs(seconds).saturating_sub(cluster.began.elapsed())).await;
    let audit = cluster.finish().await;
    assert!(audit.rows.iter().any(|r| r.worker == "slow" && r.attempts == 2 && r.outcome == "succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_terminated_by_the_server_at_claims_and_finishes_double_nothing_and_lose_no_outcome() {
    let Some(mut cluster) = Cluster::new("terminate").await else { return };
    for _ in 0..3 {
        cluster.start(&[], 0).await;
    }
    let killer = replicas::database().await.expect("the database answered a moment ago");
    let terminate = |pattern: String| {
        let killer = &killer;
        async move {
            let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                       WHERE application_name LIKE $1 AND pid <> pg_backend_pid()";
            killer.query_one(sql, &[&pattern]).await.map(|row| row.get::<_, i64>(0)).unwrap_or(0)
        }
    };
    let prefix = format!("orch-{}-", cluster.schema);
    let mut seen = cluster.events.len();
    let mut terminated = [0i64; 3];
    let mut last = Instant::now();
    let mut at_claims = Instant::now();
    let mut next_trigger = Duration::from_secs(3);
    while cluster.began.elapsed() < Duration::from_secs(25) {
        if cluster.began.elapsed() >= next_trigger {
            let on = cluster.live.keys().nth(cluster.triggers.len() % 3).cloned().expect("a replica");
            cluster.trigger(&on).await;
            next_trigger += Duration::from_secs(5);
        }
        // Right after a claim (a run starts) and right before a finish is
        // written (a run ends): that replica's connections.
        let events = cluster.events.all();
        let fresh =
            events[seen..].iter().find(|e| GRID.contains(&e.worker()) && (e.ev() == "start" || e.ev() == "end"));
        seen = events.len();
        if let Some(e) = fresh.filter(|_| last.elapsed() > Duration::from_millis(400)) {
            let kind = if e.ev() == "start" { 0 } else { 1 };
            terminated[kind] += terminate(format!("{prefix}{}", e.replica)).await;
            last = Instant::now();
        }
        // Just after a whole second, while the fires due then are claimed:
        // every replica's connections.
        let into_second = now_ms() % 1000;
        if (5..60).contains(&into_second) && at_claims.elapsed() > Duration::from_millis(2500) {
            terminated[2] += terminate(format!("{prefix}%")).await;
            at_claims = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    eprintln!(
        "terminated connections: {} after a claim, {} before a finish, {} at claims",
        terminated[0], terminated[1], terminated[2]
    );
    assert!(terminated.iter().all(|n| *n > 0), "every kind of termination happened: {terminated:?}");
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_whose_clocks_are_five_minutes_off_fire_on_the_databases_time_and_leases_hold() {
    let Some(mut cluster) = Cluster::new("skew").await else { return };
    let (Some(ahead_env), Some(behind_env)) = (replicas::faked_clock("+5m"), replicas::faked_clock("-5m")) else {
        let message = "libfaketime is not installed (Debian package `faketime`)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return;
    };
    cluster.start(&ahead_env, 300_000).await;
    cluster.start(&behind_env, -300_000).await;
    cluster.start(&[], 0).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Whichever replica runs `slow` (a replica keeps winning the fires of
    // a worker it won, so which one is up to the first claims): with the
    // victim 5 min ahead, a lease judged by its clock would hold 5 min too
    // long; with the one ahead surviving, by that one's clock it would
    // have expired at once. Either way the takeover must come when the
    // lease expires on the database's clock: not before `lease_ttl` less
    // the 150 ms run before the kill (and a margin), nor after + 1 s.
    let from = cluster.events.len();
    let victim = cluster.slow_starts(from).await;
    let took = cluster.kill_mid_run(victim).await;
    assert!(took >= Duration::from_millis(LEASE_MS - 1000), "taken over after {took:?}: before the lease expired");
    tokio::time::sleep(Duration::from_secs(25).saturating_sub(cluster.began.elapsed())).await;
    let audit = cluster.finish().await;
    // Every tick started within a second of its time, by the database's
    // clock (started_at is the database's `now()` at the claim).
    for row in audit.rows.iter().filter(|r| r.worker == "tick") {
        let late = row.started.map(|s| s - row.at);
        assert!(late.is_some_and(|l| (0..1000).contains(&l)), "tick started {late:?} ms after its time: {row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_across_fire_times_runs_each_fire_exactly_once() {
    let Some(mut cluster) = Cluster::new("rolling").await else { return };
    for _ in 0..3 {
        cluster.start(&[], 0).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let tick = cluster.events.wait_for(Duration::from_secs(5), |e| e.worker() == "tick").await;
    let phase = tick.expect("tick runs").at().rem_euclid(1000);
    let mut windows = Vec::new();
    for _ in 0..2 {
        let names: Vec<String> = cluster.live.keys().cloned().collect();
        for name in names {
            // Stopped 200 ms before a fire time (the grid's phase is the
            // stored anchor's); its replacement started 300 ms after it:
            // the fire falls in the deploy window.
            let wait = (phase + 800 - now_ms()).rem_euclid(1000);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            let stopping = now_ms();
            cluster.quit(&name).await;
            let wait = (1300 - (now_ms() - stopping + 800)).max(0);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            cluster.start(&[], 0).await;
            windows.push((stopping, now_ms()));
        }
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let audit = cluster.finish().await;
    // With two replicas up at every moment, every tick ran, once, on time.
    let ticks: Vec<&Row> = audit.rows.iter().filter(|r| r.worker == "tick").collect();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1].at - pair[0].at, 1000, "a tick slot has no run: {pair:?}");
    }
    for row in &ticks {
        assert_eq!((row.outcome.as_str(), row.attempts), ("succeeded", 1), "{row:?}");
    }
    let across = ticks.iter().filter(|r| windows.iter().any(|w| (w.0..=w.1).contains(&r.at))).count();
    assert!(across >= windows.len(), "only {across} tick fires fell in the restart windows {windows:?}");
}
