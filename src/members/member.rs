//! One container of a pair (or one left by an interrupted run), as the
//! engine and the node itself describe it: state, port, version and lock
//! role.

use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use futures::StreamExt;
use serde::Serialize;

use crate::engine::{Engine, EngineResult, name_of, state_of};
use crate::node::health::{status_means_holding, status_means_serving};
use crate::node::logs::{self, Event, Generation};

/// How many log lines are read, at most, to find a member's last word on
/// the lock.
const LOG_LINES: usize = 20_000;

/// What a member is doing with the database lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockRole {
    /// It answers HTTP: it holds the lock.
    Holding,
    /// It runs, serves no HTTP and its log says it waits for the lock.
    Waiting,
    /// The container does not run.
    Stopped,
    /// It runs but neither answers HTTP nor says it waits (booting, hung, or
    /// not a Chainlink node).
    Unknown,
}

impl LockRole {
    /// The word for tables.
    pub fn word(self) -> &'static str {
        match self {
            LockRole::Holding => "holding",
            LockRole::Waiting => "waiting",
            LockRole::Stopped => "stopped",
            LockRole::Unknown => "unknown",
        }
    }
}

/// A container of the pair, as it is now.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    /// `primary`, `secondary`, or the role of a leftover (`standby`, `old`).
    pub role: String,
    /// The container name.
    pub name: String,
    /// The Docker Engine it runs on.
    pub host: String,
    /// The container id.
    pub id: String,
    /// The image reference it was created from.
    pub image: String,
    /// The image id.
    pub image_id: String,
    /// The node version, when known.
    pub version: Option<String>,
    /// Where the version came from (its start line, else its image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_source: Option<crate::node::version::Source>,
    /// Docker's state (`running`, `exited`, …).
    pub state: String,
    /// Whether it runs.
    pub running: bool,
    /// The host port the node's HTTP port is published on.
    pub port: Option<u16>,
    /// The node's HTTP port inside its container (`[WebServer] HTTPPort`,
    /// 6688 unless its configuration sets another).
    pub node_port: u16,
    /// Where its HTTP port is reached (`host:port`).
    pub addr: Option<String>,
    /// What it does with the lock.
    pub lock: LockRole,
    /// Why cl-maint says so.
    pub lock_evidence: String,
    /// The HTTP status of `/health`, when it answered.
    pub http_status: Option<u16>,
    /// The lock generation its log shows, when it shows one.
    pub generation: Option<Generation>,
    /// Docker's health status (a waiting standby is `unhealthy` by design:
    /// the image's health check asks its HTTP port).
    pub docker_health: Option<String>,
    /// When it started (RFC 3339), while it runs.
    pub started_at: Option<String>,
    /// Seconds since it started, while it runs.
    pub uptime_s: Option<u64>,
    /// Its restart policy.
    pub restart: Option<String>,
    /// The database it uses, as far as its environment or its secrets file
    /// says (never shown: the URL holds the password).
    #[serde(skip)]
    pub database: Option<Database>,
    /// The inspect document.
    #[serde(skip)]
    pub inspect: ContainerInspectResponse,
}

/// Where a node's database URL was found, and the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    /// `CL_DATABASE_URL`, `DATABASE_URL`, or the secrets file
    /// (`/chainlink/secrets.toml ([Database] URL)`).
    pub source: String,
    /// The URL (with its password: never shown).
    pub url: String,
}

/// The database a container's node uses: its environment's variable, else
/// the last secrets file on its command line that names one (read from the
/// container through the engine).
pub async fn database_of<E: Engine>(engine: &E, c: &ContainerInspectResponse) -> Option<Database> {
    let config = c.config.as_ref()?;
    let env = config.env.clone().unwrap_or_default();
    if let Some((var, url)) = crate::node::config::database_url_var(&env) {
        return Some(Database {
            source: var.to_string(),
            url,
        });
    }
    let args: Vec<String> = config
        .entrypoint
        .iter()
        .flatten()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect();
    let id = c.id.clone()?;
    let mut found = None;
    for file in crate::node::config::secrets_files(&args) {
        if let Ok(Some(bytes)) = engine.read_file(&id, &file).await
            && let Some(url) = crate::node::config::database_url(&String::from_utf8_lossy(&bytes))
        {
            found = Some(Database {
                source: format!("{file} ([Database] URL)"),
                url,
            });
        }
    }
    found
}

impl Member {
    /// Whether it runs and its log says it waits for the lock.
    pub fn waiting(&self) -> bool {
        self.lock == LockRole::Waiting
    }
}

/// The lock role from what was seen: whether the container runs, the HTTP
/// status of `/health` (if it answered) and the last lock event of its log.
pub fn lock_role(running: bool, http: Option<u16>, last_event: Option<&Event>) -> (LockRole, String) {
    if !running {
        return (LockRole::Stopped, "the container is not running".into());
    }
    if let Some(status) = http.filter(|s| status_means_holding(*s)) {
        let what = if status_means_serving(status) {
            format!("/health answers {status}")
        } else {
            format!("/health answers {status} (migrations running)")
        };
        return (LockRole::Holding, what);
    }
    match last_event {
        Some(Event::Waiting(g)) => (
            LockRole::Waiting,
            format!("no HTTP; its log says it waits for the lock ({g})"),
        ),
        Some(Event::Booted) => (LockRole::Unknown, "it booted but does not answer HTTP".into()),
        Some(e) => (LockRole::Unknown, format!("no HTTP; its log's last lock event: {e}")),
        None => (
            LockRole::Unknown,
            "no HTTP and no lock-wait line in its log (still starting, or not a Chainlink node)".into(),
        ),
    }
}

/// Reads a container: `None` when it does not exist.
pub async fn observe<E: Engine>(engine: &E, role: &str, name: &str) -> EngineResult<Option<Member>> {
    let Some(c) = engine.inspect_container(name).await? else {
        return Ok(None);
    };
    Ok(Some(describe(engine, role, c).await?))
}

/// Describes an inspected container.
pub async fn describe<E: Engine>(engine: &E, role: &str, c: ContainerInspectResponse) -> EngineResult<Member> {
    let state = state_of(&c);
    let id = c.id.clone().unwrap_or_default();
    let node_port = super::port::node_port(engine, &c).await;
    let port = crate::spec::published_port(&c, node_port.port);
    let addr = super::port::node_addr(engine, &c, node_port.port).ok();
    let mut http_status = None;
    if state.running
        && let Some(addr) = &addr
        && let Ok(answer) = engine.http_get(addr, "/health", Duration::from_secs(2)).await
    {
        http_status = Some(answer.status);
    }
    let (generation, last_event, logged_version) = if state.running {
        read_log(engine, &id).await
    } else {
        (None, None, None)
    };
    let (lock, lock_evidence) = lock_role(state.running, http_status, last_event.as_ref());
    let image_id = c.image.clone().unwrap_or_default();
    let image = engine.inspect_image(&image_id).await.ok().flatten();
    // A running node's start line says what it runs; its image may not.
    let (version, version_source) = match logged_version {
        Some(v) => (Some(v), Some(crate::node::version::Source::StartLine)),
        None => match crate::node::image::version_of_image(image.as_ref()) {
            Some(v) => (Some(v), Some(crate::node::version::Source::Metadata)),
            None => (None, None),
        },
    };
    let s = c.state.as_ref();
    let started_at = state.running.then(|| s.and_then(|s| s.started_at.clone())).flatten();
    let database = database_of(engine, &c).await;
    Ok(Member {
        role: role.to_string(),
        name: name_of(&c),
        host: engine.endpoint(),
        id,
        image: crate::node::image::reference_of(&c),
        image_id,
        version,
        version_source,
        state: state.status,
        running: state.running,
        port: port.map(|(_, p)| p),
        node_port: node_port.port,
        addr,
        lock,
        lock_evidence,
        http_status,
        generation,
        docker_health: s
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|h| h.to_string()),
        uptime_s: started_at.as_deref().and_then(crate::time::seconds_since),
        started_at,
        restart: c
            .host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty()),
        database,
        inspect: c,
    })
}

/// The lock generation (first waiting line), the last lock event and the
/// version the start line names, from the container's log.
async fn read_log<E: Engine>(engine: &E, id: &str) -> (Option<Generation>, Option<Event>, Option<String>) {
    let mut lines = engine.log_lines(id, false).take(LOG_LINES);
    let (mut generation, mut last, mut version) = (None, None, None);
    while let Some(Ok(line)) = lines.next().await {
        if let Some(event) = logs::classify(&line) {
            if let Event::Waiting(g) = event {
                generation.get_or_insert(g);
            }
            last = Some(event);
        } else if let Some(v) = crate::node::version::started_version(&line) {
            // A restart starts a new story.
            version = Some(v);
            last = None;
        }
    }
    // The operator's `lock` setting replaces what the log shows.
    (logs::generation_override().or(generation), last, version)
}

impl Member {
    /// The container's environment.
    pub fn env(&self) -> Vec<String> {
        self.inspect
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }
}

/// A member for unit tests: running (or stopped) on the local engine, its
/// port 6688 published on 127.0.0.1.
#[cfg(test)]
pub(crate) fn sample(role: &str, name: &str, lock: LockRole) -> Member {
    Member {
        role: role.into(),
        name: name.into(),
        host: "unix:///var/run/docker.sock".into(),
        id: format!("{name}-id"),
        image: "smartcontract/chainlink:2.10.0".into(),
        image_id: "sha256:1".into(),
        version: Some("2.10.0".into()),
        version_source: None,
        state: if lock == LockRole::Stopped { "exited" } else { "running" }.into(),
        running: lock != LockRole::Stopped,
        port: Some(6688),
        node_port: 6688,
        addr: Some("127.0.0.1:6688".into()),
        lock,
        lock_evidence: String::new(),
        http_status: None,
        generation: None,
        docker_health: None,
        started_at: None,
        uptime_s: None,
        restart: None,
        database: None,
        inspect: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        let waiting = Event::Waiting(Generation::Lease);
        assert_eq!(lock_role(false, Some(200), None).0, LockRole::Stopped);
        assert_eq!(lock_role(true, Some(200), Some(&waiting)).0, LockRole::Holding);
        assert_eq!(lock_role(true, Some(204), None).0, LockRole::Holding);
        assert_eq!(lock_role(true, Some(207), None).0, LockRole::Holding);
        assert_eq!(lock_role(true, None, Some(&waiting)).0, LockRole::Waiting);
        assert_eq!(lock_role(true, Some(404), Some(&waiting)).0, LockRole::Waiting);
        assert_eq!(lock_role(true, None, Some(&Event::Booted)).0, LockRole::Unknown);
        assert_eq!(lock_role(true, None, None).0, LockRole::Unknown);
    }
}
