use orchestrator::worker;

#[worker(interval = "5 parsecs")]
async fn fetch_data() {}

fn main() {}
