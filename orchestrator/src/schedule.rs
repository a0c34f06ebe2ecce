//! Next-fire arithmetic: fixed rate, fixed delay, cron, jitter and backoff.
//!
//! Pure functions of their inputs; the engine passes in the current instant.
//! Monotonic instants are the engine's time; cron works on wall-clock time
//! through a [`WallClock`] anchor taken once at start, so that a paused tokio
//! clock drives cron schedules in tests exactly like interval schedules.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::spec::CronSchedule;

/// Maps monotonic instants to wall-clock time: `wall(i) = wall0 + (i - mono0)`.
///
/// Taken once at start. A step of the system clock after start (rare: NTP
/// slews rather than steps) is not followed until restart; in exchange, cron
/// schedules run on the same clock as everything else, paused clock included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    mono0: Instant,
    wall0: DateTime<Utc>,
}

impl WallClock {
    pub(crate) fn new(mono0: Instant, wall0: DateTime<Utc>) -> Self {
        WallClock { mono0, wall0 }
    }

    pub(crate) fn wall(&self, at: Instant) -> DateTime<Utc> {
        let since = at.saturating_duration_since(self.mono0);
        let before = self.mono0.saturating_duration_since(at);
        let since = chrono::Duration::from_std(since).unwrap_or(chrono::Duration::MAX);
        let before = chrono::Duration::from_std(before).unwrap_or(chrono::Duration::MAX);
        self.wall0 + since - before
    }

    /// The instant at which the wall clock shows `wall` (the earliest
    /// instant the platform can represent, if `wall` lies before it).
    pub(crate) fn instant(&self, wall: DateTime<Utc>) -> Instant {
        match (wall - self.wall0).to_std() {
            Ok(ahead) => self.mono0 + ahead,
            Err(_) => {
                let behind = (self.wall0 - wall).to_std().unwrap_or(Duration::MAX);
                self.mono0.checked_sub(behind).unwrap_or(self.mono0)
            }
        }
    }
}

/// The first cron occurrence strictly after `after`, as an instant. `None`
/// when the expression never matches again (e.g. a date that never occurs).
pub(crate) fn next_cron(cron: &CronSchedule, clock: &WallClock, after: Instant) -> Option<Instant> {
    let local = clock.wall(after).with_timezone(&cron.zone);
    let next = cron.cron.find_next_occurrence(&local, false).ok()?;
    Some(clock.instant(next.with_timezone(&Utc)))
}

/// For a fixed-rate schedule whose slot `nominal` has been reached at `now`:
/// the next slot after `now` on the grid `nominal + k·period`, and how many
/// slots in between were passed without being processed (the process was
/// busy or suspended).
pub(crate) fn next_interval(nominal: Instant, period: Duration, now: Instant) -> (Instant, u64) {
    let next = nominal + period;
    if next > now {
        return (next, 0);
    }
    let behind = now.duration_since(nominal).as_nanos();
    let steps = behind / period.as_nanos() + 1;
    // `steps` fits: `behind` is bounded by the process's uptime.
    let steps_u32 = u32::try_from(steps).unwrap_or(u32::MAX);
    (nominal + period * steps_u32, (steps - 1) as u64)
}

/// A uniformly random duration in `[0, max]`.
pub(crate) fn random_up_to(rng: &mut fastrand::Rng, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

/// The jitter of a worker's slot, in whole milliseconds in `[0, max]`: a
/// pure function of the worker's name and the slot's wall time
/// (`slot_millis`, Unix milliseconds), so that every replica, whichever
/// binary version it runs, waits the same and computes the same fire
/// identity. A fixed hash (FNV-1a, then the SplitMix64 finalizer), never
/// std's `Hasher`, whose output may change between Rust versions. Whole
/// milliseconds: fire identities are, so a slot plus its jitter is still
/// one exactly on every replica.
pub(crate) fn slot_jitter(worker: &str, slot_millis: i64, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in worker.bytes().chain(slot_millis.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    Duration::from_millis(match max_ms.checked_add(1) {
        Some(range) => hash % range,
        None => hash,
    })
}

/// The pause before retry number `retry` (1 for the first retry):
/// exponential, `base · 2^(retry-1)` capped at `cap`, with "equal jitter"
/// (a uniform draw in the upper half) so that workers failing together do not
/// retry in lockstep, while the pause never collapses to zero.
pub(crate) fn backoff(rng: &mut fastrand::Rng, base: Duration, cap: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
    let full = base.checked_mul(factor).unwrap_or(cap).min(cap);
    let half = full / 2;
    half + random_up_to(rng, full - half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule_syntax::parse_cron;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn slot_jitter_is_a_fixed_function_of_worker_and_slot_in_whole_milliseconds() {
        // Pinned: replicas running different versions must agree.
        assert_eq!(slot_jitter("sync", 1_700_000_000_000, s(30)), Duration::from_millis(25_983));
        assert_eq!(slot_jitter("sync", 1_700_000_000_000, s(30)), slot_jitter("sync", 1_700_000_000_000, s(30)));
        assert_ne!(slot_jitter("sync", 1_700_000_000_000, s(30)), slot_jitter("sync", 1_700_000_060_000, s(30)));
        assert_ne!(slot_jitter("sync", 1_700_000_000_000, s(30)), slot_jitter("other", 1_700_000_000_000, s(30)));
        for slot in 0..1_000 {
            let jitter = slot_jitter("w", slot * 1_000, Duration::from_millis(1_500));
            assert!(
                jitter <= Duration::from_millis(1_500) && jitter.subsec_nanos().is_multiple_of(1_000_000),
                "{jitter:?}"
            );
        }
        assert_eq!(slot_jitter("sync", 0, Duration::from_micros(999)), Duration::ZERO, "under a millisecond: none");
        assert!(slot_jitter("sync", 0, Duration::MAX) > Duration::ZERO);
    }

    #[test]
    fn interval_steps_one_period_when_on_time() {
        let t0 = Instant::now();
        assert_eq!(next_interval(t0, s(10), t0), (t0 + s(10), 0));
        assert_eq!(next_interval(t0, s(10), t0 + s(9)), (t0 + s(10), 0));
    }

    #[test]
    fn interval_skips_to_the_grid_after_now_and_counts_passed_slots() {
        let t0 = Instant::now();
        // At 35 s the slots 10, 20 and 30 have passed; the next is 40.
        assert_eq!(next_interval(t0, s(10), t0 + s(35)), (t0 + s(40), 3));
        // Exactly on a slot: that slot has passed too.
        assert_eq!(next_interval(t0, s(10), t0 + s(20)), (t0 + s(30), 2));
    }

    #[test]
    fn wall_clock_round_trips() {
        let t0 = Instant::now();
        let w0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let clock = WallClock::new(t0, w0);
        let later = t0 + s(90);
        assert_eq!(clock.wall(later), w0 + chrono::Duration::seconds(90));
        assert_eq!(clock.instant(clock.wall(later)), later);
    }

    #[test]
    fn cron_next_follows_the_wall_clock_and_zone() {
        let t0 = Instant::now();
        let w0 = DateTime::parse_from_rfc3339("2026-01-01T10:00:30Z").unwrap().with_timezone(&Utc);
        let clock = WallClock::new(t0, w0);
        let every_minute = CronSchedule { cron: parse_cron("* * * * *").unwrap(), zone: chrono_tz::UTC };
        assert_eq!(next_cron(&every_minute, &clock, t0), Some(t0 + s(30)));
        // 12:00 in Paris is 11:00 UTC in January.
        let noon_paris = CronSchedule { cron: parse_cron("0 12 * * *").unwrap(), zone: chrono_tz::Europe::Paris };
        assert_eq!(next_cron(&noon_paris, &clock, t0), Some(t0 + s(3600 - 30)));
    }

    #[test]
    fn a_cron_value_out_of_range_names_its_field_and_the_range() {
        let reason = |expr: &str| match parse_cron(expr) {
            Ok(_) => panic!("`{expr}` was accepted"),
            Err(reason) => reason,
        };
        assert_eq!(reason("0 25 * * *"), "hour 25 is out of range 0-23");
        assert_eq!(reason("61 * * * *"), "minute 61 is out of range 0-59");
        assert_eq!(reason("0 0 0 * *"), "day-of-month 0 is out of range 1-31");
        assert_eq!(reason("0 0 1 1-13 *"), "month 13 is out of range 1-12");
        assert_eq!(reason("0 0 * * 1,8"), "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)");
        assert_eq!(reason("0 0 * * 9#2"), "day-of-week 9 is out of range 0-7 (0 and 7 are Sunday)");
        assert_eq!(reason("60 0 12 * * *"), "second 60 is out of range 0-59", "six fields start with seconds");
        assert_eq!(reason("0 0 0-30/5 * * *"), "hour 30 is out of range 0-23", "a range's bound before its step");
        // A step, an nth weekday and names are not values: croner's reason stays.
        assert!(!reason("0 0 * * MON#6").contains("out of range"), "{}", reason("0 0 * * MON#6"));
        assert!(parse_cron("*/90 * * * *").is_ok(), "a step is not bounded by the field's range");
        assert!(parse_cron("0 0 L * 5L").is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_in_the_upper_half() {
        let mut rng = fastrand::Rng::with_seed(7);
        for retry in 1..=12 {
            let full = (s(1) * 2u32.pow(retry - 1)).min(s(300));
            let pause = backoff(&mut rng, s(1), s(300), retry);
            assert!(pause >= full / 2 && pause <= full, "retry {retry}: {pause:?} not in [{:?}, {full:?}]", full / 2);
        }
        assert!(backoff(&mut rng, s(1), s(300), 1000) <= s(300));
    }
}
