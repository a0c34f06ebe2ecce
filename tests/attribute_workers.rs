//! The SPEC's example, written with `#[worker]`, run end to end on the paused
//! clock: registration through the attribute, `Context` and `State<T>`
//! arguments, a dependency by path, exclusion by name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::{Context, Orchestrator, Priority, State, worker};
use tokio::time::Instant;

/// What the workers did, with the virtual time in seconds.
#[derive(Clone)]
struct Journal {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Journal {
    fn write(&self, what: &str) {
        let at = self.start.elapsed().as_secs();
        self.lines.lock().unwrap().push(format!("{at:>2}s {what}"));
    }
}

#[worker(interval = "10s", timeout = "5s", priority = High)]
async fn fetch_data(ctx: Context, State(journal): State<Journal>) -> anyhow::Result<()> {
    journal.write(&format!("fetch_data attempt {}", ctx.attempt()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

#[worker(interval = "10s", depends_on = fetch_data)]
async fn process_data(journal: State<Journal>) -> anyhow::Result<()> {
    journal.write("process_data");
    Ok(())
}

#[worker(interval = "1h", priority = "Low", blocks = "process_data")]
async fn cleanup(State(journal): State<Journal>) {
    journal.write("cleanup");
    tokio::time::sleep(Duration::from_secs(3)).await;
}

#[test]
fn the_attribute_graph_validates() {
    let Err(error) = orchestrator::validate() else { panic!("State<Journal> is not provided here") };
    assert_eq!(error.problems().len(), 3, "{error}");
    assert!(error.to_string().contains("State<attribute_workers::Journal>"), "{error}");
    Orchestrator::builder().state(journal()).validate().expect("valid with the state");
}

fn journal() -> Journal {
    Journal { start: Instant::now(), lines: Arc::default() }
}

#[tokio::test(start_paused = true)]
async fn dependencies_and_exclusion_hold_for_attribute_workers() {
    let journal = journal();
    let orchestrator = Orchestrator::builder().state(journal.clone()).build().expect("valid");
    let handle = orchestrator.handle();
    let status = handle.status();
    assert_eq!(status.worker("fetch_data").unwrap().priority, Priority::High);
    assert_eq!(status.worker("process_data").unwrap().depends_on, ["fetch_data"]);
    assert_eq!(status.worker("cleanup").unwrap().blocks, ["process_data"]);
    let running = tokio::spawn(orchestrator.run());
    tokio::time::sleep(Duration::from_secs(15)).await;
    handle.shutdown().await;
    running.await.unwrap().unwrap();
    // At 0 s fetch_data and cleanup start together (in whichever order tokio
    // polls them: sorted here); process_data waits for fetch_data's success
    // (2 s) and for cleanup, which blocks it (3 s).
    let mut lines = journal.lines.lock().unwrap().clone();
    lines.sort();
    assert_eq!(
        lines,
        [" 0s cleanup", " 0s fetch_data attempt 1", " 3s process_data", "10s fetch_data attempt 1", "12s process_data"]
    );
}
