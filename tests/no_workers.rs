//! A binary with no `#[worker]` at all. This test binary depends on the
//! `orchestrator-test-workers` fixture library but never references it, so
//! the linker leaves its workers out: the situation the `NoWorkers` message
//! explains.

use orchestrator::{BuildError, Orchestrator, ProblemKind};

fn assert_no_workers(error: &BuildError) {
    let kinds: Vec<&ProblemKind> = error.problems().iter().map(|p| &p.kind).collect();
    assert_eq!(kinds, [&ProblemKind::NoWorkers]);
    let message = error.to_string();
    assert!(message.contains("no worker is registered"), "{message}");
    assert!(message.contains("use my_workers as _;"), "{message}");
}

#[test]
fn building_without_any_worker_fails_with_no_workers() {
    let Err(error) = Orchestrator::builder().build() else {
        panic!("an orchestrator without workers should not build");
    };
    assert_no_workers(&error);
}

#[test]
fn validating_without_any_worker_fails_with_no_workers() {
    let Err(error) = orchestrator::validate() else {
        panic!("validation without workers should fail");
    };
    assert_no_workers(&error);
}
