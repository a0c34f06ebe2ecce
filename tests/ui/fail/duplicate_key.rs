use orchestrator::worker;

#[worker(interval = "60s", priority = High, interval = "30s")]
async fn fetch_data() {}

fn main() {}
