use orchestrator::worker;

#[worker(interval = "60s")]
async unsafe fn fetch_data() {}

fn main() {}
