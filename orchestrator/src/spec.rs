//! A worker's configuration: [`WorkerSpec`], the builder users (and the
//! `#[worker]` attribute, through [`WorkerDef`]) fill in, and
//! [`WorkerConfig`], its validated runtime form.
//!
//! Validation of one worker's own values lives here; everything that involves
//! several workers (names, cycles, state) lives in `graph.rs`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Location, Problem, ProblemKind};
use crate::registry::{ScheduleDef, WorkerDef};
use crate::schedule_syntax;
use crate::worker_fn::{RunFn, StateType, WorkerFn};

/// Order in which ready workers take free concurrency slots: higher first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Runs after everything else that is ready.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of `Normal` and `Low`.
    High,
    /// Ahead of everything.
    Critical,
}

/// How a worker is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// On its schedule (`interval`, `delay` or `cron`), and when triggered.
    Scheduled,
    /// Only when triggered through the handle, or when its dependencies have
    /// all succeeded since its previous run.
    Triggered,
    /// Started once and restarted after `restart_delay` whenever it returns,
    /// until shutdown. Not counted against `max_concurrent`.
    Continuous,
}

/// What happens to fires a worker missed because it could not start at their
/// due time (it was still running, excluded by a `blocks` conflict, or the
/// orchestrator was not running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// All missed fires become one catch-up run, as soon as the worker can start.
    #[default]
    FireOnce,
    /// Missed fires are dropped (and counted as missed); the worker waits for
    /// its next slot.
    Skip,
}

/// Where a worker's fires run in cluster mode (a `PostgresStore`, feature
/// `postgres`): once per fire across the replicas
/// ([`Cluster`](Scope::Cluster), the default: each fire is claimed in the
/// database first) or on every replica ([`Instance`](Scope::Instance): each
/// replica's own fires, its own history rows).
///
/// Without cluster mode (the in-memory store, or SQLite) every worker runs
/// in the process that runs it, whatever its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Once per fire across the cluster.
    #[default]
    Cluster,
    /// On every replica.
    Instance,
}

/// Defaults shared by the attribute and programmatic registration.
pub(crate) mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(60);
    pub const RESTART_DELAY: Duration = Duration::from_secs(1);
    pub const BACKOFF: Duration = Duration::from_secs(1);
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
    pub const MAX_CONSECUTIVE_FAILURES: u32 = 5;
}

#[derive(Debug, Clone)]
enum ScheduleSpec {
    Interval(Duration),
    Delay(Duration),
    Cron(Cow<'static, str>),
}

impl ScheduleSpec {
    fn key(&self) -> &'static str {
        match self {
            ScheduleSpec::Interval(_) => "interval",
            ScheduleSpec::Delay(_) => "delay",
            ScheduleSpec::Cron(_) => "cron",
        }
    }
}

/// A worker defined at run time, with every option of the `#[worker]`
/// attribute. Add it with [`OrchestratorBuilder::worker`]; values are checked
/// by [`OrchestratorBuilder::build`], which reports every problem at once.
///
/// ```
/// use orchestrator::{Context, Orchestrator, Priority, WorkerSpec};
/// use std::time::Duration;
///
/// async fn sync_tenant(ctx: Context) -> anyhow::Result<()> {
///     println!("{} (attempt {})", ctx.name(), ctx.attempt());
///     Ok(())
/// }
///
/// let orchestrator = Orchestrator::builder()
///     .worker(
///         WorkerSpec::new("tenant-42-sync", sync_tenant)
///             .interval(Duration::from_secs(30))
///             .timeout(Duration::from_secs(10))
///             .retries(2)
///             .priority(Priority::High),
///     )
///     .build()?;
/// # Ok::<(), orchestrator::BuildError>(())
/// ```
///
/// [`OrchestratorBuilder::worker`]: crate::OrchestratorBuilder::worker
/// [`OrchestratorBuilder::build`]: crate::OrchestratorBuilder::build
#[derive(Clone)]
pub struct WorkerSpec {
    name: Cow<'static, str>,
    location: Location,
    run: RunFn,
    state_types: Vec<StateType>,
    schedule: Option<ScheduleSpec>,
    /// A second schedule key given to the builder, reported at build.
    extra_schedules: Vec<&'static str>,
    timezone: Option<Cow<'static, str>>,
    mode: Option<Mode>,
    restart_delay: Option<Duration>,
    timeout: Option<Duration>,
    retries: Option<u32>,
    backoff: Option<Duration>,
    max_backoff: Option<Duration>,
    priority: Option<Priority>,
    depends_on: Vec<Cow<'static, str>>,
    blocks: Vec<Cow<'static, str>>,
    max_consecutive_failures: Option<u32>,
    initial_delay: Option<Duration>,
    jitter: Option<Duration>,
    misfire: Option<Misfire>,
    enabled: Option<bool>,
    scope: Option<Scope>,
}

impl WorkerSpec {
    /// A worker named `name` whose body is `body`: an async fn or a closure
    /// returning a future, taking [`Context`](crate::Context) and/or
    /// [`State<T>`](crate::State). Without a schedule it is Triggered.
    ///
    /// The caller's file and line become the worker's source location in
    /// startup errors.
    #[track_caller]
    pub fn new<Args, F: WorkerFn<Args>>(name: impl Into<Cow<'static, str>>, body: F) -> Self {
        let caller = std::panic::Location::caller();
        let run: RunFn = Arc::new(move |input| body.call(input));
        Self::with_run(name.into(), Location { file: caller.file(), line: caller.line() }, run, F::state_types())
    }

    fn with_run(name: Cow<'static, str>, location: Location, run: RunFn, state_types: Vec<StateType>) -> Self {
        WorkerSpec {
            name,
            location,
            run,
            state_types,
            schedule: None,
            extra_schedules: Vec::new(),
            timezone: None,
            mode: None,
            restart_delay: None,
            timeout: None,
            retries: None,
            backoff: None,
            max_backoff: None,
            priority: None,
            depends_on: Vec::new(),
            blocks: Vec::new(),
            max_consecutive_failures: None,
            initial_delay: None,
            jitter: None,
            misfire: None,
            enabled: None,
            scope: None,
        }
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn set_schedule(mut self, schedule: ScheduleSpec) -> Self {
        if let Some(previous) = &self.schedule {
            self.extra_schedules.push(previous.key());
        }
        self.schedule = Some(schedule);
        self
    }

    /// Fixed-rate schedule: fires at start + `initial_delay` + k·`period`
    /// (k = 0, 1, ...), without drift.
    pub fn interval(self, period: Duration) -> Self {
        self.set_schedule(ScheduleSpec::Interval(period))
    }

    /// Fixed-delay schedule: the next fire is `delay` after the previous run ended.
    pub fn delay(self, delay: Duration) -> Self {
        self.set_schedule(ScheduleSpec::Delay(delay))
    }

    /// Wall-clock schedule from a cron expression of 5 fields, or 6 with a
    /// leading seconds field; UTC unless [`timezone`](Self::timezone) is set.
    pub fn cron(self, expression: impl Into<Cow<'static, str>>) -> Self {
        self.set_schedule(ScheduleSpec::Cron(expression.into()))
    }

    /// The IANA time zone (`"Europe/Paris"`) the cron expression is read in.
    pub fn timezone(mut self, zone: impl Into<Cow<'static, str>>) -> Self {
        self.timezone = Some(zone.into());
        self
    }

    /// Sets the mode explicitly; by default Scheduled with a schedule,
    /// Triggered without.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Continuous only: pause before the body is started again (default 1 s).
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = Some(delay);
        self
    }

    /// An attempt running longer is cancelled and fails (default 60 s; none
    /// for Continuous workers unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Extra attempts within one run after a failed attempt (default 0).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Base of the exponential backoff between attempts (default 1 s).
    pub fn backoff(mut self, base: Duration) -> Self {
        self.backoff = Some(base);
        self
    }

    /// Cap of the backoff between attempts (default 5 min).
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = Some(cap);
        self
    }

    /// Order in which ready workers take free concurrency slots.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Adds a dependency on the worker named `name` (call again for more).
    pub fn depends_on(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.depends_on.push(name.into());
        self
    }

    /// Adds mutual exclusion with the worker named `name` (call again for more).
    pub fn blocks(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.blocks.push(name.into());
        self
    }

    /// Failed runs in a row after which the worker is disabled (default 5;
    /// 0 = never).
    pub fn max_consecutive_failures(mut self, failures: u32) -> Self {
        self.max_consecutive_failures = Some(failures);
        self
    }

    /// Delay before the first fire.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = Some(delay);
        self
    }

    /// Random extra delay, up to this, added to each fire.
    ///
    /// For a [`Scope::Cluster`] worker the delay is drawn from the worker's
    /// name and the slot (in whole milliseconds), not from a random source:
    /// every replica waits the same and so computes the same fire.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// What missed fires become (default [`Misfire::FireOnce`]).
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = Some(misfire);
        self
    }

    /// Start enabled (default) or disabled.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Cluster scope (default [`Scope::Cluster`]): in cluster mode, once per
    /// fire across replicas or on every replica (see [`Scope`]).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    #[cfg(test)]
    pub(crate) fn location(&self) -> Location {
        self.location
    }

    pub(crate) fn from_def(def: &'static WorkerDef) -> Self {
        let run: RunFn = Arc::new(def.run);
        let state_types = def.state_types.iter().filter_map(|f| f()).collect();
        let mut spec =
            Self::with_run(Cow::Borrowed(def.name), Location { file: def.file, line: def.line }, run, state_types);
        spec.schedule = def.schedule.map(|s| match s {
            ScheduleDef::Interval(d) => ScheduleSpec::Interval(d),
            ScheduleDef::Delay(d) => ScheduleSpec::Delay(d),
            ScheduleDef::Cron(expr) => ScheduleSpec::Cron(Cow::Borrowed(expr)),
        });
        spec.timezone = def.timezone.map(Cow::Borrowed);
        spec.mode = def.mode;
        spec.restart_delay = def.restart_delay;
        spec.timeout = def.timeout;
        spec.retries = def.retries;
        spec.backoff = def.backoff;
        spec.max_backoff = def.max_backoff;
        spec.priority = def.priority;
        spec.depends_on = def.depends_on.iter().map(|n| Cow::Borrowed(*n)).collect();
        spec.blocks = def.blocks.iter().map(|n| Cow::Borrowed(*n)).collect();
        spec.max_consecutive_failures = def.max_consecutive_failures;
        spec.initial_delay = def.initial_delay;
        spec.jitter = def.jitter;
        spec.misfire = def.misfire;
        spec.enabled = def.enabled;
        spec.scope = def.scope;
        spec
    }

    /// Checks this worker's own values and resolves defaults. Every problem is
    /// pushed to `problems`; the config is returned either way (a refused
    /// value replaced by a stand-in), so that the graph checks still see the
    /// worker's name and relations and report their problems too.
    pub(crate) fn check(self, problems: &mut Vec<Problem>) -> WorkerConfig {
        let mut problem = |key: &'static str, reason: String| {
            problems.push(Problem::new(
                Some(self.name.to_string()),
                Some(self.location),
                ProblemKind::InvalidOption { key, reason },
            ))
        };

        if self.name.trim().is_empty() {
            problem("name", "a worker name cannot be empty".into());
        }
        for extra in &self.extra_schedules {
            problem(
                extra,
                format!(
                    "a worker has one schedule, but both `{extra}` and `{}` are set",
                    self.schedule.as_ref().map_or("?", ScheduleSpec::key)
                ),
            );
        }
        let mode = self.mode.unwrap_or(if self.schedule.is_some() { Mode::Scheduled } else { Mode::Triggered });
        let schedule = match (&self.schedule, mode) {
            (Some(ScheduleSpec::Interval(period)), Mode::Scheduled) => {
                if period.is_zero() {
                    problem("interval", "the interval must be greater than zero".into());
                }
                Schedule::Interval(*period)
            }
            (Some(ScheduleSpec::Delay(delay)), Mode::Scheduled) => Schedule::Delay(*delay),
            (Some(ScheduleSpec::Cron(expr)), Mode::Scheduled) => {
                let zone = match self.timezone.as_deref().map(schedule_syntax::parse_timezone) {
                    None => chrono_tz::UTC,
                    Some(Ok(zone)) => zone,
                    Some(Err(reason)) => {
                        problem("timezone", reason);
                        chrono_tz::UTC
                    }
                };
                match schedule_syntax::parse_cron(expr) {
                    Ok(cron) => Schedule::Cron(Box::new(CronSchedule { cron, zone })),
                    Err(reason) => {
                        problem("cron", format!("`{expr}` is not a valid cron expression: {reason}"));
                        Schedule::Triggered
                    }
                }
            }
            (None, Mode::Scheduled) => {
                problem("mode", "mode Scheduled needs a schedule: set interval, delay or cron".into());
                Schedule::Triggered
            }
            (Some(s), Mode::Triggered) => {
                problem(
                    s.key(),
                    format!("a Triggered worker has no schedule: remove `{}` or use mode Scheduled", s.key()),
                );
                Schedule::Triggered
            }
            (Some(s), Mode::Continuous) => {
                problem(
                    s.key(),
                    format!(
                        "a Continuous worker restarts after `restart_delay` and has no schedule: remove `{}`",
                        s.key()
                    ),
                );
                Schedule::Triggered
            }
            (None, Mode::Triggered) => Schedule::Triggered,
            (None, Mode::Continuous) => {
                Schedule::Continuous { restart_delay: self.restart_delay.unwrap_or(defaults::RESTART_DELAY) }
            }
        };
        if self.timezone.is_some() && !matches!(self.schedule, Some(ScheduleSpec::Cron(_))) {
            problem("timezone", "`timezone` only applies to a `cron` schedule".into());
        }
        if self.restart_delay.is_some() && mode != Mode::Continuous {
            problem("restart_delay", "`restart_delay` only applies to mode Continuous".into());
        }
        if mode == Mode::Continuous && !self.depends_on.is_empty() {
            problem(
                "depends_on",
                "a Continuous worker never finishes, so it would hold its dependencies off forever \
                 (dependencies never run at the same time as their dependents): remove `depends_on`"
                    .into(),
            );
        }
        if mode == Mode::Continuous && self.max_consecutive_failures.is_some() {
            problem(
                "max_consecutive_failures",
                "a Continuous worker is never disabled for failing: it is restarted with a backoff that grows \
                 from `restart_delay` up to `max_backoff` while it keeps failing; remove `max_consecutive_failures`"
                    .into(),
            );
        }
        if mode == Mode::Continuous && self.retries.is_some() {
            problem(
                "retries",
                "a Continuous worker is restarted after `restart_delay` instead of retried: remove `retries`".into(),
            );
        }
        let durations = [
            (
                "interval",
                match &self.schedule {
                    Some(ScheduleSpec::Interval(d)) => Some(*d),
                    _ => None,
                },
            ),
            (
                "delay",
                match &self.schedule {
                    Some(ScheduleSpec::Delay(d)) => Some(*d),
                    _ => None,
                },
            ),
            ("restart_delay", self.restart_delay),
            ("timeout", self.timeout),
            ("backoff", self.backoff),
            ("max_backoff", self.max_backoff),
            ("initial_delay", self.initial_delay),
            ("jitter", self.jitter),
        ];
        for (key, duration) in durations {
            if let Some(Err(reason)) = duration.map(|d| schedule_syntax::check_duration(key, d)) {
                problem(key, reason);
            }
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            problem("timeout", "the timeout must be greater than zero".into());
        }
        let backoff = self.backoff.unwrap_or(defaults::BACKOFF);
        let max_backoff = self.max_backoff.unwrap_or(defaults::MAX_BACKOFF);
        if max_backoff < backoff {
            problem("max_backoff", format!("max_backoff ({max_backoff:?}) is smaller than backoff ({backoff:?})"));
        }
        // Depending on itself is reported by the graph, as the cycle `a -> a`.
        if self.blocks.contains(&self.name) {
            problem("blocks", format!("worker `{}` cannot list itself in `blocks`", self.name));
        }

        let timeout = match (self.timeout, mode) {
            (Some(t), _) => Some(t),
            (None, Mode::Continuous) => None,
            (None, _) => Some(defaults::TIMEOUT),
        };
        WorkerConfig {
            name: Arc::from(&*self.name),
            location: self.location,
            run: self.run,
            state_types: self.state_types,
            schedule,
            timeout,
            retries: self.retries.unwrap_or(0),
            backoff,
            max_backoff,
            priority: self.priority.unwrap_or_default(),
            depends_on: self.depends_on,
            blocks: self.blocks,
            // Continuous workers ride out failures with a growing restart delay.
            max_consecutive_failures: match mode {
                Mode::Continuous => 0,
                _ => self.max_consecutive_failures.unwrap_or(defaults::MAX_CONSECUTIVE_FAILURES),
            },
            initial_delay: self.initial_delay.unwrap_or_default(),
            jitter: self.jitter.unwrap_or_default(),
            misfire: self.misfire.unwrap_or_default(),
            enabled: self.enabled.unwrap_or(true),
            scope: self.scope.unwrap_or_default(),
        }
    }
}

impl fmt::Debug for WorkerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSpec")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("schedule", &self.schedule)
            .field("mode", &self.mode)
            .field("depends_on", &self.depends_on)
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

/// A parsed cron schedule and the zone it is read in.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    pub cron: croner::Cron,
    pub zone: chrono_tz::Tz,
}

/// When a worker starts, in validated form.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    Interval(Duration),
    Delay(Duration),
    Cron(Box<CronSchedule>),
    Triggered,
    Continuous { restart_delay: Duration },
}

impl Schedule {
    pub(crate) fn mode(&self) -> Mode {
        match self {
            Schedule::Interval(_) | Schedule::Delay(_) | Schedule::Cron(_) => Mode::Scheduled,
            Schedule::Triggered => Mode::Triggered,
            Schedule::Continuous { .. } => Mode::Continuous,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Interval(d) => write!(f, "every {}", HumanDuration(*d)),
            Schedule::Delay(d) => write!(f, "{} after each run", HumanDuration(*d)),
            Schedule::Cron(c) if c.zone == chrono_tz::UTC => write!(f, "cron {}", c.cron.pattern),
            Schedule::Cron(c) => write!(f, "cron {} ({})", c.cron.pattern, c.zone.name()),
            Schedule::Triggered => f.write_str("on trigger"),
            Schedule::Continuous { .. } => f.write_str("continuous"),
        }
    }
}

/// Formats a duration the way the attribute accepts it (`1h 30m`, `500ms`).
pub(crate) struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let mut secs = d.as_secs();
        let mut parts: Vec<String> = Vec::new();
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                parts.push(format!("{}{unit}", secs / size));
                secs %= size;
            }
        }
        let ms = d.subsec_millis();
        if ms > 0 {
            parts.push(format!("{ms}ms"));
        }
        if parts.is_empty() {
            parts.push(format!("{}µs", d.subsec_micros()));
        }
        f.write_str(&parts.join(" "))
    }
}

/// One worker's validated configuration, with defaults resolved. Names in
/// `depends_on` and `blocks` are resolved to indices by the graph.
///
/// Laid out by hand: the fields the engine reads on every fire come first
/// and together, so that they cost about one cache miss rather than three
/// when a burst of fires has pushed them out of the cache (cachegrind on W1:
/// see the README's Performance section).
#[derive(Clone)]
#[repr(C)]
pub(crate) struct WorkerConfig {
    // Read on every fire.
    pub schedule: Schedule,
    pub jitter: Duration,
    pub retries: u32,
    pub max_consecutive_failures: u32,
    pub priority: Priority,
    pub misfire: Misfire,
    // The rest.
    pub name: Arc<str>,
    pub timeout: Option<Duration>,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub initial_delay: Duration,
    pub enabled: bool,
    pub scope: Scope,
    pub location: Location,
    pub run: RunFn,
    pub state_types: Vec<StateType>,
    pub depends_on: Vec<Cow<'static, str>>,
    pub blocks: Vec<Cow<'static, str>>,
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("priority", &self.priority)
            .field("depends_on", &self.depends_on)
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}
