use orchestrator::worker;

#[worker(cron = "0 0 9 * * Mon-Fri", timezone = "Europe/Pariss")]
async fn fetch_data() {}

fn main() {}
