use orchestrator::worker;

#[worker(intervall = "60s")]
async fn fetch_data() {}

fn main() {}
