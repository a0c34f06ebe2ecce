//! Every key of the attribute, in every combination the rules allow.

use orchestrator::worker;

#[worker(
    interval = "1h 30m",
    initial_delay = "500ms",
    jitter = "2s",
    timeout = "30s",
    retries = 3,
    backoff = "1s",
    max_backoff = "1m",
    priority = High,
    depends_on = "load_config",
    blocks = "cleanup",
    max_consecutive_failures = 0,
    name = "fetch-data",
    misfire = Skip,
    enabled = false,
    scope = Instance,
    mode = Scheduled,
    crate = "::orchestrator",
)]
async fn fetch_data() {}

#[worker(delay = "10s")]
async fn poll() {}

#[worker(cron = "*/5 * * * *")]
async fn every_five_minutes() {}

#[worker(cron = "0 30 3 * * Mon-Fri", timezone = "Europe/Paris", misfire = FireOnce)]
async fn cleanup() {}

#[worker(mode = Continuous, restart_delay = "5s", timeout = "1h")]
async fn consume_queue() {}

#[worker(mode = Triggered, scope = Cluster, enabled = true)]
async fn load_config() {}

// No key at all: a Triggered worker named after its fn.
#[worker]
async fn reindex() {}

#[worker()]
async fn reindex_too() {}

// A raw identifier: registered as `type`.
#[worker(interval = "1s")]
async fn r#type() {}

fn main() {}
