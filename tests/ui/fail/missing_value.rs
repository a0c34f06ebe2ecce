use orchestrator::worker;

#[worker(interval)]
async fn fetch_data() {}

fn main() {}
