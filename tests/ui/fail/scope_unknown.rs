use orchestrator::worker;

#[worker(interval = "60s", scope = Global)]
async fn fetch_data() {}

fn main() {}
