use orchestrator::worker;

#[worker(interval = "60s", crate = my_app::orchestrator)]
async fn fetch_data() {}

fn main() {}
