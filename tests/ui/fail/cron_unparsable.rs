use orchestrator::worker;

#[worker(cron = "61 * * * *")]
async fn fetch_data() {}

fn main() {}
