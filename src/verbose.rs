//! `-v` / `-vv`: an [`Engine`] that reports its calls as progress detail.
//! `-v` shows every change the engine is asked for (pull, create, start,
//! stop, kill, rename, remove) and each log a wait follows; `-vv` also every
//! read and each new answer of a polled HTTP port. Names, ids and addresses
//! only: never a container's environment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerSummary, ImageInspect};
use futures::stream::BoxStream;

use crate::engine::{Engine, EngineResult, LogLine, PullProgress};
use crate::probe::{Answer, NoAnswer};
use crate::progress::Progress;
use crate::spec::CloneSpec;

/// An engine that tells `progress` what it is asked.
pub struct Traced<'p, E> {
    inner: E,
    progress: &'p Progress,
    last_answer: Mutex<HashMap<String, String>>,
}

impl<'p, E: Engine> Traced<'p, E> {
    /// Wraps `inner`.
    pub fn new(inner: E, progress: &'p Progress) -> Self {
        Traced {
            inner,
            progress,
            last_answer: Mutex::new(HashMap::new()),
        }
    }

    fn say(&self, level: u8, text: impl FnOnce() -> String) {
        if self.progress.verbosity() >= level {
            self.progress
                .detail(level, &format!("engine {}: {}", self.inner.endpoint(), text()));
        }
    }

    /// Says that a container's log is read (or followed, a change-level step).
    fn say_log(&self, id: &str, follow: bool, how: &str) {
        if follow {
            self.say(CHANGES, || format!("follow the log of {}{how}", short(id)));
        } else {
            self.say(READS, || format!("read the log of {}{how}", short(id)));
        }
    }

    async fn timed<T>(&self, level: u8, what: String, call: impl Future<Output = EngineResult<T>>) -> EngineResult<T> {
        let started = std::time::Instant::now();
        let result = call.await;
        self.say(level, || {
            let ms = started.elapsed().as_millis();
            match &result {
                Ok(_) => format!("{what} ({ms} ms)"),
                Err(e) => format!("{what} failed after {ms} ms: {e}"),
            }
        });
        result
    }
}

const CHANGES: u8 = 1;
const READS: u8 = 2;

fn short(id: &str) -> &str {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

impl<E: Engine> Engine for Traced<'_, E> {
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn published_host(&self) -> String {
        self.inner.published_host()
    }

    fn docker_host(&self) -> String {
        self.inner.docker_host()
    }

    fn reach(&self) -> crate::probe::Reach {
        self.inner.reach()
    }

    fn probes_used(&self) -> Vec<String> {
        self.inner.probes_used()
    }

    async fn inspect_container(&self, name: &str) -> EngineResult<Option<ContainerInspectResponse>> {
        self.timed(
            READS,
            format!("inspect container {name}"),
            self.inner.inspect_container(name),
        )
        .await
    }

    async fn inspect_image(&self, reference: &str) -> EngineResult<Option<ImageInspect>> {
        self.timed(
            READS,
            format!("inspect image {reference}"),
            self.inner.inspect_image(reference),
        )
        .await
    }

    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        self.timed(
            READS,
            format!("list containers labelled {label}"),
            self.inner.list_containers(label),
        )
        .await
    }

    async fn list_all_containers(&self) -> EngineResult<Vec<ContainerSummary>> {
        self.timed(
            READS,
            "list all containers".to_string(),
            self.inner.list_all_containers(),
        )
        .await
    }

    async fn read_file(&self, id: &str, path: &str) -> EngineResult<Option<Vec<u8>>> {
        self.timed(READS, format!("read {path} in {id}"), self.inner.read_file(id, path))
            .await
    }

    async fn pull(&self, reference: &str, progress: &(dyn Fn(PullProgress) + Send + Sync)) -> EngineResult<()> {
        self.say(CHANGES, || format!("pull {reference}"));
        self.timed(
            CHANGES,
            format!("pulled {reference}"),
            self.inner.pull(reference, progress),
        )
        .await
    }

    async fn create(&self, spec: &CloneSpec) -> EngineResult<String> {
        let result = self
            .timed(
                CHANGES,
                format!("create container {}", spec.name),
                self.inner.create(spec),
            )
            .await;
        if let Ok(id) = &result {
            self.say(CHANGES, || format!("{} has id {}", spec.name, short(id)));
        }
        result
    }

    async fn exited(&self, id: &str) -> EngineResult<()> {
        self.timed(READS, format!("exit of {}", short(id)), self.inner.exited(id))
            .await
    }

    async fn start(&self, id: &str) -> EngineResult<()> {
        self.timed(CHANGES, format!("start {}", short(id)), self.inner.start(id))
            .await
    }

    async fn stop(&self, id: &str, grace: Duration) -> EngineResult<()> {
        self.say(CHANGES, || format!("stop {} (grace {}s)", short(id), grace.as_secs()));
        self.timed(CHANGES, format!("stopped {}", short(id)), self.inner.stop(id, grace))
            .await
    }

    async fn kill(&self, id: &str, signal: &str) -> EngineResult<()> {
        self.timed(
            CHANGES,
            format!("kill {} with {signal}", short(id)),
            self.inner.kill(id, signal),
        )
        .await
    }

    async fn rename(&self, id: &str, new_name: &str) -> EngineResult<()> {
        self.timed(
            CHANGES,
            format!("rename {} to {new_name}", short(id)),
            self.inner.rename(id, new_name),
        )
        .await
    }

    async fn remove(&self, id: &str) -> EngineResult<()> {
        self.timed(CHANGES, format!("remove {}", short(id)), self.inner.remove(id))
            .await
    }

    fn log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<String>> {
        self.say_log(id, follow, "");
        self.inner.log_lines(id, follow)
    }

    fn timed_log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<LogLine>> {
        self.say_log(id, follow, " (with times)");
        self.inner.timed_log_lines(id, follow)
    }

    async fn http_get_auth(
        &self,
        addr: &str,
        path: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Answer, NoAnswer> {
        self.inner.http_get_auth(addr, path, bearer, timeout).await
    }

    async fn http_get(&self, addr: &str, path: &str, timeout: Duration) -> Result<Answer, NoAnswer> {
        let result = self.inner.http_get(addr, path, timeout).await;
        if self.progress.verbosity() >= READS {
            let now = match &result {
                Ok(a) => format!("HTTP {}", a.status),
                Err(e) => format!("no answer ({e})"),
            };
            let key = format!("{addr}{path}");
            let mut last = self.last_answer.lock().unwrap_or_else(|e| e.into_inner());
            // Polls repeat every few milliseconds: report each change only.
            if last.get(&key) != Some(&now) {
                let url = if key.starts_with("container://") {
                    key.clone()
                } else {
                    format!("http://{key}")
                };
                self.say(READS, || format!("GET {url}: {now}"));
                last.insert(key, now);
            }
        }
        result
    }
}
