//! Status without stalling the scheduler: a mirror of what status shows of
//! every worker, kept outside the engine lock.
//!
//! Reading status copies the engine's records into the mirror in chunks of
//! [`CHUNK`] workers, taking and releasing the engine lock once per chunk, so
//! a reader holds the lock for a few microseconds at a time however many
//! workers there are, and the scheduler's events run between the chunks. The
//! snapshot's strings, dates and names are then built from the mirror with
//! no engine lock held. With up to [`CHUNK`] workers a snapshot is taken in
//! one hold, so it is consistent across workers; beyond that each worker is
//! consistent in itself, and workers may be seen at slightly different
//! instants.
//!
//! The mirror also tells what changed: a sync that finds a worker's record
//! different from its copy stamps it with a sequence number, and
//! [`Changes`] hands out the workers stamped since its last call. It must
//! never be written to by the engine: the engine pays nothing for it beyond
//! a generation counter, and a sync is skipped when that counter has not
//! moved.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Inner, now};
use crate::engine::RecordView;
use crate::status::{Fixed, Globals, OrchestratorState, Status, WorkerStatus};

/// Workers copied per hold of the engine lock: a few microseconds' worth.
pub(super) const CHUNK: usize = 64;

/// How often a [`Changes`] stream looks at the engine at most, so that a
/// dashboard watching a busy orchestrator costs it a bounded amount of work.
const MIN_GAP: Duration = Duration::from_millis(50);

pub(crate) struct Mirror {
    /// What never changes, by worker id.
    fixed: Box<[Fixed]>,
    synced: Mutex<Synced>,
}

struct Synced {
    views: Vec<RecordView>,
    /// The sequence number of each worker's latest change seen.
    stamps: Vec<u64>,
    /// The latest sequence number handed out.
    seq: u64,
    globals: Globals,
    /// The engine generation of the last complete sync.
    generation: Option<u64>,
    scratch: Vec<RecordView>,
}

impl Mirror {
    pub(crate) fn new(fixed: Box<[Fixed]>, globals: Globals) -> Self {
        let n = fixed.len();
        Mirror {
            fixed,
            synced: Mutex::new(Synced {
                views: vec![RecordView::default(); n],
                stamps: vec![0; n],
                seq: 0,
                globals,
                generation: None,
                scratch: vec![RecordView::default(); CHUNK.min(n)],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Synced> {
        self.synced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of the orchestrator and every worker.
    pub(crate) fn status(&self, inner: &Inner) -> Status {
        let mut synced = self.lock();
        synced.sync(inner);
        let now = now();
        Status::of(&self.fixed, &synced.views, &synced.globals, inner.wakeups(), now)
    }

    /// Brings the mirror up to date and returns the workers changed since
    /// `cursor` (which moves to the latest change), with whether the
    /// orchestrator has stopped.
    fn changed_since(&self, inner: &Inner, cursor: &mut u64) -> (Vec<WorkerStatus>, bool) {
        let mut synced = self.lock();
        synced.sync(inner);
        let changed = (0..self.fixed.len())
            .filter(|&w| synced.stamps[w] > *cursor)
            .map(|w| WorkerStatus::of(&self.fixed, w, &synced.views[w], &synced.globals.clock))
            .collect();
        *cursor = synced.seq;
        (changed, synced.globals.state == OrchestratorState::Stopped)
    }

    /// The latest sequence number: a new [`Changes`] starts from here.
    fn seq(&self, inner: &Inner) -> u64 {
        let mut synced = self.lock();
        synced.sync(inner);
        synced.seq
    }
}

impl Synced {
    /// Copies every worker's record, [`CHUNK`] at a time under the engine
    /// lock, and stamps those that changed.
    fn sync(&mut self, inner: &Inner) {
        let n = self.views.len();
        let mut start = 0;
        loop {
            let end = (start + CHUNK).min(n);
            {
                // The raw lock, not `Inner::lock`: this only reads, so it
                // queues no action for a release to carry out.
                let shared = inner.shared.lock().unwrap_or_else(PoisonError::into_inner);
                let engine = &shared.engine;
                if start == 0 {
                    if self.generation == Some(engine.generation()) && self.globals.state == shared.lifecycle {
                        return;
                    }
                    self.generation = Some(engine.generation());
                    self.globals = Globals {
                        state: shared.lifecycle,
                        max_concurrent: engine.max_concurrent(),
                        executing: engine.executing(),
                        clock: *engine.clock(),
                    };
                }
                for (w, view) in (start..end).zip(self.scratch.iter_mut()) {
                    engine.view_into(w, view);
                }
            }
            for (w, view) in (start..end).zip(self.scratch.iter()) {
                if self.views[w] != *view {
                    self.views[w].clone_from(view);
                    self.seq += 1;
                    self.stamps[w] = self.seq;
                }
            }
            if end == n {
                return;
            }
            start = end;
        }
    }
}

/// Status changes as they happen, worker by worker: from
/// [`Handle::changes`](crate::Handle::changes).
///
/// Each call to [`next`](Self::next) waits until at least one worker's
/// status differs from what the previous call returned, then returns the
/// current status of every worker that changed, sorted by name. Changes in
/// between are merged: a worker that ran and finished between two calls is
/// returned once, as it is now. Nothing polls: the stream sleeps until the
/// scheduler handles an event, and returns at most every 50 ms (changes
/// within that gap come together).
///
/// ```no_run
/// # async fn demo(handle: orchestrator::Handle) {
/// let mut changes = handle.changes();
/// while let Some(workers) = changes.next().await {
///     for worker in workers {
///         println!("{}: {}", worker.name, worker.state);
///     }
/// }
/// // The orchestrator has stopped.
/// # }
/// ```
pub struct Changes {
    inner: Arc<Inner>,
    cursor: u64,
    last_delivery: Option<tokio::time::Instant>,
}

impl Changes {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        inner.watchers.fetch_add(1, Ordering::SeqCst);
        let cursor = inner.mirror.seq(&inner);
        Changes { inner, cursor, last_delivery: None }
    }

    /// The workers whose status changed since the previous call (or since
    /// [`Handle::changes`](crate::Handle::changes) for the first), once at
    /// least one has; `None` once the orchestrator has stopped and its last
    /// changes were returned.
    pub async fn next(&mut self) -> Option<Vec<WorkerStatus>> {
        loop {
            if let Some(last) = self.last_delivery {
                tokio::time::sleep_until(last + MIN_GAP).await;
            }
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Registered before looking: a change after the look wakes it.
            notified.as_mut().enable();
            let (mut changed, stopped) = self.inner.mirror.changed_since(&self.inner, &mut self.cursor);
            if !changed.is_empty() {
                let inner = &self.inner;
                inner.store.place(changed.iter_mut().filter_map(|w| Some((inner.find(&w.name)?, w))));
                self.last_delivery = Some(tokio::time::Instant::now());
                return Some(changed);
            }
            if stopped {
                return None;
            }
            notified.await;
        }
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.inner.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}
