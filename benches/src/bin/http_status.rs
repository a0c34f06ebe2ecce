//! The control plane's benchmark row: `GET /api/status` at 10,000 workers,
//! over a real loopback connection, while the workers fire every second.
//!
//! ```sh
//! cargo run --release -p orchestrator-bench --features http --bin http_status [-- workers=10000 requests=50 interval_s=1]
//! ```
//!
//! Reports the request latency (connect to last byte, the JSON body
//! included) and, as the engine-lock hold time seen from outside, how long
//! a probe that takes the lock (`Handle::enable` of an enabled worker: the
//! lock, a no-op, the release) waits, with and without status requests
//! going on. The probe runs every millisecond on its own thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orchestrator::http::{HttpConfig, router};
use orchestrator::{Orchestrator, WorkerSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .filter_map(|a| a.strip_prefix(&format!("{name}=")).and_then(|v| v.parse().ok()))
        .next()
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Probes the lock every millisecond until `stop`; returns the waits.
fn probe(handle: orchestrator::Handle, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut waits = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            handle.enable("w00000").expect("known worker");
            waits.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(1));
        }
        waits.sort();
        waits
    })
}

fn report(label: &str, waits: &[Duration]) {
    println!(
        "{label}: {} probes, wait p50 {} ms, p99 {} ms, max {} ms",
        waits.len(),
        ms(percentile(waits, 0.5)),
        ms(percentile(waits, 0.99)),
        ms(waits.last().copied().unwrap_or_default())
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let workers = arg("workers", 10_000);
    let requests = arg("requests", 50);
    // 1: every worker fires every second (W1's load); 3600: idle workers.
    let interval = Duration::from_secs(arg("interval_s", 1) as u64);
    let specs = (0..workers).map(|i| WorkerSpec::new(format!("w{i:05}"), || async {}).interval(interval));
    let orchestrator = Orchestrator::builder()
        .without_registered_workers()
        .max_concurrent(workers)
        .workers(specs)
        .build()
        .expect("valid graph");
    let handle = orchestrator.handle();
    let app = router(handle.clone(), HttpConfig::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let running = tokio::spawn(orchestrator.run());
    tokio::time::sleep(Duration::from_secs(2)).await; // every worker has fired

    // The lock as the scheduler and handles see it, without status requests.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = probe(handle.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let quiet = quiet.join().expect("probe");

    // Status requests back to back, the probe alongside.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = probe(handle.clone(), stop.clone());
    let mut latencies = Vec::new();
    let mut bytes = 0;
    for _ in 0..requests {
        let t = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /api/status HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.expect("response");
        latencies.push(t.elapsed());
        assert!(body.starts_with(b"HTTP/1.1 200"), "status answered");
        bytes = body.len();
    }
    stop.store(true, Ordering::Relaxed);
    let busy = busy.join().expect("probe");
    latencies.sort();

    println!(
        "GET /api/status, {workers} workers firing every {} s, {requests} requests, {bytes} bytes each",
        interval.as_secs()
    );
    println!(
        "latency: p50 {} ms, p99 {} ms, max {} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    report("lock probe without status requests", &quiet);
    report("lock probe during status requests", &busy);
    let status = handle.status();
    let fires: u64 = status.workers.iter().map(|w| w.runs).sum();
    println!("fires meanwhile: {fires}");

    handle.shutdown().await;
    running.await.expect("driver task").expect("driver");
    let _ = stop_server.send(());
    server.await.expect("server task").expect("server");
}
