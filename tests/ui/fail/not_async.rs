use orchestrator::worker;

#[worker(interval = "60s")]
fn fetch_data() {}

fn main() {}
