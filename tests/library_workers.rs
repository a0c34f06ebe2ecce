//! Workers defined in a library crate run in a binary that references it.
//! Nothing but the `use ... as _;` below refers to the crate, so this also
//! shows that line is enough.

use orchestrator::{Orchestrator, RunOutcome};
// The one line a binary needs for a library's workers to be linked in.
use orchestrator_test_workers as _;

#[test]
fn the_library_workers_are_registered_and_validate() {
    orchestrator::validate().expect("the library's graph is valid");
}

#[tokio::test(start_paused = true)]
async fn the_library_workers_run_with_their_dependencies() {
    let orchestrator = Orchestrator::builder().build().expect("valid");
    let handle = orchestrator.handle();
    let names: Vec<String> = handle.status().workers.into_iter().map(|w| w.name).collect();
    assert_eq!(names, ["ingest", "lib-report"]);
    assert_eq!(handle.status().worker("lib-report").unwrap().depends_on, ["ingest"]);
    let running = tokio::spawn(orchestrator.run());
    // `ingest` fires at start; its Triggered dependent follows.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(handle.status().worker("ingest").unwrap().successes, 1);
    assert_eq!(handle.status().worker("lib-report").unwrap().successes, 1);
    assert_eq!(handle.trigger("lib-report").await, Ok(RunOutcome::Succeeded));
    handle.shutdown().await;
    running.await.unwrap().unwrap();
}
