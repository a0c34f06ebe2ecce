use orchestrator::worker;

#[worker(interval = "60s", priority = Priority::High)]
async fn fetch_data() {}

fn main() {}
