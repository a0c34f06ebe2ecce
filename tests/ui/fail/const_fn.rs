use orchestrator::worker;

#[worker(interval = "60s")]
const fn fetch_data() {}

fn main() {}
