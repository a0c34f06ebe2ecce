use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data(urls: ...) {}

fn main() {}
