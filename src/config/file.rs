//! The config file `cl-maint.toml`: where it is looked for, and what it may
//! say. Parsing validates every value (ports, durations, names, patterns) and
//! refuses unknown keys, so a bad file is reported with its line before
//! anything talks to the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;

/// The file's name in the working directory and the user's config directory.
pub const FILE_NAME: &str = "cl-maint.toml";

/// Where the file was found, and why there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--config PATH`.
    Flag,
    /// `CL_MAINT_CONFIG`.
    Env,
    /// `./cl-maint.toml`.
    WorkingDir,
    /// `$XDG_CONFIG_HOME/cl-maint/cl-maint.toml` or `~/.config/cl-maint/cl-maint.toml`.
    UserDir,
}

/// Finds the config file: the one named (`--config`, or `CL_MAINT_CONFIG`,
/// with `named_by_env` telling which), else `./cl-maint.toml` in `cwd`,
/// else the user's config directory. `Ok(None)` when none exists; an error
/// when a named file does not exist.
pub fn find(
    named: Option<&Path>,
    named_by_env: bool,
    cwd: &Path,
    xdg_config_home: Option<&Path>,
    home: Option<&Path>,
) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
    if let Some(path) = named {
        if path.is_file() {
            let origin = if named_by_env { Origin::Env } else { Origin::Flag };
            return Ok(Some((path.to_path_buf(), origin)));
        }
        let by = if named_by_env { "CL_MAINT_CONFIG" } else { "--config" };
        return Err(ConfigError::new(
            path,
            None,
            format!("the config file named by {by} does not exist or is not a file"),
            format!("check the path, or leave {by} out to use ./{FILE_NAME} or the user's config directory"),
        ));
    }
    for (dir, origin) in candidate_dirs(cwd, xdg_config_home, home) {
        let path = dir.join(FILE_NAME);
        if path.is_file() {
            return Ok(Some((path, origin)));
        }
    }
    Ok(None)
}

/// The places looked in when no file is named, in order.
pub fn candidate_dirs(cwd: &Path, xdg_config_home: Option<&Path>, home: Option<&Path>) -> Vec<(PathBuf, Origin)> {
    let mut dirs = vec![(cwd.to_path_buf(), Origin::WorkingDir)];
    let user = match xdg_config_home.filter(|p| p.is_absolute()) {
        Some(xdg) => Some(xdg.to_path_buf()),
        None => home.map(|h| h.join(".config")),
    };
    if let Some(user) = user {
        dirs.push((user.join("cl-maint"), Origin::UserDir));
    }
    dirs
}

/// A parsed, valid config file.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[defaults]`: settings for every node.
    pub defaults: NodeTable,
    /// `[nodes.NAME]`, by name.
    pub nodes: BTreeMap<String, NodeTable>,
    /// The line of each node's table, for messages.
    pub node_lines: BTreeMap<String, usize>,
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path,
            None,
            format!("cannot read the config file: {e}"),
            "check that the file exists and is readable".to_string(),
        )
    })?;
    parse(path, &text)
}

/// Parses the text of a config file (`path` is for messages).
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let doc: Document = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let message = e.message().trim();
        let fix = fix_for(message);
        let what = match message.split_once(", expected") {
            Some((unknown, _)) if message.starts_with("unknown field") => unknown.replacen("field", "key", 1),
            _ => message.to_string(),
        };
        ConfigError::new(path, line, what, fix)
    })?;
    let defaults = doc.defaults.map(Spanned::into_inner).unwrap_or_default();
    if let Some(container) = &defaults.container {
        return Err(ConfigError::new(
            path,
            Some(line_of(text, container.span().start)),
            "`container` in [defaults] would give every node the same container".to_string(),
            "name the container in each [nodes.NAME] table (a node without one uses its NAME)".to_string(),
        ));
    }
    let mut nodes = BTreeMap::new();
    let mut node_lines = BTreeMap::new();
    for (name, table) in doc.nodes {
        let line = line_of(text, table.span().start);
        let table = table.into_inner();
        super::check_node_name(name.get_ref()).map_err(|why| {
            ConfigError::new(
                path,
                Some(line_of(text, name.span().start)),
                format!("the node name {:?} {why}", name.get_ref()),
                "use letters, digits, '_', '.' and '-' in node names".to_string(),
            )
        })?;
        if let Some(pattern) = &table.lock_wait_pattern
            && table.lock.or(defaults.lock).is_none()
        {
            return Err(ConfigError::new(
                path,
                Some(line_of(text, pattern.span().start)),
                format!(
                    "[nodes.{}] sets lock_wait_pattern but no lock generation",
                    name.get_ref()
                ),
                "add lock = \"bolt\" (the line is printed before the lock attempt) or lock = \"lease\" (after a failed attempt)"
                    .to_string(),
            ));
        }
        node_lines.insert(name.get_ref().clone(), line);
        nodes.insert(name.into_inner(), table);
    }
    if let Some(pattern) = &defaults.lock_wait_pattern
        && defaults.lock.is_none()
        && nodes.values().any(|n| n.lock.is_none())
    {
        return Err(ConfigError::new(
            path,
            Some(line_of(text, pattern.span().start)),
            "[defaults] sets lock_wait_pattern but no lock generation".to_string(),
            "add lock = \"bolt\" (the line is printed before the lock attempt) or lock = \"lease\" (after a failed attempt)"
                .to_string(),
        ));
    }
    Ok(ConfigFile {
        path: path.to_path_buf(),
        defaults,
        nodes,
        node_lines,
    })
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A fix for a parse error, from its message.
fn fix_for(message: &str) -> String {
    if message.starts_with("unknown field") {
        format!("remove the key or correct its spelling; {}", expected_keys(message))
    } else if message.contains("duration") {
        "write a duration such as 30s, 2m or 1h30m".to_string()
    } else if message.contains("port") {
        "write a port number from 1 to 65535".to_string()
    } else {
        "correct that line (TOML syntax; every key and value is in docs/configuration.md)".to_string()
    }
}

/// `expected one of ...` from serde's unknown-field message, reworded.
fn expected_keys(message: &str) -> String {
    match message.split_once("expected ") {
        Some((_, keys)) => format!("the keys here are {}", keys.trim_start_matches("one of ")),
        None => "see docs/configuration.md for the keys".to_string(),
    }
}

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    defaults: Option<Spanned<NodeTable>>,
    #[serde(default)]
    nodes: BTreeMap<Spanned<String>, Spanned<NodeTable>>,
}

/// The settings of a node (`[nodes.NAME]`) or of every node (`[defaults]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    /// The node's container (default: the node's name).
    pub container: Option<Spanned<ContainerName>>,
    /// The image repository to upgrade to.
    pub repository: Option<Repository>,
    /// The Docker Engine running the node.
    pub host: Option<Host>,
    /// The host port the node publishes its HTTP port on (checked).
    pub port: Option<Port>,
    /// The host port of the temporary standby during an upgrade.
    pub standby_port: Option<Port>,
    /// The failover pair's secondary container.
    pub secondary: Option<ContainerName>,
    /// The host port the secondary publishes the node's port on.
    pub secondary_port: Option<Port>,
    /// The Docker Engine running the secondary.
    pub secondary_host: Option<Host>,
    /// The lock generation, instead of detecting it from the log.
    pub lock: Option<super::LockKind>,
    /// How the node's HTTP port is reached (`auto`, `direct`, `engine`).
    pub probe: Option<crate::probe::ProbeMode>,
    /// A regular expression matching the node's lock-wait line.
    pub lock_wait_pattern: Option<Spanned<Pattern>>,
    /// The bearer token `/metrics` requires.
    pub health_token: Option<String>,
    /// The environment variable holding that token.
    pub health_token_env: Option<String>,
    /// A command run before an upgrade changes anything (a snapshot).
    pub before_upgrade: Option<String>,
    /// A command run after a successful upgrade.
    pub after_upgrade: Option<String>,
    /// Deadlines.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// `[….timeouts]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// How long the pull may take.
    pub pull: Option<Deadline>,
    /// How long a new container may take to log that it waits for the lock.
    pub wait: Option<Deadline>,
    /// How long a takeover may take.
    pub takeover: Option<Deadline>,
    /// Grace period of a graceful stop.
    pub stop: Option<Deadline>,
}

/// A container name in Docker's grammar.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ContainerName(pub String);

impl TryFrom<String> for ContainerName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        crate::upgrade::options::validate_container_name(&s).map(|_| ContainerName(s))
    }
}

/// An image repository without tag or digest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Repository(pub String);

impl TryFrom<String> for Repository {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        crate::upgrade::options::validate_repository(&s).map(|_| Repository(s))
    }
}

/// A Docker Engine address.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Host(pub String);

impl TryFrom<String> for Host {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if ["unix://", "tcp://", "http://", "ssh://"]
            .iter()
            .any(|p| s.starts_with(p))
        {
            Ok(Host(s))
        } else {
            Err(format!(
                "invalid engine address {:?}: use unix:///path/to/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST",
                super::redact_host(&s)
            ))
        }
    }
}

/// A TCP port, 1–65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Port(pub u16);

impl TryFrom<i64> for Port {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(format!("invalid port {n}: a port is a number from 1 to 65535")),
        }
    }
}

/// A deadline longer than zero, written as a Go duration (`90s`, `2m30s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Deadline(pub Duration);

impl TryFrom<String> for Deadline {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match crate::node::godur::parse(&s) {
            Ok(d) if !d.is_zero() => Ok(Deadline(d)),
            Ok(_) => Err(format!("invalid duration {s:?}: it must be longer than zero")),
            Err(e) => Err(e),
        }
    }
}

/// A regular expression (checked when the file is read).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern(pub String);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        super::compile_pattern(&s).map(|_| Pattern(s))
    }
}
