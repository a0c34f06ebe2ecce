use orchestrator::worker;

#[worker(interval = "60s")]
async extern "C" fn fetch_data() {}

fn main() {}
