//! The bolt-era lock (an exclusive `flock` on `$ROOT/db.bolt`, tried every
//! 50 ms until `DATABASE_TIMEOUT`, 0 = forever, as bbolt does), and the lease
//! era's retry cadence. The lease itself lives in PostgreSQL (`lease.rs`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The bolt-era retry interval (bbolt's `flockRetryTimeout`).
pub const BOLT_RETRY: Duration = Duration::from_millis(50);

/// Why an attempt to take the lock ended without it.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `DATABASE_TIMEOUT` passed (bolt).
    Timeout,
    /// A stop signal arrived while waiting.
    Stopped,
}

/// A held bolt lock: the open, flocked `db.bolt`. Dropping it (or the process
/// dying in any way) releases the lock, as the kernel does for bbolt.
pub struct BoltLock {
    _file: File,
}

/// Opens `path` and takes an exclusive flock on it, retrying every 50 ms until
/// `timeout` (zero means forever) or until `stop()` says to give up.
pub fn bolt_acquire(
    path: &Path,
    timeout: Duration,
    skip_lock: bool,
    stop: &dyn Fn(Duration) -> bool,
) -> std::io::Result<Result<BoltLock, Refused>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let started = Instant::now();
    loop {
        if skip_lock || try_flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
            return Ok(Ok(BoltLock { _file: file }));
        }
        if !timeout.is_zero() && started.elapsed() + BOLT_RETRY > timeout {
            return Ok(Err(Refused::Timeout));
        }
        if stop(BOLT_RETRY) {
            return Ok(Err(Refused::Stopped));
        }
    }
}

/// `flock(2)`: Ok(true) when taken, Ok(false) when another holder has it.
fn try_flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// Whether the lease waiting line is printed at this try (Chainlink's
/// `logRetry`: 0, 1, 2, 4, 8, … 512, then every 1000th try).
pub fn log_retry_at(count: u64) -> bool {
    count.is_multiple_of(1000) || (count < 1000 && count & count.wrapping_sub(1) == 0)
}

/// The waiting node's delay before its next try: the refresh interval ±10 %.
pub fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_nanos() as f64 * 0.1;
    let r = crate::clock::random_unit() * 2.0 - 1.0;
    Duration::from_nanos((interval.as_nanos() as f64 + spread * r).max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_log_cadence_matches_chainlink() {
        let logged: Vec<u64> = (0..3001).filter(|c| log_retry_at(*c)).collect();
        assert_eq!(logged, vec![0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 3000]);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(1));
            assert!(
                d >= Duration::from_millis(900) && d <= Duration::from_millis(1100),
                "{d:?}"
            );
        }
    }
}
