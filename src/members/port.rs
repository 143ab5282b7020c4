//! The node's HTTP port inside its container, as its own configuration says:
//! its `-config` files (read from the container through the engine), then
//! `CL_CONFIG`, else v1's `CHAINLINK_PORT`; else the port its log says it
//! listens on; else Chainlink's default, 6688.

use bollard::models::ContainerInspectResponse;
use futures::StreamExt;

use crate::engine::Engine;
use crate::node::config::{self, DEFAULT_HTTP_PORT};

/// How many log lines to read for the `Listening and serving HTTP on` line.
const LOG_LINES: usize = 2000;

/// The node's port inside its container, and what said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePort {
    /// The container port (`6688/tcp` by default).
    pub port: u16,
    /// What set it: a config file, `CL_CONFIG`, `CHAINLINK_PORT`, `log`, or
    /// `default`.
    pub source: String,
}

impl NodePort {
    /// Chainlink's default, when nothing sets another.
    pub fn default_port() -> NodePort {
        NodePort {
            port: DEFAULT_HTTP_PORT,
            source: "default".into(),
        }
    }
}

/// The container's command line: entrypoint, then command.
pub fn command_line(c: &ContainerInspectResponse) -> Vec<String> {
    let config = c.config.as_ref();
    config
        .and_then(|c| c.entrypoint.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(config.and_then(|c| c.cmd.clone()).unwrap_or_default())
        .collect()
}

/// Learns the node's HTTP port of container `c`.
pub async fn node_port<E: Engine>(engine: &E, c: &ContainerInspectResponse) -> NodePort {
    let env = c.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
    let id = c.id.clone().unwrap_or_default();
    let mut configs = Vec::new();
    for file in config::config_files(&command_line(c)) {
        if let Ok(Some(bytes)) = engine.read_file(&id, &file).await {
            configs.push((file, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    if let Some((port, source)) = config::http_port(&configs, &env) {
        return NodePort { port, source };
    }
    // Nothing we can read sets it: the node's own word, when it publishes
    // no default port.
    if !publishes(c, DEFAULT_HTTP_PORT) {
        let mut lines = engine.log_lines(&id, false).take(LOG_LINES);
        let mut said = None;
        while let Some(Ok(line)) = lines.next().await {
            if let Some(port) = crate::node::logs::listening_port(&line) {
                said = Some(port);
            }
        }
        if let Some(port) = said {
            return NodePort {
                port,
                source: "its log (Listening and serving HTTP on …)".into(),
            };
        }
    }
    NodePort::default_port()
}

/// Whether `c` has a host binding for container port `port`/tcp.
fn publishes(c: &ContainerInspectResponse, port: u16) -> bool {
    crate::spec::published_port(c, port).is_some()
}

/// Whether the container shares the network of the engine's host.
pub fn host_network(c: &ContainerInspectResponse) -> bool {
    c.host_config.as_ref().and_then(|h| h.network_mode.as_deref()) == Some("host")
}

/// Where cl-maint asks the node in `c` on its port `node_port`: its
/// published port from here, or inside the container through the engine
/// (see `probe::route`); `Err` says why the run's `--probe` cannot reach it.
pub fn node_addr<E: Engine>(engine: &E, c: &ContainerInspectResponse, node_port: u16) -> Result<String, String> {
    let name = c.name.as_deref().unwrap_or_default().trim_start_matches('/');
    let published = published(c, node_port);
    crate::probe::route(
        &engine.reach(),
        name,
        published.as_ref().map(|(ip, port)| (ip.as_str(), *port)),
        node_port,
        host_network(c),
    )
}

/// The host IP and port the container publishes `node_port` on; none on
/// the host's network, where Docker drops port mappings (it keeps them in
/// the inspect document all the same).
pub fn published(c: &ContainerInspectResponse, node_port: u16) -> Option<(String, u16)> {
    if host_network(c) {
        return None;
    }
    crate::spec::published_port(c, node_port)
}

/// Where a clone of the node beside it (the standby, a secondary) listens
/// and is asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seat {
    /// The node's port published on the clone's host port, when the node
    /// publishes it (the clone then does so on its own host port).
    pub publish: Option<crate::spec::Publish>,
    /// On the host's network: the node's own setting that makes the clone
    /// listen on its host port (the one setting the handoff needs changed).
    pub env: Option<(String, String)>,
    /// Where cl-maint asks it.
    pub addr: String,
}

/// The seat of a clone named `name` of the node in `c` (listening on
/// `node_port`, running `version`), given host port `host_port`, on an
/// engine reached as `reach` says. `Err` says why there is none.
pub fn seat(
    reach: &crate::probe::Reach,
    c: &ContainerInspectResponse,
    name: &str,
    node_port: u16,
    host_port: u16,
    version: Option<&str>,
) -> Result<Seat, String> {
    let published = published(c, node_port);
    let host = host_network(c);
    let route = |published, port| crate::probe::route(reach, name, published, port, host);
    if let Some((ip, _)) = &published {
        return Ok(Seat {
            publish: Some(crate::spec::Publish { node_port, host_port }),
            env: None,
            addr: route(Some((ip.as_str(), host_port)), node_port)?,
        });
    }
    if host {
        let env = c.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
        let setting = config::listen_on(&env, version, host_port).map_err(|why| {
            format!("the node shares the host's network, so {name} must listen on another port, but {why}")
        })?;
        return Ok(Seat {
            publish: None,
            env: Some(setting),
            addr: route(None, host_port)?,
        });
    }
    Ok(Seat {
        publish: None,
        env: None,
        addr: route(None, node_port)?,
    })
}
