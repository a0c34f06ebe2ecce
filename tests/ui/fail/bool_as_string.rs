use orchestrator::worker;

#[worker(interval = "60s", enabled = "false")]
async fn fetch_data() {}

fn main() {}
