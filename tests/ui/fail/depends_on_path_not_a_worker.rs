use orchestrator::worker;

struct Config;

#[worker(interval = "2m", depends_on = Config)]
async fn process_data() {}

fn main() {}
