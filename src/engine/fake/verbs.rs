//! The [`Engine`] verbs on the fake: each records its call, applies any
//! injected fault, and acts on the world.

use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerSummary, HostConfig, ImageInspect};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::json;
use tokio::time::Instant;

use super::world::{Container, Phase, api};
use super::{FATAL_CONFIG, FakeEngine, lock};
use crate::engine::CloneSpec;
use crate::engine::{Engine, EngineResult, LogLine, PullProgress};
use crate::node::config::DEFAULT_HTTP_PORT as HTTP_PORT;
use crate::probe::{Answer, NoAnswer};
use crate::time::rfc3339;

/// How often a followed log is polled for new lines.
const POLL: Duration = Duration::from_millis(10);

/// The image id the fake gives the image `reference`.
fn image_id(reference: &str) -> String {
    format!("sha256:fake-{reference}")
}

/// An engine document from JSON (the fake's documents always deserialise).
fn doc<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> EngineResult<T> {
    serde_json::from_value(value).map_err(|e| api("build a fake document".into(), 500, e.to_string()))
}

impl FakeEngine {
    /// Summaries of the containers carrying `label` (`key` or `key=value`), or all.
    fn summaries(&self, label: Option<&str>) -> EngineResult<Vec<ContainerSummary>> {
        let w = self.world();
        let wanted = |c: &&Container| match label.map(|l| l.split_once('=').unwrap_or((l, ""))) {
            None => true,
            Some((k, "")) => c.labels.contains_key(k),
            Some((k, v)) => c.labels.get(k).is_some_and(|x| x == v),
        };
        w.containers
            .iter()
            .filter(wanted)
            .map(|c| {
                let port = c.addr.as_ref().and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok());
                let ports: Vec<_> = port
                    .filter(|_| c.running())
                    .map(|p| json!({"PrivatePort": HTTP_PORT, "PublicPort": p, "Type": "tcp"}))
                    .into_iter()
                    .collect();
                doc(json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                    "Labels": c.labels, "State": c.status(), "Ports": ports}))
            })
            .collect()
    }
}

/// The address a spec publishes the node's HTTP port on, as the plan computes it.
fn published_addr(host: Option<&HostConfig>) -> Option<String> {
    let bindings = host?.port_bindings.as_ref()?.get(&format!("{HTTP_PORT}/tcp"))?;
    let b = bindings.as_ref()?.first()?;
    let ip = b.host_ip.as_deref().filter(|ip| !["", "0.0.0.0", "::"].contains(ip));
    Some(format!("{}:{}", ip.unwrap_or("127.0.0.1"), b.host_port.as_deref()?))
}

/// The `Mounts` of a container with these binds (`SOURCE:DEST[:OPTIONS]`):
/// a source that is a path is a bind mount, any other a named volume.
fn mounts(host: Option<&HostConfig>) -> serde_json::Value {
    let binds = host.and_then(|h| h.binds.as_ref()).into_iter().flatten();
    binds
        .filter_map(|b| {
            let mut parts = b.split(':');
            let (source, dest) = (parts.next()?, parts.next()?);
            Some(if source.starts_with('/') {
                json!({"Type": "bind", "Source": source, "Destination": dest})
            } else {
                json!({"Type": "volume", "Name": source, "Destination": dest})
            })
        })
        .collect()
}

impl Engine for FakeEngine {
    fn endpoint(&self) -> String {
        "fake://engine".to_string()
    }

    fn published_host(&self) -> String {
        "127.0.0.1".to_string()
    }

    async fn inspect_container(&self, name: &str) -> EngineResult<Option<ContainerInspectResponse>> {
        let mut w = self.world();
        let Some(c) = w.target("inspect", name, |_| String::new())?.map(|i| &w.containers[i]) else {
            return Ok(None);
        };
        doc(json!({
            "Id": c.id, "Name": format!("/{}", c.name), "Image": image_id(&c.image),
            "Config": {"Image": c.image, "Labels": c.labels, "Env": c.env},
            "HostConfig": c.host_config,
            "Mounts": mounts(c.host_config.as_ref()),
            "State": {"Status": c.status(), "Running": c.running(), "ExitCode": c.exit_code.unwrap_or(0),
                "StartedAt": c.started.map(|at| rfc3339(wall_time(at), true))},
        }))
    }

    async fn inspect_image(&self, reference: &str) -> EngineResult<Option<ImageInspect>> {
        let w = self.world();
        let found = w
            .images
            .iter()
            .find(|(r, _)| *r == reference || image_id(r) == reference);
        let Some((r, b)) = found else {
            return Ok(None);
        };
        doc(json!({"Id": image_id(r), "RepoTags": [r],
            "Config": {"Labels": {"org.opencontainers.image.version": b.version}}}))
    }

    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        self.summaries(Some(label))
    }

    async fn list_all_containers(&self) -> EngineResult<Vec<ContainerSummary>> {
        self.summaries(None)
    }

    async fn read_file(&self, _id: &str, _path: &str) -> EngineResult<Option<Vec<u8>>> {
        // The fake's containers have no files.
        Ok(None)
    }

    async fn pull(&self, reference: &str, progress: &(dyn Fn(PullProgress) + Send + Sync)) -> EngineResult<()> {
        {
            let mut w = self.world();
            w.call("pull", reference, format!("pull {reference}"))?;
            if !w.images.contains_key(reference) {
                let message = format!("manifest for {reference} not found");
                return Err(w.failed(format!("pull {reference}"), 404, message));
            }
        }
        progress(PullProgress {
            status: "Pull complete".to_string(),
            ..PullProgress::default()
        });
        Ok(())
    }

    async fn create(&self, spec: &CloneSpec) -> EngineResult<String> {
        let mut w = self.world();
        let name = spec.name.clone();
        w.call("create", &name, format!("create {name}"))?;
        let action = format!("create container {name}");
        if w.find(&name).is_some() {
            return Err(w.failed(action, 409, format!("the name {name} is already in use")));
        }
        let image = spec.body.image.clone().unwrap_or_default();
        let Some(behaviour) = w.by_name.get(&name).or_else(|| w.images.get(&image)).cloned() else {
            return Err(w.failed(action, 404, format!("No such image: {image}")));
        };
        let id = format!("fake-{:04}", w.next_id);
        w.next_id += 1;
        let host_config = spec.body.host_config.clone();
        w.containers.push(Container {
            id: id.clone(),
            name,
            image,
            labels: spec.body.labels.clone().unwrap_or_default(),
            env: spec.body.env.clone().unwrap_or_default(),
            addr: published_addr(host_config.as_ref()),
            host_config,
            behaviour,
            phase: Phase::Created,
            exit_code: None,
            log: Vec::new(),
            log_at: Vec::new(),
            started: None,
        });
        Ok(id)
    }

    async fn start(&self, id: &str) -> EngineResult<()> {
        let now = Instant::now();
        let mut w = self.world();
        let Some(i) = w.target("start", id, |n| format!("start {n}"))? else {
            return Err(w.not_found("start", id));
        };
        if w.containers[i].running() {
            return Ok(());
        }
        let (name, addr) = (w.containers[i].name.clone(), w.containers[i].addr.clone());
        if addr.is_some() && w.containers.iter().any(|c| c.running() && c.addr == addr) {
            let message = format!(
                "Bind for {} failed: port is already allocated",
                addr.unwrap_or_default()
            );
            return Err(w.failed(format!("start container {name}"), 500, message));
        }
        let b = w.containers[i].behaviour.clone();
        let c = &mut w.containers[i];
        c.log
            .push(format!("[INFO]  Starting Chainlink Node {} at commit fake", b.version));
        c.exit_code = None;
        c.started = Some(now);
        c.phase = Phase::Starting {
            attempt_at: now + b.startup,
        };
        if let Some(code) = b.exits_at_once {
            c.log.push(FATAL_CONFIG.to_string());
            w.exit(i, code);
        }
        w.settle(now);
        Ok(())
    }

    async fn stop(&self, id: &str, grace: Duration) -> EngineResult<()> {
        let (target, delay, graceful) = {
            let mut w = self.world();
            let Some(i) = w.target("stop", id, |n| format!("stop {n}"))? else {
                return Err(w.not_found("stop", id));
            };
            let c = &w.containers[i];
            if !c.running() {
                return Ok(());
            }
            let shutdown = c.behaviour.shutdown;
            (c.id.clone(), shutdown.min(grace), shutdown <= grace)
        };
        // The node shuts down (still holding the lock), or is killed at the grace's end.
        tokio::time::sleep(delay).await;
        let mut w = self.world();
        if let Some(i) = w.find(&target) {
            w.halt(i, Instant::now(), graceful);
        }
        Ok(())
    }

    async fn exited(&self, id: &str) -> EngineResult<()> {
        loop {
            {
                let w = self.world();
                match w.find(id) {
                    Some(i) if w.containers[i].running() => {}
                    _ => return Ok(()),
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn kill(&self, id: &str, signal: &str) -> EngineResult<()> {
        let mut w = self.world();
        let Some(i) = w.target("kill", id, |n| format!("kill {n} {signal}"))? else {
            return Err(w.not_found("kill", id));
        };
        if !w.containers[i].running() {
            let name = w.containers[i].name.clone();
            return Err(w.failed(
                format!("kill container {name}"),
                409,
                format!("container {name} is not running"),
            ));
        }
        w.halt(i, Instant::now(), false);
        Ok(())
    }

    async fn rename(&self, id: &str, new_name: &str) -> EngineResult<()> {
        let mut w = self.world();
        let Some(i) = w.target("rename", id, |n| format!("rename {n} {new_name}"))? else {
            return Err(w.not_found("rename", id));
        };
        if w.find(new_name).is_some_and(|j| j != i) {
            let message = format!("the name {new_name} is already in use");
            return Err(w.failed(format!("rename container {id}"), 409, message));
        }
        w.containers[i].name = new_name.to_string();
        Ok(())
    }

    async fn remove(&self, id: &str) -> EngineResult<()> {
        let mut w = self.world();
        // Like the real adapter: removing what is not there succeeds.
        let Some(i) = w.target("remove", id, |n| format!("remove {n}"))? else {
            return Ok(());
        };
        w.halt(i, Instant::now(), false);
        w.containers.remove(i);
        w.check(Instant::now());
        Ok(())
    }

    fn log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<String>> {
        self.timed_log_lines(id, follow)
            .map(|line| line.map(|line| line.text))
            .boxed()
    }

    /// Each line dated when the fake logged it (by its virtual clock, read
    /// against the wall clock as a real engine's time would be).
    fn timed_log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<LogLine>> {
        let found = {
            let w = self.world();
            w.find(id).map(|i| w.containers[i].id.clone())
        };
        let Some(target) = found else {
            let e = api(format!("read the log of {id}"), 404, format!("No such container: {id}"));
            return stream::iter([Err(e)]).boxed();
        };
        let world = Arc::clone(&self.world);
        stream::unfold((world, target, 0usize), move |(world, target, next)| async move {
            loop {
                let line = {
                    let mut w = lock(&world);
                    w.settle(Instant::now());
                    let c = w.containers.iter().find(|c| c.id == target)?;
                    match c.log.get(next) {
                        Some(line) => Some(LogLine {
                            text: line.clone(),
                            at: c.log_at.get(next).map(|at| wall_time(*at)),
                        }),
                        None if !follow || !c.running() => return None,
                        None => None,
                    }
                };
                match line {
                    Some(line) => return Some((Ok(line), (world, target, next + 1))),
                    None => tokio::time::sleep(POLL).await,
                }
            }
        })
        .boxed()
    }

    async fn http_get(&self, addr: &str, _path: &str, _timeout: Duration) -> Result<Answer, NoAnswer> {
        let now = Instant::now();
        let w = self.world();
        let Some(c) = w
            .containers
            .iter()
            .find(|c| c.running() && c.addr.as_deref() == Some(addr))
        else {
            let source = std::io::ErrorKind::ConnectionRefused.into();
            return Err(NoAnswer::Connect {
                addr: addr.to_string(),
                source,
            });
        };
        let status = match c.phase {
            Phase::Holding { answers_at: at, .. } | Phase::OwnDb { answers_at: at } if at <= now => {
                Some(c.behaviour.health)
            }
            Phase::Holding { migrated_at, .. } if now < migrated_at && c.behaviour.answers_204_while_migrating => {
                Some(204)
            }
            _ => None,
        };
        match status {
            Some(status) => Ok(Answer {
                status,
                body: r#"{"data":[]}"#.to_string(),
            }),
            // The engine's port proxy accepts, then closes: nothing listens.
            None => Err(NoAnswer::NoResponse {
                addr: addr.to_string(),
                reason: "connection closed before a response".to_string(),
            }),
        }
    }
}

/// The wall-clock time of a moment of the fake's (virtual) clock.
fn wall_time(at: Instant) -> std::time::SystemTime {
    std::time::SystemTime::now() - Instant::now().saturating_duration_since(at)
}
