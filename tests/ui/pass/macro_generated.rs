//! Workers declared by a user's `macro_rules!`: the fn name then carries the
//! macro's hygiene, and the generated code must still see its own locals.

use orchestrator::{Context, worker};

macro_rules! poller {
    ($name:ident, every = $every:expr, after = $after:path) => {
        #[worker(interval = $every, depends_on = $after, priority = High)]
        pub async fn $name(ctx: Context) -> anyhow::Result<()> {
            let _ = ctx;
            Ok(())
        }
    };
}

#[worker(interval = "1m")]
async fn refresh_token() {}

poller!(poll_orders, every = "30s", after = refresh_token);
poller!(poll_invoices, every = "1m", after = poll_orders);

fn main() {}
