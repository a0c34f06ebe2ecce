use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data() {}

#[worker(interval = "2m", depends_on = fetch_dta)]
async fn process_data() {}

fn main() {}
