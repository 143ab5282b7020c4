//! The two generations of the node's database lock, emulated on the shared
//! volume.
//!
//! - **bolt**: an exclusive `flock` on `$ROOT/db.bolt`, tried every 50 ms until
//!   `DATABASE_TIMEOUT` (0 = forever), as bbolt does.
//! - **lease**: the `lease_lock` table as a file, `$ROOT/lease_lock`, holding one
//!   row `<client_id> <expires_at_unix_ns>`. Each "transaction" holds an
//!   exclusive `flock` on `$ROOT/lease_lock.mutex` for a few microseconds, like
//!   the row lock Postgres takes. The upsert, refresh and release follow
//!   Chainlink's `pg/lease_lock.go`: take the row when it is ours or expired;
//!   release by setting `expires_at = now` only when it is still ours.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::clock::now_ns;

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

/// The lease table on the volume.
pub struct LeaseTable {
    row: PathBuf,
    mutex: PathBuf,
    /// This process's client id (new on every start, like the real node).
    pub client_id: String,
    /// How long a taken or refreshed lease lasts.
    pub duration: Duration,
    /// For the fault that breaks the lock on purpose: every attempt "succeeds".
    skip_lock: bool,
}

/// The row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub client_id: String,
    pub expires_at_ns: u128,
}

impl LeaseTable {
    pub fn new(root: &Path, client_id: String, duration: Duration, skip_lock: bool) -> Self {
        LeaseTable {
            row: root.join("lease_lock"),
            mutex: root.join("lease_lock.mutex"),
            client_id,
            duration,
            skip_lock,
        }
    }

    /// The upsert: takes or extends the lease when it is ours or has expired.
    /// Returns the new expiry on success, `None` when another client holds it.
    pub fn get_lease(&self) -> std::io::Result<Option<u128>> {
        if self.skip_lock {
            return Ok(Some(now_ns() + self.duration.as_nanos()));
        }
        self.transaction(|row| {
            let now = now_ns();
            let free = match row {
                None => true,
                Some(r) => r.client_id == self.client_id || r.expires_at_ns < now,
            };
            if !free {
                return (None, None);
            }
            let expires = now + self.duration.as_nanos();
            let new_row = LeaseRow {
                client_id: self.client_id.clone(),
                expires_at_ns: expires,
            };
            (Some(new_row), Some(expires))
        })
    }

    /// Graceful release: `UPDATE lease_lock SET expires_at=NOW() WHERE
    /// client_id = me AND expires_at > NOW()`.
    pub fn release(&self) -> std::io::Result<()> {
        self.transaction(|row| match row {
            Some(r) if r.client_id == self.client_id && r.expires_at_ns > now_ns() => {
                let released = LeaseRow {
                    client_id: r.client_id.clone(),
                    expires_at_ns: now_ns(),
                };
                (Some(released), ())
            }
            _ => (None, ()),
        })
    }

    /// Runs `f` on the current row under the table mutex; writes the row it
    /// returns (if any) atomically (write to a temporary file, then rename).
    fn transaction<T>(&self, f: impl FnOnce(Option<&LeaseRow>) -> (Option<LeaseRow>, T)) -> std::io::Result<T> {
        let mutex = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.mutex)?;
        try_flock(&mutex, libc::LOCK_EX)?;
        let current = read_row(&self.row)?;
        let (write, out) = f(current.as_ref());
        if let Some(row) = write {
            let tmp = self.row.with_extension(format!("tmp.{}", self.client_id));
            let mut file = File::create(&tmp)?;
            writeln!(file, "{} {}", row.client_id, row.expires_at_ns)?;
            file.sync_data()?;
            std::fs::rename(&tmp, &self.row)?;
        }
        // Closing `mutex` releases the flock.
        Ok(out)
    }
}

/// Reads the lease row; `None` when the table is empty.
pub fn read_row(path: &Path) -> std::io::Result<Option<LeaseRow>> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_string(&mut text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next().and_then(|t| t.parse().ok())) {
        (Some(id), Some(expires)) => Ok(Some(LeaseRow {
            client_id: id.to_string(),
            expires_at_ns: expires,
        })),
        _ => Ok(None),
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

    #[test]
    fn lease_is_exclusive_until_released_or_expired() {
        let dir = std::env::temp_dir().join(format!("cl-double-lease-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = LeaseTable::new(&dir, "a".into(), Duration::from_millis(300), false);
        let b = LeaseTable::new(&dir, "b".into(), Duration::from_millis(300), false);
        assert!(a.get_lease().unwrap().is_some());
        assert!(b.get_lease().unwrap().is_none(), "b must not take a's live lease");
        assert!(a.get_lease().unwrap().is_some(), "a refreshes its own lease");
        a.release().unwrap();
        assert!(b.get_lease().unwrap().is_some(), "released lease is free");
        assert!(a.get_lease().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
