use orchestrator::worker;

#[worker(interval = "60s", blocks = self::cleanup)]
async fn cleanup() {}

fn main() {}
