//! What went wrong connecting to an engine, in words an operator can act
//! on.

use super::{Endpoint, Transport};

/// What the HTTP client libraries add to a cause without saying anything
/// an operator can act on.
const LIBRARY_NOISE: [&str; 4] = [
    "Error in the hyper legacy client",
    "client error (Connect)",
    "tcp connect error",
    "error trying to connect",
];

/// An error and its causes, joined, without the libraries' own wrapping:
/// bollard's message alone often says only "client error (Connect)".
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    let parts: Vec<&str> = text
        .split(": ")
        .filter(|part| !LIBRARY_NOISE.contains(&part.trim()))
        .collect();
    if parts.is_empty() { text } else { parts.join(": ") }
}

/// What to check when the endpoint does not answer.
pub(super) fn hint(endpoint: &Endpoint) -> String {
    match &endpoint.transport {
        Transport::Unix(path) => format!(
            "check that dockerd runs and that this user may open {} (`docker version` uses the same settings)",
            path.display()
        ),
        Transport::Tcp { tls: None, .. } => "check that the engine listens there (`docker version` uses the same \
                                             settings); an engine that wants TLS needs DOCKER_TLS_VERIFY=1 and \
                                             DOCKER_CERT_PATH"
            .to_string(),
        Transport::Tcp { tls: Some(tls), .. } => format!(
            "check that the engine listens there with TLS and that {} signed its certificate \
             (`docker version` uses the same settings)",
            tls.ca.display()
        ),
        Transport::Ssh(destination) => format!(
            "cl-maint runs `ssh {dest} docker system dial-stdio` with the system's ssh client: check that \
             `ssh {dest} docker version` works without a prompt (key in ssh-agent, host key known); or forward \
             the engine's socket (`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock {dest}`) and use \
             --host unix:///tmp/docker.sock",
            dest = destination.trim_start_matches("ssh://")
        ),
    }
}
