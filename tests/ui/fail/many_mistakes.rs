use orchestrator::worker;

#[worker(
    intervall = "60s",
    timeout = 30,
    retries = "3",
    priority = Urgent,
    cron = "* * *",
    depends_on = "fetch_data",
    priority = Low,
)]
fn fetch_data<T>(input: T) {}

fn main() {}
