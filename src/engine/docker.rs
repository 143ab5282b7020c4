//! The real engine, through bollard. The only file that touches
//! `bollard::Docker`.

mod archive;
mod credentials;
mod exec;
mod helper;
mod inside;
mod retry;
mod why;

use why::{chain, hint};

pub use helper::ROLE_PROBE;
pub use inside::Method;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary, ImageInspect};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::endpoint::{self, Endpoint, Environment, Source, Transport};
use super::{Engine, EngineError, EngineResult, LogLine, PullProgress};
use crate::engine::CloneSpec;
use crate::probe::{self, Answer, NoAnswer};
use crate::time::engine_time;

/// Requests may wait this long for response headers; `docker stop` returns
/// only after the grace period, so this must exceed the longest grace we use.
const CLIENT_TIMEOUT_SECS: u64 = 900;

/// How long the engine may take to answer its first ping (over SSH this
/// includes logging in).
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// A connected Docker Engine.
#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    endpoint: Endpoint,
    config_dir: PathBuf,
    /// `--probe`.
    probe: crate::probe::ProbeMode,
    /// How each container was asked inside (by name), and whether any
    /// node was asked directly: the probes the report names.
    methods: Arc<Mutex<inside::Methods>>,
    /// The helper container of each (container id, start time).
    helpers: Arc<Mutex<HashMap<(String, String), String>>>,
    /// The helper's image, once asked for: its build, shared.
    helper_image: Arc<Mutex<Option<helper::ImageBuild>>>,
    /// Held while a helper is looked up or started.
    helper_start: Arc<tokio::sync::Mutex<()>>,
    /// Whether cl-maint runs on the engine's host and in its network
    /// namespace (the engine's name is this machine's host name): the
    /// engine's loopback is then cl-maint's own.
    same_host: bool,
}

impl DockerEngine {
    /// Connects where `docker` would: `host` (`--host`, or `DOCKER_HOST`)
    /// with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` for `tcp://`, else the
    /// context of `DOCKER_CONTEXT`, else the current context of the Docker
    /// config, else the local socket (see [`super::endpoint`]);
    /// then negotiates the API version and pings. Fails with
    /// [`EngineError::Unreachable`] naming the endpoint and where it came
    /// from when it cannot be decided or nothing answers.
    pub async fn connect(host: Option<&str>) -> EngineResult<DockerEngine> {
        let env = Environment::from_process(host);
        let endpoint = endpoint::resolve(&env).map_err(|e| EngineError::Unusable {
            endpoint: e.endpoint,
            reason: e.reason,
        })?;
        Self::connect_to(endpoint, env.config_dir()).await
    }

    /// Connects to a resolved endpoint; `config_dir` is the Docker config
    /// directory registry credentials are read from.
    pub async fn connect_to(endpoint: Endpoint, config_dir: PathBuf) -> EngineResult<DockerEngine> {
        let unreachable = |reason: String| EngineError::Unreachable {
            endpoint: endpoint.describe(),
            reason,
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match &endpoint.transport {
            Transport::Unix(path) => Docker::connect_with_unix(&path.to_string_lossy(), CLIENT_TIMEOUT_SECS, version),
            Transport::Tcp { authority, tls: None } => {
                Docker::connect_with_http(&format!("tcp://{authority}"), CLIENT_TIMEOUT_SECS, version)
            }
            Transport::Tcp {
                authority,
                tls: Some(tls),
            } => Docker::connect_with_ssl(
                &format!("tcp://{authority}"),
                &tls.key,
                &tls.cert,
                &tls.ca,
                CLIENT_TIMEOUT_SECS,
                version,
            ),
            Transport::Ssh(destination) => Docker::connect_with_ssh(destination, CLIENT_TIMEOUT_SECS, version, None),
        }
        .map_err(|e| unreachable(format!("{}; {}", chain(&e), hint(&endpoint))))?
        .with_request_modifier(reencode_registry_auth);
        let answered = tokio::time::timeout(CONNECT_DEADLINE, async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, bollard::errors::Error>(docker)
        })
        .await;
        let docker = match answered {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => return Err(unreachable(format!("{}; {}", chain(&e), hint(&endpoint)))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s; {}",
                    CONNECT_DEADLINE.as_secs(),
                    hint(&endpoint)
                )));
            }
        };
        tracing::debug!(endpoint = %endpoint.describe(), "connected to the Docker Engine");
        let engine_name = docker.info().await.ok().and_then(|i| i.name);
        let same_host = engine_name.is_some_and(|name| Some(name) == inside::this_host());
        Ok(DockerEngine {
            docker,
            endpoint,
            config_dir,
            probe: Default::default(),
            methods: Default::default(),
            helpers: Default::default(),
            helper_image: Default::default(),
            helper_start: Default::default(),
            same_host,
        })
    }

    /// The engine with probe setting `probe` (`--probe`).
    pub fn with_probe(mut self, probe: crate::probe::ProbeMode) -> DockerEngine {
        self.probe = probe;
        self
    }
}

/// bollard encodes `X-Registry-Auth` in standard base64, but the engine
/// decodes base64url: passwords whose encoding holds `+` or `/` would be
/// mangled. Re-encode the header as base64url.
fn reencode_registry_auth(mut request: bollard::BollardRequest) -> bollard::BollardRequest {
    let headers = request.headers_mut();
    if let Some(value) = headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok())
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value)
    {
        let url = base64::engine::general_purpose::URL_SAFE.encode(raw);
        if let Ok(v) = url.parse() {
            headers.insert("X-Registry-Auth", v);
        }
    }
    request
}

fn api_error(action: String) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    move |e| match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => EngineError::Api {
            action,
            status: Some(status_code),
            message,
        },
        other => EngineError::Api {
            action,
            status: None,
            message: other.to_string(),
        },
    }
}

fn not_found_is_none<T>(result: EngineResult<T>) -> EngineResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl DockerEngine {
    /// The id of the container named like `spec` when it is the one `spec`
    /// describes (its image and cl-maint's labels): a create whose answer
    /// was lost.
    async fn created_by_us(&self, spec: &CloneSpec) -> Option<String> {
        let c = self.inspect_container(&spec.name).await.ok().flatten()?;
        let config = c.config.as_ref()?;
        let same_image = config.image == spec.body.image;
        let labels = config.labels.clone().unwrap_or_default();
        let same_labels = spec.body.labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
        (same_image && same_labels).then(|| c.id.clone()).flatten()
    }
}

impl Engine for DockerEngine {
    fn endpoint(&self) -> String {
        match &self.endpoint.source {
            Source::Context { name, .. } => format!("{} (context \"{name}\")", self.endpoint.host),
            _ => self.endpoint.host.clone(),
        }
    }

    fn published_host(&self) -> String {
        self.endpoint.published_host()
    }

    fn docker_host(&self) -> String {
        self.endpoint.host.clone()
    }

    fn reach(&self) -> crate::probe::Reach {
        crate::probe::Reach {
            mode: self.probe,
            local: self.same_host,
            published_host: self.published_host(),
        }
    }

    fn probes_used(&self) -> Vec<String> {
        let methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        let mut used: Vec<String> = methods.inside.values().map(|m| m.describe().to_string()).collect();
        if methods.direct {
            used.push("direct: the published port, from where cl-maint runs".into());
        }
        used.sort();
        used.dedup();
        used
    }

    async fn inspect_container(&self, name: &str) -> EngineResult<Option<ContainerInspectResponse>> {
        let (result, _) = retry::retrying(|| self.docker.inspect_container(name, None)).await;
        not_found_is_none(result.map_err(api_error(format!("inspect container {name}"))))
    }

    async fn inspect_image(&self, reference: &str) -> EngineResult<Option<ImageInspect>> {
        let (result, _) = retry::retrying(|| self.docker.inspect_image(reference)).await;
        not_found_is_none(result.map_err(api_error(format!("inspect image {reference}"))))
    }

    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let (result, _) = retry::retrying(|| self.docker.list_containers(Some(options.clone()))).await;
        result.map_err(api_error(format!("list containers labelled {label}")))
    }

    async fn list_all_containers(&self) -> EngineResult<Vec<ContainerSummary>> {
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let (result, _) = retry::retrying(|| self.docker.list_containers(Some(options.clone()))).await;
        result.map_err(api_error("list containers".to_string()))
    }

    async fn read_file(&self, id: &str, path: &str) -> EngineResult<Option<Vec<u8>>> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut archive = Vec::new();
        let mut stream = self.docker.download_from_container(id, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
                Err(e) => return Err(api_error(format!("read {path} in container {id}"))(e)),
            }
        }
        Ok(archive::first_file(&archive))
    }

    async fn pull(&self, reference: &str, progress: &(dyn Fn(PullProgress) + Send + Sync)) -> EngineResult<()> {
        let (repo, tag) = crate::reference::pull_parts(reference);
        let action = format!("pull {reference}");
        let server = crate::reference::registry(reference);
        let found = credentials::lookup(&self.config_dir, &server)
            .await
            .map_err(|message| EngineError::Api {
                action: action.clone(),
                status: None,
                message,
            })?;
        tracing::debug!(registry = %server, credentials = %found.origin, "registry credentials");
        // On failure, say which credentials were offered (never the secret).
        let failed = |message: String| EngineError::Api {
            action: action.clone(),
            status: None,
            message: format!("{message} (registry credentials: {})", found.origin),
        };
        let options = CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
        let mut stream = self.docker.create_image(Some(options), None, found.credentials.clone());
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match api_error(action.clone())(e) {
                EngineError::Api { message, .. } => failed(message),
                other => other,
            })?;
            if let Some(detail) = info.error_detail {
                return Err(failed(detail.message.unwrap_or_default()));
            }
            let detail = info.progress_detail.unwrap_or_default();
            progress(PullProgress {
                layer: info.id.unwrap_or_default(),
                status: info.status.unwrap_or_default(),
                current: detail.current.and_then(|c| u64::try_from(c).ok()),
                total: detail.total.and_then(|t| u64::try_from(t).ok()),
            });
        }
        Ok(())
    }

    async fn create(&self, spec: &CloneSpec) -> EngineResult<String> {
        let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let (result, retried) =
            retry::retrying(|| self.docker.create_container(Some(options.clone()), spec.body.clone())).await;
        let created = match result {
            // An earlier try got no answer but created it: the name is taken by our container.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. })
                if retried && let Some(id) = self.created_by_us(spec).await =>
            {
                bollard::models::ContainerCreateResponse { id, warnings: vec![] }
            }
            other => other.map_err(api_error(format!("create container {}", spec.name)))?,
        };
        for (network, endpoint) in &spec.extra_networks {
            let request = bollard::models::NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint.clone()),
            };
            if let Err(e) = self.docker.connect_network(network, request).await {
                let _ = self.remove(&created.id).await;
                return Err(api_error(format!("connect {} to network {network}", spec.name))(e));
            }
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> EngineResult<()> {
        match retry::retrying(|| self.docker.start_container(id, None)).await {
            // 304: already started (by an earlier try that got no answer).
            (Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }), true) => Ok(()),
            (other, _) => other.map_err(api_error(format!("start container {id}"))),
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> EngineResult<()> {
        let secs = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        match retry::retrying(|| self.docker.stop_container(id, Some(options.clone())))
            .await
            .0
        {
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(api_error(format!("stop container {id}"))),
        }
    }

    async fn exited(&self, id: &str) -> EngineResult<()> {
        let Some(c) = self.inspect_container(id).await? else {
            return Ok(());
        };
        let state = c.state.unwrap_or_default();
        if state.running != Some(true) {
            return Ok(());
        }
        let Some(since) = state.started_at.as_deref().and_then(unix_timestamp) else {
            return Err(EngineError::Api {
                action: format!("read when container {id} started"),
                status: None,
                message: format!("unreadable start time {:?}", state.started_at),
            });
        };
        // Events since it started (on the engine's clock): a `die` that came
        // before the subscription is replayed.
        let filters = HashMap::from([
            ("type", vec!["container"]),
            ("container", vec![id]),
            ("event", vec!["die"]),
        ]);
        let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
        match self.docker.events(Some(options)).next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(api_error(format!("follow the events of container {id}"))(e)),
            None => Err(EngineError::Api {
                action: format!("follow the events of container {id}"),
                status: None,
                message: "the engine ended the event stream".into(),
            }),
        }
    }

    async fn kill(&self, id: &str, signal: &str) -> EngineResult<()> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        match retry::retrying(|| self.docker.kill_container(id, Some(options.clone()))).await {
            // 409: not running (an earlier try that got no answer killed it).
            (Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }), true) => Ok(()),
            (other, _) => other.map_err(api_error(format!("kill container {id}"))),
        }
    }

    async fn rename(&self, id: &str, new_name: &str) -> EngineResult<()> {
        let options = RenameContainerOptionsBuilder::new().name(new_name).build();
        match retry::retrying(|| self.docker.rename_container(id, options.clone())).await {
            // An earlier try that got no answer renamed it already.
            (Err(e), true)
                if self
                    .inspect_container(id)
                    .await
                    .ok()
                    .flatten()
                    .map(|c| super::name_of(&c))
                    .as_deref()
                    == Some(new_name) =>
            {
                tracing::debug!(error = %e, "renamed by an earlier try");
                Ok(())
            }
            (other, _) => other.map_err(api_error(format!("rename container {id} to {new_name}"))),
        }
    }

    async fn remove(&self, id: &str) -> EngineResult<()> {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match retry::retrying(|| self.docker.remove_container(id, Some(options.clone())))
            .await
            .0
        {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            other => other.map_err(api_error(format!("remove container {id}"))),
        }
    }

    fn log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<String>> {
        retry::log_lines(&self.docker, self.endpoint(), id, follow, false)
    }

    fn timed_log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<LogLine>> {
        retry::log_lines(&self.docker, self.endpoint(), id, follow, true)
            .map(|line| line.map(|line| timed_line(&line)))
            .boxed()
    }

    async fn http_get(&self, addr: &str, path: &str, timeout: Duration) -> Result<Answer, NoAnswer> {
        self.http_get_auth(addr, path, None, timeout).await
    }

    async fn http_get_auth(
        &self,
        addr: &str,
        path: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Answer, NoAnswer> {
        if let Some((name, port)) = probe::parse_inside(addr) {
            return inside::get(self, name, port, path, bearer, timeout).await;
        }
        self.methods.lock().unwrap_or_else(|e| e.into_inner()).direct = true;
        probe::get(addr, path, bearer, timeout).await
    }
}

/// The engine's RFC 3339 time (`2026-11-22T02:17:04.867100768Z`) as the
/// `seconds.nanoseconds` since the epoch that its API's `since` takes.
fn unix_timestamp(rfc3339: &str) -> Option<String> {
    let since = engine_time(rfc3339)?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
}

/// A `--timestamps` log line split into the engine's time and the text (a
/// line without a time the engine wrote is kept whole).
fn timed_line(line: &str) -> LogLine {
    let at = line
        .split_once(' ')
        .and_then(|(time, text)| Some((engine_time(time)?, text)));
    match at {
        Some((at, text)) => LogLine {
            text: text.to_string(),
            at: Some(at),
        },
        None => LogLine {
            text: line.to_string(),
            at: None,
        },
    }
}

/// Splits a stream of byte chunks into lines (a final partial line included).
fn lines(
    chunks: impl futures::Stream<Item = EngineResult<bytes::Bytes>> + Send + 'static,
) -> impl futures::Stream<Item = EngineResult<String>> + Send + 'static {
    let state = (
        Box::pin(chunks),
        String::new(),
        std::collections::VecDeque::<String>::new(),
        false,
    );
    futures::stream::unfold(state, |(mut chunks, mut buffer, mut ready, mut done)| async move {
        loop {
            if let Some(line) = ready.pop_front() {
                return Some((Ok(line), (chunks, buffer, ready, done)));
            }
            if done {
                return None;
            }
            match chunks.next().await {
                Some(Ok(bytes)) => {
                    buffer.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(i) = buffer.find('\n') {
                        let line: String = buffer.drain(..=i).collect();
                        ready.push_back(line.trim_end_matches(['\n', '\r']).to_string());
                    }
                }
                Some(Err(e)) => return Some((Err(e), (chunks, buffer, ready, true))),
                None => {
                    done = true;
                    if !buffer.is_empty() {
                        ready.push_back(std::mem::take(&mut buffer));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::rfc3339;

    #[test]
    fn timestamped_log_lines_split_into_time_and_text() {
        let line = timed_line("2026-11-22T04:49:16.583123456Z Waiting indefinitely for lock on db file /x");
        assert_eq!(line.text, "Waiting indefinitely for lock on db file /x");
        assert_eq!(line.at, Some(UNIX_EPOCH + Duration::new(1_795_322_956, 583_123_456)));
        // Not a time the engine wrote: the line is kept whole, without one.
        let line = timed_line("2026-11-22 04:49:16 [INFO] starting");
        assert_eq!(line.text, "2026-11-22 04:49:16 [INFO] starting");
        assert_eq!(line.at, None);
        assert_eq!(timed_line("").at, None);
        // And back: the engine's form of a time.
        let t = UNIX_EPOCH + Duration::new(1_795_322_956, 583_123_456);
        assert_eq!(rfc3339(t, true), "2026-11-22T04:49:16.583123456Z");
        assert_eq!(engine_time(&rfc3339(t, true)), Some(t));
        assert_eq!(rfc3339(t, false), "2026-11-22T04:49:16Z");
    }

    #[test]
    fn start_times_become_unix_timestamps() {
        assert_eq!(
            unix_timestamp("2026-11-22T02:17:04.867100768Z").as_deref(),
            Some("1795313824.867100768")
        );
        assert_eq!(
            unix_timestamp("2026-11-22T02:17:04.5Z").as_deref(),
            Some("1795313824.500000000")
        );
        assert_eq!(
            unix_timestamp("2026-11-22T02:17:04Z").as_deref(),
            Some("1795313824.000000000")
        );
        assert_eq!(unix_timestamp("yesterday"), None);
    }

    #[test]
    fn registry_auth_header_becomes_base64url() {
        let raw = r#"{"username":"u","password":"p>?~"}"#;
        let standard = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(
            standard.contains('+') || standard.contains('/'),
            "the sample must exercise the difference"
        );
        let mut request = bollard::BollardRequest::new(http_body_util::Either::Left(http_body_util::Full::new(
            bytes::Bytes::new(),
        )));
        request
            .headers_mut()
            .insert("X-Registry-Auth", standard.parse().unwrap());
        let fixed = reencode_registry_auth(request);
        let value = fixed.headers()["X-Registry-Auth"].to_str().unwrap().to_string();
        assert!(!value.contains('+') && !value.contains('/'));
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE.decode(value).unwrap(),
            raw.as_bytes()
        );
    }
}
