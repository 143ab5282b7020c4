//! The Docker Engine, as cl-maint needs it: one trait with domain verbs.
//!
//! [`docker::DockerEngine`] is the real thing (the only code that touches
//! `bollard::Docker`); `fake::FakeEngine` is a stateful stand-in for unit
//! tests of step ordering, rollback and fault injection.

pub mod docker;
pub mod endpoint;
/// A create request ready for the engine.
#[derive(Clone, Debug)]
pub struct CloneSpec {
    /// The container name.
    pub name: String,
    /// The create body (with at most one network: API 1.41 takes one).
    pub body: bollard::models::ContainerCreateBody,
    /// Networks to connect before the container starts, with their settings.
    pub extra_networks: Vec<(String, bollard::models::EndpointSettings)>,
    /// What differs from the original, in words, for plans (no secret values).
    pub changes: Vec<String>,
}

#[cfg(test)]
pub mod fake;

use std::future::Future;
use std::time::{Duration, SystemTime};

use bollard::models::{ContainerInspectResponse, ContainerSummary, ImageInspect};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::probe::{Answer, NoAnswer};

/// A line of a container's log and when the engine read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The line, without the engine's timestamp.
    pub text: String,
    /// When the engine read it from the container, by the engine's clock.
    pub at: Option<SystemTime>,
}

/// What went wrong talking to the engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine did not answer at all.
    #[error("the Docker Engine at {endpoint} did not answer ({reason})")]
    Unreachable {
        /// The endpoint tried (`unix:///var/run/docker.sock`, `tcp://…`).
        endpoint: String,
        /// The underlying error.
        reason: String,
    },
    /// The engine's address cannot be used, so it was never tried (a
    /// malformed address, a context that does not exist, TLS files missing).
    #[error("cl-maint cannot use the Docker Engine address {endpoint}, so it did not try it: {reason}")]
    Unusable {
        /// The address and where it came from.
        endpoint: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The engine answered with an error.
    #[error("{action} failed: {message}")]
    Api {
        /// What cl-maint asked for (`create container chainlink`).
        action: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The engine's message.
        message: String,
    },
}

impl EngineError {
    /// Whether no engine was reached at all (not answering, or an address
    /// that cannot be used): exit 4.
    pub fn unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. } | EngineError::Unusable { .. })
    }

    /// What the operator should do about it (nothing for an error the
    /// engine answered with: its message says it).
    pub fn next_steps(&self) -> Vec<String> {
        match self {
            EngineError::Unusable { .. } => vec![
                "correct the engine's address: --host, DOCKER_HOST, DOCKER_CONTEXT, or `host` in the config (`cl-maint config check` shows which one is used)".into(),
            ],
            EngineError::Unreachable { .. } => vec![
                "check that the Docker Engine runs (`docker version` with the same settings) and that --host / --secondary-host point at it".into(),
                "a remote engine: ssh://user@host, or TLS on tcp://host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH; never expose a plain tcp://host:2375".into(),
            ],
            EngineError::Api { .. } => Vec::new(),
        }
    }

    /// Whether the engine said the object does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Api { status: Some(404), .. })
    }
}

/// Result of an engine call.
pub type EngineResult<T> = Result<T, EngineError>;

/// One line of progress from a pull.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer (empty for whole-image messages).
    pub layer: String,
    /// The engine's status text (`Downloading`, `Pull complete`, …).
    pub status: String,
    /// Bytes done, when known.
    pub current: Option<u64>,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

/// The Docker Engine verbs cl-maint uses.
pub trait Engine: Send + Sync {
    /// The endpoint, for messages (`unix:///var/run/docker.sock`).
    fn endpoint(&self) -> String;

    /// The host to reach ports the engine publishes on all interfaces
    /// (`127.0.0.1` for a local engine, the engine's host for `tcp://`).
    fn published_host(&self) -> String;

    /// The engine's address as `DOCKER_HOST` takes it, for the programs
    /// cl-maint runs (hooks, Compose).
    fn docker_host(&self) -> String {
        self.endpoint()
    }

    /// The probes used so far, in words (for the report).
    fn probes_used(&self) -> Vec<String> {
        Vec::new()
    }

    /// How nodes on this engine are reached (see [`crate::probe::route`]).
    fn reach(&self) -> crate::probe::Reach {
        crate::probe::Reach {
            mode: crate::probe::ProbeMode::Auto,
            local: true,
            published_host: self.published_host(),
        }
    }

    /// `docker inspect CONTAINER`; `None` when there is no such container.
    fn inspect_container(
        &self,
        name: &str,
    ) -> impl Future<Output = EngineResult<Option<ContainerInspectResponse>>> + Send;

    /// `docker image inspect IMAGE`; `None` when the engine does not have it.
    fn inspect_image(&self, reference: &str) -> impl Future<Output = EngineResult<Option<ImageInspect>>> + Send;

    /// Every container (running or not) carrying `label` (`key` or `key=value`).
    fn list_containers(&self, label: &str) -> impl Future<Output = EngineResult<Vec<ContainerSummary>>> + Send;

    /// Every container (running or not).
    fn list_all_containers(&self) -> impl Future<Output = EngineResult<Vec<ContainerSummary>>> + Send;

    /// A file in the container's filesystem (`docker cp`), running or not;
    /// `None` when there is no such file (or container).
    fn read_file(&self, id: &str, path: &str) -> impl Future<Output = EngineResult<Option<Vec<u8>>>> + Send;

    /// `docker pull REFERENCE` with the operator's registry credentials,
    /// reporting progress as it goes.
    fn pull(
        &self,
        reference: &str,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> impl Future<Output = EngineResult<()>> + Send;

    /// Creates the container and connects its extra networks; returns its id.
    fn create(&self, spec: &CloneSpec) -> impl Future<Output = EngineResult<String>> + Send;

    /// `docker start`.
    fn start(&self, id: &str) -> impl Future<Output = EngineResult<()>> + Send;

    /// `docker stop -t GRACE`: SIGTERM (or the container's stop signal), then
    /// SIGKILL after the grace period. Returns once the container has stopped.
    fn stop(&self, id: &str, grace: Duration) -> impl Future<Output = EngineResult<()>> + Send;

    /// Resolves once the container's process has exited since it last
    /// started (its `die` event), at once if it is not running. The engine
    /// reports that before a stop returns: a stop first tears down the
    /// container's mounts and ports, about 100 ms with a bind mount.
    fn exited(&self, id: &str) -> impl Future<Output = EngineResult<()>> + Send;

    /// `docker kill --signal SIGNAL`.
    fn kill(&self, id: &str, signal: &str) -> impl Future<Output = EngineResult<()>> + Send;

    /// `docker rename`.
    fn rename(&self, id: &str, new_name: &str) -> impl Future<Output = EngineResult<()>> + Send;

    /// `docker rm -f` (anonymous volumes are kept: they may hold node data).
    fn remove(&self, id: &str) -> impl Future<Output = EngineResult<()>> + Send;

    /// The container's log as lines (stdout and stderr), from the start;
    /// with `follow`, the stream goes on until the container stops.
    fn log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<String>>;

    /// [`Engine::log_lines`] with the time the engine read each line from
    /// the container (`docker logs --timestamps`), by the engine's clock: a
    /// line reaches cl-maint 10–30 ms later, too late to time a lock
    /// handoff by. The default gives no times.
    fn timed_log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<LogLine>> {
        self.log_lines(id, follow)
            .map(|line| line.map(|text| LogLine { text, at: None }))
            .boxed()
    }

    /// [`Engine::http_get`] with a bearer token (`/metrics`). The default
    /// asks a published port only.
    fn http_get_auth(
        &self,
        addr: &str,
        path: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Answer, NoAnswer>> + Send {
        async move {
            match bearer {
                None => self.http_get(addr, path, timeout).await,
                Some(token) => crate::probe::get(addr, path, Some(token), timeout).await,
            }
        }
    }

    /// A GET to a node's HTTP port: on a published port (`host:port`),
    /// or inside its container through the engine (`container://NAME:PORT`,
    /// see [`crate::probe::inside`]).
    fn http_get(
        &self,
        addr: &str,
        path: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Answer, NoAnswer>> + Send;
}

/// The state of a container, from its inspect document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// `running`, `exited`, `created`, …
    pub status: String,
    /// Whether it runs now.
    pub running: bool,
    /// The exit code of its last run (when not running, or restarting).
    pub exit_code: Option<i64>,
    /// Whether its restart policy is restarting it after an exit (Docker
    /// then says it runs, but no process does).
    pub restarting: bool,
    /// How many times the engine has restarted it by its restart policy.
    pub restart_count: i64,
}

/// Reads the state out of an inspect document.
pub fn state_of(c: &ContainerInspectResponse) -> State {
    let s = c.state.as_ref();
    State {
        status: s.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default(),
        running: s.and_then(|s| s.running).unwrap_or(false),
        exit_code: s.and_then(|s| s.exit_code),
        restarting: s.and_then(|s| s.restarting).unwrap_or(false),
        restart_count: c.restart_count.unwrap_or(0),
    }
}

/// The container's name without the leading `/`.
pub fn name_of(c: &ContainerInspectResponse) -> String {
    c.name.clone().unwrap_or_default().trim_start_matches('/').to_string()
}

/// The name of a listed container, without the leading `/`.
pub fn summary_name(c: &bollard::models::ContainerSummary) -> String {
    let name = c.names.iter().flatten().next().cloned().unwrap_or_default();
    name.trim_start_matches('/').to_string()
}
