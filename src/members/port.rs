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
