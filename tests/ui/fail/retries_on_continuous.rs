use orchestrator::worker;

#[worker(mode = Continuous, retries = 3)]
async fn consume_queue() {}

fn main() {}
