//! What a plan shows with `--dry-run`: the JSON of `--json` and the text for
//! people, for a single node's upgrade and a pair's. Secrets never appear:
//! env values are redacted the same way in both.

use serde::Serialize;

use crate::node::logs::Generation;
use crate::redact;
use crate::spec::CloneSpec;

/// The parts of a plan that are shown.
#[derive(Clone, Debug)]
pub struct Shown<'a> {
    /// The headline (`Plan for chainlink (A -> B)`).
    pub title: String,
    /// The steps, in words.
    pub steps: &'a [String],
    /// The containers it would create, each with its role.
    pub containers: Vec<(&'a CloneSpec, &'a str)>,
    /// Settings that differ from the node's, in words (no secrets).
    pub changes: &'a [String],
    /// Equivalent `docker` commands (secrets redacted).
    pub docker_commands: &'a [String],
    /// The lock generation, when known.
    pub generation: Option<Generation>,
    /// What the operator should know before the run.
    pub warnings: &'a [String],
}

/// The plan as JSON (see docs/json.md).
#[derive(Serialize)]
struct PlanDoc<'a> {
    steps: &'a [String],
    containers: Vec<serde_json::Value>,
    changes: &'a [String],
    docker_commands: &'a [String],
    lock_generation: Option<Generation>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

impl Shown<'_> {
    /// The plan as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        let containers = self
            .containers
            .iter()
            .map(|(s, role)| {
                let env: Vec<String> = s.body.env.iter().flatten().map(|e| redact::env_entry(e)).collect();
                serde_json::json!({"name": s.name, "role": role, "image": s.body.image, "env": env, "changes": s.changes})
            })
            .collect();
        serde_json::to_value(PlanDoc {
            steps: self.steps,
            containers,
            changes: self.changes,
            docker_commands: self.docker_commands,
            lock_generation: self.generation,
            warnings: self.warnings,
        })
        .unwrap_or_default()
    }

    /// The plan for people.
    pub fn to_human(&self) -> String {
        let mut out = format!("{}:\n", self.title);
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {s}\n", i + 1));
        }
        out.push_str("Containers it would create:\n");
        for (spec, role) in &self.containers {
            let image = spec.body.image.as_deref().unwrap_or_default();
            out.push_str(&format!("  - {} ({role}), image {image}\n", spec.name));
        }
        out.push_str("Settings that change:\n");
        for c in self.changes {
            out.push_str(&format!("  - {c}\n"));
        }
        out.push_str("Equivalent docker commands:\n");
        for c in self.docker_commands {
            out.push_str(&format!("  {c}\n"));
        }
        if !self.warnings.is_empty() {
            out.push_str("Warnings:\n");
            for w in self.warnings {
                out.push_str(&format!("  ! {w}\n"));
            }
        }
        out
    }
}

/// `docker run` (and `docker network connect`) equivalent to a spec, redacted.
pub fn run_commands(spec: &CloneSpec) -> Vec<String> {
    let body = &spec.body;
    // API 1.41 attaches one network at create: the others are connected
    // between create and start.
    let verb = if spec.extra_networks.is_empty() {
        ["run", "-d"]
    } else {
        ["create", ""]
    };
    let mut args: Vec<String> = ["docker", verb[0], verb[1]]
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| a.to_string())
        .collect();
    args.extend(["--name".to_string(), spec.name.clone()]);
    if body.tty == Some(true) {
        args.push("-t".into());
    }
    if body.open_stdin == Some(true) {
        args.push("-i".into());
    }
    let mut flag = |f: &str, v: String| {
        args.push(f.to_string());
        args.push(shell_quote(&v));
    };
    for e in body.env.iter().flatten() {
        flag("-e", redact::env_entry(e));
    }
    if let Some(h) = &body.host_config {
        for b in h.binds.iter().flatten() {
            flag("-v", b.clone());
        }
        for (port, bindings) in h.port_bindings.iter().flatten() {
            for b in bindings.iter().flatten() {
                let ip = b
                    .host_ip
                    .clone()
                    .filter(|i| !i.is_empty())
                    .map(|i| format!("{i}:"))
                    .unwrap_or_default();
                flag(
                    "-p",
                    format!(
                        "{ip}{}:{}",
                        b.host_port.clone().unwrap_or_default(),
                        port.trim_end_matches("/tcp")
                    ),
                );
            }
        }
        if let Some(mode) = h.network_mode.as_deref().filter(|m| !m.is_empty() && *m != "default") {
            flag("--network", mode.to_string());
        }
        if let Some(name) = h
            .restart_policy
            .as_ref()
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty() && n != "no")
        {
            flag("--restart", name);
        }
        if let Some(log) = &h.log_config {
            if let Some(t) = &log.typ {
                flag("--log-driver", t.clone());
            }
            for (k, v) in log.config.iter().flatten() {
                flag("--log-opt", format!("{k}={v}"));
            }
        }
    }
    for (k, v) in body.labels.iter().flatten() {
        flag("--label", format!("{k}={v}"));
    }
    if let Some(user) = &body.user {
        flag("--user", user.clone());
    }
    if let Some(entrypoint) = &body.entrypoint {
        flag("--entrypoint", entrypoint.join(" "));
    }
    args.push(shell_quote(body.image.as_deref().unwrap_or_default()));
    args.extend(body.cmd.iter().flatten().map(|c| shell_quote(c)));
    let mut out = vec![args.join(" ")];
    for (network, endpoint) in &spec.extra_networks {
        let aliases: String = endpoint
            .aliases
            .iter()
            .flatten()
            .map(|a| format!(" --alias {}", shell_quote(a)))
            .collect();
        out.push(format!("docker network connect{aliases} {network} {}", spec.name));
    }
    if !spec.extra_networks.is_empty() {
        out.push(format!("docker start {}", spec.name));
    }
    out
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+<>".contains(c))
        && !s.contains("<redacted>")
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
