//! The engine's timers, in buckets of equal instants.
//!
//! Schedules tend to fire together (every worker of an interval started at
//! the same instant, every cron at `:00`), so timers are grouped by instant:
//! a burst of ten thousand fires costs one ordered-map lookup, not ten
//! thousand heap operations (a binary heap's `pop` was the largest single
//! cost of the engine under W1).
//!
//! A worker has at most one timer of each kind in the set: the engine keeps
//! the instant of each in the worker's record, reuses a timer that comes
//! due no later than the instant it needs (it re-arms from there when that
//! timer fires), and removes one that would come too late. So the set stays
//! bounded by twice the number of workers, whatever is enabled, disabled or
//! re-armed in between.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Instant;

use crate::graph::WorkerId;

/// What a timer stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The worker's armed slot (if it is still due by then).
    Slot,
    /// The end of the worker's run's backoff (if it is still backing off).
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timer {
    pub worker: WorkerId,
    pub kind: TimerKind,
}

#[derive(Default)]
pub(crate) struct Timers {
    buckets: BTreeMap<Instant, Vec<Timer>>,
    /// Timers pushed for the same instant one after another, not yet in
    /// `buckets`: a burst re-arms thousands of workers for one next instant,
    /// and this spares a map lookup per timer.
    staged: Option<(Instant, Vec<Timer>)>,
    /// Emptied buckets, kept for reuse.
    spare: Vec<Vec<Timer>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        match &mut self.staged {
            Some((staged_at, timers)) if *staged_at == at => timers.push(timer),
            _ => {
                self.flush();
                let mut timers = self.spare.pop().unwrap_or_default();
                timers.push(timer);
                self.staged = Some((at, timers));
            }
        }
    }

    /// Moves the staged timers into their bucket.
    fn flush(&mut self) {
        let Some((at, mut timers)) = self.staged.take() else { return };
        match self.buckets.entry(at) {
            Entry::Vacant(entry) => {
                entry.insert(timers);
            }
            Entry::Occupied(mut entry) => {
                entry.get_mut().append(&mut timers);
                self.spare.push(timers);
            }
        }
    }

    /// The earliest instant a timer is set for.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let bucketed = self.buckets.first_key_value().map(|(at, _)| *at);
        bucketed.into_iter().chain(self.staged.as_ref().map(|(at, _)| *at)).min()
    }

    /// Takes the earliest bucket if it is due at `now`; hand it back with
    /// [`recycle`](Self::recycle) once processed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Vec<Timer>> {
        self.flush();
        let entry = self.buckets.first_entry()?;
        (*entry.key() <= now).then(|| entry.remove())
    }

    /// Removes `timer`, set for `at` (rare: a worker needs an earlier timer
    /// than the one it has). Keeps the order of the others.
    pub(crate) fn remove(&mut self, at: Instant, timer: Timer) {
        if let Some((staged_at, timers)) = &mut self.staged
            && *staged_at == at
            && let Some(i) = timers.iter().position(|t| *t == timer)
        {
            timers.remove(i);
            if timers.is_empty()
                && let Some((_, empty)) = self.staged.take()
            {
                self.spare.push(empty);
            }
            return;
        }
        if let Entry::Occupied(mut bucket) = self.buckets.entry(at)
            && let Some(i) = bucket.get().iter().position(|t| *t == timer)
        {
            bucket.get_mut().remove(i);
            if bucket.get().is_empty() {
                self.spare.push(bucket.remove());
            }
        }
    }

    /// How many timers are set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum::<usize>() + self.staged.as_ref().map_or(0, |(_, t)| t.len())
    }

    pub(crate) fn recycle(&mut self, mut bucket: Vec<Timer>) {
        bucket.clear();
        self.spare.push(bucket);
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
        self.staged = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn slot(worker: WorkerId) -> Timer {
        Timer { worker, kind: TimerKind::Slot }
    }

    #[test]
    fn timers_come_due_by_instant_whatever_order_they_were_pushed_in() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut timers = Timers::default();
        assert_eq!(timers.next_deadline(), None);
        // Runs of one instant (staged), interleaved with others, and an
        // instant that already has a bucket when its run is flushed.
        for (s, w) in [(2, 0), (2, 1), (3, 2), (1, 3), (2, 4), (2, 5), (3, 6)] {
            timers.push(at(s), slot(w));
        }
        assert_eq!(timers.next_deadline(), Some(at(1)));
        assert!(timers.pop_due(at(0)).is_none(), "nothing is due before its instant");
        let workers = |bucket: Vec<Timer>| bucket.iter().map(|t| t.worker).collect::<Vec<_>>();
        assert_eq!(timers.pop_due(at(5)).map(workers), Some(vec![3]));
        assert_eq!(timers.pop_due(at(5)).map(workers), Some(vec![0, 1, 4, 5]));
        // Staged only: the next deadline still sees it.
        timers.push(at(4), slot(7));
        assert_eq!(timers.next_deadline(), Some(at(3)));
        assert_eq!(timers.pop_due(at(5)).map(workers), Some(vec![2, 6]));
        assert_eq!(timers.next_deadline(), Some(at(4)));
        assert_eq!(timers.pop_due(at(5)).map(workers), Some(vec![7]));
        assert!(timers.pop_due(at(5)).is_none());
        timers.push(at(9), slot(8));
        timers.clear();
        assert_eq!(timers.next_deadline(), None);
        // Removal, from a bucket and from the staged run.
        for w in [1, 2, 3] {
            timers.push(at(6), slot(w));
        }
        timers.push(at(7), slot(4));
        timers.remove(at(6), slot(2));
        timers.remove(at(7), slot(4));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.pop_due(at(9)).map(workers), Some(vec![1, 3]));
        timers.remove(at(6), slot(1));
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.next_deadline(), None);
    }
}
