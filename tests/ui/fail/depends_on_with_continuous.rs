use orchestrator::worker;

#[worker(interval = "1m")]
async fn migrate() {}

#[worker(mode = Continuous, depends_on = migrate)]
async fn consume_queue() {}

fn main() {}
