use orchestrator::worker;

#[worker(mode = "continuous")]
async fn consume_queue() {}

fn main() {}
