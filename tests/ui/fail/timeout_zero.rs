use orchestrator::worker;

#[worker(interval = "1m", timeout = "0ms")]
async fn fetch_data() {}

fn main() {}
