//! Cluster mode when the database server itself is the fault (issue 16,
//! scenarios 3 and 5), with real processes: three replicas of
//! `orchestrator-replica` (scenario `server`: 1 s Cluster workers `tick`,
//! misfire `FireOnce`, and `skipper`, misfire `Skip`; `ctl` to disable and
//! enable; a triggered `manual`; an Instance worker `local`) while
//! - their PostgreSQL, a private server of the test's own (initdb and
//!   pg_ctl, on a free port), is restarted mid-run (`pg_ctl stop -m fast`,
//!   down for longer than the lease, started again): the replicas
//!   reconnect, the Instance worker never stops, and the Cluster fires due
//!   during the outage follow their misfire policy;
//! - or they all reach PostgreSQL through PgBouncer in transaction mode,
//!   started by the test on a free port: the same guarantees, and control
//!   (disable, enable, trigger) on one replica reaches the others within
//!   the polling interval, LISTEN being unable to cross such a pooler.
//!
//! Each ends with the same audit of what the replicas printed and what the
//! database kept: no `(worker, scheduled_at, attempt)` started twice; every
//! 1 s slot in the window has a row (a run, or `missed` with its reason) or
//! came due while the fire before it had not started, which then ran as
//! the catch-up that stood for it (`FireOnce`); every run that ended has
//! its outcome in the database; no fire is left `running`. Each prints one
//! line of the README's results table (`results: ...`).
//!
//! Without the server binaries (`initdb`, `pg_ctl` under
//! /usr/lib/postgresql/*/bin) or `pgbouncer`, a test is skipped with a
//! printed notice, except under `CI=true`, where it fails.

mod replicas;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use replicas::{Event, Events, Replica, StoreArg};
use tokio::process::{Child, Command};

const LEASE_MS: u64 = 3000;
const POLL_MS: u64 = 300;
const SCENARIO: &str = "server";
/// The 1 s Cluster workers whose every slot is accounted for (`ctl` is
/// disabled for a while in one test, so it is left out).
const GRID: [&str; 2] = ["tick", "skipper"];
/// Every Cluster worker of the scenario.
const CLUSTER: [&str; 4] = ["tick", "skipper", "ctl", "manual"];
/// A test's bound, from its first replica's start to its audit.
const BOUND: Duration = Duration::from_secs(90);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A missing tool: skipped with a notice outside CI, a failure under `CI=true`.
fn missing(what: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{what}");
    eprintln!("skipped: {what}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A command running `program` as the `postgres` user when the test runs
/// as root (the server and PgBouncer refuse root). `setpriv` execs the
/// program: the child is the program itself, which a kill reaches.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A fresh directory under the temporary one, owned by `postgres` when
/// the test runs as root.
fn private_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let dir =
        std::env::temp_dir().join(format!("orchestrator-{what}-{}-{}", std::process::id(), nanos % 1_000_000_000));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    if is_root() {
        let chown = std::process::Command::new("chown").arg("postgres:postgres").arg(&dir).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown postgres {}", dir.display());
    }
    dir
}

/// Runs a command to its end (bounded); panics with its output on failure.
async fn run(mut command: Command, what: &str) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output()).await;
    let output = output.unwrap_or_else(|_| panic!("{what}: not done within 60 s")).expect(what);
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The newest PostgreSQL server's binaries (`initdb`, `pg_ctl`), if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL server of the test's own: its data in a temporary
/// directory, on a free port; stopped and removed when dropped.
struct PrivateServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivateServer {
    /// Initialises and starts one, or `None` (after saying so) when the
    /// server binaries are not installed.
    async fn start() -> Option<PrivateServer> {
        let Some(bin) = postgres_bin() else {
            missing("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl) are not installed");
            return None;
        };
        let server = PrivateServer { bin, dir: private_dir("pg"), port: free_port() };
        let mut initdb = as_postgres(&server.bin.join("initdb"));
        initdb.arg("-D").arg(server.data()).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        run(initdb, "initdb").await;
        server.up().await;
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    async fn up(&self) {
        let mut pg_ctl = as_postgres(&self.bin.join("pg_ctl"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        pg_ctl.arg("-D").arg(self.data()).arg("-l").arg(self.dir.join("server.log"));
        pg_ctl.args(["-w", "-t", "30", "-o", &options, "start"]);
        run(pg_ctl, "pg_ctl start").await;
    }

    /// Stops the server the way an administrator restarting it does
    /// (`fast`: every session terminated, a clean shutdown).
    async fn down(&self) {
        let mut pg_ctl = as_postgres(&self.bin.join("pg_ctl"));
        pg_ctl.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "-t", "30", "stop"]);
        run(pg_ctl, "pg_ctl stop").await;
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut command = std::process::Command::new("setpriv");
            command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(pg_ctl);
            command
        } else {
            std::process::Command::new(pg_ctl)
        };
        command.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]);
        let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer in transaction mode in front of the test database, on a free
/// port; killed (and its directory removed) when dropped.
struct Bouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
    user: String,
    dbname: String,
}

impl Bouncer {
    /// Starts one and waits until it takes connections, or `None` (after
    /// saying so) when `pgbouncer` is not installed.
    async fn start(target: &str) -> Option<Bouncer> {
        let path = std::env::var("PATH").unwrap_or_default();
        let Some(program) = path
            .split(':')
            .chain(["/usr/sbin", "/usr/bin"])
            .map(|dir| Path::new(dir).join("pgbouncer"))
            .find(|candidate| candidate.exists())
        else {
            missing("pgbouncer is not installed (Debian package `pgbouncer`)");
            return None;
        };
        let config: tokio_postgres::Config = target.parse().expect("a PostgreSQL URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let target_port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_string();
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        let dir = private_dir("pgbouncer");
        let port = free_port();
        let ini = format!(
            "[databases]\n\
             {dbname} = host={host} port={target_port} dbname={dbname}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             max_client_conn = 200\n\
             default_pool_size = 20\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).expect("write users.txt");
        let mut command = as_postgres(&program);
        command.arg(dir.join("pgbouncer.ini")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = command.kill_on_drop(true).spawn().expect("start pgbouncer");
        let mut bouncer = Bouncer { child, dir, port, user, dbname };
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio_postgres::connect(&bouncer.url(), tokio_postgres::NoTls).await.is_ok() {
                return Some(bouncer);
            }
            let exited = bouncer.child.try_wait().expect("pgbouncer's state");
            assert!(
                exited.is_none() && Instant::now() < end,
                "pgbouncer did not start ({exited:?}):\n{}",
                bouncer.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}", self.user, self.port, self.dbname)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts replicas `names` of the scenario on `url`.
async fn start_all(url: &str, names: &[&str], store: &StoreArg, events: &Events) -> BTreeMap<String, Replica> {
    let mut live = BTreeMap::new();
    for name in names {
        live.insert(name.to_string(), Replica::start_on(url, name, store, SCENARIO, events, &[]).await);
    }
    live
}

/// Polls `replica`'s status until `check` holds of it; how long it took
/// from `since` (at most `limit`, or the test fails).
async fn sees(
    replica: &mut Replica,
    since: Instant,
    limit: Duration,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    loop {
        let status = replica.status().await;
        if check(&status) {
            return since.elapsed();
        }
        assert!(since.elapsed() < limit, "{}'s status never said {what} within {limit:?}: {status}", replica.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker's entry in a status.
fn worker(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["workers"].as_array().and_then(|all| all.iter().find(|w| w["name"] == name)).cloned().unwrap_or_default()
}

/// The worst gap (ms) between two runs of the Instance worker on any of
/// `replicas`, from their start events.
fn instance_worst_gap(all: &[Event], replicas: &[&str]) -> i64 {
    let mut worst = 0;
    for name in replicas {
        let mut starts: Vec<i64> = all
            .iter()
            .filter(|e| e.replica == *name && e.worker() == "local" && e.ev() == "start")
            .map(Event::t)
            .collect();
        starts.sort();
        assert!(starts.len() >= 5, "{name} ran the Instance worker {} times", starts.len());
        worst = starts.windows(2).map(|w| w[1] - w[0]).fold(worst, i64::max);
    }
    worst
}

/// What the audit found.
#[derive(Default, Debug)]
struct Audit {
    /// Slots of the grid workers in the window.
    due: usize,
    /// Of them, run (a row with a start).
    run: usize,
    /// Stood for by a later catch-up run (`FireOnce`).
    caught_up: usize,
    /// `missed` rows, by reason.
    missed: BTreeMap<String, usize>,
    /// Attempts started on more than one replica.
    doubled: Vec<String>,
    /// Runs that ended whose outcome the database does not have.
    lost: Vec<String>,
    /// Attempts that started after the one before had ended well: a run
    /// whose end did not reach the database in time, run again.
    rerun: Vec<String>,
    /// Rows recorded `lost` (a lease that lapsed), whatever came after.
    lost_rows: usize,
    /// Slots with neither a row nor a catch-up run.
    unaccounted: Vec<String>,
    /// Fires left `running`.
    running: Vec<String>,
}

impl Audit {
    fn missed_total(&self) -> usize {
        self.missed.values().sum()
    }

    fn line(&self, scenario: &str, extra: &str) -> String {
        let reasons: Vec<String> = self.missed.iter().map(|(why, n)| format!("{n} {why}")).collect();
        format!(
            "results: {scenario}: fires due {}, run {}, caught up {}, missed {} ({}), doubled {}, lost {} \
             (rows recorded lost {}), run again after their end {}, left running {}; {extra}",
            self.due,
            self.run,
            self.caught_up,
            self.missed_total(),
            if reasons.is_empty() { "none".to_string() } else { reasons.join("; ") },
            self.doubled.len(),
            self.lost.len(),
            self.lost_rows,
            self.rerun.len(),
            self.running.len()
        )
    }

    /// The guarantees: nothing doubled, nothing lost, every slot accounted
    /// for, nothing left running.
    fn assert_holds(&self) {
        assert!(self.doubled.is_empty(), "attempts started twice: {:?}", self.doubled);
        assert!(self.unaccounted.is_empty(), "slots not accounted for: {:?}", self.unaccounted);
        assert!(self.running.is_empty(), "fires left running: {:?}", self.running);
        assert!(self.lost.is_empty(), "runs whose outcome the database lost: {:?}", self.lost);
        assert!(self.rerun.is_empty(), "fires run again after they had ended: {:?}", self.rerun);
    }
}

async fn audit(client: &tokio_postgres::Client, schema: &str, all: &[Event]) -> Audit {
    let mut found = Audit::default();
    let mut starts: HashMap<(String, i64, u64), Vec<String>> = HashMap::new();
    for e in all.iter().filter(|e| e.ev() == "start" && CLUSTER.contains(&e.worker())) {
        starts.entry((e.worker().to_string(), e.at(), e.attempt())).or_default().push(e.replica.clone());
    }
    found.doubled =
        starts.iter().filter(|(_, on)| on.len() > 1).map(|(fire, on)| format!("{fire:?} on {on:?}")).collect();

    let rows = client
        .query(
            &format!(
                "SELECT worker, (extract(epoch FROM scheduled_at) * 1000)::BIGINT, attempts, outcome, \
                 (extract(epoch FROM started_at) * 1000)::BIGINT, coalesce(error, '') \
                 FROM \"{schema}\".fires ORDER BY worker, scheduled_at"
            ),
            &[],
        )
        .await
        .expect("read the fires");
    struct Row {
        worker: String,
        at: i64,
        attempts: i32,
        outcome: String,
        started: Option<i64>,
        error: String,
    }
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            worker: r.get(0),
            at: r.get(1),
            attempts: r.get(2),
            outcome: r.get(3),
            started: r.get(4),
            error: r.get(5),
        })
        .collect();
    found.running = rows.iter().filter(|r| r.outcome == "running").map(|r| format!("{} {}", r.worker, r.at)).collect();
    found.lost_rows = rows.iter().filter(|r| r.outcome == "lost").count();

    // Every attempt that ended (its body returned Ok) has its outcome kept:
    // the fire's row says succeeded, at that attempt or a later one.
    let by_fire: HashMap<(&str, i64), &Row> = rows.iter().map(|r| ((r.worker.as_str(), r.at), r)).collect();
    for e in all.iter().filter(|e| e.ev() == "end" && CLUSTER.contains(&e.worker())) {
        let kept = by_fire.get(&(e.worker(), e.at()));
        let ok = kept.is_some_and(|r| r.outcome == "succeeded" && r.attempts as u64 >= e.attempt());
        if !ok {
            let row = kept.map(|r| format!("{} after {} attempts: {}", r.outcome, r.attempts, r.error));
            found.lost.push(format!("{} {} attempt {} on {}: {row:?}", e.worker(), e.at(), e.attempt(), e.replica));
        }
    }

    // Bodies here end well (Ok): an attempt after such an end means the
    // fire was taken over although it had ended.
    for e in all.iter().filter(|e| e.ev() == "end" && CLUSTER.contains(&e.worker())) {
        let next = all.iter().find(|n| {
            n.ev() == "start" && n.worker() == e.worker() && n.at() == e.at() && n.attempt() == e.attempt() + 1
        });
        if let Some(next) = next {
            found.rerun.push(format!("{} {} attempt {} on {}", e.worker(), e.at(), next.attempt(), next.replica));
        }
    }

    for name in GRID {
        let grid: Vec<&Row> = rows.iter().filter(|r| r.worker == name).collect();
        let (Some(first), Some(last)) = (grid.first(), grid.last()) else {
            found.unaccounted.push(format!("{name} has no row"));
            continue;
        };
        let mut rows = grid.iter().peekable();
        let mut before: Option<&Row> = None;
        for slot in (first.at..=last.at).step_by(1000) {
            found.due += 1;
            while let Some(row) = rows.next_if(|r| r.at < slot) {
                before = Some(row);
            }
            match rows.next_if(|r| r.at == slot) {
                // Merged while its fire waited: the catch-up run stood
                // for it, and the row says which.
                Some(row) if row.outcome == "missed" && row.error.starts_with("merged into the catch-up run") => {
                    found.caught_up += 1;
                    before = Some(row);
                }
                Some(row) if row.outcome == "missed" => {
                    let why: String = row.error.chars().take(60).collect();
                    let why = if why.is_empty() { "no reason given".to_string() } else { why };
                    *found.missed.entry(why).or_default() += 1;
                    before = Some(row);
                }
                Some(row) => {
                    found.run += usize::from(row.started.is_some());
                    before = Some(row);
                }
                // No row of its own: the fire before it started after it was
                // due, as the catch-up run that stood for it.
                None if before.and_then(|b| b.started).is_some_and(|started| started >= slot) => found.caught_up += 1,
                None => found.unaccounted.push(format!("{name} {slot} (before: {:?})", before.map(|b| b.at))),
            }
        }
    }
    found
}

/// Restarts the private server mid-run, down for twice the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_is_survived_by_every_replica() {
    let Some(server) = PrivateServer::start().await else { return };
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let schema = replicas::fresh_schema(&client, "restart_pg").await;
    let store = StoreArg::Postgres { schema: schema.clone(), lease_ms: LEASE_MS, poll_ms: POLL_MS };
    let events = Events::default();
    let began = Instant::now();
    let names = ["p1", "p2", "p3"];
    let mut live = start_all(&server.url(), &names, &store, &events).await;

    // Running: tick has run a few times.
    let ran = events
        .wait_until(Duration::from_secs(20), || {
            events.all().iter().filter(|e| e.worker() == "tick" && e.ev() == "end").count() >= 4
        })
        .await;
    assert!(ran, "tick does not run");

    // The restart: every session terminated, the server down for twice the
    // lease (so that the leases held at the stop lapse), then back. It
    // comes while `manual` (1.2 s) runs, which ends during the outage: its
    // outcome must reach the database once it is back.
    let outage = Duration::from_millis(2 * LEASE_MS);
    let from = events.len();
    live.get_mut("p1").expect("live").send("trigger manual").await;
    let manual = events
        .wait_after(from, Duration::from_secs(5), |e| e.ev() == "start" && e.worker() == "manual")
        .await
        .expect("manual starts");
    let down_ms = now_ms();
    let down_at = Instant::now();
    server.down().await;
    for replica in live.values_mut() {
        sees(replica, down_at, Duration::from_secs(5), "the store is unreachable", |s| {
            s["store"]["reachable"] == false
        })
        .await;
    }
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    let from = events.len();
    let up_ms = now_ms();
    server.up().await;
    let up_at = Instant::now();

    // Every replica reconnects, and Cluster fires run again.
    let mut reconnects = Vec::new();
    for replica in live.values_mut() {
        let limit = Duration::from_secs(15);
        reconnects
            .push(sees(replica, up_at, limit, "the store is reachable", |s| s["store"]["reachable"] == true).await);
    }
    let resumed = events
        .wait_after(from, Duration::from_secs(10), |e| e.ev() == "start" && GRID.contains(&e.worker()))
        .await
        .expect("Cluster workers run again after the restart");
    let resumed = resumed.seen.duration_since(up_at);

    let ended = events
        .wait_for(Duration::from_secs(1), |e| e.ev() == "end" && e.worker() == "manual" && e.at() == manual.at())
        .await;
    assert!(ended.is_some_and(|e| e.t() < up_ms), "manual ended during the outage");

    // Run on for 10 s, then stop every replica gracefully.
    tokio::time::sleep(Duration::from_secs(10)).await;
    for (_, replica) in std::mem::take(&mut live) {
        replica.quit().await;
    }
    assert!(began.elapsed() < BOUND, "the test took {:?}", began.elapsed());
    let all = events.all();

    // The Instance worker ran on every replica throughout, the outage too.
    let gap = instance_worst_gap(&all, &names);
    for name in names {
        let during = all
            .iter()
            .filter(|e| e.replica == name && e.worker() == "local" && e.ev() == "start")
            .filter(|e| e.t() > down_ms + 1000 && e.t() < up_ms)
            .count();
        assert!(during >= 3, "{name} ran the Instance worker {during} times during the outage");
    }
    assert!(gap <= 2000, "the Instance worker stopped for {gap} ms on a replica");
    // No Cluster fire started while the server was down.
    let blind: Vec<&Event> = all
        .iter()
        .filter(|e| e.ev() == "start" && CLUSTER.contains(&e.worker()) && e.t() > down_ms + 1000 && e.t() < up_ms)
        .collect();
    assert!(blind.is_empty(), "Cluster fires started without the database: {blind:?}");

    // The restart ended the test's own session too.
    drop(client);
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls).await.expect("reconnect");
    tokio::spawn(connection);
    let found = audit(&client, &schema, &all).await;
    let worst = reconnects.iter().max().copied().unwrap_or_default();
    println!(
        "{}",
        found.line(
            "PostgreSQL restarted (down 6 s)",
            &format!(
                "worst reconnect {} ms, Cluster runs again {} ms after the restart, Instance worst gap {gap} ms",
                worst.as_millis(),
                resumed.as_millis()
            )
        )
    );
    found.assert_holds();
    // Both policies: the outage's slots of tick (FireOnce) were stood for
    // by a catch-up run, those of skipper (Skip) are missed rows.
    assert!(found.caught_up >= 3, "FireOnce: the outage's slots were caught up: {found:?}");
    assert!(found.missed_total() >= 3, "Skip: the outage's slots are missed rows: {found:?}");
    assert!(worst <= Duration::from_secs(10), "reconnected after {reconnects:?}");
}

/// Every replica through PgBouncer in transaction mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_pgbouncer_in_transaction_mode() {
    let Some(client) = replicas::database().await else { return };
    let Some(bouncer) = Bouncer::start(&replicas::database_url()).await else { return };
    let schema = replicas::fresh_schema(&client, "bouncer").await;
    let store = StoreArg::Postgres { schema: schema.clone(), lease_ms: LEASE_MS, poll_ms: POLL_MS };
    let events = Events::default();
    let began = Instant::now();
    let names = ["b1", "b2", "b3"];
    let mut live = start_all(&bouncer.url(), &names, &store, &events).await;

    // Control on one replica reaches the others by their polls.
    let limit = Duration::from_millis(POLL_MS + 700);
    let mut reach = Vec::new();
    for (on, want, verb) in [("b1", false, "disable ctl"), ("b3", true, "enable ctl")] {
        let reply = live.get_mut(on).expect("live").ask(verb, Duration::from_secs(5)).await;
        assert_eq!(reply["ok"], true, "{reply}");
        let since = Instant::now();
        for other in names.iter().filter(|n| **n != on) {
            let other = live.get_mut(*other).expect("live");
            reach.push(sees(other, since, limit, verb, |s| worker(s, "ctl")["enabled"] == want).await);
        }
    }
    let from = events.len();
    live.get_mut("b2").expect("live").send("trigger manual").await;
    let since = Instant::now();
    for other in ["b1", "b3"] {
        let other = live.get_mut(other).expect("live");
        reach.push(sees(other, since, limit, "manual runs on b2", |s| worker(s, "manual")["running_on"] == "b2").await);
    }
    let reply = events
        .wait_after(from, Duration::from_secs(10), |e| e.ev() == "reply" && e.json["cmd"] == "trigger manual")
        .await
        .expect("the trigger is answered");
    assert_eq!(reply.json["detail"]["outcome"], "succeeded", "{:?}", reply.json);

    // Run for 15 s in all, then stop every replica gracefully.
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(began.elapsed())).await;
    for replica in live.values_mut() {
        let status = replica.status().await;
        assert_eq!(status["store"]["reachable"], true, "{}: {status}", replica.name);
    }
    let logs: Vec<(String, String)> = live.values().map(|r| (r.name.clone(), r.log())).collect();
    for (_, replica) in std::mem::take(&mut live) {
        replica.quit().await;
    }
    assert!(began.elapsed() < BOUND, "the test took {:?}", began.elapsed());
    let all = events.all();
    let gap = instance_worst_gap(&all, &names);
    for (name, log) in &logs {
        assert!(!log.contains("unreachable"), "{name} lost the store behind PgBouncer:\n{log}");
        // Notifications cannot cross the pooler: the replica found out,
        // said so once, and polls.
        assert_eq!(log.matches("LISTEN given up").count(), 1, "{name}:\n{log}");
    }

    let found = audit(&client, &schema, &all).await;
    let worst = reach.iter().max().copied().unwrap_or_default();
    println!(
        "{}",
        found.line(
            "PgBouncer, transaction mode (15 s)",
            &format!(
                "control reached the others in at worst {} ms (poll {POLL_MS} ms), Instance worst gap {gap} ms",
                worst.as_millis()
            )
        )
    );
    found.assert_holds();
    assert!(found.due >= 20, "{found:?}");
    assert!(gap <= 2000, "the Instance worker stopped for {gap} ms on a replica");
    drop(bouncer);
    replicas::drop_schema(&client, &schema).await;
}
