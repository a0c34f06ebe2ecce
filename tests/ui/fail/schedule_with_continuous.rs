use orchestrator::worker;

#[worker(mode = Continuous, delay = "1s")]
async fn consume_queue() {}

fn main() {}
