//! A crate that reaches orchestrator through a re-export names it with
//! `crate = "..."`, for the attribute and every path it generates.

mod support {
    pub use orchestrator as orch;
}

use support::orch::{Context, worker};

#[worker(interval = "1m", crate = "crate::support::orch")]
async fn fetch_data(ctx: Context) -> Result<(), std::io::Error> {
    let _ = ctx;
    Ok(())
}

#[support::orch::worker(interval = "2m", depends_on = fetch_data, priority = Critical, crate = "support::orch")]
async fn process_data() {}

fn main() {}
