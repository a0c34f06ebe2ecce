use orchestrator::worker;

#[worker(interval = "60s", retries = 3, backoff = "10s", max_backoff = "5s")]
async fn fetch_data() {}

fn main() {}
