use orchestrator::worker;

#[worker(interval = "60s", misfire = Never)]
async fn fetch_data() {}

fn main() {}
