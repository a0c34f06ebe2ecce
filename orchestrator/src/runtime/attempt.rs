//! One attempt's future: the worker's body, with its panics caught, its
//! timeout, and the abort of a forced shutdown.
//!
//! Written by hand rather than as `timeout(catch_unwind(select(..)))`
//! because it runs once per fire on the hottest path: the timer and the
//! abort listener are only set up if the body does not finish on its first
//! poll, so an attempt that completes at once costs no timer registration
//! and no waiter on the abort token.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::engine::AttemptResult;
use crate::worker_fn::BoxRunFuture;

/// Drives a body to its [`AttemptResult`].
pub(crate) struct Attempt<'a> {
    /// Taken out and dropped inside `catch_unwind` when the attempt ends
    /// (see [`Attempt::end`]).
    body: Option<BoxRunFuture>,
    timeout: Option<Duration>,
    /// Borrowed from the lane, which awaits the attempt in place: a
    /// `CancellationToken` clone would take a lock.
    abort: &'a CancellationToken,
    /// Armed at the first `Pending`: the timeout and the abort listener.
    waiting: Option<Box<Waiting<'a>>>,
}

struct Waiting<'a> {
    deadline: Option<Pin<Box<Sleep>>>,
    aborted: Pin<Box<WaitForCancellationFuture<'a>>>,
}

impl<'a> Attempt<'a> {
    pub(crate) fn new(body: BoxRunFuture, timeout: Option<Duration>, abort: &'a CancellationToken) -> Self {
        Attempt { body: Some(body), timeout, abort, waiting: None }
    }

    /// Ends the attempt with `result`, dropping the body here rather than
    /// with the attempt: a body cancelled by its timeout or a forced
    /// shutdown runs its destructors now, and one that panics must not take
    /// its worker's lane down with it (the run would show running forever
    /// and keep its concurrency slot).
    fn end(&mut self, result: AttemptResult) -> Poll<AttemptResult> {
        if let Some(body) = self.body.take()
            && let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(body)))
        {
            tracing::warn!(panic = %panic_message(panic.as_ref()), result = ?result, "the worker's future panicked while being dropped");
        }
        Poll::Ready(result)
    }

    /// Warns when the body returned control `overrun` after its deadline:
    /// it blocked its thread (a scheduler cannot cancel a future that does
    /// not yield), which also stalls every other task on that thread.
    fn warn_if_blocking(&self, overrun: Duration) {
        if overrun >= BLOCKING_OVERRUN {
            tracing::warn!(
                overrun = ?overrun,
                timeout = ?self.timeout,
                "the worker ran past its timeout without yielding: it blocks its thread, and cannot be cancelled \
                 until it yields; run blocking work in tokio::task::spawn_blocking"
            );
        }
    }
}

/// How far past its deadline an attempt must have run without yielding to
/// be reported as blocking its thread (a timely cancellation takes
/// microseconds).
const BLOCKING_OVERRUN: Duration = Duration::from_secs(1);

impl Future for Attempt<'_> {
    type Output = AttemptResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AttemptResult> {
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else { return Poll::Pending };
        // The body first: an attempt that is done is done, even if a timeout
        // or an abort arrived in the meantime.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx)));
        if !matches!(polled, Ok(Poll::Pending))
            && let Some(deadline) = this.waiting.as_ref().and_then(|w| w.deadline.as_ref())
        {
            // Only attempts that yielded before and have a timeout read
            // the clock here.
            this.warn_if_blocking(Instant::now().saturating_duration_since(deadline.deadline()));
        }
        match polled {
            Ok(Poll::Ready(Ok(()))) => return this.end(AttemptResult::Succeeded),
            Ok(Poll::Ready(Err(error))) => return this.end(AttemptResult::Failed(error)),
            Err(panic) => return this.end(AttemptResult::Panicked(panic_message(panic.as_ref()))),
            Ok(Poll::Pending) => {}
        }
        let timeout = this.timeout;
        let abort = this.abort;
        let waiting = this.waiting.get_or_insert_with(|| {
            // The timeout counts from the body's first yield: the time before
            // it is one poll, which nothing could have interrupted anyway,
            // and reading the clock only here keeps instant attempts free of it.
            // A timeout too far away to be an instant is no timeout.
            Box::new(Waiting {
                deadline: timeout
                    .and_then(|limit| Instant::now().checked_add(limit))
                    .map(|at| Box::pin(tokio::time::sleep_until(at))),
                aborted: Box::pin(abort.cancelled()),
            })
        });
        if let (Some(deadline), Some(limit)) = (&mut waiting.deadline, timeout)
            && deadline.as_mut().poll(cx).is_ready()
        {
            let overrun = Instant::now().saturating_duration_since(deadline.deadline());
            this.warn_if_blocking(overrun);
            return this.end(AttemptResult::TimedOut(limit));
        }
        if waiting.aborted.as_mut().poll(cx).is_ready() {
            return this.end(AttemptResult::Cancelled);
        }
        Poll::Pending
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
