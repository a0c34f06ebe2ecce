use orchestrator::worker;

// Only this attribute's mistake is reported: `process_data` still resolves
// its path to `fetch_data`.
#[worker(interval = "60", priority = High)]
async fn fetch_data() {}

#[worker(interval = "2m", depends_on = fetch_data)]
async fn process_data() {}

fn main() {}
