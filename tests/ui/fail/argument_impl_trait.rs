use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data(client: impl Send) {
    let _ = client;
}

fn main() {}
