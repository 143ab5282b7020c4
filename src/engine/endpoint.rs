//! Which Docker Engine to talk to, decided as the `docker` CLI decides it.
//!
//! In order: an explicit host (`--host`, or `DOCKER_HOST`); the context named
//! by `DOCKER_CONTEXT`; the `currentContext` of the Docker config
//! (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`); the local
//! socket `unix:///var/run/docker.sock`. A context's endpoint and TLS
//! material live where `docker context create` stores them:
//! `contexts/meta/<sha256 of the name>/meta.json` and
//! `contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem`.
//!
//! This module only reads files and decides; connecting is
//! [`super::docker::DockerEngine`]'s job.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The engine's socket when nothing says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The name of the context that means "no context: `DOCKER_HOST` or the default socket".
const DEFAULT_CONTEXT: &str = "default";

/// What the process's environment says (read once, so resolution is testable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// The host cl-maint was given: `--host`, or clap's fallback to `DOCKER_HOST`.
    pub host: Option<String>,
    /// `DOCKER_HOST`, to tell the flag and the variable apart in messages.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `DOCKER_TLS_VERIFY` (any non-empty value turns TLS on, as for `docker`).
    pub tls_verify: Option<String>,
    /// `DOCKER_CERT_PATH`.
    pub cert_path: Option<PathBuf>,
}

impl Environment {
    /// The environment of this process, with `host` as given on the command line.
    pub fn from_process(host: Option<&str>) -> Environment {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            host: host.filter(|h| !h.is_empty()).map(str::to_string),
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            tls_verify: var("DOCKER_TLS_VERIFY"),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }

    /// The Docker config directory: `DOCKER_CONFIG`, else `~/.docker`.
    pub fn config_dir(&self) -> PathBuf {
        match (&self.docker_config, &self.home) {
            (Some(dir), _) => dir.clone(),
            (None, Some(home)) => home.join(".docker"),
            (None, None) => PathBuf::from(".docker"),
        }
    }
}

/// Where the endpoint came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--host`.
    Flag,
    /// `DOCKER_HOST`.
    DockerHost,
    /// A Docker context.
    Context {
        /// The context's name.
        name: String,
        /// How it was chosen.
        chosen_by: ContextChoice,
    },
    /// Nothing was set: the local socket.
    Default,
}

/// How a context was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextChoice {
    /// `DOCKER_CONTEXT`.
    Env,
    /// `currentContext` in this config file (`docker context use`).
    ConfigFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "from --host"),
            Source::DockerHost => write!(f, "from DOCKER_HOST"),
            Source::Context {
                name,
                chosen_by: ContextChoice::Env,
            } => write!(f, "Docker context \"{name}\" from DOCKER_CONTEXT"),
            Source::Context {
                name,
                chosen_by: ContextChoice::ConfigFile(path),
            } => write!(
                f,
                "Docker context \"{name}\", the current context in {}",
                path.display()
            ),
            Source::Default => write!(f, "the default: no --host, DOCKER_HOST or Docker context is set"),
        }
    }
}

/// TLS material for a `tcp://` endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The CA that signed the engine's certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

/// How to reach the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket.
    Unix(PathBuf),
    /// HTTP over TCP (`host:port`), with TLS when set.
    Tcp {
        /// `host:port`.
        authority: String,
        /// TLS material, when the endpoint uses TLS.
        tls: Option<Tls>,
    },
    /// SSH (`ssh://[user@]host[:port]`): runs `docker system dial-stdio` on the remote host.
    Ssh(String),
}

/// A resolved endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The address as written (`unix:///var/run/docker.sock`, `tcp://10.0.0.5:2376`).
    pub host: String,
    /// How to reach it.
    pub transport: Transport,
    /// Where it came from.
    pub source: Source,
}

impl Endpoint {
    /// The address and where it came from: `tcp://10.0.0.5:2376 (from DOCKER_HOST)`.
    pub fn describe(&self) -> String {
        let tls = match &self.transport {
            Transport::Tcp { tls: Some(_), .. } => ", TLS",
            _ => "",
        };
        format!("{} ({}{tls})", self.host, self.source)
    }

    /// The host where ports the engine publishes on all interfaces can be
    /// reached: 127.0.0.1 for a local socket, else the endpoint's host.
    pub fn published_host(&self) -> String {
        let authority = match &self.transport {
            Transport::Unix(_) => return "127.0.0.1".to_string(),
            Transport::Tcp { authority, .. } => authority.as_str(),
            Transport::Ssh(destination) => {
                let rest = destination.trim_start_matches("ssh://");
                rest.rsplit_once('@').map_or(rest, |(_, host)| host)
            }
        };
        host_of(authority)
    }
}

/// The endpoint could not be decided (a missing context, an address of an
/// unknown form, missing TLS files).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ResolveError {
    /// What was being resolved, with its source (`context "prod" from DOCKER_CONTEXT`).
    pub endpoint: String,
    /// What is wrong and what to do.
    pub reason: String,
}

/// Decides the endpoint as the `docker` CLI does.
pub fn resolve(env: &Environment) -> Result<Endpoint, ResolveError> {
    if let Some(host) = &env.host {
        let source = if env.docker_host.as_deref() == Some(host.as_str()) {
            Source::DockerHost
        } else {
            Source::Flag
        };
        let tls_dir = env
            .tls_verify
            .as_ref()
            .map(|_| env.cert_path.clone().unwrap_or_else(|| env.config_dir()));
        return parse(host, source, tls_dir);
    }
    let config_dir = env.config_dir();
    let chosen = match &env.docker_context {
        Some(name) => Some((name.clone(), ContextChoice::Env)),
        None => {
            current_context(&config_dir)?.map(|name| (name, ContextChoice::ConfigFile(config_dir.join("config.json"))))
        }
    };
    match chosen {
        Some((name, chosen_by)) if name != DEFAULT_CONTEXT => context(&config_dir, name, chosen_by),
        _ => parse(&format!("unix://{DEFAULT_SOCKET}"), Source::Default, None),
    }
}

/// `currentContext` of `config.json`, if the file exists and sets one.
fn current_context(config_dir: &Path) -> Result<Option<String>, ResolveError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ResolveError {
                endpoint: format!("the current Docker context in {}", path.display()),
                reason: format!("cannot read {}: {e}", path.display()),
            });
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| ResolveError {
        endpoint: format!("the current Docker context in {}", path.display()),
        reason: format!(
            "{} is not valid JSON ({e}); fix it or point DOCKER_CONFIG elsewhere",
            path.display()
        ),
    })?;
    Ok(json
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string))
}

/// The directory name `docker` stores a context under: the SHA-256 of its name, in hex.
pub fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The endpoint of context `name`.
fn context(config_dir: &Path, name: String, chosen_by: ContextChoice) -> Result<Endpoint, ResolveError> {
    let id = context_id(&name);
    let meta = config_dir.join("contexts").join("meta").join(&id).join("meta.json");
    let source = Source::Context { name, chosen_by };
    let fail = |reason: String| ResolveError {
        endpoint: source.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(format!(
                "there is no such context ({} does not exist); `docker context ls` lists the contexts, \
                 `docker context use default` goes back to the local engine",
                meta.display()
            ))
        } else {
            fail(format!("cannot read {}: {e}", meta.display()))
        }
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        fail(format!(
            "{} is not valid JSON ({e}); recreate the context",
            meta.display()
        ))
    })?;
    let docker = json.pointer("/Endpoints/docker");
    let host = docker
        .and_then(|d| d.get("Host"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            fail(format!(
                "{} has no Docker endpoint (Endpoints.docker.Host)",
                meta.display()
            ))
        })?;
    let skip_verify = docker
        .and_then(|d| d.get("SkipTLSVerify"))
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let tls_dir = config_dir.join("contexts").join("tls").join(&id).join("docker");
    let has_tls_files = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|f| tls_dir.join(f).exists());
    if skip_verify && host.starts_with("tcp://") {
        return Err(fail(format!(
            "the context skips TLS verification (skip-tls-verify=true), which cl-maint does not do; \
             give the context the engine's CA instead: \
             `docker context update --docker \"host={host},ca=/path/to/ca.pem,cert=/path/to/cert.pem,key=/path/to/key.pem\"`"
        )));
    }
    parse(host, source, has_tls_files.then_some(tls_dir))
}

/// Parses an address (`unix://`, `tcp://`, `http://`, `ssh://`); `tls_dir`
/// holds `ca.pem`, `cert.pem` and `key.pem` when TLS is wanted.
fn parse(host: &str, source: Source, tls_dir: Option<PathBuf>) -> Result<Endpoint, ResolveError> {
    let fail = |reason: String| ResolveError {
        endpoint: format!("{host} ({source})"),
        reason,
    };
    let transport = if let Some(path) = host.strip_prefix("unix://") {
        Transport::Unix(PathBuf::from(if path.is_empty() { DEFAULT_SOCKET } else { path }))
    } else if let Some(rest) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
        let authority = rest.split('/').next().unwrap_or(rest);
        if authority.is_empty() {
            return Err(fail("the address names no host; write tcp://HOST:PORT".to_string()));
        }
        let tls = match tls_dir {
            Some(dir) => Some(tls_files(&dir).map_err(fail)?),
            None => None,
        };
        let authority = if has_port(authority) {
            authority.to_string()
        } else {
            // The ports `docker` assumes.
            format!("{authority}:{}", if tls.is_some() { 2376 } else { 2375 })
        };
        Transport::Tcp { authority, tls }
    } else if let Some(rest) = host.strip_prefix("ssh://") {
        let destination = rest.trim_end_matches('/');
        if destination.is_empty() {
            return Err(fail(
                "the address names no host; write ssh://[USER@]HOST (a port goes in ~/.ssh/config)".to_string(),
            ));
        }
        let host_part = destination.rsplit_once('@').map_or(destination, |(_, h)| h);
        if has_port(host_part) {
            // bollard hands ssh `host:port` as the host name; the port is lost.
            return Err(fail(format!(
                "cl-maint's SSH transport cannot pass a port: name the host and its port in ~/.ssh/config \
                 (`Host docker-host` / `HostName {}` / `Port {}`) and use ssh://[USER@]docker-host, or forward \
                 the engine's socket (`ssh -p PORT -nNT -L /tmp/docker.sock:/var/run/docker.sock [USER@]HOST`) \
                 and use --host unix:///tmp/docker.sock",
                host_of(host_part),
                host_part.rsplit_once(':').map_or("", |(_, p)| p)
            )));
        }
        Transport::Ssh(format!("ssh://{destination}"))
    } else if host.starts_with("npipe://") {
        return Err(fail(
            "named pipes exist only on Windows; cl-maint runs on Linux".to_string(),
        ));
    } else {
        return Err(fail(
            "unsupported address form; use unix:///path/to/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST"
                .to_string(),
        ));
    };
    Ok(Endpoint {
        host: host.to_string(),
        transport,
        source,
    })
}

/// `ca.pem`, `cert.pem`, `key.pem` in `dir`; the CA must exist.
fn tls_files(dir: &Path) -> Result<Tls, String> {
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if !tls.ca.exists() {
        return Err(format!(
            "TLS is on but {} does not exist; put the engine's CA there (with cert.pem and key.pem), \
             or set DOCKER_CERT_PATH to the directory that holds them",
            tls.ca.display()
        ));
    }
    Ok(tls)
}

fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(':') {
        // `[::1]:2375` has one; `[::1]` has none.
        Some((host, port)) => !port.is_empty() && !port.contains(']') && !host.is_empty(),
        None => false,
    }
}

/// `host:port` → `host` (brackets of an IPv6 address removed).
fn host_of(authority: &str) -> String {
    let host = if has_port(authority) {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    } else {
        authority
    };
    host.trim_matches(['[', ']']).to_string()
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
