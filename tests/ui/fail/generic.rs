use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data<C: Send>(client: C) {}

fn main() {}
