//! A test harness for the engine: virtual time, a log of what started, and
//! helpers to finish attempts. What the tokio driver does, minus tokio.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Action, AttemptResult, Engine, Event, WaiterId};
use crate::context::RunId;
use crate::graph::{self, WorkerId};
use crate::spec::WorkerSpec;
use crate::status::RunOutcome;
use crate::worker_fn::StateMap;

/// One attempt the engine started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Started {
    pub worker: String,
    pub run: RunId,
    pub attempt: u32,
    /// The run's first attempt on this instance (its fire is claimed first).
    pub first: bool,
    /// Seconds since the simulation's start.
    pub at: Duration,
}

pub(crate) struct Sim {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
    /// Every attempt started, in order.
    pub started: Vec<Started>,
    /// Attempts executing now: worker name -> (run, attempt).
    pub running: BTreeMap<String, (RunId, u32)>,
    /// Trigger outcomes received.
    pub outcomes: BTreeMap<WaiterId, RunOutcome>,
    /// Runs asked to stop.
    pub cancelled: Vec<RunId>,
    next_waiter: WaiterId,
}

/// A worker body that does nothing: the simulation decides how attempts end.
pub(crate) fn spec(name: &str) -> WorkerSpec {
    WorkerSpec::new(name.to_string(), || async {})
}

impl Sim {
    pub(crate) fn new(specs: Vec<WorkerSpec>, max_concurrent: usize) -> Self {
        Self::with_wall(specs, max_concurrent, "2026-01-01T00:00:00Z")
    }

    pub(crate) fn with_wall(specs: Vec<WorkerSpec>, max_concurrent: usize, wall: &str) -> Self {
        Self::restored(specs, max_concurrent, wall, None)
    }

    /// A simulation started from what a store kept (`restored`, by worker id).
    pub(crate) fn restored(
        specs: Vec<WorkerSpec>,
        max_concurrent: usize,
        wall: &str,
        restored: Option<Vec<crate::store::Restored>>,
    ) -> Self {
        Self::seeded(specs, max_concurrent, wall, restored, 42)
    }

    /// [`Sim::restored`] with the engine's random source seeded with `seed`
    /// (another replica, as far as chance goes).
    pub(crate) fn seeded(
        specs: Vec<WorkerSpec>,
        max_concurrent: usize,
        wall: &str,
        restored: Option<Vec<crate::store::Restored>>,
        seed: u64,
    ) -> Self {
        let graph = match graph::validate(specs, &StateMap::default()) {
            Ok(graph) => graph,
            Err(e) => panic!("test graph is invalid: {e}"),
        };
        let t0 = Instant::now();
        let engine = Engine::new(graph, max_concurrent, seed, t0);
        let mut sim = Sim {
            engine,
            t0,
            now: t0,
            started: Vec::new(),
            running: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            cancelled: Vec::new(),
            next_waiter: 1,
        };
        let wall: DateTime<Utc> = DateTime::parse_from_rfc3339(wall).expect("valid test time").with_timezone(&Utc);
        sim.engine.start_from(t0, wall, restored.as_deref());
        sim.drain();
        sim
    }

    pub(crate) fn id(&self, name: &str) -> WorkerId {
        self.engine.find(name).unwrap_or_else(|| panic!("no worker {name}"))
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Start { worker, run, attempt, first, .. } => {
                    let name = self.engine.config(worker).name.to_string();
                    let previous = self.running.insert(name.clone(), (run, attempt));
                    assert!(previous.is_none(), "{name} started while already executing");
                    self.started.push(Started { worker: name, run, attempt, first, at: self.now - self.t0 });
                }
                Action::Cancel { run, .. } => self.cancelled.push(run),
                Action::Resolve { waiter, outcome } => {
                    self.outcomes.insert(waiter, outcome);
                }
            }
        }
    }

    /// Moves virtual time to `t0 + at`, waking the engine at each deadline on
    /// the way, as the driver would.
    pub(crate) fn advance_to(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(deadline) = self.engine.next_deadline() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.engine.handle(self.now, Event::Timeout);
            self.drain();
        }
        self.now = self.now.max(target);
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        let at = self.elapsed() + by;
        self.advance_to(at);
    }

    /// Ends `name`'s executing attempt with `result`, now.
    pub(crate) fn finish(&mut self, name: &str, result: AttemptResult) {
        let (run, _) = self.running.remove(name).unwrap_or_else(|| panic!("{name} is not executing"));
        let worker = self.id(name);
        self.engine.handle(self.now, Event::AttemptFinished { worker, run, result });
        self.drain();
    }

    pub(crate) fn succeed(&mut self, name: &str) {
        self.finish(name, AttemptResult::Succeeded);
    }

    pub(crate) fn fail(&mut self, name: &str) {
        self.finish(name, AttemptResult::Failed(format!("{name} broke")));
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.engine.handle(self.now, event);
        self.drain();
    }

    pub(crate) fn trigger(&mut self, name: &str) -> Result<WaiterId, super::TriggerRefusal> {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        let w = self.id(name);
        let accepted = self.engine.trigger(self.now, w, waiter);
        // A refused trigger may still have handled timers that were due.
        self.drain();
        accepted.map(|()| waiter)
    }

    /// Start times (seconds since start) of `name`'s first attempts.
    pub(crate) fn starts_of(&self, name: &str) -> Vec<f64> {
        self.started.iter().filter(|s| s.worker == name && s.attempt == 1).map(|s| s.at.as_secs_f64()).collect()
    }

    /// The worker names in start order.
    pub(crate) fn order(&self) -> Vec<&str> {
        self.started.iter().map(|s| s.worker.as_str()).collect()
    }

    pub(crate) fn is_running(&self, name: &str) -> bool {
        self.running.contains_key(name)
    }
}
