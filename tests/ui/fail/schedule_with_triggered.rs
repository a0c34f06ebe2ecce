use orchestrator::worker;

#[worker(interval = "60s", mode = Triggered)]
async fn fetch_data() {}

fn main() {}
