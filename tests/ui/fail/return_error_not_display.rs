use orchestrator::worker;

#[derive(Debug)]
struct FetchError;

#[worker(interval = "60s")]
async fn fetch_data() -> Result<(), FetchError> {
    Ok(())
}

fn main() {}
