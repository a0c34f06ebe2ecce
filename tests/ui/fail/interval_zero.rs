use orchestrator::worker;

#[worker(interval = "0s")]
async fn fetch_data() {}

fn main() {}
