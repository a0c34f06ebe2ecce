//! One replica of an orchestrator cluster, for the multi-process tests
//! (`tests/cluster.rs`, `tests/restart.rs`, `tests/faults_server.rs`): a real process on a real
//! store, which the tests start, stop, kill and restart.
//!
//! ```text
//! orchestrator-replica --store postgres --url URL --schema S --instance r1 --scenario cluster
//! orchestrator-replica --store sqlite --path FILE --instance solo --scenario restart
//!   [--lease-ms 3000] [--poll-ms 300] [--max-seconds 120]
//! ```
//!
//! It prints one JSON object per line on stdout:
//! - `{"ev":"ready","instance":...}` once the orchestrator runs;
//! - `{"ev":"start"|"end","worker":...,"at":MS,"attempt":N,"t":MS}` when a
//!   worker body starts or returns (`at`: the fire's `scheduled_at`, `t`:
//!   this process's wall clock, both in Unix milliseconds);
//! - `{"ev":"cancelled",...}` (the same fields) when a body is dropped
//!   before its end (shutdown, a lost lease);
//! - `{"ev":"reply","cmd":...,"ok":bool,"detail":...}` per command.
//!
//! It reads commands from stdin, one per line: `trigger W` (answers with
//! the run's outcome), `enable W`, `disable W`, `status` (the status as
//! JSON) and `quit` (graceful shutdown). End of input shuts it down too,
//! so a replica never outlives the test that started it; `--max-seconds`
//! bounds it in any case.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use orchestrator::store::{PostgresStore, SqliteStore};
use orchestrator::{Context, Misfire, Mode, Orchestrator, Scope, WorkerSpec};
use tokio::io::{AsyncBufReadExt, BufReader};

type Outcome = Result<(), String>;

fn main() -> std::process::ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("orchestrator-replica: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("orchestrator-replica: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(replica(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orchestrator-replica: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(key) = args.next() {
            let key = key.strip_prefix("--").ok_or_else(|| format!("expected --key, got {key}"))?.to_string();
            let value = args.next().ok_or_else(|| format!("--{key} needs a value"))?;
            values.insert(key, value);
        }
        Ok(Args { values })
    }

    fn get(&self, key: &str) -> Result<&str, String> {
        self.values.get(key).map(String::as_str).ok_or_else(|| format!("--{key} is required"))
    }

    fn millis(&self, key: &str, default: u64) -> Result<Duration, String> {
        match self.values.get(key) {
            None => Ok(Duration::from_millis(default)),
            Some(text) => text.parse().map(Duration::from_millis).map_err(|_| format!("--{key}: not a number: {text}")),
        }
    }
}

/// Prints one event line; stdout is shared by every task.
fn emit(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn millis_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A worker body that reports its start and end, works for `work`, and
/// ends with `outcome`.
fn body(work: Duration, fail: bool) -> impl Fn(Context) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>> {
    move |ctx: Context| {
        Box::pin(async move {
            let event = |ev: &str| {
                serde_json::json!({
                    "ev": ev, "worker": ctx.name(), "at": ctx.scheduled_at().timestamp_millis(),
                    "attempt": ctx.attempt(), "t": millis_now(),
                })
            };
            emit(event("start"));
            // Dropped before its end (cancelled: shutdown, a lost lease):
            // says so, so that a test knows when the run stopped.
            let mut unfinished = Unfinished(Some(event("cancelled")));
            tokio::time::sleep(work).await;
            unfinished.0 = None;
            emit(event("end"));
            if fail { Err("failing on purpose".to_string()) } else { Ok(()) }
        })
    }
}

/// Emits its event when dropped, unless taken.
struct Unfinished(Option<serde_json::Value>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(event) = self.0.take() {
            let mut event = event;
            event["t"] = millis_now().into();
            emit(event);
        }
    }
}

fn spec(name: &'static str, every: Duration, work: Duration, fail: bool) -> WorkerSpec {
    WorkerSpec::new(name, body(work, fail)).interval(every)
}

/// The workers of a scenario.
fn workers(scenario: &str) -> Result<Vec<WorkerSpec>, String> {
    let ms = Duration::from_millis;
    let s = Duration::from_secs;
    Ok(match scenario {
        // Cluster mode: a 1 s worker; a long one with a retry, for
        // takeover; two that block each other and would overlap; a
        // dependency pair; a triggered one; one that runs on every
        // replica; and one to enable and disable.
        "cluster" => vec![
            spec("tick", s(1), ms(150), false),
            spec("long", s(4), ms(2500), false).retries(1).backoff(ms(100)),
            spec("left", s(1), ms(400), false).blocks("right"),
            spec("right", s(1), ms(400), false),
            spec("up", s(1), ms(200), false),
            spec("down", s(2), ms(200), false).depends_on("up"),
            WorkerSpec::new("manual", body(ms(1200), false)).mode(Mode::Triggered),
            spec("local", s(1), ms(50), false).scope(Scope::Instance),
            spec("ctl", s(1), ms(50), false),
        ],
        // Under faults (tests/faults.rs): 1 s Cluster workers, one with a
        // retry and long enough runs for a kill to land mid-run, two that
        // block each other, a triggered one, and an Instance worker.
        "faults" => vec![
            spec("tick", s(1), ms(150), false),
            spec("slow", s(1), ms(400), false).retries(1).backoff(ms(100)),
            spec("left", s(1), ms(400), false).blocks("right"),
            spec("right", s(1), ms(400), false),
            WorkerSpec::new("manual", body(ms(200), false)).mode(Mode::Triggered),
            spec("local", s(1), ms(50), false).scope(Scope::Instance),
        ],
        // The server restarted or behind a pooler (tests/faults_server.rs):
        // 1 s Cluster workers with each misfire policy, one to enable and
        // disable, a triggered one with a retry, and an Instance worker.
        "server" => vec![
            spec("tick", s(1), ms(150), false),
            spec("skipper", s(1), ms(150), false).misfire(Misfire::Skip),
            spec("ctl", s(1), ms(50), false),
            WorkerSpec::new("manual", body(ms(1200), false)).mode(Mode::Triggered).retries(1),
            spec("local", s(1), ms(50), false).scope(Scope::Instance),
        ],
        // One instance restarted: catch-up, missed slots, a failure count
        // that continues, a worker disabled at run time.
        "restart" => vec![
            spec("steady", s(1), ms(100), false),
            spec("skipper", s(1), ms(100), false).misfire(Misfire::Skip),
            spec("flaky", s(1), ms(50), true).max_consecutive_failures(1000),
            spec("paused", s(1), ms(50), false),
        ],
        other => return Err(format!("unknown scenario {other}")),
    })
}

async fn replica(args: Args) -> Result<(), String> {
    let instance = args.get("instance")?.to_string();
    let lease = args.millis("lease-ms", 3000)?;
    let poll = args.millis("poll-ms", 300)?;
    let max = Duration::from_secs(args.millis("max-seconds", 120)?.as_millis() as u64);
    let mut builder = Orchestrator::builder()
        .without_registered_workers()
        .workers(workers(args.get("scenario")?)?)
        .instance(instance.clone())
        .shutdown_timeout(Duration::from_secs(5));
    builder = match args.get("store")? {
        "postgres" => builder.store(
            PostgresStore::builder(args.get("url")?)
                .schema(args.get("schema")?)
                .lease_ttl(lease)
                .poll_interval(poll)
                .connect()
                .await
                .map_err(|e| e.to_string())?,
        ),
        "sqlite" => builder.store(SqliteStore::open(args.get("path")?).await.map_err(|e| e.to_string())?),
        other => return Err(format!("unknown store {other}")),
    };
    let orchestrator = builder.build().map_err(|e| e.to_string())?;
    let handle = orchestrator.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(orchestrator.run_until(async move {
        let _ = stopped.await;
    }));

    // Ready once the orchestrator has started (its store opened).
    while handle.status().state != orchestrator::OrchestratorState::Running && !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emit(serde_json::json!({"ev": "ready", "instance": instance}));

    let commands = async {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let (verb, name) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            let reply = |ok: bool, detail: serde_json::Value| {
                emit(serde_json::json!({"ev": "reply", "cmd": line.trim(), "ok": ok, "detail": detail}))
            };
            match verb {
                "quit" => break,
                "trigger" => {
                    let handle = handle.clone();
                    let line = line.trim().to_string();
                    let name = name.to_string();
                    tokio::spawn(async move {
                        let answer = handle.trigger(&name).await;
                        let (ok, detail) = match answer {
                            Ok(outcome) => (true, serde_json::to_value(&outcome).unwrap_or_default()),
                            Err(error) => (false, error.to_string().into()),
                        };
                        emit(serde_json::json!({"ev": "reply", "cmd": line, "ok": ok, "detail": detail}));
                    });
                }
                "enable" => match handle.enable(name) {
                    Ok(()) => reply(true, serde_json::Value::Null),
                    Err(error) => reply(false, error.to_string().into()),
                },
                "disable" => match handle.disable(name) {
                    Ok(()) => reply(true, serde_json::Value::Null),
                    Err(error) => reply(false, error.to_string().into()),
                },
                "status" => reply(true, serde_json::to_value(handle.status()).unwrap_or_default()),
                "" => {}
                other => reply(false, format!("unknown command {other}").into()),
            }
        }
    };
    tokio::select! {
        () = commands => {}
        () = tokio::time::sleep(max) => eprintln!("orchestrator-replica: --max-seconds reached"),
    }
    let _ = stop.send(());
    let result = running.await.map_err(|e| e.to_string())?;
    emit(serde_json::json!({"ev": "stopped", "instance": instance}));
    result.map_err(|e| e.to_string())
}
