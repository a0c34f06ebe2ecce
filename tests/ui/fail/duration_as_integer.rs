use orchestrator::worker;

#[worker(interval = 5)]
async fn fetch_data() {}

fn main() {}
