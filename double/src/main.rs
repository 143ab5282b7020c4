//! `cl-node-double`: a stand-in for the Chainlink node that behaves like it in
//! everything cl-maint observes (see `docs/node-double.md`): the database lock
//! in both generations (bolt flock on the volume; Chainlink's `lease_lock` row
//! in a real PostgreSQL database), the exact log lines in pretty, coloured and
//! JSON form, no HTTP until the lock is held, `/health`, `/readyz` and
//! `/metrics`, the downgrade guard (`db_version` on the volume in the bolt
//! era, `node_versions` in the database in the lease era), graceful shutdown,
//! v1 (environment) and v2 (TOML, legacy variables refused) configuration,
//! `chainlink --version`, a `curl` for probes inside the container (the
//! binary under that name, see [`curl`]), and a heartbeat journal that tests read.
//!
//! Modules: [`config`] (command line, version, configuration), [`node`] (the
//! node's life: lock, boot, serve, shut down), [`lease`] and [`pg`] (the
//! database lease and its wire client, with [`scram`]), [`lock`] (bolt flock and retry
//! cadence), [`journal`], [`http`], [`logger`], [`toml`], [`legacy`],
//! [`clock`].

mod clock;
mod config;
mod curl;
#[path = "../../src/node/godur.rs"]
#[allow(dead_code)]
mod godur;
mod http;
mod journal;
mod lease;
mod legacy;
mod lock;
mod logger;
mod node;
mod pg;
mod scram;
mod toml;

use std::time::Duration;

use config::Command;
use logger::plain;

/// Reads an environment variable (`Some("")` when set but empty).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads a file's text.
fn read(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// `chainlink healthcheck`: what the image's HEALTHCHECK runs, like the real
/// image's `curl -f http://localhost:6688/health`: healthy only when the node
/// answers `/health` with a status below 400. The port is found the way the
/// node found it, from PID 1's command line and the environment.
fn healthcheck() -> ! {
    use std::io::{Read, Write};
    let cmdline = std::fs::read("/proc/1/cmdline")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let port = config::healthcheck_port(&cmdline, &env, &read);
    let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    });
    let status: u16 = answer
        .ok()
        .and_then(|t| t.split_whitespace().nth(1).and_then(|c| c.parse().ok()))
        .unwrap_or(0);
    if (200..400).contains(&status) {
        std::process::exit(0)
    }
    plain(&format!(
        "healthcheck: /health on port {port} answered {}",
        if status == 0 {
            "nothing".to_string()
        } else {
            status.to_string()
        }
    ));
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The image's `curl` is this binary under that name.
    let name = std::env::args().next().unwrap_or_default();
    if name.rsplit('/').next() == Some("curl") {
        std::process::exit(curl::main(&args));
    }
    let version = config::read_version(&env, &read, config::VERSION_FILE);
    match config::parse_args(&args) {
        Command::Version => {
            println!("chainlink version {}@{}", version.0, version.1);
            std::process::exit(0)
        }
        Command::Healthcheck => healthcheck(),
        Command::Node(inv) => node::run(&inv, version),
    }
}
