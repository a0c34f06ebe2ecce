use orchestrator::worker;

#[worker(interval = "60s", initial_delay = "200 years")]
async fn fetch_data() {}

fn main() {}
