use orchestrator::worker;

#[worker(interval = "60s", priority = Urgent)]
async fn fetch_data() {}

fn main() {}
