use orchestrator::worker;

#[worker(interval = "60s")]
async fn fetch_data() {
    let cache = std::rc::Rc::new(Vec::<u8>::new());
    tokio::task::yield_now().await;
    drop(cache);
}

fn main() {}
