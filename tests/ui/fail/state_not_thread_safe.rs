use std::rc::Rc;

use orchestrator::{State, worker};

#[worker(interval = "60s")]
async fn vacuum(State(cache): State<Rc<Vec<u8>>>) {
    let _ = cache;
}

fn main() {}
