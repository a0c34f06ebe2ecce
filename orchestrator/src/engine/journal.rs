//! What the engine tells a store: [`Fact`]s, queued in the order decided
//! and drained by the runtime's writer (see [`crate::store`]).
//!
//! The engine keeps a journal only when a persistent store is configured,
//! so that the in-memory default pays one branch per fire and nothing else.
//! Fires are identified by their wall-clock `scheduled_at` in whole
//! milliseconds, which every replica computes alike from the stored anchor.

use std::sync::Arc;
use std::time::Instant;

use crate::history::FireOutcome;
use crate::schedule::WallClock;
use crate::status::RunOutcome;
use crate::store::{Fact, StoredDisable, to_millis};

use super::Disabled;

#[derive(Debug, Default)]
pub(crate) struct Journal {
    facts: Vec<Fact>,
}

impl Journal {
    /// The facts queued since the last call, in order.
    pub(crate) fn take(&mut self) -> Vec<Fact> {
        std::mem::take(&mut self.facts)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    pub(crate) fn started(&mut self, worker: &Arc<str>, clock: &WallClock, due: Instant, now: Instant) {
        self.facts.push(Fact::Started {
            worker: worker.clone(),
            scheduled_at: scheduled_at(clock, due),
            started_at: clock.wall(now),
        });
    }

    pub(crate) fn attempt(&mut self, worker: &Arc<str>, clock: &WallClock, due: Instant, attempt: u32) {
        self.facts.push(Fact::Attempt { worker: worker.clone(), scheduled_at: scheduled_at(clock, due), attempt });
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finished(
        &mut self,
        worker: &Arc<str>,
        clock: &WallClock,
        due: Instant,
        now: Instant,
        attempts: u32,
        outcome: &RunOutcome,
        consecutive_failures: u32,
        threshold: u32,
    ) {
        self.facts.push(Fact::Finished {
            worker: worker.clone(),
            scheduled_at: scheduled_at(clock, due),
            finished_at: clock.wall(now),
            attempts,
            outcome: FireOutcome::of(outcome),
            error: error_of(outcome),
            consecutive_failures,
            threshold,
        });
    }

    pub(crate) fn dropped(
        &mut self,
        worker: &Arc<str>,
        clock: &WallClock,
        due: Instant,
        now: Instant,
        outcome: FireOutcome,
        error: Option<&str>,
    ) {
        self.facts.push(Fact::Dropped {
            worker: worker.clone(),
            scheduled_at: scheduled_at(clock, due),
            at: clock.wall(now),
            outcome,
            error: error.map(str::to_string),
        });
    }

    pub(crate) fn state(&mut self, worker: &Arc<str>, disabled: Option<&Disabled>, consecutive_failures: u32) {
        self.facts.push(Fact::State { worker: worker.clone(), disabled: disabled.map(stored), consecutive_failures });
    }
}

/// The identity of a fire due at `due`.
pub(crate) fn scheduled_at(clock: &WallClock, due: Instant) -> chrono::DateTime<chrono::Utc> {
    to_millis(clock.wall(due))
}

fn error_of(outcome: &RunOutcome) -> Option<String> {
    match outcome {
        RunOutcome::Succeeded => None,
        RunOutcome::Failed { error } => Some(error.clone()),
        RunOutcome::UpstreamFailed { dependency } => Some(crate::history::upstream_error(dependency)),
        RunOutcome::Cancelled { reason } => Some(reason.clone()),
    }
}

pub(crate) fn stored(disabled: &Disabled) -> StoredDisable {
    match disabled {
        Disabled::Configured => StoredDisable::Configured,
        Disabled::Manually => StoredDisable::Manually,
        Disabled::Failures { count, last_error } => {
            StoredDisable::Failures { count: *count, last_error: last_error.clone() }
        }
    }
}

pub(crate) fn from_stored(stored: &StoredDisable) -> Disabled {
    match stored {
        StoredDisable::Configured => Disabled::Configured,
        StoredDisable::Manually => Disabled::Manually,
        StoredDisable::Failures { count, last_error } => {
            Disabled::Failures { count: *count, last_error: last_error.clone() }
        }
    }
}
