use orchestrator::worker;

#[worker(interval = "60s", retries = "3")]
async fn fetch_data() {}

fn main() {}
