use orchestrator::worker;

#[worker(interval = "60s", depends_on = ["load_config", 42])]
async fn fetch_data() {}

#[worker]
async fn load_config() {}

fn main() {}
