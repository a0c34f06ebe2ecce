use orchestrator::worker;

#[worker(interval = "60s", cron = "0 */5 * * * *")]
async fn fetch_data() {}

fn main() {}
