//! Fixed choices, written bare or as a string.

use orchestrator::worker;

#[worker(interval = "1m", priority = Low)]
async fn low() {}

#[worker(interval = "1m", priority = "Normal")]
async fn normal() {}

#[worker(interval = "1m", priority = High)]
async fn high() {}

#[worker(interval = "1m", priority = "Critical")]
async fn critical() {}

#[worker(mode = "Triggered", misfire = "Skip", scope = "Instance")]
async fn strings() {}

#[worker(mode = "Continuous")]
async fn continuous() {}

#[worker(delay = "1s", mode = "Scheduled", misfire = FireOnce, scope = Cluster)]
async fn bare() {}

fn main() {}
