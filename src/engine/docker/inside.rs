//! Asking a node's HTTP port from inside its container, through the engine
//! (`container://NAME:PORT`): `docker exec` of the image's own `curl`
//! (Chainlink's image has it: its `HEALTHCHECK` is `curl -f
//! http://localhost:6688/health`); when the image has none, cl-maint's own
//! probe in a helper container that shares the node's network namespace
//! (see `helper`). Works on every engine, local, `tcp://` or `ssh://`,
//! whatever the node publishes.

use std::collections::HashMap;
use std::time::Duration;

use super::DockerEngine;
use super::exec::{Ask, Failed, Ran, answer};
use crate::probe::{Answer, NoAnswer};

/// How a container was asked last: its own `curl`, or the helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// The image's `curl`.
    Curl,
    /// cl-maint's probe in a helper container (the image has no `curl`).
    Helper,
}

impl Method {
    /// The probe, in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Curl => "engine: curl inside the node's container (docker exec)",
            Method::Helper => "engine: cl-maint's probe in a helper container sharing the node's network",
        }
    }
}

/// The command that asks `port` + `path` inside a container and prints
/// the body, a newline and the status code (curl's `-w '\n%{http_code}'`);
/// with `headers`, it reads request headers from its standard input.
fn curl(port: u16, path: &str, timeout: Duration, headers: bool) -> Vec<String> {
    let mut cmd = vec![
        "curl".into(),
        "-s".into(),
        "-S".into(),
        "-m".into(),
        format!("{:.1}", timeout.as_secs_f64().max(0.1)),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    if headers {
        cmd.extend(["-H".into(), "@-".into()]);
    }
    cmd.push(format!("http://127.0.0.1:{port}{path}"));
    cmd
}

/// Whether an exec failed because the program is not in the image.
fn missing_program(ran: &Ran) -> bool {
    matches!(ran.code, Some(126 | 127))
        || ran.out.contains("executable file not found")
        || ran.err.contains("executable file not found")
}

/// `GET path` on `port` inside container `name`, with a bearer token
/// when given.
pub(super) async fn get(
    engine: &DockerEngine,
    name: &str,
    port: u16,
    path: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Answer, NoAnswer> {
    let addr = &crate::probe::inside(name, port);
    let ask = Ask {
        addr,
        name,
        port,
        path,
        timeout,
        bearer,
    };
    if engine.method_of(name) != Some(Method::Helper) {
        let ran = match ask.run(engine, name, curl(port, path, timeout, bearer.is_some())).await {
            Ok(ran) => ran,
            Err(Failed::Gone(e)) => {
                return Err(NoAnswer::Connect {
                    addr: addr.to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e.to_string()),
                });
            }
            Err(Failed::Engine(e)) => {
                return Err(NoAnswer::NoResponse {
                    addr: addr.to_string(),
                    reason: format!("the engine could not run the probe: {e}"),
                });
            }
            Err(Failed::TimedOut) => return Err(ask.timed_out()),
        };
        if !missing_program(&ran) {
            engine.note_method(name, Method::Curl);
            return answer(addr, &ran, timeout);
        }
        engine.note_method(name, Method::Helper);
    }
    super::helper::get(engine, &ask).await
}

/// The probes a run used: how each container was asked inside (by name),
/// and whether any node was asked directly.
#[derive(Default)]
pub(super) struct Methods {
    pub inside: HashMap<String, Method>,
    pub direct: bool,
}

impl DockerEngine {
    pub(super) fn method_of(&self, container: &str) -> Option<Method> {
        let methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        methods.inside.get(container).copied()
    }

    pub(super) fn note_method(&self, container: &str, method: Method) {
        let mut methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        methods.inside.insert(container.to_string(), method);
    }
}

/// This machine's host name. In a container it is the container's (its id)
/// unless the container shares the host's network (`--network host`).
pub(super) fn this_host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(code: i64, out: &str) -> Ran {
        Ran {
            code: Some(code),
            out: out.into(),
            err: String::new(),
        }
    }

    #[test]
    fn curls_answers_are_read_like_a_direct_get() {
        let t = Duration::from_secs(1);
        let a = answer("x", &ran(0, "{\"data\":[]}\n503"), t).unwrap();
        assert_eq!((a.status, a.body.as_str()), (503, "{\"data\":[]}"));
        assert!(matches!(
            answer("x", &ran(7, "\n000"), t),
            Err(NoAnswer::Connect { .. })
        ));
        assert!(matches!(answer("x", &ran(28, ""), t), Err(NoAnswer::Timeout { .. })));
        assert!(matches!(answer("x", &ran(56, ""), t), Err(NoAnswer::NoResponse { .. })));
        assert!(matches!(
            answer("x", &ran(0, "\n000"), t),
            Err(NoAnswer::NoResponse { .. })
        ));
    }

    #[test]
    fn a_missing_curl_is_told_from_a_failing_one() {
        assert!(missing_program(&ran(127, "")));
        assert!(missing_program(&ran(
            1,
            "OCI runtime exec failed: exec: \"curl\": executable file not found in $PATH"
        )));
        assert!(!missing_program(&ran(7, "")));
        assert_eq!(curl(6690, "/health", Duration::from_millis(1500), false)[4], "1.5");
        let with = curl(6688, "/metrics", Duration::from_secs(5), true);
        assert_eq!(with[with.len() - 3..], ["-H", "@-", "http://127.0.0.1:6688/metrics"]);
    }
}
