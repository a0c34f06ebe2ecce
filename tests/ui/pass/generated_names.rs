//! Workers whose names are common words the expansion could have used for
//! its own items and locals: each must still call the user's fn.

use orchestrator::{Context, State, worker};

#[derive(Clone)]
struct Db;

#[worker(interval = "1m")]
async fn run(ctx: Context) {
    let _ = ctx;
}

#[worker(interval = "1m")]
async fn input(ctx: Context, State(_db): State<Db>) {
    let _ = ctx;
}

#[worker(interval = "1m")]
async fn future(_: Context) {}

#[worker(interval = "1m")]
async fn boxed(_: Context) {}

#[worker(interval = "1m")]
async fn arg0(_: Context) {}

#[worker(interval = "1m", depends_on = [run, input, future, boxed, arg0])]
async fn register() {}

fn main() {}
