use orchestrator::{State, worker};

struct Db;

#[worker(interval = "60s")]
async fn vacuum(State(db): State<Db>) {
    let _ = db;
}

fn main() {}
