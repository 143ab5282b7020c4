//! The effective settings of a node: a flag (or its environment variable)
//! if given, else the node's table, else `[defaults]`, else cl-maint's
//! default. Pure: the caller says what the command line gave and how to read
//! the environment.

use std::time::Duration;

use serde::Serialize;

use super::file::{ConfigFile, NodeTable};
use super::{ConfigError, LockKind};

/// cl-maint's defaults (the same as the flags' defaults; a test checks).
pub mod defaults {
    use std::time::Duration;
    /// `--container`.
    pub const CONTAINER: &str = "chainlink";
    /// `--standby-port`.
    pub const STANDBY_PORT: u16 = 6687;
    /// `--secondary`.
    pub const SECONDARY: &str = crate::pair::DEFAULT_SECONDARY;
    /// `--secondary-port`.
    pub const SECONDARY_PORT: u16 = 6687;
    /// `--pull-timeout`.
    pub const PULL: Duration = Duration::from_secs(15 * 60);
    /// `--wait-timeout`.
    pub const WAIT: Duration = crate::handoff::Deadlines::DEFAULT.wait;
    /// `--takeover-timeout`.
    pub const TAKEOVER: Duration = crate::handoff::Deadlines::DEFAULT.takeover;
    /// `--stop-timeout`.
    pub const STOP: Duration = crate::handoff::Deadlines::DEFAULT.stop;
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line (`--standby-port`).
    Flag(&'static str),
    /// An environment variable standing for a flag (`DOCKER_HOST`).
    Env(&'static str),
    /// The config file's table (`nodes.sepolia`, `defaults`).
    File(String),
    /// cl-maint's default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(table) => write!(f, "file [{table}]"),
            Source::Default => f.write_str("default"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Setting<T> {
    /// A value from `source`.
    pub fn new(value: T, source: Source) -> Setting<T> {
        Setting { value, source }
    }
}

/// What the command line (flags and the environment variables standing for
/// them) gave; `None`: not given.
#[derive(Clone, Debug, Default)]
pub struct Given {
    /// `--host` / `DOCKER_HOST`.
    pub host: Option<Setting<String>>,
    /// `--container`.
    pub container: Option<Setting<String>>,
    /// `--image`.
    pub repository: Option<Setting<String>>,
    /// `--port`.
    pub port: Option<Setting<u16>>,
    /// `--standby-port`.
    pub standby_port: Option<Setting<u16>>,
    /// `--secondary`.
    pub secondary: Option<Setting<String>>,
    /// `--secondary-port`.
    pub secondary_port: Option<Setting<u16>>,
    /// `--secondary-host` / `CL_MAINT_SECONDARY_HOST`.
    pub secondary_host: Option<Setting<String>>,
    /// `--before-upgrade`.
    pub before_upgrade: Option<Setting<String>>,
    /// `--after-upgrade`.
    pub after_upgrade: Option<Setting<String>>,
    /// `--lock`.
    pub lock: Option<Setting<LockKind>>,
    /// `--probe`.
    pub probe: Option<Setting<crate::probe::ProbeMode>>,
    /// `--lock-wait-pattern`.
    pub lock_wait_pattern: Option<Setting<String>>,
    /// `--metrics-token` / `CL_MAINT_METRICS_TOKEN`.
    pub health_token: Option<Setting<String>>,
    /// `--pull-timeout`.
    pub pull_timeout: Option<Setting<Duration>>,
    /// `--wait-timeout`.
    pub wait_timeout: Option<Setting<Duration>>,
    /// `--takeover-timeout`.
    pub takeover_timeout: Option<Setting<Duration>>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<Setting<Duration>>,
}

/// The settings a command runs a node with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// The node's name in the file (`None`: no file, or no node chosen).
    pub node: Option<String>,
    /// The Docker Engine (`None`: DOCKER_CONTEXT, the current context, the local socket).
    pub host: Setting<Option<String>>,
    /// The node's container.
    pub container: Setting<String>,
    /// The image repository to upgrade to (`None`: the one the node runs).
    pub repository: Setting<Option<String>>,
    /// The host port the node must publish its HTTP port on (`None`: not checked).
    pub port: Setting<Option<u16>>,
    /// The temporary standby's host port.
    pub standby_port: Setting<u16>,
    /// The secondary's container.
    pub secondary: Setting<String>,
    /// The secondary's host port.
    pub secondary_port: Setting<u16>,
    /// The secondary's engine (`None`: the primary's).
    pub secondary_host: Setting<Option<String>>,
    /// The command run before an upgrade changes anything.
    pub before_upgrade: Setting<Option<String>>,
    /// The command run after a successful upgrade.
    pub after_upgrade: Setting<Option<String>>,
    /// The lock generation (`None`: detected from the node's log).
    pub lock: Setting<Option<LockKind>>,
    /// How the nodes' HTTP ports are reached (`None`: auto).
    pub probe: Setting<Option<crate::probe::ProbeMode>>,
    /// The extra lock-wait pattern.
    pub lock_wait_pattern: Setting<Option<String>>,
    /// The bearer token for `/metrics` (secret).
    pub health_token: Setting<Option<String>>,
    /// How long the pull may take.
    pub pull_timeout: Setting<Duration>,
    /// How long a new container may take to log that it waits for the lock.
    pub wait_timeout: Setting<Duration>,
    /// How long a takeover may take.
    pub takeover_timeout: Setting<Duration>,
    /// Grace period of a graceful stop.
    pub stop_timeout: Setting<Duration>,
    /// Things worth saying (a token variable that is not set).
    pub notes: Vec<String>,
}

/// Chooses the node: `--node NAME`, else the file's only node, else the one
/// whose container is `--container`. `Ok(None)` when there is no file, or a
/// file with no node; an error for an unknown name, or several nodes and
/// nothing to choose by.
pub fn select(
    file: Option<&ConfigFile>,
    node: Option<&str>,
    container: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    let Some(file) = file else {
        return match node {
            Some(name) => Err(ConfigError {
                path: super::file::FILE_NAME.into(),
                line: None,
                what: format!("--node {name} needs a config file, and none was found"),
                fix: format!(
                    "name one with --config PATH (or CL_MAINT_CONFIG), or put {} in the working directory or ~/.config/cl-maint/",
                    super::file::FILE_NAME
                ),
            }),
            None => Ok(None),
        };
    };
    let names = || file.nodes.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(name) = node {
        return if file.nodes.contains_key(name) {
            Ok(Some(name.to_string()))
        } else {
            Err(ConfigError::new(
                &file.path,
                None,
                format!("the file has no node {name:?} (its nodes: {})", or_none(&names())),
                format!("add a [nodes.{name}] table, or choose one of its nodes with --node"),
            ))
        };
    }
    match file.nodes.len() {
        0 => Ok(None),
        1 => Ok(file.nodes.keys().next().cloned()),
        _ => {
            if let Some(container) = container {
                let mut matching = file
                    .nodes
                    .iter()
                    .filter(|(name, t)| container_of(name, t) == container)
                    .map(|(name, _)| name.clone());
                if let Some(name) = matching.next() {
                    return Ok(Some(name));
                }
                return Ok(None);
            }
            Err(ConfigError::new(
                &file.path,
                None,
                format!("the file describes several nodes ({}) and none was chosen", names()),
                "choose one with --node NAME (or run `cl-maint upgrade --all` for every node)".to_string(),
            ))
        }
    }
}

/// A setting whose absence means `default`.
fn or_default<T>(s: Setting<Option<T>>, default: T) -> Setting<T> {
    Setting::new(s.value.unwrap_or(default), s.source)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// A node's container: its `container`, else its name.
fn container_of(name: &str, table: &NodeTable) -> String {
    table
        .container
        .as_ref()
        .map_or_else(|| name.to_string(), |c| c.get_ref().0.clone())
}

/// The effective settings for `node` (from [`select`]); `env` reads an
/// environment variable (for `health_token_env`).
pub fn resolve(
    file: Option<&ConfigFile>,
    node: Option<&str>,
    given: &Given,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Effective, ConfigError> {
    let empty = NodeTable::default();
    let (table, defaults) = match (file, node) {
        (Some(f), Some(n)) => (f.nodes.get(n).unwrap_or(&empty), &f.defaults),
        (Some(f), None) => (&empty, &f.defaults),
        (None, _) => (&empty, &empty),
    };
    let node_src = Source::File(node.map_or_else(|| "defaults".to_string(), |n| format!("nodes.{n}")));
    let defaults_src = Source::File("defaults".to_string());
    // given, else the node's table, else [defaults], else `fallback`.
    macro_rules! pick {
        ($given:expr, $field:expr, $fallback:expr) => {{
            let from = |t: &NodeTable| $field(t);
            match (&$given, from(table), from(defaults)) {
                (Some(g), _, _) => Setting::new(Some(g.value.clone()), g.source.clone()),
                (None, Some(v), _) => Setting::new(Some(v), node_src.clone()),
                (None, None, Some(v)) => Setting::new(Some(v), defaults_src.clone()),
                (None, None, None) => Setting::new($fallback, Source::Default),
            }
        }};
    }

    let container = match (&given.container, table.container.as_ref(), node) {
        (Some(g), _, _) => g.clone(),
        (None, Some(c), _) => Setting::new(c.get_ref().0.clone(), node_src.clone()),
        (None, None, Some(name)) => Setting::new(name.to_string(), Source::File(format!("nodes.{name}: its name"))),
        (None, None, None) => Setting::new(defaults::CONTAINER.to_string(), Source::Default),
    };
    let mut notes = Vec::new();
    let token = |t: &NodeTable| match (&t.health_token, &t.health_token_env) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(var)) => env(var).filter(|v| !v.is_empty()),
        (None, None) => None,
    };
    let health_token = pick!(given.health_token, token, None);
    if given.health_token.is_none()
        && health_token.value.is_none()
        && let Some(var) = table.health_token_env.as_ref().or(defaults.health_token_env.as_ref())
    {
        notes.push(format!(
            "health_token_env names {var}, which is not set: /metrics is read without a token"
        ));
    }
    let effective = Effective {
        node: node.map(str::to_string),
        host: pick!(given.host, |t: &NodeTable| t.host.clone().map(|h| h.0), None),
        container,
        repository: pick!(
            given.repository,
            |t: &NodeTable| t.repository.clone().map(|r| r.0),
            None
        ),
        port: pick!(given.port, |t: &NodeTable| t.port.map(|p| p.0), None),
        standby_port: or_default(
            pick!(given.standby_port, |t: &NodeTable| t.standby_port.map(|p| p.0), None),
            defaults::STANDBY_PORT,
        ),
        secondary: or_default(
            pick!(given.secondary, |t: &NodeTable| t.secondary.clone().map(|c| c.0), None),
            defaults::SECONDARY.to_string(),
        ),
        secondary_port: or_default(
            pick!(
                given.secondary_port,
                |t: &NodeTable| t.secondary_port.map(|p| p.0),
                None
            ),
            defaults::SECONDARY_PORT,
        ),
        secondary_host: pick!(
            given.secondary_host,
            |t: &NodeTable| t.secondary_host.clone().map(|h| h.0),
            None
        ),
        before_upgrade: pick!(given.before_upgrade, |t: &NodeTable| t.before_upgrade.clone(), None),
        after_upgrade: pick!(given.after_upgrade, |t: &NodeTable| t.after_upgrade.clone(), None),
        lock: pick!(given.lock, |t: &NodeTable| t.lock, None),
        probe: pick!(given.probe, |t: &NodeTable| t.probe, None),
        lock_wait_pattern: pick!(
            given.lock_wait_pattern,
            |t: &NodeTable| t.lock_wait_pattern.as_ref().map(|p| p.get_ref().0.clone()),
            None
        ),
        health_token,
        pull_timeout: or_default(
            pick!(given.pull_timeout, |t: &NodeTable| t.timeouts.pull.map(|d| d.0), None),
            defaults::PULL,
        ),
        wait_timeout: or_default(
            pick!(given.wait_timeout, |t: &NodeTable| t.timeouts.wait.map(|d| d.0), None),
            defaults::WAIT,
        ),
        takeover_timeout: or_default(
            pick!(
                given.takeover_timeout,
                |t: &NodeTable| t.timeouts.takeover.map(|d| d.0),
                None
            ),
            defaults::TAKEOVER,
        ),
        stop_timeout: or_default(
            pick!(given.stop_timeout, |t: &NodeTable| t.timeouts.stop.map(|d| d.0), None),
            defaults::STOP,
        ),
        notes,
    };
    validate(&effective, file)?;
    Ok(effective)
}

/// Checks the combination: a pattern needs a lock generation (and must
/// compile, when it came from a flag), the standby port is not the node's.
fn validate(e: &Effective, file: Option<&ConfigFile>) -> Result<(), ConfigError> {
    let path = file.map_or_else(|| "(command line)".into(), |f| f.path.clone());
    let line = |s: &Source| match (s, file) {
        (Source::File(table), Some(f)) => table
            .strip_prefix("nodes.")
            .and_then(|n| f.node_lines.get(n.split(':').next().unwrap_or(n)).copied()),
        _ => None,
    };
    if let Some(pattern) = &e.lock_wait_pattern.value {
        super::compile_pattern(pattern).map_err(|why| {
            ConfigError::new(
                &path,
                line(&e.lock_wait_pattern.source),
                why,
                "correct the pattern".to_string(),
            )
        })?;
        if e.lock.value.is_none() {
            return Err(ConfigError::new(
                &path,
                line(&e.lock_wait_pattern.source),
                format!(
                    "a lock-wait pattern ({}) needs a lock generation",
                    e.lock_wait_pattern.source
                ),
                "add --lock bolt|lease, or lock = \"bolt\" / \"lease\" in the node's table".to_string(),
            ));
        }
    }
    if e.port.value == Some(e.standby_port.value) {
        return Err(ConfigError::new(
            &path,
            line(&e.standby_port.source).or(line(&e.port.source)),
            format!(
                "the node's port and the standby port are both {} ({}, {})",
                e.standby_port.value, e.port.source, e.standby_port.source
            ),
            "give the standby another port (standby_port, or --standby-port)".to_string(),
        ));
    }
    Ok(())
}

/// The effective settings of every node of the file, in name order (for
/// `--all`); every node is resolved before anything runs.
pub fn resolve_all(
    file: &ConfigFile,
    given: &Given,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Effective>, ConfigError> {
    if file.nodes.is_empty() {
        return Err(ConfigError::new(
            &file.path,
            None,
            "--all needs nodes, and the file has no [nodes.NAME] table".to_string(),
            "describe each node in a [nodes.NAME] table".to_string(),
        ));
    }
    file.nodes
        .keys()
        .map(|name| resolve(Some(file), Some(name), given, env))
        .collect()
}
