//! Plain HTTP GETs to a node's published port.
//!
//! A published Docker port accepts TCP even when nothing listens inside the
//! container (the engine's port proxy accepts, then closes), so "does it answer
//! HTTP" is the only meaningful probe: a TCP connect proves nothing.

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
