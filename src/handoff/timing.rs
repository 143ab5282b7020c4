//! When to stop a lock holder so that its successor's next lock try finds
//! the lock free. A waiting node tries at a fixed interval, so a lock freed
//! just after a try costs the node a whole interval of downtime.
//!
//! The successor's waiting line says when it tried. The engine stamps each
//! log line as it reads it from the container; the line itself reaches
//! cl-maint 10–30 ms later through the log stream (more under load), most of
//! a bolt-era node's 50 ms interval, so the stop is timed from the engine's
//! time of the line when there is one to believe.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::node::logs::Generation;

/// How often a node waiting for a lease or advisory lock tries again (±10 %).
pub const LOCK_RETRY: Duration = Duration::from_secs(1);
/// How often a bolt-era node tries its `flock` again.
pub const BOLT_RETRY: Duration = Duration::from_millis(50);
/// How many bolt-era retry intervals after its waiting line [`release_at`]
/// aims at: each of the node's sleeps overruns a little (0.5–1 ms an
/// interval, measured on the double), so the phase of a try much later
/// than the line is not known well enough.
const BOLT_TRIES_AHEAD: u32 = 10;
/// From asking the engine to stop a container to the node letting go of its
/// lock: 10–15 ms for the engine to deliver the signal, up to 5 ms for the
/// node to act on it (measured with the double on Docker 20.10), and a
/// margin, since a lock freed just too late costs a whole interval.
pub const SIGNAL_LEAD: Duration = Duration::from_millis(26);
/// When to stop a lease-era holder after its successor's waiting line,
/// which follows a failed try: the next try comes 0.9–1.1 s after it.
const LEASE_AIM: Duration = Duration::from_millis(820);
/// How late a line usually reaches cl-maint, assumed when the engine gives
/// no believable time for it.
const USUAL_LOG_DELAY: Duration = Duration::from_millis(8);
/// The most a line's engine time may lie before the moment it was seen:
/// beyond that (or after that moment) the engine's clock is not cl-maint's
/// (a remote engine), and the usual delay is assumed.
const MAX_LOG_DELAY: Duration = Duration::from_secs(1);

/// A container's line saying that it waits for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitLine {
    /// The lock generation the line belongs to.
    pub generation: Generation,
    /// When the node wrote it, by cl-maint's clock (see [`written_at`]).
    pub written: Instant,
}

/// How long before the wall clock `now` the engine's time `at` lies, when
/// that can be right by this machine's clock: not after `now`, and not more
/// than a second before it (another machine's clock, or too old to time by).
fn believable_delay(at: SystemTime, now: SystemTime) -> Option<Duration> {
    now.duration_since(at).ok().filter(|d| *d <= MAX_LOG_DELAY)
}

/// When something the engine dated `at` happened, by cl-maint's clock:
/// `seen` less its believable delay before the wall clock `now` taken at
/// `seen`.
pub fn dated(at: SystemTime, now: SystemTime, seen: Instant) -> Option<Instant> {
    believable_delay(at, now).and_then(|d| seen.checked_sub(d))
}

/// When a line that cl-maint saw at `seen` was written: [`dated`] by the
/// engine's time `at` of it; the usual delay before `seen` when the engine
/// gave no time, or one that cannot be right.
pub fn written_at(at: Option<SystemTime>, now: SystemTime, seen: Instant) -> Instant {
    at.and_then(|at| dated(at, now, seen))
        .unwrap_or_else(|| seen.checked_sub(USUAL_LOG_DELAY).unwrap_or(seen))
}

/// Whether a node that started at `started` (the engine's time) started so
/// recently (within a second, about one lease-era retry interval) that its
/// last waiting line may still say when it tries next: only then is its log
/// worth reading before a stop.
pub fn started_recently(started: SystemTime, now: SystemTime) -> bool {
    believable_delay(started, now).is_some()
}

/// When to ask the engine to stop the holder, given that its successor,
/// just started, wrote its waiting line at `line`, so that the lock is free
/// just before one of the successor's next tries instead of just after one:
///
/// - lease and retried advisory locks (the line follows a failed try; a try
///   every 1 s ± 10 %): 0.82 s after the line;
/// - bolt era (the line comes right before the first try; a try every
///   50 ms): [`SIGNAL_LEAD`] before the successor's next try, up to ten
///   intervals after the line.
///
/// `None` (stop now) for the blocking advisory lock, which takes the lock
/// the moment it is free, and when that moment has passed.
pub fn release_at(generation: Generation, line: Instant) -> Option<Instant> {
    let now = Instant::now();
    match generation {
        Generation::AdvisoryBlocking => None,
        Generation::Bolt => (1..=BOLT_TRIES_AHEAD)
            .map(|k| line + BOLT_RETRY * k - SIGNAL_LEAD)
            .find(|at| *at > now),
        _ => {
            let at = line + LEASE_AIM;
            (at > now).then_some(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_is_timed_to_the_next_try_after_the_line() {
        let now = Instant::now();
        assert_eq!(release_at(Generation::Lease, now), Some(now + ms(820)));
        assert_eq!(release_at(Generation::Lease, now - ms(1000)), None);
        // Bolt: the lead before the try at 50 ms after the line...
        assert_eq!(release_at(Generation::Bolt, now), Some(now + ms(50) - SIGNAL_LEAD));
        // ... or a later try when that moment has passed.
        assert_eq!(
            release_at(Generation::Bolt, now - ms(30)),
            Some(now + ms(70) - SIGNAL_LEAD)
        );
        assert_eq!(
            release_at(Generation::Bolt, now - ms(100)),
            Some(now + ms(50) - SIGNAL_LEAD)
        );
        // Up to ten intervals after the line, not later.
        assert_eq!(
            release_at(Generation::Bolt, now - ms(470)),
            Some(now + ms(30) - SIGNAL_LEAD)
        );
        assert_eq!(release_at(Generation::Bolt, now - ms(480)), None);
        assert_eq!(release_at(Generation::AdvisoryBlocking, now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_is_dated_by_the_engine_when_its_time_is_believable() {
        let seen = Instant::now();
        let wall = SystemTime::now();
        // The engine's time: the line was written 27 ms before it was seen.
        assert_eq!(written_at(Some(wall - ms(27)), wall, seen), seen - ms(27));
        // No time, a time after the moment it was seen, or one too far
        // before it (another machine's clock): the usual delay.
        assert_eq!(written_at(None, wall, seen), seen - USUAL_LOG_DELAY);
        assert_eq!(written_at(Some(wall + ms(5)), wall, seen), seen - USUAL_LOG_DELAY);
        assert_eq!(written_at(Some(wall - ms(1500)), wall, seen), seen - USUAL_LOG_DELAY);
        assert_eq!(dated(wall - ms(300), wall, seen), Some(seen - ms(300)));
        assert_eq!(dated(wall - ms(1500), wall, seen), None);
    }

    #[test]
    fn only_a_node_started_within_a_second_is_timed_by_its_log() {
        let now = SystemTime::now();
        assert!(started_recently(now - ms(120), now));
        assert!(started_recently(now - ms(900), now));
        assert!(!started_recently(now - ms(1100), now));
        assert!(!started_recently(now + ms(5), now));
    }
}
