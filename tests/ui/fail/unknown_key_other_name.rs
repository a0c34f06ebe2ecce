use orchestrator::worker;

#[worker(every = "5m")]
async fn fetch_data() {}

fn main() {}
