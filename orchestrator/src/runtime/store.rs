//! The runtime's side of a store (see [`crate::store`]): the one door
//! between the orchestrator and its database.
//!
//! - At start, [`StoreLink::open`] registers the workers and returns what
//!   the store kept, which the engine resumes from.
//! - The engine's facts are turned into entries under the engine lock (a
//!   claimed fire's entries get its lease's token there, so that a lease is
//!   never renewed after its run ended) and sent, in order, to one writer
//!   task, which retries with backoff while the store is unreachable, and at
//!   once when another task finds it reachable again.
//! - In cluster mode a worker's lane claims each fire before its first
//!   attempt ([`StoreLink::claim`]); a renewer keeps the leases of the
//!   claimed fires alive and cancels a run whose lease it cannot keep; a
//!   poller heartbeats, takes over the fires of dead replicas (running the
//!   next attempt of those the store hands to this one) and brings
//!   the cluster-wide enabled flags and failure counts into the engine,
//!   woken early by the store's notifications.
//!
//! With the in-memory store none of this runs: the engine keeps no journal
//! and lanes claim nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::engine::journal::{from_stored, scheduled_at};
use crate::engine::{Event, LostFire, Refusal};
use crate::graph::{Graph, WorkerId};
use crate::history::{FireOutcome, FireRecord};
use crate::schedule::WallClock;
use crate::spec::Scope;
use crate::store::{
    Adoption, Backend, Claim, ClaimRequest, ClusterSettings, Entry, Fact, InstanceInfo, Restored, StoreError,
    StoreKind, WorkerInfo, to_millis,
};

/// The store's reachability, for status and `/health`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreStatus {
    /// Which store.
    pub kind: StoreKind,
    /// Whether its last operation succeeded.
    pub reachable: bool,
    /// Since when it has been unreachable.
    pub unreachable_since: Option<DateTime<Utc>>,
    /// The last error, while unreachable (never contains a password).
    pub error: Option<String>,
}

impl StoreStatus {
    /// The in-memory store: always reachable.
    pub(crate) fn memory() -> Self {
        StoreStatus { kind: StoreKind::Memory, reachable: true, unreachable_since: None, error: None }
    }
}

/// A claimed fire this instance holds (cluster mode).
struct Lease {
    token: i64,
    /// When the last successful claim or renewal was *sent*: the lease
    /// holds for at least `lease_ttl` from then, on any clock.
    renewed: Instant,
    /// Cancels the attempt running under this lease.
    cancel: CancellationToken,
}

/// What a Cluster-scope worker's claim carries, worked out once.
struct ClaimShape {
    conflicts: Arc<[Arc<str>]>,
    depends_on: Arc<[Arc<str>]>,
    /// The last claim of a fire of this worker here was answered `taken`:
    /// another replica is winning this worker's fires, and the next claim
    /// gives it a head start of [`CLAIM_DEFERRAL`].
    lost_last: AtomicBool,
}

/// How long a replica that lost a worker's last fire to another one waits
/// before claiming the next. Every replica computes every fire, so without
/// it all of them claim each fire at the same instant and queue on the
/// same row locks (C1 in `benches/README.md`: 3 claims per fire, the
/// losers' included, made the winners' claims wait). With it, the replica
/// that won a worker's last fire claims alone, and the others, a moment
/// later, find the fire taken without taking a lock. The price: when the
/// winner dies, its workers' next fires start this much later (once; the
/// next winner claims at once), and a replica never defers an adopted
/// fire, a retried claim, or a fire triggered here.
pub(crate) const CLAIM_DEFERRAL: Duration = Duration::from_millis(150);

pub(crate) struct StoreLink {
    backend: Arc<dyn Backend>,
    kind: StoreKind,
    instance: Arc<str>,
    cluster: Option<ClusterSettings>,
    retention: Option<Duration>,
    /// Per worker: its fires are claimed (Cluster scope, in cluster mode).
    shapes: Box<[Option<ClaimShape>]>,
    /// Set at start; shared with every lane for `Context::scheduled_at`.
    pub(crate) clock: Arc<OnceLock<WallClock>>,
    writer: OnceLock<mpsc::UnboundedSender<Vec<Entry>>>,
    leases: Mutex<HashMap<(WorkerId, DateTime<Utc>), Lease>>,
    health: Mutex<StoreStatus>,
    /// Enabled-flag writes queued and not yet written: a poll must not
    /// bring back the state they replace.
    states_in_flight: AtomicU64,
    /// Bumped when such a write completes.
    states_written: AtomicU64,
    /// Wakes the poller (a notification from another replica).
    poke: Notify,
    /// Wakes the writer out of its backoff when the store is reachable
    /// again (a permit is kept if it is not waiting).
    back: Notify,
    /// The Cluster workers another instance runs, with that instance, as
    /// of the last poll (empty while the store is unreachable).
    elsewhere: Mutex<HashMap<WorkerId, String>>,
}

impl StoreLink {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        instance: Arc<str>,
        retention: Option<Duration>,
        graph: &Graph,
    ) -> Self {
        let cluster = backend.cluster();
        let names = |ids: &mut dyn Iterator<Item = WorkerId>| -> Arc<[Arc<str>]> {
            ids.filter(|&c| graph.workers[c].scope == Scope::Cluster).map(|c| graph.workers[c].name.clone()).collect()
        };
        let shapes = graph
            .workers
            .iter()
            .zip(&graph.edges)
            .map(|(config, edges)| {
                (cluster.is_some() && config.scope == Scope::Cluster).then(|| ClaimShape {
                    conflicts: names(&mut edges.conflicts.iter().copied()),
                    depends_on: names(&mut edges.depends_on.iter().copied()),
                    lost_last: AtomicBool::new(false),
                })
            })
            .collect();
        let kind = backend.kind();
        StoreLink {
            backend,
            kind,
            instance,
            cluster,
            retention,
            shapes,
            clock: Arc::new(OnceLock::new()),
            writer: OnceLock::new(),
            leases: Mutex::new(HashMap::new()),
            health: Mutex::new(StoreStatus { kind, reachable: true, unreachable_since: None, error: None }),
            states_in_flight: AtomicU64::new(0),
            states_written: AtomicU64::new(0),
            poke: Notify::new(),
            back: Notify::new(),
            elsewhere: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the store keeps anything (not the in-memory default).
    pub(crate) fn is_persistent(&self) -> bool {
        self.kind != StoreKind::Memory
    }

    pub(crate) fn status(&self) -> StoreStatus {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn reachable(&self) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if !health.reachable {
            tracing::info!(store = %self.kind, "the store is reachable again");
            health.reachable = true;
            health.unreachable_since = None;
            health.error = None;
            self.gauge_up(true);
            self.back.notify_one();
        }
    }

    fn unreachable(&self, error: &StoreError) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if health.reachable {
            tracing::error!(store = %self.kind, error = %error,
                "the store is unreachable: Cluster workers wait, facts are kept in memory until it is back");
            health.reachable = false;
            health.unreachable_since = Some(Utc::now());
            self.gauge_up(false);
        }
        health.error = Some(error.to_string());
    }

    /// `orchestrator_store_up`, set when the reachability changes (under
    /// the health lock, so that the gauge ends as the status does) and at
    /// start. Not kept as a handle: the recorder may be installed after
    /// the link is made, and a change is rare.
    fn gauge_up(&self, up: bool) {
        metrics::gauge!(crate::metrics::STORE_UP, "store" => self.kind.to_string()).set(if up { 1.0 } else { 0.0 });
    }

    /// What the store is told of each worker when this instance starts at `wall`.
    pub(crate) fn infos(graph: &Graph, wall: DateTime<Utc>) -> Vec<WorkerInfo> {
        graph
            .workers
            .iter()
            .map(|config| WorkerInfo {
                name: config.name.clone(),
                anchor: to_millis(wall + chrono::Duration::from_std(config.initial_delay).unwrap_or_default()),
                enabled: config.enabled,
                threshold: config.max_consecutive_failures,
                max_attempts: config.retries.saturating_add(1),
            })
            .collect()
    }

    /// How far the store's clock is ahead of this process's (see
    /// `Backend::clock_offset`); said in the log when it is more than a second.
    pub(crate) async fn clock_offset(&self) -> Result<chrono::Duration, StoreError> {
        let offset = self.backend.clock_offset().await?;
        if offset.abs() > chrono::Duration::seconds(1) {
            tracing::warn!(
                offset_ms = offset.num_milliseconds(),
                "this instance's clock is off the database's: fire times follow the database's clock"
            );
        }
        Ok(offset)
    }

    /// Registers this instance and its workers; what the store kept of each.
    pub(crate) async fn open(&self, workers: Vec<WorkerInfo>) -> Result<Vec<Restored>, StoreError> {
        self.backend.open(self.instance.clone(), workers).await
    }

    /// The engine started with `clock`: fire identities can be computed,
    /// and the writer and (in cluster mode) the renewer, the poller and the
    /// listener start.
    pub(crate) fn started(&self, inner: &Arc<Inner>, clock: WallClock) {
        let _ = self.clock.set(clock);
        if !self.is_persistent() {
            return;
        }
        {
            let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            self.gauge_up(health.reachable);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.writer.set(tx);
        let tasks = inner.store_tasks();
        tasks.spawn(write_loop(inner.clone(), rx));
        if let Some(retention) = self.retention {
            tasks.spawn(prune_loop(inner.clone(), retention));
        }
        if let Some(settings) = self.cluster {
            tasks.spawn(renew_loop(inner.clone(), settings));
            tasks.spawn(poll_loop(inner.clone(), settings));
            tasks.spawn(listen_loop(inner.clone()));
        }
    }

    /// Turns the engine's facts into entries and queues them for the
    /// writer (under the engine lock, in the engine's order).
    pub(crate) fn queue(&self, inner: &Inner, facts: Vec<Fact>) {
        let Some(writer) = self.writer.get() else { return };
        let mut entries = Vec::with_capacity(facts.len());
        for fact in facts {
            let Some(w) = inner.find(fact.worker()) else { continue };
            let shared = self.shapes[w].is_some();
            let token = if shared { self.token_for(w, &fact) } else { None };
            let keep = match &fact {
                // The claim recorded the start.
                Fact::Started { .. } => !shared,
                // Only the lease holder writes about a claimed fire.
                Fact::Attempt { .. } | Fact::Finished { .. } => !shared || token.is_some(),
                // A fire dropped here (shutdown, disabled) may run elsewhere.
                Fact::Dropped { outcome, .. } => !(shared && *outcome == FireOutcome::Cancelled),
                Fact::State { .. } => {
                    self.states_in_flight.fetch_add(1, Ordering::SeqCst);
                    true
                }
            };
            if keep {
                entries.push(Entry { fact, token, shared });
            }
        }
        if !entries.is_empty() {
            let _ = writer.send(entries);
        }
    }

    /// The token of the lease on `fact`'s fire; a run's end takes the lease
    /// away, so it is renewed no more.
    fn token_for(&self, w: WorkerId, fact: &Fact) -> Option<i64> {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        match fact {
            Fact::Attempt { scheduled_at, .. } => leases.get(&(w, *scheduled_at)).map(|l| l.token),
            Fact::Finished { scheduled_at, .. } => leases.remove(&(w, *scheduled_at)).map(|l| l.token),
            _ => None,
        }
    }

    /// Whether `worker`'s fires are claimed before they run.
    pub(crate) fn claims(&self, worker: WorkerId) -> bool {
        self.shapes.get(worker).is_some_and(Option::is_some)
    }

    /// Claims the fire of `worker` due at `due` (cluster mode). `Ok`: the
    /// token to cancel the attempt by if the lease is lost. `Err`: why not.
    /// `fresh`: the claim of a fire's first attempt, which may be deferred
    /// (see [`CLAIM_DEFERRAL`]).
    pub(crate) async fn claim(
        &self,
        worker: WorkerId,
        name: &Arc<str>,
        due: Instant,
        fresh: bool,
        abort: &CancellationToken,
    ) -> Result<CancellationToken, Refusal> {
        let shape = self.shapes[worker].as_ref().expect("claims() said so");
        let settings = self.cluster.expect("claims only in cluster mode");
        if fresh && shape.lost_last.swap(false, Ordering::Relaxed) {
            tokio::select! {
                () = tokio::time::sleep(CLAIM_DEFERRAL) => {}
                () = abort.cancelled() => {
                    let why = "the orchestrator is stopping".to_string();
                    return Err(Refusal::Busy { why, retry: settings.poll_interval });
                }
            }
        }
        let clock = self.clock.get().expect("set at start");
        let at = scheduled_at(clock, due);
        let request = ClaimRequest {
            worker: name.clone(),
            scheduled_at: at,
            instance: self.instance.clone(),
            conflicts: shape.conflicts.clone(),
            depends_on: shape.depends_on.clone(),
        };
        let sent = Instant::now();
        match self.backend.claim(request).await {
            Ok(Claim::Granted { token }) => {
                self.reachable();
                metrics::counter!("orchestrator_claims_total", "worker" => name.to_string(), "result" => "granted")
                    .increment(1);
                let cancel = abort.child_token();
                let lease = Lease { token, renewed: sent, cancel: cancel.clone() };
                self.leases.lock().unwrap_or_else(PoisonError::into_inner).insert((worker, at), lease);
                Ok(cancel)
            }
            Ok(refused) => {
                self.reachable();
                let (result, refusal) = match refused {
                    Claim::Taken { by } => {
                        shape.lost_last.store(true, Ordering::Relaxed);
                        ("taken", Refusal::Taken { by })
                    }
                    Claim::Busy { why } => ("busy", Refusal::Busy { why, retry: settings.poll_interval }),
                    Claim::UpstreamFailed { dependency } => ("upstream_failed", Refusal::UpstreamFailed { dependency }),
                    Claim::Granted { .. } => unreachable!("matched above"),
                };
                metrics::counter!("orchestrator_claims_total", "worker" => name.to_string(), "result" => result)
                    .increment(1);
                Err(refusal)
            }
            Err(error) => {
                self.unreachable(&error);
                metrics::counter!("orchestrator_claims_total", "worker" => name.to_string(), "result" => "error")
                    .increment(1);
                let why = format!("the store is unreachable ({error})");
                Err(Refusal::Busy { why, retry: settings.poll_interval.max(Duration::from_secs(1)) })
            }
        }
    }

    /// A fire of `worker` was triggered here: its claim is not deferred.
    /// Inlined: on every trigger, and with the in-memory store a lookup
    /// that finds nothing (as a call it cost W4 7 instructions a run).
    #[inline]
    pub(crate) fn prefer(&self, worker: WorkerId) {
        if let Some(Some(shape)) = self.shapes.get(worker) {
            shape.lost_last.store(false, Ordering::Relaxed);
        }
    }

    /// Writes off a lost fire handed to this instance that it cannot run
    /// (see [`Adoption`]): it stays `lost`, for good, saying `why`.
    fn write_off(&self, adoption: &Adoption, why: &str) {
        tracing::warn!(worker = %adoption.worker, scheduled_at = %adoption.scheduled_at,
            instance = %adoption.lost_by, why, "fire lost on another instance; not retried here");
        let Some(writer) = self.writer.get() else { return };
        let fact = Fact::Dropped {
            worker: adoption.worker.as_str().into(),
            scheduled_at: adoption.scheduled_at,
            at: Utc::now(),
            outcome: FireOutcome::Lost,
            error: Some(why.to_string()),
        };
        let _ = writer.send(vec![Entry { fact, token: None, shared: true }]);
    }

    /// The cancel token of the lease on `worker`'s fire due at `due`, for
    /// a later attempt of its run.
    pub(crate) fn lease_cancel(&self, worker: WorkerId, due: Instant) -> Option<CancellationToken> {
        let at = scheduled_at(self.clock.get()?, due);
        self.leases.lock().unwrap_or_else(PoisonError::into_inner).get(&(worker, at)).map(|l| l.cancel.clone())
    }

    /// The Cluster workers another instance runs now, with that instance,
    /// as of the last poll (cluster mode; otherwise none).
    pub(crate) fn running_elsewhere(&self) -> HashMap<WorkerId, String> {
        self.elsewhere.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Fills `running_on` in `workers` (each with its id): this instance
    /// for a run here (known here), else the instance the store's last
    /// poll saw running it (cluster mode). One rule for `Handle::status`
    /// and `Handle::changes`.
    pub(crate) fn place<'a>(&self, workers: impl Iterator<Item = (WorkerId, &'a mut crate::WorkerStatus)>) {
        let mut elsewhere = self.running_elsewhere();
        for (w, worker) in workers {
            worker.running_on = if matches!(worker.state, crate::WorkerState::Running { .. }) {
                Some(self.instance.to_string())
            } else {
                elsewhere.remove(&w)
            };
        }
    }

    /// Keeps what a poll found running (`(worker, scheduled_at, instance)`)
    /// on other instances, replacing what the previous poll found. This
    /// instance's own runs are known better locally.
    fn saw_running(&self, inner: &Inner, running: &[(String, DateTime<Utc>, String)]) {
        let elsewhere = running
            .iter()
            .filter(|(_, _, instance)| **instance != *self.instance)
            .filter_map(|(worker, _, instance)| Some((inner.find(worker)?, instance.clone())))
            .collect();
        *self.elsewhere.lock().unwrap_or_else(PoisonError::into_inner) = elsewhere;
    }

    /// The latest fires of `name`, from the store.
    pub(crate) async fn history(&self, name: Arc<str>, limit: usize) -> Result<Vec<FireRecord>, StoreError> {
        self.backend.history(name, limit).await
    }

    /// The live replicas (cluster mode), or this instance alone.
    pub(crate) async fn instances(&self, started: DateTime<Utc>) -> Result<Vec<InstanceInfo>, StoreError> {
        if self.cluster.is_some() {
            return self.backend.instances().await;
        }
        Ok(vec![InstanceInfo { name: self.instance.to_string(), started_at: started, last_heartbeat: Utc::now() }])
    }

    /// At the end of the driver: writes what is queued (bounded by
    /// `deadline`), then leaves the cluster.
    pub(crate) async fn close(&self, inner: &Arc<Inner>, deadline: Duration) {
        if !self.is_persistent() {
            return;
        }
        inner.store_tasks().close_writer(deadline).await;
        if self.cluster.is_some()
            && let Err(error) = self.backend.leave(self.instance.clone()).await
        {
            tracing::warn!(error = %error, "could not deregister from the cluster");
        }
    }
}

/// The background tasks of a store, ended when the driver closes the store.
#[derive(Default)]
pub(crate) struct StoreTasks {
    stop: CancellationToken,
    writer_done: CancellationToken,
    handles: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl StoreTasks {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner).push(tokio::spawn(task));
    }

    /// Tells the writer to write what is queued and end (the sender lives
    /// on in the link, so closing is signalled through `stop`), waits for
    /// it up to `deadline`, and ends the other tasks.
    async fn close_writer(&self, deadline: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(deadline, self.writer_done.cancelled()).await.is_err() {
            tracing::warn!("the store did not take the last facts in time; they are lost");
        }
        for handle in self.handles.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            handle.abort();
        }
    }
}

/// Pause after the `failures`-th failure in a row: 100 ms doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100).saturating_mul(1u32 << failures.min(9)).min(Duration::from_secs(30))
}

async fn write_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Vec<Entry>>) {
    let link = &inner.store;
    let tasks = inner.store_tasks();
    loop {
        let first = tokio::select! {
            biased;
            batch = rx.recv() => batch,
            () = tasks.stop.cancelled() => None,
        };
        let mut entries = match first {
            Some(batch) => batch,
            None => {
                // Stopping: write whatever is left, then end.
                let mut rest = Vec::new();
                while let Ok(batch) = rx.try_recv() {
                    rest.extend(batch);
                }
                if rest.is_empty() {
                    break;
                }
                rest
            }
        };
        while let Ok(more) = rx.try_recv() {
            entries.extend(more);
        }
        let states = entries.iter().filter(|e| matches!(e.fact, Fact::State { .. })).count() as u64;
        let mut failures = 0;
        loop {
            match link.backend.write(link.instance.clone(), entries.clone()).await {
                Ok(refused) => {
                    link.reachable();
                    if refused > 0 {
                        tracing::warn!(
                            refused,
                            "writes about fires this instance no longer holds were refused (fencing)"
                        );
                    }
                    break;
                }
                Err(error) => {
                    link.unreachable(&error);
                    failures += 1;
                    if tasks.stop.is_cancelled() && failures > 3 {
                        tracing::error!(facts = entries.len(), error = %error, "stopping: facts not written");
                        break;
                    }
                    // Written as soon as the store is back (another task
                    // reached it): the end of a run that finished during an
                    // outage must land before its lease is judged lapsed.
                    tokio::select! {
                        () = tokio::time::sleep(backoff(failures)) => {}
                        () = link.back.notified() => {}
                    }
                }
            }
        }
        if states > 0 {
            link.states_in_flight.fetch_sub(states, Ordering::SeqCst);
            link.states_written.fetch_add(1, Ordering::SeqCst);
            if let Err(error) = link.backend.notify().await {
                tracing::debug!(error = %error, "could not notify the other replicas; they will poll");
            }
        }
        if tasks.stop.is_cancelled() && rx.is_empty() {
            break;
        }
    }
    tasks.writer_done.cancel();
}

async fn prune_loop(inner: Arc<Inner>, retention: Duration) {
    let link = &inner.store;
    loop {
        let before = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        match link.backend.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned fires older than the history retention"),
            Err(error) => tracing::warn!(error = %error, "could not prune the history"),
        }
        tokio::time::sleep(retention.clamp(Duration::from_secs(1), Duration::from_secs(600))).await;
    }
}

async fn renew_loop(inner: Arc<Inner>, settings: ClusterSettings) {
    let link = &inner.store;
    let ttl = settings.lease_ttl;
    // Renewed every third of the TTL; a lease not renewed for five sixths
    // of it is given up before it can expire, on this instance's own clock.
    let every = (ttl / 6).max(Duration::from_millis(50));
    let give_up = ttl - ttl / 6;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let due: Vec<i64> = {
            let leases = link.leases.lock().unwrap_or_else(PoisonError::into_inner);
            leases.values().filter(|l| now.duration_since(l.renewed) >= ttl / 3).map(|l| l.token).collect()
        };
        if !due.is_empty() {
            match link.backend.renew(link.instance.clone(), due.clone()).await {
                Ok(held) => {
                    link.reachable();
                    let mut leases = link.leases.lock().unwrap_or_else(PoisonError::into_inner);
                    for lease in leases.values_mut().filter(|l| due.contains(&l.token)) {
                        if held.contains(&lease.token) {
                            lease.renewed = now;
                        } else if !lease.cancel.is_cancelled() {
                            tracing::warn!(
                                token = lease.token,
                                "lease taken over by another instance: cancelling its run"
                            );
                            lease.cancel.cancel();
                        }
                    }
                }
                Err(error) => link.unreachable(&error),
            }
        }
        let leases = link.leases.lock().unwrap_or_else(PoisonError::into_inner);
        for lease in leases.values() {
            if now.duration_since(lease.renewed) >= give_up && !lease.cancel.is_cancelled() {
                tracing::error!(
                    token = lease.token,
                    "lease could not be renewed: cancelling its run before it expires"
                );
                lease.cancel.cancel();
            }
        }
    }
}

async fn poll_loop(inner: Arc<Inner>, settings: ClusterSettings) {
    let link = &inner.store;
    let mut failures = 0;
    loop {
        let written = link.states_written.load(Ordering::SeqCst);
        match link.backend.poll(link.instance.clone()).await {
            Ok(polled) => {
                link.reachable();
                failures = 0;
                for (worker, scheduled_at, instance) in &polled.lost {
                    tracing::warn!(worker = %worker, %scheduled_at, instance = %instance,
                        "fire lost: its instance stopped renewing the lease; recorded lost");
                }
                // A state written meanwhile (or still queued) is newer than
                // what this poll read.
                let stale = link.states_in_flight.load(Ordering::SeqCst) > 0
                    || link.states_written.load(Ordering::SeqCst) != written;
                if !stale {
                    inner.sync(&polled.workers);
                }
                if !polled.adopt.is_empty() {
                    inner.adopt(&polled.adopt);
                }
                link.saw_running(&inner, &polled.running);
                let pause = settings.poll_interval;
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = link.poke.notified() => {}
                }
            }
            Err(error) => {
                link.unreachable(&error);
                link.saw_running(&inner, &[]);
                failures += 1;
                tokio::time::sleep(backoff(failures).min(settings.poll_interval.max(Duration::from_secs(1)))).await;
            }
        }
    }
}

async fn listen_loop(inner: Arc<Inner>) {
    let link = &inner.store;
    let mut failures = 0;
    loop {
        match link.backend.listen().await {
            Ok(()) => {
                failures = 0;
                link.poke.notify_one();
            }
            Err(error) => {
                failures += 1;
                tracing::debug!(error = %error, "the store's listening connection is lost; reconnecting");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

impl Inner {
    /// Runs the next attempt of the fires lost on other instances that the
    /// store handed to this one (see [`Event::Adopt`]), or writes them off.
    fn adopt(self: &Arc<Self>, adoptions: &[Adoption]) {
        let link = &self.store;
        let Some(clock) = link.clock.get() else { return };
        let now = super::now();
        let mut shared = self.lock();
        for adoption in adoptions {
            let Some(w) = self.find(&adoption.worker).filter(|&w| link.claims(w)) else {
                link.write_off(adoption, "this instance does not run the worker in the cluster");
                continue;
            };
            // Its identity must come back from the instant exactly, or the
            // claim would name another fire.
            let due = clock.instant(adoption.scheduled_at);
            if scheduled_at(clock, due) != to_millis(adoption.scheduled_at) {
                link.write_off(adoption, "its time cannot be represented on this instance's clock");
                continue;
            }
            let lost_by = adoption.lost_by.clone();
            let lost = LostFire { worker: w, due, attempts_done: adoption.attempts, lost_by };
            shared.engine.handle(now, Event::Adopt(Box::new(lost)));
        }
    }

    /// Brings the cluster-wide flags and failure counts into the engine.
    fn sync(self: &Arc<Self>, workers: &[(String, Option<crate::store::StoredDisable>, u32)]) {
        let now = super::now();
        let mut shared = self.lock();
        for (name, disabled, failures) in workers {
            let Some(w) = self.find(name) else { continue };
            let (local, local_failures) = shared.engine.standing(w);
            let differs = local.is_some() != disabled.is_some() || local_failures != *failures;
            if differs {
                let disabled = disabled.as_ref().map(|d| Box::new(from_stored(d)));
                shared.engine.handle(now, Event::Sync { worker: w, disabled, consecutive_failures: *failures });
            }
        }
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use std::time::Duration;

    use metrics_exporter_prometheus::PrometheusBuilder;

    use std::sync::{Arc, Mutex, PoisonError};

    use chrono::{DateTime, Utc};

    use super::CLAIM_DEFERRAL;
    use crate::history::FireRecord;
    use crate::store::switchable::SwitchableStore;
    use crate::store::{
        Backend, Claim, ClaimRequest, ClusterSettings, Entry, MemoryStore, Restored, StoreFuture, StoreKind, WorkerInfo,
    };
    use crate::{Orchestrator, WorkerSpec};

    #[tokio::test(start_paused = true)]
    async fn store_up_is_set_at_start_and_follows_the_stores_reachability() {
        // A recorder of this test's own: the runtime is on this thread alone.
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let up = |value: u8| format!("orchestrator_store_up{{store=\"sqlite\"}} {value}\n");

        let store = SwitchableStore::default();
        let orchestrator = Orchestrator::builder()
            .without_registered_workers()
            .worker(WorkerSpec::new("w", || async {}))
            .store(store.clone())
            .build()
            .expect("valid");
        let handle = orchestrator.handle();
        let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
        assert!(handle.trigger("w").await.expect("accepted").is_success());
        let text = metrics.render();
        assert!(text.contains(&up(1)), "set at start: {text}");
        assert!(text.contains("# HELP orchestrator_store_up"), "{text}");

        store.set_down(true);
        assert!(handle.trigger("w").await.expect("accepted").is_success(), "runs without the store");
        crate::store::switchable::until_reachable(&handle, false).await;
        let text = metrics.render();
        assert!(text.contains(&up(0)), "unreachable: {text}");

        store.set_down(false);
        crate::store::switchable::until_reachable(&handle, true).await;
        let text = metrics.render();
        assert!(text.contains(&up(1)), "back: {text}");

        handle.shutdown().await;
        running.await.expect("joined").expect("stopped cleanly");
    }

    /// A cluster store of the test's own: it keeps nothing, records when
    /// each claim arrives, and answers the first claim of a worker `taken`,
    /// the others `granted`.
    #[derive(Clone, Default)]
    struct LosesFirstClaims {
        claims: Arc<Mutex<Vec<(String, tokio::time::Instant)>>>,
    }

    impl crate::store::Store for LosesFirstClaims {}

    impl crate::store::sealed::Sealed for LosesFirstClaims {
        fn into_backend(self) -> crate::store::sealed::Opaque {
            crate::store::sealed::Opaque(Arc::new(self))
        }
    }

    impl Backend for LosesFirstClaims {
        fn kind(&self) -> StoreKind {
            StoreKind::Postgres
        }

        fn cluster(&self) -> Option<ClusterSettings> {
            Some(ClusterSettings { lease_ttl: Duration::from_secs(30), poll_interval: Duration::from_secs(1) })
        }

        fn open(&self, instance: Arc<str>, workers: Vec<WorkerInfo>) -> StoreFuture<'_, Vec<Restored>> {
            MemoryStore.open(instance, workers)
        }

        fn write(&self, instance: Arc<str>, entries: Vec<Entry>) -> StoreFuture<'_, u64> {
            MemoryStore.write(instance, entries)
        }

        fn history(&self, worker: Arc<str>, limit: usize) -> StoreFuture<'_, Vec<FireRecord>> {
            MemoryStore.history(worker, limit)
        }

        fn prune(&self, before: DateTime<Utc>) -> StoreFuture<'_, u64> {
            MemoryStore.prune(before)
        }

        fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
            let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            let first = !claims.iter().any(|(w, _)| **w == *request.worker);
            claims.push((request.worker.to_string(), tokio::time::Instant::now()));
            let answer = if first { Claim::Taken { by: "other".into() } } else { Claim::Granted { token: 1 } };
            Box::pin(async move { Ok(answer) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_that_lost_a_workers_fire_defers_its_next_claim_but_not_a_trigger() {
        let store = LosesFirstClaims::default();
        let orchestrator = Orchestrator::builder()
            .without_registered_workers()
            .worker(WorkerSpec::new("w", || async {}).interval(Duration::from_secs(1)))
            .worker(WorkerSpec::new("t", || async {}).interval(Duration::from_secs(60)))
            .store(store.clone())
            .build()
            .expect("valid");
        let handle = orchestrator.handle();
        let t0 = tokio::time::Instant::now();
        let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        // `t`'s first fire (at start) was taken elsewhere; a trigger here is
        // claimed at once all the same.
        let triggered = tokio::time::Instant::now();
        assert!(handle.trigger("t").await.expect("accepted").is_success());
        handle.shutdown().await;
        running.await.expect("joined").expect("stopped cleanly");

        let claims = store.claims.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let at = |worker: &str| -> Vec<u128> {
            claims.iter().filter(|(w, _)| w == worker).map(|(_, at)| (*at - t0).as_millis()).collect()
        };
        // Lost at 0 s: the 1 s fire is claimed 150 ms late; won, the 2 s
        // fire is claimed on time.
        assert_eq!(at("w"), vec![0, 1_000 + CLAIM_DEFERRAL.as_millis(), 2_000]);
        assert_eq!(at("t"), vec![0, (triggered - t0).as_millis()]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_store_has_no_store_up_gauge() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let orchestrator = Orchestrator::builder()
            .without_registered_workers()
            .worker(WorkerSpec::new("w", || async {}))
            .build()
            .expect("valid");
        let handle = orchestrator.handle();
        let running = tokio::spawn(orchestrator.run_until(std::future::pending()));
        assert!(handle.trigger("w").await.expect("accepted").is_success());
        let text = metrics.render();
        assert!(text.contains("orchestrator_runs_total"), "the recorder sees this orchestrator: {text}");
        assert!(!text.contains("orchestrator_store_up{"), "nothing to be up: {text}");
        handle.shutdown().await;
        running.await.expect("joined").expect("stopped cleanly");
    }
}
