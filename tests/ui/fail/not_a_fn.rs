use orchestrator::worker;

#[worker(interval = "60s")]
struct FetchData;

fn main() {}
