use orchestrator::worker;

#[worker(interval = "60s", restart_delay = "5s")]
async fn fetch_data() {}

fn main() {}
