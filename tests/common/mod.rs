//! Helpers shared by the integration tests: a log of what workers did, on
//! tokio's (paused) clock, and an orchestrator running in the background.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::{Handle, Orchestrator, OrchestratorBuilder, WorkerSpec};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Records `(what, when)` pairs, `when` in milliseconds since the log was made.
#[derive(Clone)]
pub struct Log {
    start: Instant,
    entries: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Log {
    pub fn new() -> Self {
        Log { start: Instant::now(), entries: Arc::default() }
    }

    pub fn mark(&self, what: impl Into<String>) {
        let at = self.start.elapsed().as_millis() as u64;
        self.entries.lock().unwrap().push((what.into(), at));
    }

    /// Milliseconds at which `what` was marked.
    pub fn times(&self, what: &str) -> Vec<u64> {
        self.entries.lock().unwrap().iter().filter(|(w, _)| w == what).map(|(_, t)| *t).collect()
    }

    /// Everything marked, in order.
    pub fn events(&self) -> Vec<String> {
        self.entries.lock().unwrap().iter().map(|(w, _)| w.clone()).collect()
    }
}

/// A builder without the binary's `#[worker]` functions.
pub fn builder() -> OrchestratorBuilder {
    Orchestrator::builder().without_registered_workers().seed(7)
}

/// Builds and spawns the orchestrator; returns its handle and task.
pub fn start(builder: OrchestratorBuilder) -> (Handle, JoinHandle<Result<(), orchestrator::Error>>) {
    let orchestrator = match builder.build() {
        Ok(o) => o,
        Err(e) => panic!("invalid test graph: {e}"),
    };
    let handle = orchestrator.handle();
    (handle, tokio::spawn(orchestrator.run()))
}

/// Lets virtual time pass.
pub async fn wait(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Shuts down and checks the driver ended cleanly.
pub async fn stop(handle: Handle, task: JoinHandle<Result<(), orchestrator::Error>>) {
    handle.shutdown().await;
    task.await.expect("driver task").expect("driver result");
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A worker that marks its start in `log` and then works for `work_ms`.
pub fn marking(name: &'static str, log: &Log, work_ms: u64) -> WorkerSpec {
    let log = log.clone();
    WorkerSpec::new(name, move || {
        let log = log.clone();
        async move {
            log.mark(name);
            wait(work_ms).await;
        }
    })
}

/// Sets its flag when dropped: proves that a cancelled future was dropped.
pub struct DropFlag(pub Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
