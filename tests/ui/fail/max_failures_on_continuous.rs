use orchestrator::worker;

#[worker(mode = Continuous, max_consecutive_failures = 3)]
async fn consume() {}

fn main() {}
