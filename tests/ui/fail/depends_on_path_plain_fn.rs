use orchestrator::worker;

async fn fetch_data() {}

#[worker(interval = "2m", depends_on = fetch_data)]
async fn process_data() {}

fn main() {}
