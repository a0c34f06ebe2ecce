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
    body: BoxRunFuture,
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
        Attempt { body, timeout, abort, waiting: None }
    }
}

impl Future for Attempt<'_> {
    type Output = AttemptResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AttemptResult> {
        let this = &mut *self;
        // The body first: an attempt that is done is done, even if a timeout
        // or an abort arrived in the meantime.
        match std::panic::catch_unwind(AssertUnwindSafe(|| this.body.as_mut().poll(cx))) {
            Ok(Poll::Ready(Ok(()))) => return Poll::Ready(AttemptResult::Succeeded),
            Ok(Poll::Ready(Err(error))) => return Poll::Ready(AttemptResult::Failed(error)),
            Err(panic) => return Poll::Ready(AttemptResult::Panicked(panic_message(panic.as_ref()))),
            Ok(Poll::Pending) => {}
        }
        let timeout = this.timeout;
        let waiting = this.waiting.get_or_insert_with(|| {
            // The timeout counts from the body's first yield: the time before
            // it is one poll, which nothing could have interrupted anyway,
            // and reading the clock only here keeps instant attempts free of it.
            Box::new(Waiting {
                deadline: timeout.map(|limit| Box::pin(tokio::time::sleep_until(Instant::now() + limit))),
                aborted: Box::pin(this.abort.cancelled()),
            })
        });
        if let (Some(deadline), Some(limit)) = (&mut waiting.deadline, timeout)
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(AttemptResult::TimedOut(limit));
        }
        if waiting.aborted.as_mut().poll(cx).is_ready() {
            return Poll::Ready(AttemptResult::Cancelled);
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
