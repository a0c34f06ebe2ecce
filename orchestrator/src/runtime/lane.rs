//! A worker's lane: one long-lived task per worker that runs its attempts,
//! one after another.
//!
//! A worker never overlaps itself, so its attempts need no task each: the
//! engine's caller rings the lane's doorbell with the next attempt, and the
//! lane runs it and feeds the outcome to the engine itself. Compared with a
//! `tokio::spawn` per attempt, a fire then costs a wake-up instead of a task
//! allocation, its registration in the runtime's task list and a round of
//! reference counting, which at thousands of fires per second was most of
//! the driver's time. Scheduled and Continuous workers get their lane when
//! the driver starts, Triggered workers at their first attempt; every lane
//! ends when the driver stops.

use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

use futures_util::FutureExt;
use futures_util::task::AtomicWaker;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::{Attempt, panic_message};
use super::{Inner, Start};
use crate::context::{Context, WorkerScope};
use crate::engine::AttemptResult;
use crate::worker_fn::{RunFn, RunInput};

/// The driver's end of a lane.
pub(super) struct Lane {
    doorbell: Arc<Doorbell>,
}

/// Hands one attempt at a time to the lane.
#[derive(Default)]
struct Doorbell {
    next: Mutex<Option<Start>>,
    /// Set after an attempt is put in `next`, cleared when the lane takes
    /// it: the lane looks at this flag, not the lock, when it checks for
    /// work before parking (twice per attempt; see [`Doorbell::next`]).
    rung: AtomicBool,
    waker: AtomicWaker,
    closed: AtomicBool,
}

/// What a lane needs to run its worker's attempts.
pub(super) struct LaneContext {
    pub scope: Arc<WorkerScope>,
    pub body: RunFn,
    pub abort: CancellationToken,
    pub inner: Arc<Inner>,
    /// Its fires are claimed from the store before they run (cluster mode).
    pub claims: bool,
}

impl Lane {
    /// Spawns the lane's task.
    pub(super) fn spawn(runtime: &tokio::runtime::Handle, context: LaneContext) -> Self {
        let doorbell = Arc::new(Doorbell::default());
        if context.claims {
            runtime.spawn(run_claiming_lane(doorbell.clone(), context));
        } else {
            runtime.spawn(run_lane(doorbell.clone(), context));
        }
        Lane { doorbell }
    }

    /// Hands the lane its next attempt, and returns the waker to call (`None`
    /// if the lane is not parked: it will find the attempt when it next
    /// looks). The engine starts an attempt of a worker only after the
    /// previous one reported, so the lane is idle.
    pub(super) fn start(&self, start: Start) -> Option<Waker> {
        let previous = self.doorbell.next.lock().unwrap_or_else(PoisonError::into_inner).replace(start);
        debug_assert!(previous.is_none(), "a worker's attempts never overlap");
        self.doorbell.rung.store(true, Ordering::Release);
        self.doorbell.waker.take()
    }

    /// Ends the lane's task once it has run what it was handed.
    pub(super) fn close(&self) {
        self.doorbell.closed.store(true, Ordering::Release);
        self.doorbell.waker.wake();
    }
}

impl Doorbell {
    /// The next attempt, or `None` once the lane is closed.
    async fn next(&self) -> Option<Start> {
        poll_fn(|cx| {
            for round in 0..2 {
                if self.rung.load(Ordering::Acquire) {
                    self.rung.store(false, Ordering::Relaxed);
                    if let Some(start) = self.next.lock().unwrap_or_else(PoisonError::into_inner).take() {
                        return Poll::Ready(Some(start));
                    }
                }
                if self.closed.load(Ordering::Acquire) {
                    return Poll::Ready(None);
                }
                // Register, then look again: a ring between the first look
                // and the registration would otherwise be lost.
                if round == 0 {
                    self.waker.register(cx.waker());
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// A lane whose fires are not claimed (every worker but a Cluster worker in
/// cluster mode): the attempt and its report, nothing else. Kept apart from
/// [`run_claiming_lane`] so that this loop, the one every run of the
/// in-memory store takes, carries neither the claim's state nor its checks.
async fn run_lane(doorbell: Arc<Doorbell>, lane: LaneContext) {
    while let Some(Start { worker, run, attempt, first: _, timeout, due }) = doorbell.next().await {
        let result = match attempt_of(&lane, run, attempt, timeout, due, &lane.abort).await {
            Ok(result) => result,
            Err(panic) => AttemptResult::Panicked(panic_message(panic.as_ref())),
        };
        lane.inner.attempt_finished(worker, run, result);
    }
}

/// A lane whose fires are claimed from the store before they run (a
/// Cluster worker in cluster mode): the fire is claimed before its first
/// attempt here (the first, or the next one of a fire adopted from a lost
/// instance), and every attempt runs under the lease (cancelled if it is
/// lost).
async fn run_claiming_lane(doorbell: Arc<Doorbell>, lane: LaneContext) {
    while let Some(Start { worker, run, attempt, first, timeout, due }) = doorbell.next().await {
        let store = &lane.inner.store;
        let claimed = if first {
            store.claim(worker, &lane.scope.name, due.into_std(), attempt == 1, &lane.abort).await
        } else {
            store.lease_cancel(worker, due.into_std()).ok_or_else(|| crate::engine::Refusal::Busy {
                why: "the lease was lost".into(),
                retry: std::time::Duration::from_secs(1),
            })
        };
        let lease = match claimed {
            Ok(cancel) => cancel,
            Err(refusal) => {
                lane.inner.attempt_finished(worker, run, AttemptResult::Refused(Box::new(refusal)));
                continue;
            }
        };
        let result = match attempt_of(&lane, run, attempt, timeout, due, &lease).await {
            Ok(AttemptResult::Cancelled) if !lane.abort.is_cancelled() => AttemptResult::LeaseLost,
            Ok(result) => result,
            Err(panic) => AttemptResult::Panicked(panic_message(panic.as_ref())),
        };
        lane.inner.attempt_finished(worker, run, result);
    }
}

/// One attempt of the lane's worker, stopped by `abort`; `Err` if something
/// around the body panicked (a tracing layer, say): the lane lives on and
/// reports, so a run in progress always has a live lane.
///
/// A plain function returning the future, not an `async fn`, and inlined:
/// the lane awaits the attempt itself, without a state machine of its own
/// between, nor a copy of the future (measured on W4: ~100 instructions a
/// run when it was a call).
#[inline(always)]
fn attempt_of<'a>(
    lane: &'a LaneContext,
    run: crate::context::RunId,
    attempt: u32,
    timeout: Option<std::time::Duration>,
    due: tokio::time::Instant,
    abort: &'a CancellationToken,
) -> impl Future<Output = std::thread::Result<AttemptResult>> + 'a {
    let input = RunInput { context: Context::new(lane.scope.clone(), run, attempt, due) };
    let span = tracing::info_span!("attempt", worker = %lane.scope.name, run_id = %run, attempt);
    let result = async move {
        // The body is called here, inside `catch_unwind`, so that a panic
        // before its first `.await` is caught like any other.
        // The outcome is logged by the engine, which alone knows whether
        // a failed attempt is retried ("attempt failed, retrying", WARN)
        // or ends the run ("run failed", ERROR): logging it here too
        // would say every failure twice. The engine's events carry
        // `worker` and `run_id` as fields, so they name the worker under
        // any filter, not only when this INFO span is enabled.
        match std::panic::catch_unwind(AssertUnwindSafe(|| (lane.body)(input))) {
            Ok(future) => Attempt::new(future, timeout, abort).await,
            Err(panic) => AttemptResult::Panicked(panic_message(panic.as_ref())),
        }
    }
    .instrument(span);
    AssertUnwindSafe(result).catch_unwind()
}
