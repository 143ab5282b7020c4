//! The lease-era lock in a real PostgreSQL database, with Chainlink's own SQL
//! (`core/services/pg/lease_lock.go`), and the database version
//! (`node_versions`, the downgrade guard).
//!
//! The lease lives on a dedicated connection with `lock_timeout` and
//! `idle_in_transaction_session_timeout` set to the lease duration. The first
//! attempt creates the `lease_lock` table and its one-row index in the same
//! transaction as the upsert; the upsert takes the row when it is ours or has
//! expired by the database's clock (`NOW()`), and returns the new expiry
//! (a row returned = taken). A graceful stop sets `expires_at = NOW()`.
//!
//! Once taken, a [`Keeper`] refreshes the lease on a plain ticker. A refresh
//! that fails (network, timeout) is logged and retried on the next tick, on a
//! new connection. Unlike the real node, which keeps running however long
//! the database is gone, the double errs on the safe side: a watchdog stops
//! it (journal `unlock`, exit 1) one refresh interval before the lease it last
//! got would expire, by its own monotonic clock, so that a node cut off from
//! the database has stopped before another can take its lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::now_ns;
use crate::journal::Journal;
use crate::logger::Logger;
use crate::pg::{self, Conn};

/// The `application_name` the double's connections carry.
const APPLICATION: &str = "cl-node-double";

/// Connect timeout for the first connection and for the version check.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The lease on its dedicated connection.
pub struct DbLease {
    url: pg::Url,
    client_id: String,
    duration: Duration,
    refresh: Duration,
    /// No database involved: every attempt "succeeds" (`ignore-lock`, or
    /// locking disabled).
    skip: bool,
    conn: Mutex<Option<Conn>>,
}

impl DbLease {
    /// A lease for `client_id` (a UUID) on the database at `url`.
    pub fn new(url: pg::Url, client_id: String, duration: Duration, refresh: Duration, skip: bool) -> DbLease {
        DbLease {
            url,
            client_id,
            duration,
            refresh,
            skip,
            conn: Mutex::new(None),
        }
    }

    /// Read/write timeout on the lease connection: long enough for a slow
    /// server, short enough to try a new connection before the lease ends.
    fn io_timeout(&self) -> Duration {
        (self.refresh * 2).max(Duration::from_secs(1)).min(self.duration)
    }

    fn connect(&self, connect_timeout: Duration) -> Result<Conn, pg::Error> {
        let mut conn = Conn::connect(&self.url, APPLICATION, connect_timeout, self.io_timeout())?;
        let ms = self.duration.as_millis();
        conn.query(&format!("SET SESSION lock_timeout = {ms}"))?;
        conn.query(&format!("SET SESSION idle_in_transaction_session_timeout = {ms}"))?;
        Ok(conn)
    }

    /// One take-or-renew attempt (`initial`: also create the table). Returns
    /// the new expiry (unix ns, database clock) when the lease is ours, `None`
    /// when another client holds it.
    pub fn attempt(&self, initial: bool, connect_timeout: Duration) -> Result<Option<u128>, pg::Error> {
        if self.skip {
            return Ok(Some(now_ns() + self.duration.as_nanos()));
        }
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.connect(connect_timeout)?);
        }
        let id = pg::literal(&self.client_id);
        let upsert = format!(
            "INSERT INTO lease_lock (client_id, expires_at) VALUES ({id}, NOW()+'{:.6} seconds'::interval) \
             ON CONFLICT ((client_id IS NOT NULL)) DO UPDATE SET client_id = EXCLUDED.client_id, expires_at = EXCLUDED.expires_at \
             WHERE lease_lock.client_id = {id} OR lease_lock.expires_at < NOW() \
             RETURNING (extract(epoch from expires_at)*1000000)::bigint",
            self.duration.as_secs_f64()
        );
        let sql = if initial {
            format!(
                "CREATE TABLE IF NOT EXISTS lease_lock (client_id uuid NOT NULL, expires_at timestamptz NOT NULL); \
                 CREATE UNIQUE INDEX IF NOT EXISTS only_one_lease_lock ON lease_lock ((client_id IS NOT NULL)); {upsert}"
            )
        } else {
            upsert
        };
        let result = guard.as_mut().map(|c| c.query(&sql));
        match result {
            Some(Ok(outcomes)) => {
                // Taken when the upsert affected a row (it then returns the
                // new expiry, in microseconds).
                let upserted = outcomes.last().ok_or_else(|| pg::Error::Protocol("no result".into()))?;
                if upserted.affected() == 0 {
                    return Ok(None);
                }
                let us = upserted
                    .rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .unwrap_or_default();
                us.parse::<u128>()
                    .map(|us| Some(us * 1000))
                    .map_err(|_| pg::Error::Protocol(format!("unexpected expiry {us:?}")))
            }
            Some(Err(e)) => {
                if !e.connection_usable() {
                    *guard = None;
                }
                Err(e)
            }
            None => Err(pg::Error::Protocol("no connection".into())),
        }
    }

    /// Graceful release: `UPDATE lease_lock SET expires_at=NOW() WHERE
    /// client_id = me AND expires_at > NOW()`, then the connection closes. On
    /// a broken connection, tries once more on a new one.
    pub fn release(&self) -> Result<(), pg::Error> {
        if self.skip {
            return Ok(());
        }
        let sql = format!(
            "UPDATE lease_lock SET expires_at=NOW() WHERE client_id = {} AND expires_at > NOW()",
            pg::literal(&self.client_id)
        );
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let first = match guard.as_mut() {
            Some(c) => c.query(&sql).map(drop),
            None => Err(pg::Error::Protocol("no connection".into())),
        };
        let result = match first {
            Ok(()) => Ok(()),
            Err(_) => self.connect(Duration::from_secs(1)).and_then(|mut c| {
                let r = c.query(&sql).map(drop);
                c.close();
                r
            }),
        };
        if let Some(c) = guard.take() {
            c.close();
        }
        result
    }
}

/// Shared between the keeper, the watchdog and the node.
struct Shared {
    lease: DbLease,
    stop: AtomicBool,
    /// When the node must have stopped, by its own clock: the start of the
    /// last successful refresh, plus the lease duration, minus the margin.
    deadline: Mutex<Instant>,
}

/// A held lease: refreshes it on a ticker and stops the node before it
/// could lapse.
pub struct Keeper {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// How long before the estimated expiry the node stops when it cannot
/// refresh: one refresh interval (at least 100 ms).
fn margin(lease: &DbLease) -> Duration {
    lease.refresh.max(Duration::from_millis(100))
}

impl Keeper {
    /// Starts refreshing `lease`, taken by an attempt that started at
    /// `taken_at`.
    pub fn start(lease: DbLease, taken_at: Instant, journal: Arc<Journal>, log: Logger) -> Keeper {
        let deadline = taken_at + lease.duration.saturating_sub(margin(&lease));
        let shared = Arc::new(Shared {
            lease,
            stop: AtomicBool::new(false),
            deadline: Mutex::new(deadline),
        });
        let (s, j, l) = (shared.clone(), journal.clone(), log.clone());
        let keeper = std::thread::spawn(move || refresh_loop(&s, &j, &l));
        let (s, j, l) = (shared.clone(), journal, log);
        let watchdog = std::thread::spawn(move || watchdog(&s, &j, &l));
        Keeper {
            shared,
            threads: vec![keeper, watchdog],
        }
    }

    /// Stops refreshing and releases the lease.
    pub fn release(self, log: &Logger) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        if let Err(e) = self.shared.lease.release() {
            log.warn(
                "pg/lease_lock.go:205",
                "Error trying to release lease on cancelled ctx",
                &[("err", e.to_string())],
            );
        }
    }
}

fn refresh_loop(s: &Shared, journal: &Journal, log: &Logger) {
    let interval = s.lease.refresh;
    let mut next = Instant::now() + interval;
    loop {
        while Instant::now() < next {
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(5)));
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        // A plain ticker: ticks missed while a refresh hung are dropped.
        next += interval;
        let now = Instant::now();
        if next <= now {
            next = now + interval;
        }
        let started = Instant::now();
        let connect_timeout = CONNECT_TIMEOUT.min(interval.max(Duration::from_millis(500)));
        match s.lease.attempt(false, connect_timeout) {
            Ok(Some(expires)) => {
                *s.deadline.lock().unwrap_or_else(|p| p.into_inner()) =
                    started + s.lease.duration.saturating_sub(margin(&s.lease));
                journal.record("renew", &expires.to_string());
            }
            Ok(None) => {
                journal.record("unlock", "lost");
                log.fatal(
                    "pg/lease_lock.go:226",
                    "Another node has taken the lease, exiting immediately",
                );
                std::process::exit(1)
            }
            Err(e) => log.error(
                "pg/lease_lock.go:223",
                "Error trying to refresh database lease",
                &[("err", e.to_string())],
            ),
        }
    }
}

fn watchdog(s: &Shared, journal: &Journal, log: &Logger) {
    while !s.stop.load(Ordering::SeqCst) {
        let deadline = *s.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if Instant::now() >= deadline {
            journal.record("unlock", "expired");
            log.fatal(
                "pg/lease_lock.go:223",
                "Could not refresh the database lease before it expired, exiting immediately",
            );
            std::process::exit(1)
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The downgrade guard against the database's `node_versions`: refuses
/// (`Ok(Err(message))`, nothing written) when the stored version is newer
/// than `version`; otherwise records `version` (one row, as the node keeps
/// it). `Err` when the database could not be asked.
pub fn check_version(url: &pg::Url, version: &str) -> Result<Result<(), String>, pg::Error> {
    let mut conn = Conn::connect(url, APPLICATION, CONNECT_TIMEOUT, Duration::from_secs(10))?;
    let result = check_version_on(&mut conn, version);
    if result.is_err() || matches!(result, Ok(Err(_))) {
        let _ = conn.query("ROLLBACK");
    }
    conn.close();
    result
}

fn check_version_on(conn: &mut Conn, version: &str) -> Result<Result<(), String>, pg::Error> {
    conn.query("BEGIN")?;
    conn.query(
        "CREATE TABLE IF NOT EXISTS node_versions (version TEXT PRIMARY KEY, created_at TIMESTAMP NOT NULL DEFAULT NOW()); \
         CREATE UNIQUE INDEX IF NOT EXISTS idx_only_one_node_version ON node_versions ((version IS NOT NULL))",
    )?;
    let found = conn.query("SELECT version FROM node_versions ORDER BY created_at DESC LIMIT 1 FOR UPDATE")?;
    let stored = found
        .last()
        .and_then(|o| o.rows.first())
        .and_then(|r| r.first().cloned().flatten());
    if let Some(stored) = stored
        && crate::config::version_key(&stored) > crate::config::version_key(version)
    {
        return Ok(Err(format!(
            "Application version ({version}) is lower than database version ({stored}). Only Chainlink {stored} or higher can be run on this database"
        )));
    }
    conn.query(&format!(
        "INSERT INTO node_versions (version, created_at) VALUES ({}, NOW()) \
         ON CONFLICT ((version IS NOT NULL)) DO UPDATE SET version = EXCLUDED.version, created_at = EXCLUDED.created_at",
        pg::literal(version)
    ))?;
    conn.query("COMMIT")?;
    Ok(Ok(()))
}
