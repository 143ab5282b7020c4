//! `docker exec` of a probe, and reading what it printed as an HTTP
//! answer: curl's `-w '\n%{http_code}'` form, which cl-maint's own probe
//! prints too.

use std::time::Duration;

use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use futures::StreamExt;

use super::DockerEngine;
use crate::probe::{Answer, NoAnswer};

/// How long the engine may take, beyond the probe's own timeout, to create,
/// start and report an exec: over `ssh://` every exec opens a connection of
/// its own, which a loaded machine can take seconds to set up. The probe's
/// HTTP request keeps its own timeout (curl's `-m`).
pub(super) const EXEC_SLACK: Duration = Duration::from_secs(10);

/// One probe inside a container: `GET path` on `port` in container
/// `name` (whose address is `addr`), within `timeout`.
pub(super) struct Ask<'a> {
    pub addr: &'a str,
    pub name: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub timeout: Duration,
    /// A bearer token for the request (`/metrics`), passed on the probe's
    /// standard input, never on its command line.
    pub bearer: Option<&'a str>,
}

/// Why a probe's exec printed nothing to read.
pub(super) enum Failed {
    /// Its container is gone (404) or does not run (409).
    Gone(bollard::errors::Error),
    /// The way to the engine failed (an SSH connection, say), twice.
    Engine(bollard::errors::Error),
    /// No answer within the probe's timeout and [`EXEC_SLACK`].
    TimedOut,
}

impl Ask<'_> {
    /// What the probe reads on its standard input: the `Authorization`
    /// header, when there is a token.
    pub fn stdin(&self) -> Option<String> {
        self.bearer.map(|t| format!("Authorization: Bearer {t}\n"))
    }

    /// Runs the probe `cmd` in `container`, within the probe's timeout and
    /// [`EXEC_SLACK`]; once more when the way to the engine failed (never
    /// when the container is gone).
    pub async fn run(&self, engine: &DockerEngine, container: &str, cmd: Vec<String>) -> Result<Ran, Failed> {
        let once = || async {
            let within = self.timeout + EXEC_SLACK;
            match tokio::time::timeout(within, exec(engine, container, cmd.clone(), self.stdin())).await {
                Err(_) => Err(Failed::TimedOut),
                Ok(Ok(ran)) => Ok(ran),
                Ok(Err(
                    e @ bollard::errors::Error::DockerResponseServerError {
                        status_code: 404 | 409, ..
                    },
                )) => Err(Failed::Gone(e)),
                Ok(Err(e)) => Err(Failed::Engine(e)),
            }
        };
        match once().await {
            Err(Failed::Engine(_)) => once().await,
            other => other,
        }
    }

    /// No answer within the probe's timeout.
    pub fn timed_out(&self) -> NoAnswer {
        NoAnswer::Timeout {
            addr: self.addr.to_string(),
            timeout: self.timeout,
        }
    }
}

/// What an exec printed and how it ended.
pub(super) struct Ran {
    /// Its exit code (`None` when the engine did not say).
    pub code: Option<i64>,
    /// stdout.
    pub out: String,
    /// stderr.
    pub err: String,
}

/// Runs `cmd` in the running container `container`, with `stdin` on its
/// standard input (then closed) when given.
pub(super) async fn exec(
    engine: &DockerEngine,
    container: &str,
    cmd: Vec<String>,
    stdin: Option<String>,
) -> Result<Ran, bollard::errors::Error> {
    let config = ExecConfig {
        cmd: Some(cmd),
        attach_stdin: Some(stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = engine.docker.create_exec(container, config).await?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    if let StartExecResults::Attached { mut output, mut input } = engine.docker.start_exec(&created.id, None).await? {
        if let Some(text) = stdin {
            use tokio::io::AsyncWriteExt;
            input.write_all(text.as_bytes()).await?;
            input.shutdown().await?;
        }
        while let Some(item) = output.next().await {
            match item? {
                bollard::container::LogOutput::StdOut { message } => out.extend_from_slice(&message),
                bollard::container::LogOutput::StdErr { message } => err.extend_from_slice(&message),
                _ => {}
            }
        }
    }
    let inspected = engine.docker.inspect_exec(&created.id).await?;
    Ok(Ran {
        code: inspected.exit_code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// Reads what curl (or the helper, which answers alike) printed.
pub(super) fn answer(addr: &str, ran: &Ran, timeout: Duration) -> Result<Answer, NoAnswer> {
    let refused = || NoAnswer::Connect {
        addr: addr.to_string(),
        source: std::io::ErrorKind::ConnectionRefused.into(),
    };
    match ran.code {
        Some(0) => {
            let (body, status) = ran.out.rsplit_once('\n').unwrap_or(("", ran.out.as_str()));
            match status.trim().parse::<u16>() {
                Ok(status) if status > 0 => Ok(Answer {
                    status,
                    body: body.to_string(),
                }),
                _ => Err(NoAnswer::NoResponse {
                    addr: addr.to_string(),
                    reason: format!("no status code in `{}`", status.trim()),
                }),
            }
        }
        Some(7) => Err(refused()),
        Some(28) => Err(NoAnswer::Timeout {
            addr: addr.to_string(),
            timeout,
        }),
        code => Err(NoAnswer::NoResponse {
            addr: addr.to_string(),
            reason: format!(
                "the probe exited {}: {}",
                code.map_or_else(|| "without a code".to_string(), |c| c.to_string()),
                ran.err.trim()
            ),
        }),
    }
}
