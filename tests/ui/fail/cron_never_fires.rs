use orchestrator::worker;

#[worker(cron = "0 0 30 2 *")]
async fn month_end() {}

fn main() {}
