//! Every accepted fn shape: any number and order of `Context` and
//! `State<T>` (with patterns), returning `()` or `Result<(), E: Display>`.

use std::fmt;
use std::sync::Arc;

use orchestrator::{Context, State, worker};

#[derive(Clone)]
struct Db;

#[derive(Clone)]
struct Cache(Arc<Vec<u8>>);

#[derive(Debug)]
struct SyncError;

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sync failed")
    }
}

type Ctx = Context;

#[worker]
async fn no_args() {}

#[worker]
async fn unit_spelled_out() -> () {}

#[worker]
async fn context(ctx: Context) {
    let _ = ctx.name();
}

#[worker]
async fn state(db: State<Db>) {
    let _: &Db = &db;
}

#[worker]
async fn both(ctx: Context, State(db): State<Db>) -> anyhow::Result<()> {
    let _ = (ctx, db);
    Ok(())
}

#[worker]
async fn reversed_and_repeated(State(_db): State<Db>, mut ctx: Context, _cache: State<Cache>, _again: Ctx) {
    ctx = ctx.clone();
    let _ = ctx;
}

#[worker]
async fn io_error(_: Context) -> Result<(), std::io::Error> {
    Ok(())
}

#[worker]
async fn io_result() -> std::io::Result<()> {
    Ok(())
}

#[worker]
async fn custom_error() -> Result<(), SyncError> {
    Err(SyncError)
}

#[worker]
async fn string_error() -> Result<(), String> {
    Ok(())
}

#[worker]
pub async fn public() {}

#[worker]
pub(crate) async fn crate_visible() {}

/// Documented, with other attributes around the worker attribute.
#[allow(clippy::unused_async)]
#[worker(interval = "1s")]
#[inline]
async fn with_attributes() {}

#[cfg(any())]
#[worker(interval = "1s")]
async fn compiled_out(_: NotEvenAType) {}

fn main() {}
