use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data(url: String) {
    let _ = url;
}

fn main() {}
