//! How the double is invoked and configured, like the node of its version.
//!
//! - **Command line**: `chainlink --version` (or `-v`); `chainlink healthcheck`
//!   (the image's HEALTHCHECK); `chainlink local node` (v1) or
//!   `chainlink node -config a.toml [-config b.toml] -secrets s.toml start -a …`
//!   (v2; `--config`, `-c`, `--secrets`, `-s` and `=value` forms too).
//! - **Version**: `CHAINLINK_VERSION`/`CHAINLINK_COMMIT` when set, else the
//!   image's [`VERSION_FILE`] (`X@SHA`), else `0.0.0@0000000`.
//! - **v1 (version < 2.0)**: environment variables (`CHAINLINK_PORT`,
//!   `DATABASE_URL`, `JSON_CONSOLE`, `LOG_LEVEL`, `LEASE_LOCK_DURATION`,
//!   `LEASE_LOCK_REFRESH_INTERVAL`, `DATABASE_TIMEOUT`, `ROOT`,
//!   `SHUTDOWN_GRACE_PERIOD`).
//! - **v2 (version ≥ 2.0)**: the legacy variables are refused (see
//!   [`crate::legacy`]) and `DATABASE_TIMEOUT` is ignored; TOML from the
//!   `-config` files in order, then `CL_CONFIG` last (`RootDir`,
//!   `ShutdownGracePeriod`, `[WebServer] HTTPPort`, `[Database.Lock] Enabled,
//!   LeaseDuration, LeaseRefreshInterval`, `[Log] JSONConsole, Level`); the
//!   database URL from the `-secrets` files' `[Database] URL`, then
//!   `CL_DATABASE_URL`.
//! - **Lease mode needs a database URL** (refused at boot without one, like a
//!   node with no `Database.URL`); the bolt era (`CL_DOUBLE_LOCK=bolt`, v1
//!   only) needs none.
//!
//! The double's own knobs (`CL_DOUBLE_*`) work in both.

use std::path::PathBuf;
use std::time::Duration;

use crate::godur;
use crate::logger::{Format, Level};
use crate::pg;
use crate::toml::{Doc, Value};

/// The file the image build writes the version into: one line `X@SHA`.
pub const VERSION_FILE: &str = "/usr/local/share/chainlink/version";

/// Looks an environment variable up: `Some("")` when set but empty.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads a file's text.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> std::io::Result<String>;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `--version`, `-v`: print `chainlink version X@SHA`.
    Version,
    /// `healthcheck`: probe the running node's `/health`.
    Healthcheck,
    /// Run the node (`local node`, `node … start`, or anything else).
    Node(Invocation),
}

/// The node command's files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `-config` files, in order.
    pub config_files: Vec<String>,
    /// `-secrets` files, in order.
    pub secrets_files: Vec<String>,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Command {
    let mut inv = Invocation::default();
    let mut i = 0;
    // Global flags, then the command.
    while let Some(arg) = args.get(i) {
        match arg.as_str() {
            "--version" | "-v" | "-version" => return Command::Version,
            "healthcheck" => return Command::Healthcheck,
            "node" | "local" => {
                i += 1;
                break;
            }
            _ => i += 1,
        }
    }
    // The node command's flags, up to its subcommand (`start`, `node`, `n`).
    while let Some(arg) = args.get(i) {
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let list = match name.trim_start_matches('-') {
            _ if !name.starts_with('-') => break,
            "config" | "c" => &mut inv.config_files,
            "secrets" | "s" => &mut inv.secrets_files,
            _ => continue,
        };
        let value = match inline {
            Some(v) => v,
            None => {
                let Some(v) = args.get(i) else { break };
                i += 1;
                v.clone()
            }
        };
        list.push(value);
    }
    Command::Node(inv)
}

/// The version and commit: `CHAINLINK_VERSION` (with `CHAINLINK_COMMIT`) when
/// set, else the first line `X@SHA` of `version_file`, else `0.0.0@0000000`.
pub fn read_version(env: Env, read: ReadFile, version_file: &str) -> (String, String) {
    let value = |n: &str| env(n).filter(|v| !v.is_empty());
    if let Some(v) = value("CHAINLINK_VERSION") {
        return (v, value("CHAINLINK_COMMIT").unwrap_or_else(|| "0000000".into()));
    }
    let text = read(version_file).unwrap_or_default();
    let line = text.lines().next().unwrap_or_default().trim();
    match line.split_once('@') {
        Some((v, sha)) if !v.is_empty() => (v.to_string(), if sha.is_empty() { "0000000" } else { sha }.to_string()),
        _ if !line.is_empty() => (line.to_string(), "0000000".into()),
        _ => ("0.0.0".into(), "0000000".into()),
    }
}

/// `major.minor.patch` as numbers (anything after `-` or `+` ignored).
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Whether `version` configures like a 2.x node (TOML, legacy env refused).
pub fn is_v2(version: &str) -> bool {
    version_key(version).first().is_some_and(|m| *m >= 2)
}

/// Which lock the node takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LockMode {
    /// `flock` on `$ROOT/db.bolt` (before 0.6).
    Bolt,
    /// The `lease_lock` row in PostgreSQL (1.1 and later).
    Lease,
}

/// Faults on demand (`CL_DOUBLE_FAULT`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// Exit 2 right after the start line.
    ExitAtStart,
    /// Exit 2 right after taking the lock, without releasing it.
    CrashAfterLock,
    /// Never print a waiting line.
    SilentWait,
    /// Skip the lock: every attempt "succeeds".
    IgnoreLock,
    /// Exit 2 right after the first waiting line.
    ExitAfterWait,
    /// Exit 2 shortly after the first waiting line.
    ExitWhileWaiting,
    /// Ignore SIGTERM.
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
pub fn parse_faults(value: &str, version: &str) -> Result<Vec<Fault>, String> {
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

/// Everything the node runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory (`ROOT`, v2 `RootDir`; `/chainlink` by default).
    pub root: PathBuf,
    /// Where the journal goes (`CL_DOUBLE_JOURNAL`, else `root`).
    pub journal_dir: PathBuf,
    /// The HTTP port.
    pub port: u16,
    /// The lock's generation.
    pub mode: LockMode,
    /// Whether the lease is taken at all (v2 `[Database.Lock] Enabled`).
    pub lock_enabled: bool,
    /// The database (lease mode).
    pub database: Option<pg::Url>,
    /// Bolt era: how long to wait for the flock (0 = forever).
    pub db_timeout: Duration,
    /// How long a taken or refreshed lease lasts.
    pub lease_duration: Duration,
    /// How often the holder refreshes it (and a waiter retries).
    pub lease_refresh: Duration,
    /// Boot time before the real HTTP server (`CL_DOUBLE_BOOT`).
    pub boot: Duration,
    /// The 204-only migration window (`CL_DOUBLE_MIGRATION`).
    pub migration: Duration,
    /// How long shutting down takes (`CL_DOUBLE_SHUTDOWN`).
    pub shutdown: Duration,
    /// The shutdown grace period.
    pub grace: Duration,
    /// The node's version (`2.10.0`).
    pub version: String,
    /// Its commit.
    pub commit: String,
    /// Log output shape.
    pub format: Format,
    /// Lowest level logged.
    pub level: Level,
    /// `/metrics` bearer token (`CL_PROMETHEUS_AUTH_TOKEN`).
    pub metrics_token: Option<String>,
    /// Faults that apply to this node.
    pub faults: Vec<Fault>,
}

impl Config {
    /// Whether `fault` applies.
    pub fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }

    /// Builds the configuration of a node of `version` started as `inv`. The
    /// error is the whole line the node prints before exiting 1.
    pub fn load(inv: &Invocation, env: Env, read: ReadFile, version: (String, String)) -> Result<Config, String> {
        let value = |n: &str| env(n).filter(|v| !v.is_empty());
        let duration = |name: &str, v: Option<String>, default: Duration| -> Result<Duration, String> {
            match v {
                None => Ok(default),
                Some(v) => godur::parse(&v).map_err(|e| format!("invalid configuration: invalid {name}: {e}")),
            }
        };
        let v2 = is_v2(&version.0);
        let mode = match value("CL_DOUBLE_LOCK").as_deref() {
            None | Some("lease") => LockMode::Lease,
            Some("bolt") if !v2 => LockMode::Bolt,
            Some("bolt") => {
                return Err(
                    "invalid configuration: CL_DOUBLE_LOCK=bolt: a 2.x node has only the database lease".into(),
                );
            }
            Some(other) => {
                return Err(format!(
                    "invalid configuration: invalid CL_DOUBLE_LOCK {other:?}: use bolt or lease"
                ));
            }
        };
        let faults = parse_faults(&value("CL_DOUBLE_FAULT").unwrap_or_default(), &version.0)
            .map_err(|e| format!("invalid configuration: {e}"))?;
        let s = Settings::gather(v2, inv, env, read)?;
        let lease_duration = duration(s.names.duration, s.lease_duration, Duration::from_secs(10))?;
        let lease_refresh = duration(s.names.refresh, s.lease_refresh, Duration::from_secs(1))?;
        if lease_refresh > lease_duration / 2 {
            return Err(format!(
                "invalid configuration: {} ({}) must be <= half {} ({})",
                s.names.refresh,
                godur::format(lease_refresh),
                s.names.duration,
                godur::format(lease_duration)
            ));
        }
        let database = match (mode, s.database_url) {
            (LockMode::Bolt, _) => None,
            (LockMode::Lease, Some(url)) => {
                Some(pg::Url::parse(&url).map_err(|e| format!("invalid configuration: invalid {}: {e}", s.names.url))?)
            }
            (LockMode::Lease, None) if v2 => {
                return Err("config validation failed: invalid secrets: Database.URL: empty: must be provided and non-empty (set it in a -secrets file or CL_DATABASE_URL)".into());
            }
            (LockMode::Lease, None) => {
                return Err("You must set DATABASE_URL env variable. HINT: a lease-era node keeps its lock in PostgreSQL, e.g. DATABASE_URL=postgresql://postgres@db:5432/chainlink?sslmode=disable".into());
            }
        };
        let root = PathBuf::from(s.root.unwrap_or_else(|| "/chainlink".into()));
        let format = if s.json {
            Format::Json
        } else if value("CL_LOG_COLOR").is_some_and(|v| truthy(&v)) {
            Format::Colour
        } else {
            Format::Pretty
        };
        let level = match s.level.as_deref() {
            Some("debug") => Level::Debug,
            Some("warn") => Level::Warn,
            Some("error" | "crit" | "panic" | "fatal") => Level::Error,
            _ => Level::Info,
        };
        Ok(Config {
            journal_dir: value("CL_DOUBLE_JOURNAL")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.clone()),
            root,
            port: s.port,
            mode,
            lock_enabled: s.lock_enabled,
            database,
            db_timeout: duration("DATABASE_TIMEOUT", s.db_timeout, Duration::from_millis(500))?,
            lease_duration,
            lease_refresh,
            boot: duration("CL_DOUBLE_BOOT", value("CL_DOUBLE_BOOT"), Duration::from_millis(250))?,
            migration: duration(
                "CL_DOUBLE_MIGRATION",
                value("CL_DOUBLE_MIGRATION"),
                Duration::from_millis(300),
            )?,
            shutdown: duration("CL_DOUBLE_SHUTDOWN", value("CL_DOUBLE_SHUTDOWN"), Duration::ZERO)?,
            grace: duration(s.names.grace, s.grace, Duration::from_secs(5))?,
            version: version.0,
            commit: version.1,
            format,
            level,
            metrics_token: value("CL_PROMETHEUS_AUTH_TOKEN"),
            faults,
        })
    }
}

fn truthy(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v == "1"
}

/// Where each setting is read from, for error messages.
struct Names {
    duration: &'static str,
    refresh: &'static str,
    url: &'static str,
    grace: &'static str,
}

/// The settings as read, before defaults.
struct Settings {
    names: Names,
    root: Option<String>,
    port: u16,
    lock_enabled: bool,
    database_url: Option<String>,
    db_timeout: Option<String>,
    lease_duration: Option<String>,
    lease_refresh: Option<String>,
    grace: Option<String>,
    json: bool,
    level: Option<String>,
}

impl Settings {
    fn gather(v2: bool, inv: &Invocation, env: Env, read: ReadFile) -> Result<Settings, String> {
        let value = |n: &str| env(n).filter(|v| !v.is_empty());
        if !v2 {
            let port = match value("CHAINLINK_PORT") {
                None => 6688,
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("invalid configuration: invalid CHAINLINK_PORT {p:?}"))?,
            };
            return Ok(Settings {
                names: Names {
                    duration: "LEASE_LOCK_DURATION",
                    refresh: "LEASE_LOCK_REFRESH_INTERVAL",
                    url: "DATABASE_URL",
                    grace: "SHUTDOWN_GRACE_PERIOD",
                },
                root: value("ROOT"),
                port,
                lock_enabled: true,
                database_url: value("DATABASE_URL").or_else(|| value("CL_DATABASE_URL")),
                db_timeout: value("DATABASE_TIMEOUT"),
                lease_duration: value("LEASE_LOCK_DURATION"),
                lease_refresh: value("LEASE_LOCK_REFRESH_INTERVAL"),
                grace: value("SHUTDOWN_GRACE_PERIOD"),
                json: value("JSON_CONSOLE").is_some_and(|v| truthy(&v)),
                level: value("LOG_LEVEL"),
            });
        }
        if let Some(refusal) = crate::legacy::refusal(&|n| env(n).is_some()) {
            return Err(format!("config validation failed: {refusal}"));
        }
        let config = toml_config(inv, env, read)?;
        let mut secrets = Doc::default();
        for path in &inv.secrets_files {
            let text = read(path).map_err(|e| format!("failed to read secrets file {path}: {e}"))?;
            secrets.merge(Doc::parse(&text).map_err(|e| format!("failed to decode secrets TOML {path}: {e}"))?);
        }
        let port = match config.get("WebServer.HTTPPort") {
            None => 6688,
            Some(Value::Int(p)) if (0..=65535).contains(p) => *p as u16,
            Some(other) => {
                return Err(format!(
                    "invalid configuration: WebServer.HTTPPort: invalid value {other:?}"
                ));
            }
        };
        let lock_enabled = boolean(&config, "Database.Lock.Enabled", true)?;
        let json = boolean(&config, "Log.JSONConsole", false)?;
        let text = |path: &str| config.str(path).map(str::to_string);
        Ok(Settings {
            names: Names {
                duration: "Database.Lock.LeaseDuration",
                refresh: "Database.Lock.LeaseRefreshInterval",
                url: "Database.URL",
                grace: "ShutdownGracePeriod",
            },
            root: text("RootDir"),
            port,
            lock_enabled,
            database_url: value("CL_DATABASE_URL").or_else(|| secrets.str("Database.URL").map(str::to_string)),
            db_timeout: None,
            lease_duration: text("Database.Lock.LeaseDuration"),
            lease_refresh: text("Database.Lock.LeaseRefreshInterval"),
            grace: text("ShutdownGracePeriod"),
            json,
            level: text("Log.Level"),
        })
    }
}

/// The boolean at `key` (`Section.Key`), `default` when unset; another
/// type is refused as the node refuses it.
fn boolean(config: &Doc, key: &str, default: bool) -> Result<bool, String> {
    match config.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("invalid configuration: {key}: invalid value {other:?}")),
    }
}

/// The TOML configuration: the `-config` files in order, then `CL_CONFIG`.
pub fn toml_config(inv: &Invocation, env: Env, read: ReadFile) -> Result<Doc, String> {
    let mut doc = Doc::default();
    for path in &inv.config_files {
        let text = read(path).map_err(|e| format!("failed to read config file {path}: {e}"))?;
        doc.merge(Doc::parse(&text).map_err(|e| format!("failed to decode config TOML {path}: {e}"))?);
    }
    if let Some(text) = env("CL_CONFIG").filter(|v| !v.is_empty()) {
        doc.merge(Doc::parse(&text).map_err(|e| format!("failed to decode CL_CONFIG TOML: {e}"))?);
    }
    Ok(doc)
}

/// The port the healthcheck probes, found the way the node found it: PID 1's
/// command line (`cmdline`, NUL-separated) for `-config` files plus
/// `CL_CONFIG`, else `CHAINLINK_PORT`, else 6688.
pub fn healthcheck_port(cmdline: &str, env: Env, read: ReadFile) -> u16 {
    let args: Vec<String> = cmdline
        .split('\0')
        .skip(1)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    let inv = match parse_args(&args) {
        Command::Node(inv) => inv,
        _ => Invocation::default(),
    };
    if let Ok(doc) = toml_config(&inv, env, read)
        && let Some(Value::Int(p)) = doc.get("WebServer.HTTPPort")
        && let Ok(p) = u16::try_from(*p)
    {
        return p;
    }
    env("CHAINLINK_PORT").and_then(|p| p.parse().ok()).unwrap_or(6688)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
