use orchestrator::worker;

#[worker(interval = "60s", timeout = 30s)]
async fn fetch_data() {}

fn main() {}
