//! `cl-maint config check`: the file is valid (or the error says where it is
//! not, exit 2), and each node's effective settings with where each came
//! from. Secrets are redacted: the health token, and anything in the
//! userinfo of an engine address.

use std::path::PathBuf;

use super::file::Origin;
use super::resolve::Effective;
use super::{Setting, redact_host};

/// What `config check` prints.
#[derive(Debug)]
pub struct CheckReport {
    /// The file, when one was found.
    pub file: Option<PathBuf>,
    /// How it was found.
    pub origin: Option<Origin>,
    /// Where cl-maint looked when none was found.
    pub looked_in: Vec<PathBuf>,
    /// Each node's settings.
    pub nodes: Vec<Effective>,
}

/// One setting as printed: its key, its value (redacted) and its source.
pub fn rows(e: &Effective) -> Vec<(&'static str, String, String)> {
    fn row<T>(key: &'static str, s: &Setting<T>, show: impl Fn(&T) -> String) -> (&'static str, String, String) {
        (key, show(&s.value), s.source.to_string())
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let secs = |d: &std::time::Duration| crate::time::human_duration(d.as_secs().max(1));
    vec![
        row("host", &e.host, |h| {
            h.as_deref().map_or_else(
                || "- (DOCKER_CONTEXT, the current context, the local socket)".into(),
                redact_host,
            )
        }),
        row("container", &e.container, String::clone),
        row("repository", &e.repository, |r| {
            r.clone().unwrap_or_else(|| "- (the one the node runs)".to_string())
        }),
        row("port", &e.port, |p| {
            p.map_or_else(|| "- (not checked)".to_string(), |p| p.to_string())
        }),
        row("standby_port", &e.standby_port, u16::to_string),
        row("secondary", &e.secondary, String::clone),
        row("secondary_port", &e.secondary_port, u16::to_string),
        row("secondary_host", &e.secondary_host, |h| {
            h.as_deref().map_or_else(|| "- (the node's engine)".into(), redact_host)
        }),
        row("before_upgrade", &e.before_upgrade, opt),
        row("after_upgrade", &e.after_upgrade, opt),
        row("probe", &e.probe, |p| {
            p.map_or_else(|| "auto".to_string(), |p| format!("{p:?}").to_lowercase())
        }),
        row("lock", &e.lock, |l| {
            l.map_or_else(|| "- (detected from the log)".to_string(), |l| l.word().to_string())
        }),
        row("lock_wait_pattern", &e.lock_wait_pattern, opt),
        row("health_token", &e.health_token, |t| {
            t.as_ref()
                .map_or_else(|| "-".to_string(), |_| crate::redact::MASK.to_string())
        }),
        row("timeouts.pull", &e.pull_timeout, secs),
        row("timeouts.wait", &e.wait_timeout, secs),
        row("timeouts.takeover", &e.takeover_timeout, secs),
        row("timeouts.stop", &e.stop_timeout, secs),
    ]
}

fn origin_words(origin: &Origin) -> &'static str {
    match origin {
        Origin::Flag => "--config",
        Origin::Env => "CL_MAINT_CONFIG",
        Origin::WorkingDir => "the working directory",
        Origin::UserDir => "the user's config directory",
    }
}

impl CheckReport {
    /// The human text.
    pub fn to_human(&self) -> String {
        let mut out = match (&self.file, &self.origin) {
            (Some(file), Some(origin)) => {
                format!("{}: valid (found by {})\n", file.display(), origin_words(origin))
            }
            _ => {
                let places: Vec<String> = self.looked_in.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "no config file (looked for {}); the flags and defaults apply\n",
                    places.join(", ")
                )
            }
        };
        for e in &self.nodes {
            match &e.node {
                Some(name) => out.push_str(&format!("node {name}:\n")),
                None => out.push_str("settings:\n"),
            }
            for (key, value, source) in rows(e) {
                out.push_str(&format!("  {key:<18} {value:<40} {source}\n"));
            }
            for note in &e.notes {
                out.push_str(&format!("  warning: {note}\n"));
            }
        }
        out
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|e| {
                let settings: serde_json::Map<String, serde_json::Value> = rows(e)
                    .into_iter()
                    .map(|(key, value, source)| {
                        (key.to_string(), serde_json::json!({"value": value, "source": source}))
                    })
                    .collect();
                serde_json::json!({"node": e.node, "settings": settings, "warnings": e.notes})
            })
            .collect();
        let doc = serde_json::json!({
            "valid": true,
            "exit_code": crate::exit::OK,
            "file": self.file.as_ref().map(|f| f.display().to_string()),
            "found_by": self.origin.as_ref().map(origin_words),
            "nodes": nodes,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}
