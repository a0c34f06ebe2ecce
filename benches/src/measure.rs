//! Measuring instruments shared by every workload: CPU time and RSS as the
//! kernel accounts them, live heap bytes from a counting allocator, a
//! lock-free log of body-start instants, and percentiles.
//!
//! The instruments themselves must cost the same on both systems, so both
//! record through the same [`StartLog`], and the allocator counts only while
//! a workload asks it to (W5).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// User + system CPU seconds consumed by this process so far, all threads.
pub fn cpu_seconds() -> f64 {
    let usage = rusage();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The largest resident set this process has had, in bytes.
pub fn peak_rss_bytes() -> f64 {
    let max_rss = rusage().ru_maxrss as f64;
    // Linux reports kilobytes, macOS bytes.
    if cfg!(target_os = "macos") { max_rss } else { max_rss * 1024.0 }
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes the struct it is given; an all-zero
    // rusage is a valid value of this plain C struct.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        // RUSAGE_SELF with a valid pointer cannot fail.
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// The resident set now, in bytes (Linux only: `/proc/self/statm`).
pub fn current_rss_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page_size > 0).then_some(pages * page_size as f64)
}

/// The system allocator, counting live and peak heap bytes while
/// [`counting`] is on. Off, it costs one relaxed load per call.
pub struct CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Signed: memory allocated before counting started may be freed while it
/// runs. Only differences between two readings mean anything.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

impl CountingAllocator {
    fn grew(by: usize) {
        if COUNTING.load(Relaxed) {
            let live = LIVE.fetch_add(by as isize, Relaxed) + by as isize;
            PEAK.fetch_max(live, Relaxed);
        }
    }

    fn shrank(by: usize) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(by as isize, Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are side bookkeeping.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            Self::grew(new_size);
            Self::shrank(layout.size());
        }
        new
    }
}

/// Heap bytes counted so far (relative to an arbitrary zero).
pub fn live_heap_bytes() -> isize {
    LIVE.load(Relaxed)
}

/// The largest [`live_heap_bytes`] since the last [`reset_peak_heap`].
pub fn peak_heap_bytes() -> isize {
    PEAK.load(Relaxed)
}

pub fn reset_peak_heap() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

/// Turns heap counting on or off for the whole process.
pub fn counting(on: bool) {
    COUNTING.store(on, Relaxed);
}

/// When each worker's body started (or any per-worker instant), up to
/// `capacity` entries per worker, preallocated: recording is two relaxed
/// atomics, no lock and no allocation, so it does not disturb what it
/// measures. Readers must synchronise with the writers first (join the
/// tasks, shut the orchestrator down, receive from a channel they sent on).
pub struct StartLog {
    origin: Instant,
    capacity: usize,
    counts: Box<[AtomicU32]>,
    /// Nanoseconds since `origin` in the low [`NANOS_BITS`] bits, and the
    /// CPU of [`record_on_cpu`](Self::record_on_cpu) in the top byte: one
    /// store, on the line the instant goes to anyway.
    nanos: Box<[AtomicU64]>,
}

/// The bits of a [`StartLog`] entry that hold the instant (2^56 ns is over
/// two years).
const NANOS_BITS: u32 = 56;

/// What [`StartLog::cpu`] reads when the CPU could not be known.
pub const UNKNOWN_CPU: u8 = u8::MAX;

/// The CPU the calling thread runs on (Linux only), if below 255.
fn current_cpu() -> Option<u8> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions; it returns -1 on error.
        let cpu = unsafe { libc::sched_getcpu() };
        u8::try_from(cpu).ok().filter(|&cpu| cpu != UNKNOWN_CPU)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

impl StartLog {
    pub fn new(workers: usize, capacity: usize, origin: Instant) -> Self {
        StartLog {
            origin,
            capacity,
            counts: (0..workers).map(|_| AtomicU32::new(0)).collect(),
            nanos: (0..workers * capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Appends `at` to `worker`'s entries (counted but not stored beyond the
    /// capacity).
    pub fn record(&self, worker: usize, at: Instant) {
        self.store(worker, at, 0);
    }

    /// [`record`](Self::record), with the CPU the calling thread runs on
    /// (see [`cpu`](Self::cpu)).
    pub fn record_on_cpu(&self, worker: usize, at: Instant) {
        self.store(worker, at, current_cpu().unwrap_or(UNKNOWN_CPU));
    }

    /// [`record`](Self::record) with a given CPU, for tests.
    #[cfg(test)]
    pub fn record_with_cpu(&self, worker: usize, at: Instant, cpu: u8) {
        self.store(worker, at, cpu);
    }

    fn store(&self, worker: usize, at: Instant, cpu: u8) {
        let index = self.counts[worker].fetch_add(1, Relaxed) as usize;
        if index < self.capacity {
            let nanos = nanos(at.saturating_duration_since(self.origin)).min((1 << NANOS_BITS) - 1);
            self.nanos[worker * self.capacity + index].store(nanos | u64::from(cpu) << NANOS_BITS, Relaxed);
        }
    }

    /// How many workers it has entries for.
    pub fn workers(&self) -> usize {
        self.counts.len()
    }

    /// How many entries `worker` recorded, stored or not.
    pub fn count(&self, worker: usize) -> usize {
        self.counts[worker].load(Relaxed) as usize
    }

    /// `worker`'s `index`-th entry, as time since the origin.
    pub fn get(&self, worker: usize, index: usize) -> Option<Duration> {
        self.entry(worker, index).map(|entry| Duration::from_nanos(entry & ((1 << NANOS_BITS) - 1)))
    }

    /// The CPU `worker`'s `index`-th entry was recorded on (0 unless recorded
    /// with [`record_on_cpu`](Self::record_on_cpu); [`UNKNOWN_CPU`] if it
    /// could not be known).
    pub fn cpu(&self, worker: usize, index: usize) -> Option<u8> {
        self.entry(worker, index).map(|entry| (entry >> NANOS_BITS) as u8)
    }

    fn entry(&self, worker: usize, index: usize) -> Option<u64> {
        (index < self.count(worker).min(self.capacity))
            .then(|| self.nanos[worker * self.capacity + index].load(Relaxed))
    }

    /// `at` as time since the origin.
    pub fn since_origin(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.origin)
    }
}

pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of unsorted values (the mean of the middle two for an even
/// count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_nearest_rank_rule() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn start_log_keeps_entries_per_worker_and_counts_beyond_capacity() {
        let origin = Instant::now();
        let log = StartLog::new(2, 2, origin);
        for ms in [1, 2, 3] {
            log.record(1, origin + Duration::from_millis(ms));
        }
        assert_eq!(log.count(0), 0);
        assert_eq!(log.count(1), 3);
        assert_eq!((log.get(1, 0), log.get(1, 1)), (Some(Duration::from_millis(1)), Some(Duration::from_millis(2))));
    }

    #[test]
    fn an_entry_recorded_with_its_cpu_keeps_its_instant() {
        let origin = Instant::now();
        let log = StartLog::new(1, 2, origin);
        log.record_on_cpu(0, origin + Duration::from_nanos(123_456_789));
        log.record(0, origin + Duration::from_millis(5));
        assert_eq!(log.get(0, 0), Some(Duration::from_nanos(123_456_789)));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = log.cpu(0, 0).expect("recorded");
        assert!(usize::from(cpu) < cpus || (cpu == UNKNOWN_CPU && cfg!(not(target_os = "linux"))), "{cpu}");
        assert_eq!((log.get(0, 1), log.cpu(0, 1)), (Some(Duration::from_millis(5)), Some(0)));
    }
}
