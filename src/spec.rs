//! Rebuilding a container from `docker inspect`: a pure step.
//!
//! The clone keeps everything the operator configured (environment including
//! env-file values, command and arguments, mounts and volumes, user, restart
//! policy, log driver and options, networks and aliases, labels, resources,
//! capabilities, ulimits, extra hosts, DNS, port bindings with their host IP)
//! and drops what came from the **old image** (its env, labels, cmd,
//! entrypoint, healthcheck, workdir, user, stop signal, exposed ports,
//! volumes), so the new image's defaults apply. It also drops what Docker
//! generated for the old container (a hostname equal to its id, MAC and IP
//! addresses, the id alias on networks) and rewrites links. A clone beside
//! the node (the standby, a secondary) leaves out Compose's labels (see
//! `compose`).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageConfig, NetworkingConfig, PortBinding,
};

/// What to change when cloning.
#[derive(Clone, Debug, Default)]
pub struct CloneRequest {
    /// The new container's name.
    pub name: String,
    /// The image reference to run.
    pub image: String,
    /// Publish the node's HTTP port on another host port (the standby's
    /// 6687). Other published ports are left out then, since the original
    /// still holds them.
    pub http_host_port: Option<Publish>,
    /// Environment to set or replace (`NAME`, `value`).
    pub set_env: Vec<(String, String)>,
    /// Labels to add or replace.
    pub labels: Vec<(String, String)>,
    /// The clone is not the node itself but a container beside it (the
    /// standby, a secondary): it carries none of Compose's labels, or
    /// `docker compose up` would count it as the service's.
    pub beside: bool,
}

pub use crate::engine::CloneSpec;

/// The node's HTTP port published on a host port of cl-maint's choosing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The port the node listens on inside its container (its
    /// `[WebServer] HTTPPort`, 6688 by default).
    pub node_port: u16,
    /// The host port.
    pub host_port: u16,
}

/// Why a container cannot be cloned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// The inspect document lacks a part every container has.
    #[error("the inspect document of {0} has no {1}")]
    Missing(String, &'static str),
}

/// Where the node's data directory (`ROOT`, home of the bolt era's
/// `db.bolt`) lives outside the container: the volume or host directory it
/// is mounted from and the path below it (`volume:NAME/sub`,
/// `bind:/host/dir/sub`). `None` when `ROOT` is not set or not on a volume or
/// bind mount. Two containers on one engine with the same answer share the
/// lock file, so their `flock`s contend.
pub fn data_dir_on_host(c: &ContainerInspectResponse) -> Option<String> {
    let env = c.config.as_ref()?.env.as_ref()?;
    // The last `ROOT=` wins, as in the node's environment.
    let root = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("ROOT="))?
        .trim_end_matches('/');
    let below = |dest: &str| -> Option<String> {
        let dest = dest.trim_end_matches('/');
        if root == dest {
            Some(String::new())
        } else {
            root.strip_prefix(dest)?.strip_prefix('/').map(str::to_string)
        }
    };
    let (mount, rest) = c
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| Some((m, below(m.destination.as_deref()?)?)))
        .max_by_key(|(m, _)| m.destination.as_deref().map_or(0, str::len))?;
    let place = match mount.typ.as_deref() {
        Some("volume") => format!("volume:{}", mount.name.as_deref()?),
        Some("bind") | None => format!("bind:{}", mount.source.as_deref()?),
        _ => return None,
    };
    Some(format!("{place}/{rest}"))
}

/// Builds the create request for a clone of `container` (whose image's
/// config is `old_image`).
pub fn clone_spec(
    container: &ContainerInspectResponse,
    old_image: &ImageConfig,
    req: &CloneRequest,
) -> Result<CloneSpec, SpecError> {
    let who = container
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let mut config = container
        .config
        .clone()
        .ok_or_else(|| SpecError::Missing(who.clone(), "Config"))?;
    let mut host = container
        .host_config
        .clone()
        .ok_or_else(|| SpecError::Missing(who.clone(), "HostConfig"))?;
    let id = container.id.clone().unwrap_or_default();
    let mut changes = vec![format!("image: {}", req.image)];

    // Defaults of the old image must not leak into the new container.
    let image_env = old_image.env.clone().unwrap_or_default();
    let mut env: Vec<String> = config
        .env
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !image_env.contains(e))
        .collect();
    for (name, value) in &req.set_env {
        env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name.as_str()) && e != name);
        env.push(format!("{name}={value}"));
        changes.push(format!("env: {name} set"));
    }
    config.env = Some(env);
    if let Some(labels) = config.labels.as_mut() {
        let image_labels = old_image.labels.clone().unwrap_or_default();
        labels.retain(|k, v| image_labels.get(k) != Some(v));
        // Compose knows its container by these labels.
        if req.beside {
            let before = labels.len();
            labels.retain(|k, _| !crate::compose::is_compose_label(k));
            if labels.len() != before {
                changes.push("without the Compose labels (it is not the Compose service's container)".into());
            }
        }
    }
    for (k, v) in &req.labels {
        config
            .labels
            .get_or_insert_with(HashMap::new)
            .insert(k.clone(), v.clone());
    }
    if config.cmd == old_image.cmd {
        config.cmd = None;
    }
    if config.entrypoint == old_image.entrypoint {
        config.entrypoint = None;
    }
    if config.healthcheck == old_image.healthcheck {
        config.healthcheck = None;
    }
    if config.working_dir == old_image.working_dir {
        config.working_dir = None;
    }
    if config.user == old_image.user {
        config.user = None;
    }
    if config.stop_signal == old_image.stop_signal {
        config.stop_signal = None;
    }
    if let Some(ports) = config.exposed_ports.as_mut() {
        let image_ports = old_image.exposed_ports.clone().unwrap_or_default();
        ports.retain(|p| !image_ports.contains(p));
    }
    if let Some(volumes) = config.volumes.as_mut() {
        let image_volumes = old_image.volumes.clone().unwrap_or_default();
        volumes.retain(|v| !image_volumes.contains(v));
    }
    // What Docker generated for the old container.
    if config
        .hostname
        .as_deref()
        .is_some_and(|h| !h.is_empty() && id.starts_with(h))
    {
        config.hostname = None;
    }
    config.image = Some(req.image.clone());

    // Anonymous volumes: re-attach them by name, so the clone sees the same data.
    let mut binds = host.binds.take().unwrap_or_default();
    let explicit: Vec<String> = binds
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(str::to_string))
        .chain(host.mounts.iter().flatten().filter_map(|m| m.target.clone()))
        .collect();
    for mount in container.mounts.iter().flatten() {
        if mount.typ.as_deref() == Some("volume")
            && let (Some(name), Some(dest)) = (&mount.name, &mount.destination)
            && !explicit.contains(dest)
        {
            binds.push(format!("{name}:{dest}"));
            changes.push(format!("volume {name} re-attached at {dest}"));
        }
    }
    host.binds = (!binds.is_empty()).then_some(binds);
    host.links = host.links.map(|links| links.iter().map(|l| rewrite_link(l)).collect());
    if let Some(publish) = req.http_host_port {
        host.port_bindings = Some(remap_http_port(host.port_bindings.take().unwrap_or_default(), publish));
        changes.push(format!(
            "publishes the node's port {} on host port {} only",
            publish.node_port, publish.host_port
        ));
    }

    // Networks: one at create (API 1.41), the others connected before start.
    let mut networks: Vec<(String, EndpointSettings)> = container
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, e)| (name, clean_endpoint(e, &id)))
        .collect();
    networks.sort_by(|a, b| a.0.cmp(&b.0));
    let mode = host.network_mode.clone().unwrap_or_default();
    let shares_namespace = mode == "host" || mode == "none" || mode.starts_with("container:");
    let first_at = networks.iter().position(|(n, _)| *n == mode).unwrap_or(0);
    let (networking_config, extra_networks) = if shares_namespace || networks.is_empty() {
        (None, Vec::new())
    } else {
        let first = networks.remove(first_at);
        host.network_mode = Some(first.0.clone());
        let config = NetworkingConfig {
            endpoints_config: Some(HashMap::from([first])),
        };
        (Some(config), networks)
    };

    let body = ContainerCreateBody {
        hostname: config.hostname,
        domainname: config.domainname,
        user: config.user,
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
        exposed_ports: config.exposed_ports.filter(|p| !p.is_empty()),
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: config.env,
        cmd: config.cmd,
        healthcheck: config.healthcheck,
        args_escaped: config.args_escaped,
        image: config.image,
        volumes: config.volumes.filter(|v| !v.is_empty()),
        working_dir: config.working_dir.filter(|w| !w.is_empty()),
        entrypoint: config.entrypoint,
        network_disabled: config.network_disabled,
        on_build: None,
        labels: config.labels,
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        shell: config.shell,
        host_config: Some(host),
        networking_config,
    };
    Ok(CloneSpec {
        name: req.name.clone(),
        body,
        extra_networks,
        changes,
    })
}

/// `/db:/chainlink/db` (inspect form) → `db:db` (create form).
fn rewrite_link(link: &str) -> String {
    match link.split_once(':') {
        Some((target, alias)) => format!(
            "{}:{}",
            target.trim_start_matches('/'),
            alias.rsplit('/').next().unwrap_or(alias)
        ),
        None => link.trim_start_matches('/').to_string(),
    }
}

/// Keeps only the node's HTTP port, published on `port` with the original
/// host IP (the original still holds every other host port).
fn remap_http_port(
    bindings: HashMap<String, Option<Vec<PortBinding>>>,
    publish: Publish,
) -> HashMap<String, Option<Vec<PortBinding>>> {
    let key = format!("{}/tcp", publish.node_port);
    let host_ip = bindings
        .get(&key)
        .and_then(|b| b.as_ref())
        .and_then(|b| b.first())
        .and_then(|b| b.host_ip.clone());
    HashMap::from([(
        key,
        Some(vec![PortBinding {
            host_ip,
            host_port: Some(publish.host_port.to_string()),
        }]),
    )])
}

/// Keeps the operator's endpoint settings (aliases, links, driver options)
/// and drops what the engine assigned (addresses, ids, MAC, the id alias).
fn clean_endpoint(e: EndpointSettings, container_id: &str) -> EndpointSettings {
    let aliases: Vec<String> = e
        .aliases
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !(a.len() >= 12 && container_id.starts_with(a.as_str())))
        .collect();
    EndpointSettings {
        aliases: (!aliases.is_empty()).then_some(aliases),
        links: e.links.map(|l| l.iter().map(|x| rewrite_link(x)).collect()),
        driver_opts: e.driver_opts.filter(|d| !d.is_empty()),
        ..Default::default()
    }
}

/// A container of cl-maint's own on `image`: no network at all, nothing
/// mounted, no restart policy; `cmd` replaces the image's command (its
/// entrypoint stays). The run lock and the one-off `--version` are such.
pub fn isolated(
    name: String,
    image: Option<String>,
    cmd: Option<Vec<String>>,
    labels: HashMap<String, String>,
) -> CloneSpec {
    CloneSpec {
        name,
        body: ContainerCreateBody {
            image,
            cmd,
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        extra_networks: Vec::new(),
        changes: Vec::new(),
    }
}

/// The host port a container publishes container port `port`/tcp on, with
/// its host IP (empty for all interfaces).
pub fn published_port(container: &ContainerInspectResponse, port: u16) -> Option<(String, u16)> {
    let key = format!("{port}/tcp");
    let from = |map: &HashMap<String, Option<Vec<PortBinding>>>| {
        map.get(&key)?.as_ref()?.iter().find_map(|b| {
            let port = b.host_port.as_deref()?.parse().ok()?;
            Some((b.host_ip.clone().unwrap_or_default(), port))
        })
    };
    container
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .and_then(from)
        .or_else(|| {
            container
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.as_ref())
                .and_then(from)
        })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
