use orchestrator::worker;

#[worker(interval = "1h", timezone = "Europe/Paris")]
async fn fetch_data() {}

fn main() {}
