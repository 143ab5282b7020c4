//! Plain HTTP GETs to a node's port, and where to send them from.
//!
//! A published Docker port accepts TCP even when nothing listens inside the
//! container (the engine's port proxy accepts, then closes), so "does it answer
//! HTTP" is the only meaningful probe: a TCP connect proves nothing.
//!
//! A node is asked either **directly**, on the host port it publishes, from
//! where cl-maint runs (`host:port`), or **through the engine**, inside the
//! container's own network namespace (`container://NAME:PORT`, see
//! [`route`]): the node's port published on a remote engine's loopback, not
//! published at all (a Docker network, host networking on a remote engine),
//! or cl-maint itself in a container.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, as text (lossy UTF-8).
    pub body: String,
}

/// Why there was no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    /// Nothing accepted the connection.
    #[error("connection to {addr} failed: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The connection was accepted but no HTTP response came (the engine's
    /// port proxy with nothing listening behind it does this).
    #[error("no HTTP response from {addr}: {reason}")]
    NoResponse {
        /// The address tried.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the time allowed.
    #[error("no HTTP response from {addr} within {timeout:?}")]
    Timeout {
        /// The address tried.
        addr: String,
        /// The time allowed.
        timeout: Duration,
    },
}

/// `GET http://{addr}{path}`, with an optional bearer token, within `timeout`.
pub async fn get(addr: &str, path: &str, bearer: Option<&str>, timeout: Duration) -> Result<Answer, NoAnswer> {
    match tokio::time::timeout(timeout, get_inner(addr, path, bearer)).await {
        Ok(result) => result,
        Err(_) => Err(NoAnswer::Timeout {
            addr: addr.to_string(),
            timeout,
        }),
    }
}

async fn get_inner(addr: &str, path: &str, bearer: Option<&str>) -> Result<Answer, NoAnswer> {
    let no_response = |reason: String| NoAnswer::NoResponse {
        addr: addr.to_string(),
        reason,
    };
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| NoAnswer::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| no_response(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let mut request = Request::get(path).header(hyper::header::HOST, addr);
    if let Some(token) = bearer {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| no_response(e.to_string()))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| no_response(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| no_response(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
    .await;
    driver.abort();
    result
}

/// How cl-maint reaches nodes' HTTP ports (`--probe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProbeMode {
    /// Directly where the port can be reached from where cl-maint runs,
    /// through the engine where it cannot.
    #[default]
    Auto,
    /// Always on the published host port, from where cl-maint runs.
    Direct,
    /// Always through the engine, inside the container.
    Engine,
}

/// What decides how a node is reached: the probe setting and where
/// cl-maint runs relative to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// `--probe`.
    pub mode: ProbeMode,
    /// Whether cl-maint runs on the engine's host, in its network (the
    /// engine's name is this machine's host name): the engine's loopback
    /// is then cl-maint's own.
    pub local: bool,
    /// Where ports published on all interfaces are reached (see
    /// `Engine::published_host`).
    pub published_host: String,
}

impl Default for Reach {
    /// A local engine, `--probe auto`.
    fn default() -> Reach {
        Reach {
            mode: ProbeMode::Auto,
            local: true,
            published_host: "127.0.0.1".into(),
        }
    }
}

/// The scheme of an address inside a container.
const INSIDE: &str = "container://";

/// The address of port `port` inside container `name`.
pub fn inside(name: &str, port: u16) -> String {
    format!("{INSIDE}{name}:{port}")
}

/// The container and port of an address made by [`inside`].
pub fn parse_inside(addr: &str) -> Option<(&str, u16)> {
    let (name, port) = addr.strip_prefix(INSIDE)?.rsplit_once(':')?;
    Some((name, port.parse().ok()?))
}

/// Whether `ip` is a loopback address (or names one).
fn loopback(ip: &str) -> bool {
    ip == "localhost" || ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The host a port published on `ip` is reached on: `ip`, or
/// `published_host` when it is published on all interfaces.
fn host_of<'a>(ip: &'a str, published_host: &'a str) -> &'a str {
    if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
        published_host
    } else {
        ip
    }
}

/// `host:port` (`[v6]:port` for IPv6) of a port published on `ip` (all
/// interfaces when empty: reached on `published_host`).
pub fn host_port(ip: &str, port: u16, published_host: &str) -> String {
    let host = host_of(ip, published_host);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where container `name` is asked on its HTTP port `node_port`: it
/// publishes it on `published` (host IP, host port), or shares the host's
/// network (`host_network`), or neither. `--probe direct` is taken at its
/// word wherever there is a port to ask (a loopback address of another
/// host may be forwarded to this one); `Err` says why there is none.
pub fn route(
    reach: &Reach,
    name: &str,
    published: Option<(&str, u16)>,
    node_port: u16,
    host_network: bool,
) -> Result<String, String> {
    let port_here = match (published, host_network) {
        (Some((ip, port)), _) => Some(host_port(ip, port, &reach.published_host)),
        (None, true) if reach.local => Some(host_port("127.0.0.1", node_port, "")),
        (None, true) => Some(host_port("", node_port, &reach.published_host)),
        (None, false) => None,
    };
    // What `auto` asks directly: the engine host's loopback is cl-maint's
    // only on that host, and a node on the host's network only there too.
    let reachable = match (published, host_network) {
        (Some((ip, _)), _) => reach.local || !loopback(host_of(ip, &reach.published_host)),
        (None, true) => reach.local,
        (None, false) => false,
    };
    match (reach.mode, port_here) {
        (ProbeMode::Engine, _) => Ok(inside(name, node_port)),
        (ProbeMode::Auto, Some(addr)) if reachable => Ok(addr),
        (ProbeMode::Auto, _) => Ok(inside(name, node_port)),
        (ProbeMode::Direct, Some(addr)) => Ok(addr),
        (ProbeMode::Direct, None) => Err(format!("{name} publishes no host port for its port {node_port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(mode: ProbeMode, local: bool) -> Reach {
        Reach {
            mode,
            local,
            published_host: if local { "127.0.0.1".into() } else { "node-1".into() },
        }
    }

    #[test]
    fn auto_probes_directly_where_it_can() {
        let local = reach(ProbeMode::Auto, true);
        let remote = reach(ProbeMode::Auto, false);
        let r = |reach: &Reach, published, host| route(reach, "cl", published, 6688, host).unwrap();
        assert_eq!(r(&local, Some(("127.0.0.1", 6688)), false), "127.0.0.1:6688");
        assert_eq!(r(&remote, Some(("", 6688)), false), "node-1:6688");
        assert_eq!(r(&remote, Some(("127.0.0.1", 6688)), false), "container://cl:6688");
        assert_eq!(r(&local, None, true), "127.0.0.1:6688");
        assert_eq!(r(&remote, None, true), "container://cl:6688");
        assert_eq!(r(&local, None, false), "container://cl:6688");
        assert_eq!(r(&local, Some(("::1", 6688)), false), "[::1]:6688");
        // In a container beside a local engine (its socket mounted): the
        // engine's loopback is not cl-maint's.
        let beside = Reach {
            local: false,
            ..local.clone()
        };
        assert_eq!(r(&beside, Some(("", 6688)), false), "container://cl:6688");
    }

    #[test]
    fn engine_and_direct_are_what_they_say() {
        let engine = reach(ProbeMode::Engine, true);
        assert_eq!(
            route(&engine, "cl", Some(("127.0.0.1", 6688)), 6688, false).unwrap(),
            "container://cl:6688"
        );
        // Direct is taken at its word (a forwarded port, Docker Desktop).
        let direct = reach(ProbeMode::Direct, false);
        let r = route(&direct, "cl", Some(("127.0.0.1", 6688)), 6688, false).unwrap();
        assert_eq!(r, "127.0.0.1:6688");
        assert_eq!(route(&direct, "cl", None, 6690, true).unwrap(), "node-1:6690");
        let e = route(&direct, "cl", None, 6690, false).unwrap_err();
        assert!(e.contains("publishes no host port for its port 6690"), "{e}");
    }

    #[test]
    fn inside_addresses_round_trip() {
        assert_eq!(parse_inside(&inside("a-b", 6690)), Some(("a-b", 6690)));
        assert_eq!(parse_inside("127.0.0.1:6688"), None);
    }
}
