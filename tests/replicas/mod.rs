//! Runs replicas of an orchestrator as real processes (the
//! `orchestrator-replica` binary, `tests/bin/replica.rs`) and collects
//! what they print, for the multi-process tests.
//!
//! Every replica's stdout events land in one shared log, stamped with the
//! replica's name; its stderr (the orchestrator's own log) goes to a file
//! that a failing test prints. Every wait is bounded.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL.
pub fn database_url() -> String {
    std::env::var("ORCHESTRATOR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A client on the test database, or `None` (after saying so) when it
/// cannot be reached outside CI; under `CI=true` an unreachable database
/// fails the test.
pub async fn database() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(error) => {
            let message = format!("PostgreSQL is unreachable ({error})");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}; set ORCHESTRATOR_TEST_DATABASE_URL");
            eprintln!("skipped: {message}; set ORCHESTRATOR_TEST_DATABASE_URL to run the multi-process tests");
            None
        }
    }
}

/// A schema name no other test uses; dropped first if a previous run left it.
pub async fn fresh_schema(client: &tokio_postgres::Client, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let schema = format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000);
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await.expect("drop schema");
    schema
}

/// Drops a test's schema (cleanup: a failure is printed, not fatal).
pub async fn drop_schema(client: &tokio_postgres::Client, schema: &str) {
    if let Err(error) = client.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await {
        eprintln!("could not drop schema {schema}: {error:?}");
    }
}

/// One line a replica printed.
#[derive(Debug, Clone)]
pub struct Event {
    /// The replica that printed it.
    pub replica: String,
    /// When the test read it.
    pub seen: Instant,
    pub json: Value,
}

impl Event {
    pub fn ev(&self) -> &str {
        self.json["ev"].as_str().unwrap_or_default()
    }
    pub fn worker(&self) -> &str {
        self.json["worker"].as_str().unwrap_or_default()
    }
    /// The fire's `scheduled_at`, in Unix milliseconds.
    pub fn at(&self) -> i64 {
        self.json["at"].as_i64().unwrap_or_default()
    }
    pub fn attempt(&self) -> u64 {
        self.json["attempt"].as_u64().unwrap_or_default()
    }
    /// The replica's wall clock when it printed the line, in Unix milliseconds.
    pub fn t(&self) -> i64 {
        self.json["t"].as_i64().unwrap_or_default()
    }
}

/// What every replica printed, in the order read.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Waits up to `limit` for an event matching `pred`; the first one.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let end = Instant::now() + limit;
        loop {
            if let Some(found) = self.0.lock().unwrap().iter().find(|e| pred(e)) {
                return Some(found.clone());
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `limit` until `cond` holds (it may read the log).
    pub async fn wait_until(&self, limit: Duration, cond: impl Fn() -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many events so far (to wait for one after a point).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits up to `limit` for an event after the first `from` matching `pred`.
    pub async fn wait_after(&self, from: usize, limit: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let end = Instant::now() + limit;
        loop {
            if let Some(found) = self.0.lock().unwrap()[from..].iter().find(|e| pred(e)) {
                return Some(found.clone());
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The environment that runs a replica with its wall clock `offset` off
/// (libfaketime, `+5m` or `-5m`), or `None` when libfaketime is not
/// installed (Debian package `faketime`). The monotonic clock stays real,
/// as a skewed host's would.
pub fn faked_clock(offset: &str) -> Option<Vec<(String, String)>> {
    let library = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())?;
    Some(vec![
        ("LD_PRELOAD".into(), library.into()),
        ("FAKETIME".into(), offset.into()),
        ("DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}

/// One run attempt, from what its replica printed: the replica, the fire's
/// `scheduled_at`, and when the attempt started and ended (ms).
pub type Span = (String, i64, i64, i64);

/// Every attempt of `worker`, timed by `real` (an event's `t`, less its
/// replica's clock skew if any). An attempt that printed neither an end
/// nor a cancellation (its replica was killed or stopped) ends at
/// `cut(replica)`.
pub fn spans(all: &[Event], worker: &str, real: impl Fn(&Event) -> i64, cut: impl Fn(&str) -> i64) -> Vec<Span> {
    let mut open: HashMap<(String, i64, u64), i64> = HashMap::new();
    let mut out = Vec::new();
    for e in all.iter().filter(|e| e.worker() == worker) {
        let key = (e.replica.clone(), e.at(), e.attempt());
        match e.ev() {
            "start" => {
                open.insert(key, real(e));
            }
            "end" | "cancelled" => {
                if let Some(start) = open.remove(&key) {
                    out.push((key.0, key.1, start, real(e)));
                }
            }
            _ => {}
        }
    }
    out.extend(open.into_iter().map(|((replica, at, _), start)| {
        let end = cut(&replica);
        (replica, at, start, end)
    }));
    out
}

/// Asserts that no span of `a` overlaps one of `b`.
pub fn never_overlap(a: &[Span], b: &[Span], what: &str) {
    for x in a {
        for y in b {
            assert!(x.3 <= y.2 || y.3 <= x.2, "{what}: {x:?} overlaps {y:?}");
        }
    }
}

/// How a replica keeps its state.
#[derive(Clone, Debug)]
pub enum StoreArg {
    Postgres { schema: String, lease_ms: u64, poll_ms: u64 },
    Sqlite { path: PathBuf },
}

/// A running replica process.
pub struct Replica {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub stderr: PathBuf,
    events: Events,
}

impl Replica {
    /// Starts a replica of `scenario` and waits (up to 30 s) until it runs.
    pub async fn start(name: &str, store: &StoreArg, scenario: &str, events: &Events) -> Replica {
        Replica::start_with(name, store, scenario, events, &[]).await
    }

    /// The same, with extra environment variables (such as libfaketime's
    /// `LD_PRELOAD` and `FAKETIME`: see [`faked_clock`]). Its database
    /// connections carry the application name `orch-{schema}-{name}`, for a
    /// test that terminates them.
    pub async fn start_with(
        name: &str,
        store: &StoreArg,
        scenario: &str,
        events: &Events,
        env: &[(String, String)],
    ) -> Replica {
        Replica::start_on(&database_url(), name, store, scenario, events, env).await
    }

    /// The same, on the PostgreSQL at `url` (a private server, a pooler)
    /// instead of the test database (`StoreArg::Postgres` only).
    pub async fn start_on(
        url: &str,
        name: &str,
        store: &StoreArg,
        scenario: &str,
        events: &Events,
        env: &[(String, String)],
    ) -> Replica {
        // Numbered: tests running at once in one process reuse names.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = std::env::temp_dir().join(format!("orchestrator-replica-{}-{n}-{name}.log", std::process::id()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_orchestrator-replica"));
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command.args(["--instance", name, "--scenario", scenario, "--max-seconds", "900"]);
        match store {
            StoreArg::Postgres { schema, lease_ms, poll_ms } => {
                let separator = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{separator}application_name=orch-{schema}-{name}");
                command.args(["--store", "postgres", "--url", &url, "--schema", schema]);
                command.args(["--lease-ms", &lease_ms.to_string(), "--poll-ms", &poll_ms.to_string()]);
            }
            StoreArg::Sqlite { path } => {
                command.args(["--store", "sqlite", "--path"]).arg(path);
            }
        }
        command
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("replica log file"))
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start orchestrator-replica");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let log = events.clone();
        let replica = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(json) = serde_json::from_str::<Value>(&line) {
                    let event = Event { replica: replica.clone(), seen: Instant::now(), json };
                    log.0.lock().unwrap().push(event);
                }
            }
        });
        let me = Replica { name: name.to_string(), child, stdin, stderr, events: events.clone() };
        let ready = events.wait_for(Duration::from_secs(30), |e| e.replica == name && e.ev() == "ready").await;
        assert!(ready.is_some(), "replica {name} did not start:\n{}", me.log());
        me
    }

    /// Its orchestrator log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a command line.
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("replica's stdin is open");
        stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write to replica");
        stdin.flush().await.expect("flush to replica");
    }

    /// Sends a command and waits (up to `limit`) for its reply.
    pub async fn ask(&mut self, line: &str, limit: Duration) -> Value {
        let from = self.events.len();
        self.send(line).await;
        let name = self.name.clone();
        let reply = self
            .events
            .wait_after(from, limit, |e| e.replica == name && e.ev() == "reply" && e.json["cmd"] == line)
            .await;
        reply.unwrap_or_else(|| panic!("{name} did not answer {line:?} within {limit:?}")).json
    }

    /// The replica's status, as JSON.
    pub async fn status(&mut self) -> Value {
        self.ask("status", Duration::from_secs(5)).await["detail"].clone()
    }

    /// SIGKILL: it dies at once, leases held, nothing written.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill replica");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// Sends a signal (`STOP`, `CONT`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("replica still running");
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
    }

    /// Graceful stop; waits up to 20 s for the process to exit.
    pub async fn quit(mut self) {
        if self.stdin.is_some() {
            self.send("quit").await;
            self.stdin = None;
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "replica {} exited with {status}:\n{}", self.name, self.log()),
            Ok(Err(error)) => panic!("replica {}: {error}", self.name),
            Err(_) => panic!("replica {} did not stop within 20 s:\n{}", self.name, self.log()),
        }
    }
}
