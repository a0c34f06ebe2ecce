mod reexport {
    pub use orchestrator;
}

#[reexport::orchestrator::worker(interval = "60s", crate = "crate::reexport::orchestrater")]
async fn fetch_data() {}

fn main() {}
