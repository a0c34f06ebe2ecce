use orchestrator::{Context, worker};

#[worker(interval = "60s")]
async fn fetch_data(ctx: &Context) {
    let _ = ctx;
}

fn main() {}
