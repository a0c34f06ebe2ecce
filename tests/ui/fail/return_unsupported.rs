use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data() -> Result<usize, std::io::Error> {
    Ok(0)
}

fn main() {}
