use orchestrator::worker;

#[worker(cron = "*/5 * * *")]
async fn fetch_data() {}

fn main() {}
