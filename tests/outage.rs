//! The database going away, for real: an orchestrator in cluster mode
//! reaches PostgreSQL through a TCP proxy that the test cuts (every
//! connection dropped, new ones refused) and restores. What must hold:
//! - nothing crashes; status says the store is unreachable, and since when;
//! - the Instance worker keeps running through the outage;
//! - the Cluster worker stops claiming, and runs again after reconnection;
//! - what happened meanwhile reaches the database once it is back.

mod replicas;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orchestrator::store::PostgresStore;
use orchestrator::{Orchestrator, Scope, WorkerSpec};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections to PostgreSQL while `open` is true; cutting it
/// drops every connection and refuses new ones.
struct Proxy {
    port: u16,
    open: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (open, watching) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue; // refused: dropped at once
                }
                let target = target.clone();
                let mut cut = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Proxy { port, open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

fn counting(name: &'static str, count: &Arc<AtomicUsize>) -> WorkerSpec {
    let count = count.clone();
    WorkerSpec::new(name, move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .interval(Duration::from_millis(250))
}

async fn until(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_pauses_cluster_workers_only_and_loses_nothing() {
    let Some(client) = replicas::database().await else { return };
    let schema = replicas::fresh_schema(&client, "outage").await;
    let config: tokio_postgres::Config = replicas::database_url().parse().expect("a PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    let mut url = format!("host=127.0.0.1 port={} user={}", proxy.port, config.get_user().unwrap_or("postgres"));
    if let Some(db) = config.get_dbname() {
        url.push_str(&format!(" dbname={db}"));
    }

    let store = PostgresStore::builder(&url)
        .schema(&schema)
        .lease_ttl(Duration::from_secs(3))
        .poll_interval(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects through the proxy");
    let shared = Arc::new(AtomicUsize::new(0));
    let local = Arc::new(AtomicUsize::new(0));
    let orchestrator = Orchestrator::builder()
        .without_registered_workers()
        .store(store)
        .instance("solo")
        .worker(counting("shared", &shared))
        .worker(counting("local", &local).scope(Scope::Instance))
        .build()
        .expect("valid");
    let handle = orchestrator.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(orchestrator.run_until(async move {
        let _ = stopped.await;
    }));

    until(Duration::from_secs(10), "shared runs", || shared.load(Ordering::SeqCst) >= 4).await;
    assert!(handle.status().store.reachable);

    // The outage.
    let cut_at = chrono::Utc::now();
    proxy.cut();
    until(Duration::from_secs(5), "status says unreachable", || !handle.status().store.reachable).await;
    let status = handle.status();
    let since = status.store.unreachable_since.expect("since when");
    assert!(since >= cut_at - chrono::Duration::milliseconds(1), "{since} before the cut at {cut_at}");
    assert!(status.store.error.is_some());
    let (shared_before, local_before) = (shared.load(Ordering::SeqCst), local.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during_shared = shared.load(Ordering::SeqCst) - shared_before;
    let during_local = local.load(Ordering::SeqCst) - local_before;
    assert!(during_local >= 6, "the Instance worker ran {during_local} times in 2 s of outage");
    assert_eq!(during_shared, 0, "the Cluster worker ran without a claim");
    assert!(!handle.status().store.reachable);
    let restored_at = chrono::Utc::now();
    proxy.restore();

    // Back: reachable again, claiming again.
    until(Duration::from_secs(10), "status says reachable", || handle.status().store.reachable).await;
    let back = shared.load(Ordering::SeqCst);
    until(Duration::from_secs(10), "shared runs again", || shared.load(Ordering::SeqCst) >= back + 3).await;
    let _ = stop.send(());
    running.await.expect("joined").expect("stopped cleanly");

    // The database has the outage's local runs, written after reconnection;
    // no Cluster fire due during the outage ran, except one catch-up
    // (misfire = FireOnce) after it, the others recorded missed as merged
    // into it; nothing is left running.
    let count = |sql: String| {
        let client = &client;
        async move {
            let window: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&cut_at, &restored_at];
            let params = if sql.contains("$1") { &window[..] } else { &[] };
            client.query_one(&sql, params).await.expect("query").get::<_, i64>(0)
        }
    };
    let fires = format!("\"{schema}\".fires");
    let local_rows = count(format!(
        "SELECT count(*) FROM {fires} WHERE worker = 'local' AND scheduled_at > $1 AND scheduled_at < $2"
    ))
    .await;
    assert!(local_rows >= 6, "{local_rows} rows of the Instance worker's runs during the outage");
    let shared_rows = count(format!(
        "SELECT count(*) FROM {fires} WHERE worker = 'shared' AND scheduled_at > $1::timestamptz + interval '1 second' \
         AND scheduled_at < $2 AND outcome <> 'missed'"
    ))
    .await;
    assert!(shared_rows <= 1, "{shared_rows} Cluster fires due during the outage ran (one catch-up at most)");
    // The others merged into that catch-up run, and their rows say so.
    let unexplained = count(format!(
        "SELECT count(*) FROM {fires} WHERE worker = 'shared' AND outcome = 'missed' \
         AND coalesce(error, '') NOT LIKE 'merged into the catch-up run of %'"
    ))
    .await;
    assert_eq!(unexplained, 0, "missed rows without the reason");
    let running_rows = count(format!("SELECT count(*) FROM {fires} WHERE outcome = 'running'")).await;
    assert_eq!(running_rows, 0, "fires left running");
    replicas::drop_schema(&client, &schema).await;
}
