//! The engine's timers, in buckets of equal instants.
//!
//! Schedules tend to fire together (every worker of an interval started at
//! the same instant, every cron at `:00`), so timers are grouped by instant:
//! a burst of ten thousand fires costs one ordered-map lookup, not ten
//! thousand heap operations (a binary heap's `pop` was the largest single
//! cost of the engine under W1). Stale timers are not removed; their owner
//! recognises and skips them when they come due.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::context::RunId;
use crate::graph::WorkerId;

/// What a timer stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// A scheduled slot, valid while the worker's slot generation matches.
    Slot { generation: u32 },
    /// The end of a run's backoff.
    Retry { run: RunId },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    pub worker: WorkerId,
    pub kind: TimerKind,
}

#[derive(Default)]
pub(crate) struct Timers {
    buckets: BTreeMap<Instant, Vec<Timer>>,
    /// Emptied buckets, kept for reuse.
    spare: Vec<Vec<Timer>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        let spare = &mut self.spare;
        self.buckets.entry(at).or_insert_with(|| spare.pop().unwrap_or_default()).push(timer);
    }

    /// The earliest instant a timer is set for.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.buckets.first_key_value().map(|(at, _)| *at)
    }

    /// Takes the earliest bucket if it is due at `now`; hand it back with
    /// [`recycle`](Self::recycle) once processed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Vec<Timer>> {
        let entry = self.buckets.first_entry()?;
        (*entry.key() <= now).then(|| entry.remove())
    }

    pub(crate) fn recycle(&mut self, mut bucket: Vec<Timer>) {
        bucket.clear();
        self.spare.push(bucket);
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
    }
}
