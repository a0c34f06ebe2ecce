use orchestrator::worker;

struct Fetcher;

impl Fetcher {
    #[worker(interval = "60s")]
    async fn fetch_data(&self) {}
}

fn main() {}
