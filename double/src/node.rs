//! The node's life: configuration, the start line, the lock (bolt flock or
//! database lease), the downgrade guard, the boot (a 204-only `/health` while
//! "migrations" run in the lease era), serving with a heartbeat in the
//! journal, and the graceful shutdown that releases the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, Fault, Invocation, LockMode};
use crate::journal::Journal;
use crate::lease::{self, DbLease, Keeper};
use crate::logger::{Logger, plain};
use crate::{clock, godur, http, lock, pg};

/// The signal that asked us to stop (0 while none has).
static STOP: AtomicI32 = AtomicI32::new(0);

/// Set when SIGTERM is to be ignored (`ignore-term`).
static IGNORE_TERM: AtomicBool = AtomicBool::new(false);

/// The file in `$ROOT` that records the newest version that "migrated" the
/// bolt-era database.
const DB_VERSION_FILE: &str = "db_version";

/// How long after its first waiting line `exit-while-waiting` dies: well
/// before a lease-era node's next try (1 s), well after a check made on the
/// line at once.
const DIE_WHILE_WAITING: Duration = Duration::from_millis(300);

/// Blocks SIGTERM and SIGINT in every thread and waits for them on one thread
/// of their own, recording which arrived.
fn install_signals() {
    // SAFETY: plain libc signal-mask calls on a stack-allocated sigset_t, made
    // before any other thread exists so every thread inherits the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            loop {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set, &mut sig) == 0 {
                    if sig == libc::SIGTERM && IGNORE_TERM.load(Ordering::SeqCst) {
                        plain("cl-node-double: ignoring SIGTERM (CL_DOUBLE_FAULT=ignore-term)");
                        continue;
                    }
                    STOP.store(sig, Ordering::SeqCst);
                }
            }
        });
    }
}

/// Sleeps up to `d`, returning early (true) when a stop signal has arrived.
fn stop_within(d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if STOP.load(Ordering::SeqCst) != 0 {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(5)));
    }
}

fn signal_name() -> &'static str {
    if STOP.load(Ordering::SeqCst) == libc::SIGINT {
        "interrupt"
    } else {
        "terminated"
    }
}

/// What holds the lock while the node runs.
enum Held {
    Bolt(#[allow(dead_code)] lock::BoltLock),
    Lease(Keeper),
}

impl Held {
    fn release(self, log: &Logger) {
        if let Held::Lease(keeper) = self {
            keeper.release(log);
        }
        // A bolt lock is released when its file closes (dropped here).
    }
}

/// Runs the node started as `inv`, of `version` (version, commit).
pub fn run(inv: &Invocation, version: (String, String)) -> ! {
    install_signals();
    let started = Instant::now();
    let cfg = Config::load(inv, &crate::env, &crate::read, version).unwrap_or_else(|e| {
        plain(&e);
        std::process::exit(1)
    });
    IGNORE_TERM.store(cfg.has(Fault::IgnoreTerm), Ordering::SeqCst);
    let client_id = clock::new_client_id();
    let full_version = format!("{}@{}", cfg.version, cfg.commit);
    let log = Logger::new(
        cfg.format,
        cfg.level,
        vec![("version", full_version), ("appID", client_id.clone())],
    );
    log.info(
        "cmd/shell_local.go:379",
        &format!("Starting Chainlink Node {} at commit {}", cfg.version, cfg.commit),
        &[("Version", cfg.version.clone()), ("SHA", cfg.commit.clone())],
    );
    if cfg.has(Fault::ExitAtStart) {
        plain("cl-node-double: simulated crash at start (CL_DOUBLE_FAULT=exit-at-start)");
        std::process::exit(2);
    }
    let (held, journal) = match cfg.mode {
        LockMode::Bolt => {
            let held = take_bolt(&cfg, &log);
            let journal = Arc::new(Journal::open(&cfg.journal_dir, &client_id, &cfg.version));
            journal.record("lock", "");
            (Held::Bolt(held), journal)
        }
        LockMode::Lease => {
            let (lease, taken_at, expires) = take_lease(&cfg, &log, &client_id);
            let journal = Arc::new(Journal::open(&cfg.journal_dir, &client_id, &cfg.version));
            journal.record("lock", "");
            journal.record("renew", &expires.to_string());
            let keeper = Keeper::start(lease, taken_at, journal.clone(), log.clone());
            (Held::Lease(keeper), journal)
        }
    };
    let refusal = match &cfg.database {
        None => check_and_migrate_file(&cfg),
        Some(url) => match lease::check_version(url, &cfg.version) {
            Ok(r) => r,
            Err(e) => Err(format!("failed to check the database version: {e}")),
        },
    };
    if let Err(refusal) = refusal {
        // The node closes its locked database on this error path: the lock is
        // released before it exits.
        journal.record("unlock", "refused");
        held.release(&log);
        plain(&refusal);
        std::process::exit(1)
    }
    if cfg.has(Fault::CrashAfterLock) {
        plain("cl-node-double: simulated crash after taking the lock (CL_DOUBLE_FAULT=crash-after-lock)");
        std::process::exit(2);
    }
    run_holding(&cfg, &log, held, &journal, &client_id, started)
}

/// `exit-after-wait`: the node dies right after saying it waits for the lock;
/// `exit-while-waiting`: [`DIE_WHILE_WAITING`] later (a stop meanwhile is
/// left to the caller's own check).
fn exit_if_after_wait(cfg: &Config) {
    let fault = if cfg.has(Fault::ExitAfterWait) {
        "exit-after-wait"
    } else if cfg.has(Fault::ExitWhileWaiting) && !stop_within(DIE_WHILE_WAITING) {
        "exit-while-waiting"
    } else {
        return;
    };
    plain(&format!(
        "cl-node-double: simulated crash while waiting for the lock (CL_DOUBLE_FAULT={fault})"
    ));
    std::process::exit(2);
}

fn take_bolt(cfg: &Config, log: &Logger) -> lock::BoltLock {
    let path = cfg.root.join("db.bolt");
    if !cfg.has(Fault::SilentWait) {
        let how_long = if cfg.db_timeout.is_zero() {
            "indefinitely".to_string()
        } else {
            godur::format(cfg.db_timeout)
        };
        log.info(
            "store/store.go:58",
            &format!("Waiting {how_long} for lock on db file {}", path.display()),
            &[],
        );
        exit_if_after_wait(cfg);
    }
    match lock::bolt_acquire(&path, cfg.db_timeout, cfg.has(Fault::IgnoreLock), &stop_within) {
        Ok(Ok(l)) => l,
        Ok(Err(lock::Refused::Timeout)) => {
            log.fatal(
                "cmd/local_client.go:71",
                "unable to init DB: unable to open stormDB: timeout",
            );
            std::process::exit(1)
        }
        Ok(Err(lock::Refused::Stopped)) => {
            log.info(
                "cmd/local_client.go:60",
                &format!("Shutting down due to {} signal received...", signal_name()),
                &[],
            );
            std::process::exit(1)
        }
        Err(e) => {
            plain(&format!("unable to init DB: unable to open stormDB: {e}"));
            std::process::exit(1)
        }
    }
}

/// Takes the database lease, waiting as the node does. Returns the lease, when
/// the successful attempt started, and the expiry it got (unix ns).
fn take_lease(cfg: &Config, log: &Logger, client_id: &str) -> (DbLease, Instant, u128) {
    let Some(url) = cfg.database.clone() else {
        plain("opening db: failed to take initial lease on database: no database URL");
        std::process::exit(1)
    };
    let skip = cfg.has(Fault::IgnoreLock) || !cfg.lock_enabled;
    let lease = DbLease::new(url, client_id.to_string(), cfg.lease_duration, cfg.lease_refresh, skip);
    if cfg.lock_enabled {
        log.debug("pg/lease_lock.go:104", "Taking initial lease...", &[]);
    }
    let mut tries: u64 = 0;
    let mut initial = true;
    loop {
        let attempt_at = Instant::now();
        match lease.attempt(initial, lease::CONNECT_TIMEOUT) {
            Ok(Some(expires)) => {
                if cfg.lock_enabled {
                    log.debug("pg/lease_lock.go:148", "Got exclusive lease on database", &[]);
                }
                return (lease, attempt_at, expires);
            }
            Ok(None) => {
                initial = false;
                if lock::log_retry_at(tries) && !cfg.has(Fault::SilentWait) {
                    log.info(
                        "pg/lease_lock.go:183",
                        "Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...",
                        &[("tryCount", tries.to_string())],
                    );
                    exit_if_after_wait(cfg);
                }
                tries += 1;
            }
            // Two nodes creating the table at the same moment: one of them
            // gets a duplicate-key error; it simply tries again.
            Err(pg::Error::Server { code, .. }) if initial && (code == "23505" || code == "42P07") => {}
            Err(e) => {
                plain(&format!(
                    "opening db: failed to take initial lease on database: failed to get lease lock: {e}"
                ));
                std::process::exit(1)
            }
        }
        if stop_within(lock::jittered(cfg.lease_refresh)) {
            plain("opening db: failed to take initial lease on database: stopped");
            std::process::exit(1)
        }
    }
}

/// The bolt era's downgrade guard and "migration", on `$ROOT/db_version`:
/// refuse a database a newer version has migrated; otherwise record our
/// version if it is newer.
fn check_and_migrate_file(cfg: &Config) -> Result<(), String> {
    use crate::config::version_key;
    let path = cfg.root.join(DB_VERSION_FILE);
    let stored = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
    if !stored.is_empty() && version_key(&stored) > version_key(&cfg.version) {
        return Err(format!(
            "Application version ({}) is lower than database version ({stored}). Only Chainlink {stored} or higher can be run on this database",
            cfg.version
        ));
    }
    if stored.is_empty() || version_key(&cfg.version) > version_key(&stored) {
        let tmp = cfg.root.join(format!("{DB_VERSION_FILE}.tmp.{}", std::process::id()));
        if std::fs::write(&tmp, format!("{}\n", cfg.version))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .is_err()
        {
            plain("cl-node-double: could not record the database version");
        }
    }
    Ok(())
}

fn run_holding(cfg: &Config, log: &Logger, held: Held, journal: &Journal, client_id: &str, started: Instant) -> ! {
    // Boot: in the lease era (v2.15+), a 204-only /health while migrations run,
    // then a short gap with nothing listening; in the bolt era, just the boot.
    let mut stopped = false;
    if matches!(held, Held::Lease(_)) {
        match http::Server::start(cfg.port, http::Mode::Migrating) {
            Ok(server) => {
                stopped = stop_within(cfg.migration);
                server.stop();
            }
            Err(e) => log.error(
                "web/router.go:70",
                &format!("cannot listen during migrations: {e}"),
                &[],
            ),
        }
    }
    stopped = stopped || stop_within(cfg.boot);
    let info = Arc::new(http::NodeInfo {
        version: cfg.version.clone(),
        commit: cfg.commit.clone(),
        root: cfg.root.clone(),
        metrics_token: cfg.metrics_token.clone(),
        started: Instant::now(),
        client_id: client_id.to_string(),
    });
    let server = if stopped {
        None
    } else {
        match http::Server::start(cfg.port, http::Mode::Serving(info)) {
            Ok(s) => Some(s),
            Err(e) => {
                log.fatal(
                    "web/router.go:70",
                    &format!("failed to listen on port {}: {e}", cfg.port),
                );
                journal.record("unlock", "");
                held.release(log);
                std::process::exit(1)
            }
        }
    };
    if server.is_some() {
        journal.record("serve", "");
        log.info(
            "cmd/shell_local.go:452",
            &format!("Chainlink booted in {:.2}s", started.elapsed().as_secs_f64()),
            &[],
        );
        log.info(
            "web/router.go:81",
            &format!("Listening and serving HTTP on 0.0.0.0:{}", cfg.port),
            &[],
        );
    }
    // The lease is refreshed by its keeper; this loop only beats.
    while !stopped && !stop_within(Duration::from_millis(10)) {
        journal.record("beat", "");
    }
    shut_down(cfg, log, held, journal, server)
}

fn shut_down(cfg: &Config, log: &Logger, held: Held, journal: &Journal, server: Option<http::Server>) -> ! {
    log.info(
        "cmd/shell_local.go:470",
        &format!("Shutting down due to {} signal received...", signal_name()),
        &[],
    );
    log.info("cmd/shell_local.go:478", "Gracefully exiting...", &[]);
    let over_grace = cfg.shutdown > cfg.grace;
    std::thread::sleep(cfg.shutdown.min(cfg.grace));
    if over_grace {
        log.error(
            "cmd/shell_local.go:490",
            &format!(
                "Shutdown grace period of {} exceeded, closing DB and exiting...",
                godur::format(cfg.grace)
            ),
            &[],
        );
    }
    if let Some(s) = server {
        s.stop();
    }
    journal.record("unserve", "");
    journal.record("unlock", "");
    held.release(log);
    std::process::exit(if over_grace { 255 } else { 0 })
}
