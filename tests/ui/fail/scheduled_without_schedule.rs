use orchestrator::worker;

#[worker(mode = Scheduled, timeout = "10s")]
async fn fetch_data() {}

fn main() {}
