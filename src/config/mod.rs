//! The config file and the settings it gives each node: flags (and their
//! environment variables) beat the file, the file beats the defaults.
//!
//! Everything here is pure but for reading the file: [`file`](mod@file) finds and
//! parses it, [`resolve`] merges it with the command line into the effective
//! settings of a node (each with where it came from), [`apply`] writes them
//! into the parsed command line, and [`check`] is `cl-maint config check`.
//! A bad file is a usage error (exit 2) reported before any engine call.

pub mod all;
pub mod apply;
pub mod check;
pub mod file;
pub mod resolve;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use file::{ConfigFile, Origin};
pub use resolve::{Effective, Given, Setting, Source};

/// The lock generation an operator may name instead of letting cl-maint
/// detect it from the node's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// The bolt-era file lock (`db.bolt`, `DATABASE_TIMEOUT`).
    Bolt,
    /// The Postgres lease (v1.1+ and all of v2).
    Lease,
}

impl LockKind {
    /// The generation the node knowledge uses for it.
    pub fn generation(self) -> crate::node::logs::Generation {
        match self {
            LockKind::Bolt => crate::node::logs::Generation::Bolt,
            LockKind::Lease => crate::node::logs::Generation::Lease,
        }
    }

    /// `bolt` / `lease`.
    pub fn word(self) -> &'static str {
        match self {
            LockKind::Bolt => "bolt",
            LockKind::Lease => "lease",
        }
    }
}

/// A config problem: the file, the line when known, what is wrong and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl ConfigError {
    /// A problem in `path` (at `line`).
    pub fn new(path: &Path, line: Option<usize>, what: String, fix: String) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            line,
            what,
            fix,
        }
    }

    /// `path:line` or `path`.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// The JSON document printed with `--json`.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({
            "valid": false,
            "exit_code": crate::exit::USAGE,
            "error": {
                "file": self.path.display().to_string(),
                "line": self.line,
                "what": self.what,
                "fix": self.fix,
            },
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; nothing changed\n  fix: {}",
            self.location(),
            self.what,
            self.fix
        )
    }
}

/// Compiles a lock-wait pattern (a regular expression matched against the
/// log line's message).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.trim().is_empty() {
        return Err("the lock-wait pattern is empty".to_string());
    }
    regex::Regex::new(pattern).map_err(|e| {
        let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
        format!(
            "invalid lock-wait pattern {pattern:?} ({first}); it is a regular expression: escape . * + ? ( ) [ ] {{ }} | \\ with a backslash to match them literally"
        )
    })
}

/// Node names: the container-name grammar.
fn check_node_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err("is not a valid node name".to_string())
    }
}

/// An engine address with the password in its userinfo (`user:password@`)
/// replaced, for output. The user is kept: it is no secret, and an ssh
/// address is checked by it.
pub fn redact_host(host: &str) -> String {
    let Some(start) = host.find("://").map(|i| i + 3) else {
        return host.to_string();
    };
    let rest = &host[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return host.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{}{user}:{}{}", &host[..start], crate::redact::MASK, &rest[at..]),
        None => host.to_string(),
    }
}
