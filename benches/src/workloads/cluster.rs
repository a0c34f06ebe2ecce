//! C1: cluster mode. `replicas` processes (this binary re-executed with
//! the hidden `--replica` argument) share one PostgreSQL schema, fresh for
//! the run, each with the same `workers` Cluster workers every `interval`
//! (no-op bodies, the store's default settings: a pool of 4 connections,
//! 30 s leases, a poll every second). The child that runs the case is
//! their coordinator: it picks the measurement window (`run_for`, starting
//! once every replica has had time to start), lets them run past it, and
//! then checks the database.
//!
//! - Every slot of every worker due in the window must have a row: a run
//!   (`succeeded`), or `missed` with its reason. A slot without a row is
//!   **lost**; a slot whose body started on two replicas (or twice on one)
//!   is **doubled**: the replicas report every body start, with its fire's
//!   `scheduled_at`.
//! - Lateness: body start minus the fire's due instant (`Context::due()`),
//!   on the replica's monotonic clock, for the fires due in the window.
//! - Database round trips: each replica's [`PostgresStore::round_trips_by_kind`]
//!   over the window, summed, per slot due in it.
//! - Database time: `pg_stat_user_functions` (the replicas' sessions run
//!   with `track_functions = pl`), the total time of the store's functions
//!   (`claim`, `finish`, `poll`) over the whole run, per row written. The
//!   store's other statements (lease renewals, heartbeats) are plain SQL
//!   and not counted; `pg_stat_statements` would count them but needs
//!   `shared_preload_libraries`, which the machine's server does not set.
//!
//! The in-memory store's figures for the same workers in one process (W1
//! at this size) are the table's "floor" column, from the same run.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::store::PostgresStore;
use orchestrator::{Context, Orchestrator, OrchestratorState, WorkerSpec};
use tokio::time::Instant;

use crate::measure::percentile;
use crate::outcome::Outcome;

/// The database the benchmark uses (the tests' variable and default).
fn database_url() -> String {
    std::env::var("ORCHESTRATOR_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sleeps until the wall clock reads `at_ms` (Unix milliseconds).
async fn sleep_until_ms(at_ms: i64) {
    let wait = at_ms.saturating_sub(unix_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

fn name(w: usize) -> String {
    format!("c1-{w:05}")
}

/// What a replica is told (its command line after `--replica`).
struct ReplicaArgs {
    url: String,
    schema: String,
    instance: String,
    workers: usize,
    interval: Duration,
    window: (i64, i64),
    stop_at: i64,
}

impl ReplicaArgs {
    fn to_args(&self) -> Vec<String> {
        vec![
            self.url.clone(),
            self.schema.clone(),
            self.instance.clone(),
            self.workers.to_string(),
            self.interval.as_millis().to_string(),
            self.window.0.to_string(),
            self.window.1.to_string(),
            self.stop_at.to_string(),
        ]
    }

    fn parse(args: &[String]) -> Result<Self, String> {
        let [url, schema, instance, workers, interval, start, end, stop] = args else {
            return Err("--replica URL SCHEMA INSTANCE WORKERS INTERVAL_MS START_MS END_MS STOP_MS".into());
        };
        let number = |text: &String| text.parse::<i64>().map_err(|_| format!("--replica: not a number: {text}"));
        Ok(ReplicaArgs {
            url: url.clone(),
            schema: schema.clone(),
            instance: instance.clone(),
            workers: number(workers)? as usize,
            interval: Duration::from_millis(number(interval)? as u64),
            window: (number(start)?, number(end)?),
            stop_at: number(stop)?,
        })
    }
}

/// The `--replica` process: one orchestrator on the shared schema until
/// `stop_at`; then it prints, one per line, `ready MS` (when it began
/// scheduling), `fire W SCHEDULED_AT_MS LATENESS_NS` per body start and
/// `trips KIND COUNT` per kind of round trip made in the window.
pub fn replica_main(args: &[String]) -> ExitCode {
    let result = ReplicaArgs::parse(args).and_then(|args| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        let result = runtime.block_on(replica(args));
        // Not waiting for the thread that reads stdin, if it still does.
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    });
    match result {
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(lines.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("C1 replica: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn replica(args: ReplicaArgs) -> Result<String, String> {
    let mut store = PostgresStore::builder(args.url.clone()).schema(args.schema.clone());
    // An experiment's knob (the README's notes): the pool's size.
    if let Some(size) = std::env::var("ORCHESTRATOR_BENCH_C1_POOL").ok().and_then(|s| s.parse().ok()) {
        store = store.pool_size(size);
    }
    let store = store.connect().await.map_err(|e| format!("cannot open the store: {e}"))?;
    // (worker, scheduled_at in Unix ms, lateness in ns) per body start.
    let fires: Arc<Mutex<Vec<(u32, i64, u64)>>> = Arc::new(Mutex::new(Vec::with_capacity(args.workers * 32)));
    let specs: Vec<WorkerSpec> = (0..args.workers)
        .map(|w| {
            let fires = fires.clone();
            WorkerSpec::new(name(w), move |ctx: Context| {
                let late = Instant::now().saturating_duration_since(ctx.due());
                let at = ctx.scheduled_at().timestamp_millis();
                fires.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((
                    w as u32,
                    at,
                    late.as_nanos() as u64,
                ));
                std::future::ready(())
            })
            .interval(args.interval)
        })
        .collect();
    let orchestrator = Orchestrator::builder()
        .without_registered_workers()
        .max_concurrent(args.workers)
        .instance(args.instance.clone())
        .store(store.clone())
        .workers(specs)
        .build()
        .map_err(|e| format!("build failed: {e}"))?;
    let handle = orchestrator.handle();
    let stop_at = args.stop_at;
    // Stopped when the coordinator closes our stdin, at `stop_at` at the latest.
    let stop = async move {
        let stdin = async {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        };
        tokio::select! {
            () = stdin => {}
            () = sleep_until_ms(stop_at) => {}
        }
    };
    let running = tokio::spawn(orchestrator.run_until(stop));
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.status().state != OrchestratorState::Running && !running.is_finished() {
        if Instant::now() > deadline {
            return Err("the orchestrator did not start within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = unix_ms();
    sleep_until_ms(args.window.0).await;
    let before = store.round_trips_by_kind();
    sleep_until_ms(args.window.1).await;
    let after = store.round_trips_by_kind();
    // Bounded: a replica that does not stop fails the case, never hangs it.
    let limit = Duration::from_millis((stop_at - unix_ms()).max(0) as u64) + Duration::from_secs(45);
    let stopped = tokio::time::timeout(limit, running)
        .await
        .map_err(|_| format!("the orchestrator did not stop within {limit:?} of its stop"))?;
    match stopped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("the orchestrator failed: {e}")),
        Err(e) => return Err(format!("the orchestrator's task failed: {e}")),
    }

    let mut lines = format!("ready {ready}\n");
    for ((kind, then), (_, now)) in before.iter().zip(&after) {
        lines.push_str(&format!("trips {kind} {}\n", now - then));
    }
    for (w, at, late) in fires.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        lines.push_str(&format!("fire {w} {at} {late}\n"));
    }
    Ok(lines)
}

/// What one replica printed.
#[derive(Default)]
struct Report {
    ready: i64,
    trips: BTreeMap<String, u64>,
    fires: Vec<(u32, i64, u64)>,
}

impl Report {
    fn parse(text: &str) -> Result<Report, String> {
        let mut report = Report::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("unexpected line from a replica: `{line}`");
            let number = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok()).ok_or_else(bad);
            match words.first() {
                Some(&"ready") => report.ready = number(1)?,
                Some(&"trips") => {
                    let kind = words.get(1).ok_or_else(bad)?;
                    report.trips.insert(kind.to_string(), number(2)? as u64);
                }
                Some(&"fire") => report.fires.push((number(1)? as u32, number(2)?, number(3)? as u64)),
                _ => return Err(bad()),
            }
        }
        Ok(report)
    }
}

/// C1 for orchestrator: `replicas` processes on one PostgreSQL schema.
pub async fn orchestrator(
    replicas: usize,
    workers: usize,
    interval: Duration,
    run_for: Duration,
) -> Result<Outcome, String> {
    let url = database_url();
    let client = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("C1 skipped: PostgreSQL is unreachable ({error}); set ORCHESTRATOR_TEST_DATABASE_URL");
            return Ok(Outcome::default());
        }
        Err(error) => return Err(format!("PostgreSQL is unreachable ({error})")),
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let schema = format!("c1_bench_{}_{}", std::process::id(), nanos % 1_000_000_000);
    let sql = |e: tokio_postgres::Error| format!("PostgreSQL: {e}");
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await.map_err(sql)?;
    let outcome = measure(&client, &url, &schema, replicas, workers, interval, run_for).await;
    if let Err(e) = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await {
        eprintln!("C1: could not drop schema {schema}: {e}");
    }
    outcome
}

async fn measure(
    client: &tokio_postgres::Client,
    url: &str,
    schema: &str,
    replicas: usize,
    workers: usize,
    interval: Duration,
    run_for: Duration,
) -> Result<Outcome, String> {
    let sql = |e: tokio_postgres::Error| format!("PostgreSQL: {e}");
    // Time to start, connect and register; then the window; then time for
    // the window's last fires to end before the replicas stop.
    let setup_ms = 2_000 + 2 * workers as i64;
    let start = unix_ms() + setup_ms;
    let end = start + run_for.as_millis() as i64;
    // The replicas run on until every slot of the window has its row (or
    // this long after the window), so that a late fire is not cut off by
    // the stop: a fire still waiting when the whole cluster stops has no
    // row (it is the downtime's, for the next start to catch up).
    let settle_ms = 30_000;
    let stop_at = end + settle_ms + 5_000;
    let separator = if url.contains('?') { '&' } else { '?' };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to re-run it: {e}"))?;
    let mut children = Vec::new();
    for r in 0..replicas {
        let instance = format!("r{}", r + 1);
        let url = format!("{url}{separator}application_name=c1-{schema}-{instance}&options=-c%20track_functions%3Dpl");
        let args =
            ReplicaArgs { url, schema: schema.to_string(), instance, workers, interval, window: (start, end), stop_at };
        let child = std::process::Command::new(&exe)
            .arg("--replica")
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start a replica: {e}"))?;
        children.push(child);
    }
    sleep_until_ms(end).await;
    let expected_rows = format!(
        "SELECT count(*) FROM \"{schema}\".fires f JOIN \"{schema}\".workers w ON w.name = f.worker \
         WHERE f.scheduled_at >= to_timestamp($1::BIGINT / 1000.0) AND f.scheduled_at < to_timestamp($2::BIGINT / 1000.0)"
    );
    let slots = (run_for.as_millis() / interval.as_millis().max(1)) as i64 * workers as i64;
    let settled = unix_ms() + settle_ms;
    let mut recorded = 0;
    while unix_ms() < settled {
        recorded = client.query_one(&expected_rows, &[&start, &end]).await.map_err(sql)?.get::<_, i64>(0);
        if recorded >= slots {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = unix_ms() - end;
    eprintln!("C1: {recorded} of {slots} slots had their row {waited} ms after the window; stopping the replicas");
    for child in &mut children {
        drop(child.stdin.take());
    }
    // Waited for on threads: each prints only once it stops.
    let waits: Vec<_> =
        children.into_iter().map(|child| tokio::task::spawn_blocking(|| child.wait_with_output())).collect();
    let mut reports = Vec::new();
    for (r, wait) in waits.into_iter().enumerate() {
        let output = wait.await.map_err(|e| format!("replica r{}: {e}", r + 1))?;
        let output = output.map_err(|e| format!("replica r{}: {e}", r + 1))?;
        if !output.status.success() {
            return Err(format!("replica r{} exited with {}", r + 1, output.status));
        }
        reports.push(Report::parse(&String::from_utf8_lossy(&output.stdout))?);
    }

    let mut outcome = Outcome::default();
    outcome.metric("rows_settled_after_window_ms", waited as f64);
    let late_starts = reports.iter().filter(|r| r.ready > start).count();
    outcome.check(
        "replicas_ready_before_the_window",
        late_starts == 0,
        format!("{late_starts} of {replicas} replicas began scheduling after the window opened"),
    );

    // The slots due in the window, from each worker's stored anchor.
    let anchors = client
        .query(&format!("SELECT name, (extract(epoch FROM anchor) * 1000)::BIGINT FROM \"{schema}\".workers"), &[])
        .await
        .map_err(sql)?;
    let step = interval.as_millis() as i64;
    let mut due: HashMap<(String, i64), Vec<String>> = HashMap::new();
    for row in &anchors {
        let (worker, anchor): (String, i64) = (row.get(0), row.get(1));
        let first = anchor + (start - anchor).max(0).div_euclid(step) * step;
        let first = if first < start { first + step } else { first };
        for at in (first..end).step_by(step as usize) {
            due.insert((worker.clone(), at), Vec::new());
        }
    }
    let expected = due.len();
    let rows = client
        .query(
            &format!(
                "SELECT worker, (extract(epoch FROM scheduled_at) * 1000)::BIGINT, outcome, coalesce(error, '') \
                 FROM \"{schema}\".fires WHERE scheduled_at >= to_timestamp($1::BIGINT / 1000.0) \
                 AND scheduled_at < to_timestamp($2::BIGINT / 1000.0)"
            ),
            &[&start, &end],
        )
        .await
        .map_err(sql)?;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut off_grid = 0;
    for row in &rows {
        let (worker, at, kind, error): (String, i64, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
        match due.get_mut(&(worker, at)) {
            Some(seen) => seen.push(kind.clone()),
            None => off_grid += 1,
        }
        // The reason without its timestamp, to group by.
        let reason = error.split(" of 20").next().unwrap_or_default().to_string();
        *outcomes.entry(if reason.is_empty() { kind } else { format!("{kind} ({reason})") }).or_default() += 1;
    }
    let lost = due.values().filter(|rows| rows.is_empty()).count();
    let mut lost_at: Vec<i64> =
        due.iter().filter(|(_, rows)| rows.is_empty()).map(|((_, at), _)| (at - start) / 1000).collect();
    lost_at.sort_unstable();
    lost_at.dedup();
    if lost > 0 {
        eprintln!("C1: slots without a row, seconds into the window: {lost_at:?}");
    }
    let ran = rows.iter().filter(|r| r.get::<_, String>(2) == "succeeded").count();
    let missed = rows.iter().filter(|r| r.get::<_, String>(2) == "missed").count();
    let other: Vec<String> = outcomes
        .iter()
        .filter(|(kind, _)| *kind != "succeeded" && !kind.starts_with("missed"))
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    for (kind, n) in &outcomes {
        eprintln!("C1 rows in the window: {n} {kind}");
    }

    // Body starts: the window's fires, once each across the replicas.
    let mut starts: HashMap<(u32, i64), usize> = HashMap::new();
    let mut lateness = Vec::new();
    for report in &reports {
        for &(w, at, late) in &report.fires {
            if (start..end).contains(&at) {
                *starts.entry((w, at)).or_default() += 1;
                lateness.push(late);
            }
        }
    }
    let doubled = starts.values().filter(|&&n| n > 1).count();
    lateness.sort_unstable();
    let ms = |p: f64| percentile(&lateness, p).map_or(f64::NAN, |ns| ns as f64 / 1e6);

    let window_s = run_for.as_secs_f64();
    outcome.metric("fires_expected", expected as f64);
    outcome.metric("fires_run", ran as f64);
    outcome.metric("fires_per_s", ran as f64 / window_s);
    outcome.metric("fires_missed", missed as f64);
    outcome.metric("fires_lost", lost as f64);
    outcome.metric("fires_doubled", doubled as f64);
    outcome.metric("lateness_p50_ms", ms(0.5));
    outcome.metric("lateness_p99_ms", ms(0.99));
    outcome.metric("lateness_max_ms", ms(1.0));
    outcome.check("no_fire_lost", lost == 0, format!("{lost} of {expected} slots due in the window have no row"));
    outcome.check("no_fire_doubled", doubled == 0, format!("{doubled} fires started more than once"));
    outcome.check(
        "every_row_ran_or_was_missed",
        other.is_empty() && off_grid == 0,
        format!("other rows: {}; {off_grid} rows off the grid", other.join(", ")),
    );

    let mut trips: BTreeMap<&str, u64> = BTreeMap::new();
    for report in &reports {
        for (kind, n) in &report.trips {
            *trips.entry(kind).or_default() += n;
        }
    }
    let per_fire = |n: u64| n as f64 / expected.max(1) as f64;
    let all: u64 = trips.values().sum();
    let claim = trips.get("claim").copied().unwrap_or(0);
    let write = trips.get("write").copied().unwrap_or(0);
    outcome.metric("round_trips_per_fire", per_fire(all));
    outcome.metric("claim_round_trips_per_fire", per_fire(claim));
    outcome.metric("write_round_trips_per_fire", per_fire(write));
    outcome.metric("other_round_trips_per_fire", per_fire(all - claim - write));
    eprintln!("C1 round trips in the window, all replicas: {trips:?} for {expected} slots");

    // Database time: the replicas have closed their sessions, which
    // flushes their function statistics.
    let functions = client
        .query("SELECT funcname, calls, total_time FROM pg_stat_user_functions WHERE schemaname = $1", &[&schema])
        .await
        .map_err(sql)?;
    let recorded: i64 =
        client.query_one(&format!("SELECT count(*) FROM \"{schema}\".fires"), &[]).await.map_err(sql)?.get(0);
    let mut db_ms = 0.0;
    for row in &functions {
        let (function, calls, total): (String, i64, f64) = (row.get(0), row.get(1), row.get(2));
        eprintln!("C1 database time: {function}: {calls} calls, {total:.0} ms");
        db_ms += total;
        if function == "claim" && calls > 0 {
            outcome.metric("db_ms_per_claim", total / calls as f64);
        }
    }
    if !functions.is_empty() {
        outcome.metric("db_ms_per_fire", db_ms / recorded.max(1) as f64);
    }
    Ok(outcome)
}
