//! The `#[worker]` attribute of [orchestrator]. Use it through
//! `orchestrator::worker`: the code it generates names items of the
//! `orchestrator` crate.
//!
//! The expansion reads the annotated fn and the attribute's `key = value`
//! list, checks every rule it can see (reporting all mistakes at once, at the
//! offending tokens), and registers the worker with a const definition: no
//! parsing happens at run time.
//!
//! [orchestrator]: https://docs.rs/tokio-orchestrator

mod args;
mod check;
mod codegen;
mod diag;
mod expand;
mod signature;
mod values;

// The runtime's own cron and time zone acceptance (one crate both depend on),
// so that the attribute refuses at compile time exactly what startup would.
use orchestrator_syntax as schedule_syntax;

use proc_macro::TokenStream;

/// Registers an `async fn` as a background worker of the orchestrator.
///
/// The worker is collected at link time; `orchestrator::run()` (or
/// `Orchestrator::builder()...build()`) validates the whole graph at startup
/// and then schedules it.
///
/// ```ignore
/// use orchestrator::{worker, Context, State};
///
/// #[worker(interval = "60s", timeout = "30s", priority = High)]
/// async fn fetch_data(ctx: Context) -> anyhow::Result<()> {
///     // ...
///     Ok(())
/// }
///
/// // A path is checked by the compiler; a string is checked at startup.
/// #[worker(interval = "2m", depends_on = fetch_data, retries = 3)]
/// async fn process_data(State(db): State<Db>) -> anyhow::Result<()> {
///     Ok(())
/// }
///
/// #[worker(cron = "0 30 3 * * *", timezone = "Europe/Paris", blocks = ["process_data"])]
/// async fn cleanup() {}
/// ```
///
/// # Keys
///
/// Every key is optional. Durations are strings in humantime syntax
/// (`"500ms"`, `"60s"`, `"1h 30m"`); choices are written bare (`High`) or as a
/// string (`"High"`).
///
/// | key | value | default | meaning |
/// |---|---|---|---|
/// | `interval` | duration > 0 | — | fixed-rate schedule: fires at start + `initial_delay` + k·interval, without drift |
/// | `delay` | duration | — | fixed-delay schedule: the next fire is `delay` after the previous run ended |
/// | `cron` | cron expression, 5 fields or 6 (leading seconds) | — | wall-clock schedule, UTC unless `timezone` |
/// | `timezone` | IANA name, e.g. `"Europe/Paris"` | `"UTC"` | zone the `cron` expression is read in; only with `cron` |
/// | `mode` | `Scheduled` \| `Triggered` \| `Continuous` | Scheduled with a schedule, else Triggered | Triggered: runs on demand or when its dependencies complete; Continuous: restarted whenever it returns, until shutdown |
/// | `restart_delay` | duration | `"1s"` | Continuous only: pause before the fn is started again; after failures in a row it doubles per failure, up to `max_backoff` |
/// | `timeout` | duration > 0 | `"60s"` (none for Continuous) | an attempt running longer is cancelled and fails |
/// | `retries` | integer | `0` | extra attempts within one run after a failed attempt; not for Continuous |
/// | `backoff` | duration | `"1s"` | base of the exponential backoff (with jitter) between attempts |
/// | `max_backoff` | duration ≥ `backoff` | `"5m"` | cap of that backoff |
/// | `priority` | `Low` \| `Normal` \| `High` \| `Critical` | `Normal` | order in which ready workers take free concurrency slots |
/// | `depends_on` | `"name"`, `path`, or a list of them: `["a", crate::jobs::b]` | `[]` | runs only after a fresh success of each dependency |
/// | `blocks` | same forms as `depends_on` | `[]` | never runs at the same time as these workers, in either order |
/// | `max_consecutive_failures` | integer | `5` (`0` = never) | failed runs in a row after which the worker is disabled (not for Continuous workers, which back off instead) |
/// | `name` | non-empty string | the fn's name | the worker's name in the graph, status and logs |
/// | `initial_delay` | duration | `"0s"` | delay before the first fire |
/// | `jitter` | duration | `"0s"` | random extra delay, up to this, added to each fire |
/// | `misfire` | `FireOnce` \| `Skip` | `FireOnce` | what fires missed while the worker could not start become: one catch-up run, or nothing |
/// | `enabled` | `true` \| `false` | `true` | `false` registers the worker disabled |
/// | `scope` | `Cluster` \| `Instance` | `Cluster` | in cluster mode (PostgreSQL store): once per fire across replicas, or on every replica; elsewhere it changes nothing |
/// | `crate` | path as a string, e.g. `"my_app::orchestrator"` | `"::orchestrator"` | where orchestrator is reached, for crates that use it through a re-export |
///
/// A worker has at most one of `interval`, `delay` and `cron`.
///
/// How many runs execute at once is a setting of the orchestrator, not of a
/// worker: at most 5 by default (`Orchestrator::builder().max_concurrent(n)`;
/// Continuous workers are not counted). A due worker beyond the limit waits
/// for a free slot, and `priority` orders the workers waiting.
///
/// # Referring to other workers
///
/// `depends_on` and `blocks` take names in two forms, mixed freely:
/// - a string, `"fetch_data"`: the registered name (the `name` key, or the fn
///   name), checked at startup against every worker, with a did-you-mean;
/// - a path to another `#[worker]` fn, `fetch_data` or
///   `crate::ingest::fetch_data`: checked by the compiler, so a typo fails to
///   compile at the typo. For this, the attribute adds a hidden, same-named
///   empty struct next to each worker fn (in the type namespace, beside the
///   fn), so a module or type of the same name as a worker fn in the same
///   module is a conflict.
///
/// # Signature
///
/// The fn is a free `async fn` without generics, declared in a module or a
/// block (not in an `impl` or a trait, where the items the attribute adds
/// cannot go: the compiler then reports "struct is not supported in
/// `trait`s or `impl`s" at the fn name). It takes any number of
/// `orchestrator::Context` and `orchestrator::State<T>` arguments, in any
/// order and with any pattern (`State(db): State<Db>`), and returns `()` or
/// `Result<(), E>` with `E: Display` (`anyhow::Result<()>`, `io::Result<()>`,
/// your own error). Other argument or return types are a compile error at the
/// type. The future must be `Send`.
///
/// # Errors
///
/// Every mistake the attribute can see is a compile error at the offending
/// token, and all mistakes of one attribute are reported together: unknown
/// keys (with the closest valid key), duplicates, wrong value types,
/// unparsable durations, cron expressions and time zones (with the parser's
/// reason), a zero `interval` or `timeout`, conflicting keys (two schedules, a
/// schedule with `mode = Triggered` or `Continuous`, `mode = Scheduled`
/// without one, `restart_delay` without Continuous, `retries` or
/// `max_consecutive_failures` with it,
/// `timezone` without `cron`, `max_backoff < backoff`), a worker that depends
/// on or blocks itself, and unsupported fn shapes. The fn itself is always
/// kept, so IDEs keep working inside it.
#[proc_macro_attribute]
pub fn worker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::worker(args.into(), item.into()).into()
}
