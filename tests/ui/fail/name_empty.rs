use orchestrator::worker;

#[worker(interval = "60s", name = "")]
async fn fetch_data() {}

fn main() {}
