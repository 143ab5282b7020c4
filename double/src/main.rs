//! `cl-node-double`: a stand-in for the Chainlink node that behaves like it in
//! everything cl-maint observes (see `docs/node-double.md`): the database lock
//! in both generations (bolt flock, Postgres lease), the exact log lines in
//! pretty, coloured and JSON form, no HTTP until the lock is held, `/health`,
//! `/readyz` and `/metrics`, the downgrade guard, graceful shutdown, and a
//! heartbeat journal on the shared volume that tests read.

mod clock;
#[path = "../../src/node/godur.rs"]
#[allow(dead_code)]
mod godur;
mod http;
mod journal;
mod lock;
mod logger;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use logger::{Format, Level, Logger, plain};

/// The signal that asked us to stop (0 while none has).
static STOP: AtomicI32 = AtomicI32::new(0);

/// The file in `$ROOT` that records the newest version that "migrated" the
/// database.
const DB_VERSION_FILE: &str = "db_version";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LockMode {
    Bolt,
    Lease,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    ExitAtStart,
    CrashAfterLock,
    SilentWait,
    IgnoreLock,
    ExitAfterWait,
    ExitWhileWaiting,
    IgnoreTerm,
}

impl Fault {
    fn parse(word: &str) -> Option<Fault> {
        Some(match word {
            "exit-at-start" => Fault::ExitAtStart,
            "crash-after-lock" => Fault::CrashAfterLock,
            "silent-wait" => Fault::SilentWait,
            "ignore-lock" => Fault::IgnoreLock,
            "exit-after-wait" => Fault::ExitAfterWait,
            "exit-while-waiting" => Fault::ExitWhileWaiting,
            "ignore-term" => Fault::IgnoreTerm,
            _ => return None,
        })
    }
}

/// `CL_DOUBLE_FAULT`: a comma-separated list of `FAULT` or `FAULT@VERSION`;
/// a fault with a version applies only to a node of that version (so that a
/// fault set on a node's container reaches only the clone cl-maint makes of
/// it on a new image, or only the old one).
fn parse_faults(value: &str, version: &str) -> Result<Vec<Fault>, String> {
    let mut faults = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (word, only) = match item.split_once('@') {
            Some((w, v)) => (w, Some(v)),
            None => (item, None),
        };
        let fault = Fault::parse(word).ok_or_else(|| format!("invalid CL_DOUBLE_FAULT {item:?}"))?;
        if only.is_none_or(|v| v == version) {
            faults.push(fault);
        }
    }
    Ok(faults)
}

/// Set when SIGTERM is to be ignored (`ignore-term`).
static IGNORE_TERM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Config {
    root: PathBuf,
    port: u16,
    mode: LockMode,
    db_timeout: Duration,
    lease_duration: Duration,
    lease_refresh: Duration,
    boot: Duration,
    migration: Duration,
    shutdown: Duration,
    grace: Duration,
    version: String,
    commit: String,
    format: Format,
    level: Level,
    metrics_token: Option<String>,
    faults: Vec<Fault>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_duration(name: &str, default: Duration) -> Result<Duration, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => godur::parse(&v).map_err(|e| format!("invalid {name}: {e}")),
    }
}

fn env_true(name: &str) -> bool {
    env(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let mode = match env("CL_DOUBLE_LOCK").as_deref() {
            None | Some("lease") => LockMode::Lease,
            Some("bolt") => LockMode::Bolt,
            Some(other) => {
                return Err(format!("invalid CL_DOUBLE_LOCK {other:?}: use bolt or lease"));
            }
        };
        let version = env("CHAINLINK_VERSION").unwrap_or_else(|| "0.0.0".into());
        let faults = parse_faults(&env("CL_DOUBLE_FAULT").unwrap_or_default(), &version)?;
        let port = match env("CHAINLINK_PORT") {
            None => 6688,
            Some(p) => p.parse().map_err(|_| format!("invalid CHAINLINK_PORT {p:?}"))?,
        };
        let format = if env_true("JSON_CONSOLE") {
            Format::Json
        } else if env_true("CL_LOG_COLOR") {
            Format::Colour
        } else {
            Format::Pretty
        };
        let level = match env("LOG_LEVEL").as_deref() {
            Some("debug") => Level::Debug,
            Some("warn") => Level::Warn,
            Some("error") => Level::Error,
            _ => Level::Info,
        };
        let lease_duration = env_duration("LEASE_LOCK_DURATION", Duration::from_secs(10))?;
        let lease_refresh = env_duration("LEASE_LOCK_REFRESH_INTERVAL", Duration::from_secs(1))?;
        if lease_refresh > lease_duration / 2 {
            return Err("refresh interval must be <= half the lease duration".into());
        }
        Ok(Config {
            root: PathBuf::from(env("ROOT").unwrap_or_else(|| "/chainlink".into())),
            port,
            mode,
            db_timeout: env_duration("DATABASE_TIMEOUT", Duration::from_millis(500))?,
            lease_duration,
            lease_refresh,
            boot: env_duration("CL_DOUBLE_BOOT", Duration::from_millis(250))?,
            migration: env_duration("CL_DOUBLE_MIGRATION", Duration::from_millis(300))?,
            shutdown: env_duration("CL_DOUBLE_SHUTDOWN", Duration::ZERO)?,
            grace: env_duration("SHUTDOWN_GRACE_PERIOD", Duration::from_secs(5))?,
            version,
            commit: env("CHAINLINK_COMMIT").unwrap_or_else(|| "0000000".into()),
            format,
            level,
            metrics_token: env("CL_PROMETHEUS_AUTH_TOKEN"),
            faults,
        })
    }
}

impl Config {
    fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

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

/// `major.minor.patch` as numbers (anything after `-` or `+` ignored).
fn version_key(v: &str) -> Vec<u64> {
    v.split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// What holds the lock while the node runs.
enum Held {
    Bolt(#[allow(dead_code)] lock::BoltLock),
    Lease(lock::LeaseTable),
}

impl Held {
    fn release(self) {
        if let Held::Lease(table) = self {
            let _ = table.release();
        }
        // A bolt lock is released when its file closes (dropped here).
    }
}

/// `chainlink-double healthcheck`: what the image's HEALTHCHECK runs, like the
/// real image's `curl -f http://localhost:6688/health`: healthy only when the
/// node answers `/health` with a status below 400.
fn healthcheck() -> ! {
    use std::io::{Read, Write};
    let port = env("CHAINLINK_PORT").unwrap_or_else(|| "6688".into());
    let answer = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    });
    let status: u16 = answer
        .ok()
        .and_then(|t| t.split_whitespace().nth(1).and_then(|c| c.parse().ok()))
        .unwrap_or(0);
    if (200..400).contains(&status) {
        std::process::exit(0)
    }
    plain(&format!(
        "healthcheck: /health answered {}",
        if status == 0 {
            "nothing".to_string()
        } else {
            status.to_string()
        }
    ));
    std::process::exit(1)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        healthcheck();
    }
    install_signals();
    let started = Instant::now();
    let cfg = Config::from_env().unwrap_or_else(|e| {
        plain(&format!("invalid configuration: {e}"));
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
    let (held, lease_expiry) = match cfg.mode {
        LockMode::Bolt => (take_bolt(&cfg, &log), None),
        LockMode::Lease => take_lease(&cfg, &log, &client_id),
    };
    let journal = journal::Journal::open(&cfg.root, &client_id, &cfg.version);
    journal.record("lock", "");
    if let Some(expires) = lease_expiry {
        journal.record("renew", &expires.to_string());
    }
    if let Err(refusal) = check_and_migrate(&cfg) {
        // The node closes its locked database on this error path: the lock is
        // released before it exits.
        journal.record("unlock", "refused");
        held.release();
        plain(&refusal);
        std::process::exit(1)
    }
    if cfg.has(Fault::CrashAfterLock) {
        plain("cl-node-double: simulated crash after taking the lock (CL_DOUBLE_FAULT=crash-after-lock)");
        std::process::exit(2);
    }
    run_holding(&cfg, &log, held, &journal, &client_id, started);
}

/// How long after its first waiting line `exit-while-waiting` dies: well
/// before a lease-era node's next try (1 s), well after a check made on the
/// line at once.
const DIE_WHILE_WAITING: Duration = Duration::from_millis(300);

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

fn take_bolt(cfg: &Config, log: &Logger) -> Held {
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
        Ok(Ok(l)) => Held::Bolt(l),
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

fn take_lease(cfg: &Config, log: &Logger, client_id: &str) -> (Held, Option<u128>) {
    let table = lock::LeaseTable::new(
        &cfg.root,
        client_id.to_string(),
        cfg.lease_duration,
        cfg.has(Fault::IgnoreLock),
    );
    log.debug("pg/lease_lock.go:104", "Taking initial lease...", &[]);
    let mut tries: u64 = 0;
    let expires = loop {
        match table.get_lease() {
            Ok(Some(expires)) => break expires,
            Ok(None) => {}
            Err(e) => {
                plain(&format!(
                    "opening db: failed to take initial lease on database: failed to get lease lock: {e}"
                ));
                std::process::exit(1)
            }
        }
        if lock::log_retry_at(tries) && !cfg.has(Fault::SilentWait) {
            log.info(
                "pg/lease_lock.go:183",
                "Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...",
                &[("tryCount", tries.to_string())],
            );
            exit_if_after_wait(cfg);
        }
        tries += 1;
        if stop_within(lock::jittered(cfg.lease_refresh)) {
            plain("opening db: failed to take initial lease on database: stopped");
            std::process::exit(1)
        }
    };
    log.debug("pg/lease_lock.go:148", "Got exclusive lease on database", &[]);
    (Held::Lease(table), Some(expires))
}

/// The downgrade guard and the "migration": refuse a database a newer version
/// has migrated; otherwise record our version if it is newer.
fn check_and_migrate(cfg: &Config) -> Result<(), String> {
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

fn run_holding(cfg: &Config, log: &Logger, held: Held, journal: &journal::Journal, client_id: &str, started: Instant) {
    let lease = match &held {
        Held::Lease(t) => Some(t),
        Held::Bolt(_) => None,
    };
    // Boot: in the lease era (v2.15+), a 204-only /health while migrations run,
    // then a short gap with nothing listening; in the bolt era, just the boot.
    let mut stopped = false;
    if lease.is_some() {
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
    let info = std::sync::Arc::new(http::NodeInfo {
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
                held.release();
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
    let mut next_refresh = Instant::now() + cfg.lease_refresh;
    while !stopped && !stop_within(Duration::from_millis(10)) {
        journal.record("beat", "");
        if let Some(table) = lease
            && Instant::now() >= next_refresh
        {
            next_refresh += cfg.lease_refresh;
            match table.get_lease() {
                Ok(Some(expires)) => journal.record("renew", &expires.to_string()),
                Ok(None) => {
                    log.fatal(
                        "pg/lease_lock.go:166",
                        "Another node has taken the lease, exiting immediately",
                    );
                    std::process::exit(1)
                }
                Err(e) => log.error(
                    "pg/lease_lock.go:160",
                    "Error trying to refresh database lease",
                    &[("err", e.to_string())],
                ),
            }
        }
    }
    shut_down(cfg, log, held, journal, server);
}

fn shut_down(cfg: &Config, log: &Logger, held: Held, journal: &journal::Journal, server: Option<http::Server>) {
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
    held.release();
    std::process::exit(if over_grace { 255 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_to_every_version_or_only_the_named_one() {
        let faults = parse_faults("ignore-term@1.0.0, exit-after-wait@1.1.0", "1.1.0").unwrap();
        assert_eq!(faults, vec![Fault::ExitAfterWait]);
        assert_eq!(parse_faults("silent-wait", "9.9.9").unwrap(), vec![Fault::SilentWait]);
        assert!(parse_faults("", "1.0.0").unwrap().is_empty());
        assert!(parse_faults("no-such-fault@1.0.0", "1.0.0").is_err());
    }
}
