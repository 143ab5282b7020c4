//! Riding out a short engine outage (a restarted `dockerd`, a dropped TCP
//! connection, a proxy that blinks): a call that gets no answer from the
//! engine is tried again for up to [`RETRY_FOR`]; a call the engine answered
//! (even with an error) is not. Followed logs reconnect and skip the lines
//! already delivered.

use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;

use crate::engine::{EngineError, EngineResult};

/// How long a call keeps trying while the engine does not answer.
pub const RETRY_FOR: Duration = Duration::from_secs(30);
/// The pause between tries.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Whether the error means the engine gave no answer (so trying again may work).
pub fn transient(e: &Error) -> bool {
    !matches!(
        e,
        Error::DockerResponseServerError { .. }
            | Error::JsonDataError { .. }
            | Error::JsonSerdeError { .. }
            | Error::DockerContainerWaitError { .. }
            | Error::DockerStreamError { .. }
    )
}

/// Calls `call` until it gets an answer from the engine or [`RETRY_FOR`]
/// passes. Returns its last result and whether an earlier try got no answer
/// (the engine may then have done what was asked already).
pub async fn retrying<T, F, Fut>(mut call: F) -> (Result<T, Error>, bool)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + RETRY_FOR;
    let mut retried = false;
    loop {
        match call().await {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                tracing::debug!(error = %e, "the Docker Engine did not answer; trying again");
                retried = true;
                tokio::time::sleep(RETRY_EVERY).await;
            }
            other => return (other, retried),
        }
    }
}

/// The container's log as lines (each after its RFC 3339 time with `timestamps`).
fn open(docker: &Docker, id: &str, follow: bool, timestamps: bool) -> BoxStream<'static, EngineResult<String>> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .timestamps(timestamps)
        .build();
    let chunks = docker.logs(id, Some(options));
    let action = format!("read the log of {id}");
    super::lines(chunks.map(move |c| c.map(|c| c.into_bytes()).map_err(super::api_error(action.clone())))).boxed()
}

/// Whether the container's run has ended: it does not run, or its restart
/// policy is restarting it after an exit.
fn ended(c: &bollard::models::ContainerInspectResponse) -> bool {
    let state = c.state.as_ref();
    state.and_then(|st| st.running) != Some(true) || state.and_then(|st| st.restarting) == Some(true)
}

/// A log stream that error: no answer from the engine (not an engine error).
fn no_answer(e: &EngineError) -> bool {
    matches!(e, EngineError::Api { status: None, .. })
}

/// The container's log as lines; when following, a stream that breaks
/// while the container still runs (or while the engine does not answer) is
/// opened again, skipping the lines already delivered, for up to
/// [`RETRY_FOR`] of silence. With `timestamps`, each line starts with the
/// engine's RFC 3339 time of it and a space.
pub fn log_lines(
    docker: &Docker,
    endpoint: String,
    id: &str,
    follow: bool,
    timestamps: bool,
) -> BoxStream<'static, EngineResult<String>> {
    if !follow {
        return open(docker, id, false, timestamps);
    }
    struct State {
        stream: Option<BoxStream<'static, EngineResult<String>>>,
        delivered: usize,
        docker: Docker,
        endpoint: String,
        id: String,
        timestamps: bool,
        broken_since: Option<Instant>,
    }
    let state = State {
        stream: Some(open(docker, id, true, timestamps)),
        delivered: 0,
        docker: docker.clone(),
        endpoint,
        id: id.to_string(),
        timestamps,
        broken_since: None,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            let stream = s.stream.as_mut()?;
            let failure = match stream.next().await {
                Some(Ok(line)) => {
                    s.delivered += 1;
                    s.broken_since = None;
                    return Some((Ok(line), s));
                }
                Some(Err(e)) if !no_answer(&e) => {
                    s.stream = None;
                    return Some((Err(e), s));
                }
                Some(Err(e)) => Some(e),
                // Ended: the container stopped (a container its restart
                // policy is restarting has stopped too: its run ended), or
                // the connection dropped.
                None => match s.docker.inspect_container(&s.id, None).await {
                    Ok(c) if ended(&c) => return None,
                    Err(e) if !transient(&e) => return None,
                    _ => None,
                },
            };
            let since = *s.broken_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= RETRY_FOR {
                s.stream = None;
                let e = failure.unwrap_or_else(|| EngineError::Unreachable {
                    endpoint: s.endpoint.clone(),
                    reason: format!("the log of {} broke off and could not be read again", s.id),
                });
                return Some((Err(e), s));
            }
            tracing::debug!(container = %s.id, "the log stream broke off; opening it again");
            tokio::time::sleep(RETRY_EVERY).await;
            s.stream = Some(open(&s.docker, &s.id, true, s.timestamps).skip(s.delivered).boxed());
        }
    })
    .boxed()
}
