//! A store for the crate's tests whose database can be switched off, to
//! see what the runtime makes of a store that stops answering (status,
//! `/health`, the `orchestrator_store_up` gauge) without a real database
//! to break. It keeps nothing, like the in-memory store, but says it is a
//! persistent one, so that the runtime writes to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::{Backend, Entry, MemoryStore, Restored, Store, StoreError, StoreFuture, StoreKind, WorkerInfo, sealed};
use crate::history::FireRecord;

/// While [`down`](SwitchableStore::set_down), every call fails with
/// [`StoreError::Unreachable`]; clones share the switch.
#[derive(Debug, Clone, Default)]
pub(crate) struct SwitchableStore {
    down: Arc<AtomicBool>,
}

/// What a call fails with while the store is down.
pub(crate) const DOWN: &str = "connection refused by the test's switch";

impl SwitchableStore {
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// `Err` while down, else `ok`.
    fn answer<T: Send + 'static>(&self, ok: T) -> StoreFuture<'static, T> {
        let down = self.down.load(Ordering::SeqCst);
        Box::pin(async move { if down { Err(StoreError::Unreachable(DOWN.into())) } else { Ok(ok) } })
    }
}

impl Store for SwitchableStore {}

impl sealed::Sealed for SwitchableStore {
    fn into_backend(self) -> sealed::Opaque {
        sealed::Opaque(Arc::new(self))
    }
}

impl Backend for SwitchableStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn open(&self, instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>> {
        let down = self.down.load(Ordering::SeqCst);
        Box::pin(async move {
            if down {
                return Err(StoreError::Unreachable(DOWN.into()));
            }
            MemoryStore.open(instance, workers).await
        })
    }

    fn write(&self, _instance: Arc<str>, _entries: Vec<Entry>) -> StoreFuture<'_, u64> {
        self.answer(0)
    }

    fn history(&self, _worker: Arc<str>, _limit: usize) -> StoreFuture<'_, Vec<FireRecord>> {
        self.answer(Vec::new())
    }

    fn prune(&self, _before: DateTime<Utc>) -> StoreFuture<'_, u64> {
        self.answer(0)
    }
}

/// Waits (on the paused clock, bounded) until `handle`'s status says the
/// store is `reachable`.
pub(crate) async fn until_reachable(handle: &crate::Handle, reachable: bool) {
    for _ in 0..1_000 {
        if handle.status().store.reachable == reachable {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the store's reachability never became {reachable}");
}
