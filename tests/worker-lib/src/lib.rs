//! Fixture: `#[worker]` functions that live in a library crate.
//!
//! A binary gets them only if it references this crate (`use
//! orchestrator_test_workers as _;`): the linker leaves out crates nothing
//! refers to, and with them their registrations. `tests/library_workers.rs`
//! references it; `tests/no_workers.rs` does not.

use orchestrator::{Context, worker};

/// Pulls data every minute.
#[worker(interval = "1m")]
pub async fn ingest(ctx: Context) -> Result<(), std::io::Error> {
    if ctx.name() != "ingest" {
        return Err(std::io::Error::other(format!("ran as {}", ctx.name())));
    }
    Ok(())
}

/// Runs after each successful `ingest`; refers to it by path.
#[worker(depends_on = ingest, name = "lib-report")]
pub async fn report() {}
