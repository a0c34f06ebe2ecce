use orchestrator::worker;

// Six fields: the second is the hour's place only when counted from seconds.
#[worker(cron = "0 0 25 * * *")]
async fn nightly() {}

fn main() {}
