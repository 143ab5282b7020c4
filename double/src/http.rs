//! The node's HTTP port: nothing at all while waiting for the lock, a
//! `/health`-only 204 answer during "migrations" (lease era, v2.15+), then the
//! real endpoints: `/health`, `/readyz` and `/metrics`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Health checks the double reports, sorted by name as the node sorts them.
const CHECKS: [&str; 5] = [
    "EVM.1337",
    "EVM.1337.HeadTracker",
    "JobSpawner",
    "Mailbox.Monitor",
    "PipelineRunner",
];

/// The file in `$ROOT` whose lines name checks to report as failing.
pub const FAILING_CHECKS_FILE: &str = "cl-double-failing-checks";

/// What the server answers.
#[derive(Clone)]
pub enum Mode {
    /// Migrations are running: `/health` answers 204, everything else 404.
    Migrating,
    /// The node is up.
    Serving(Arc<NodeInfo>),
}

/// What the real endpoints report.
pub struct NodeInfo {
    /// The node's version.
    pub version: String,
    /// Its commit.
    pub commit: String,
    /// `$ROOT`, where the failing-checks file is read.
    pub root: PathBuf,
    /// The `/metrics` bearer token, if any.
    pub metrics_token: Option<String>,
    /// When the real server started.
    pub started: Instant,
    /// The lease owner id.
    pub client_id: String,
}

/// A running HTTP listener.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `0.0.0.0:port` and serves `mode` until `stop()`.
    pub fn start(port: u16, mode: Mode) -> std::io::Result<Server> {
        let listener = TcpListener::bind(("0.0.0.0", port))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let mode = mode.clone();
                        std::thread::spawn(move || handle(stream, &mode));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // Dropping the listener closes the port: new connections are refused.
        });
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting and closes the port.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, mode: &Mode) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let auth = lines
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, content_type, body) = route(mode, path, query, &auth);
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        207 => "Multi-Status",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut response = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    if status != 204 {
        response.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    response.push_str("\r\n");
    if status != 204 {
        response.push_str(&body);
    }
    let _ = stream.write_all(response.as_bytes());
}

fn route(mode: &Mode, path: &str, query: &str, auth: &str) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let info = match mode {
        Mode::Migrating if path == "/health" => return (204, TEXT, String::new()),
        Mode::Migrating => return (404, TEXT, "404 page not found".into()),
        Mode::Serving(info) => info,
    };
    match path {
        "/health" => {
            let failing = failing_checks(info);
            let only_failing = query.split('&').any(|p| p == "failing");
            let checks: Vec<String> = CHECKS
                .iter()
                .filter(|c| !only_failing || failing.iter().any(|f| f == *c))
                .map(|c| {
                    let fails = failing.iter().any(|f| f == c);
                    format!(
                        "{{\"type\":\"checks\",\"id\":\"{c}\",\"attributes\":{{\"name\":\"{c}\",\"status\":\"{}\",\"output\":\"{}\"}}}}",
                        if fails { "failing" } else { "passing" },
                        if fails { "simulated failure (cl-node-double)" } else { "" }
                    )
                })
                .collect();
            let status = if failing.iter().any(|f| CHECKS.contains(&f.as_str())) {
                207
            } else {
                200
            };
            (
                status,
                "application/vnd.api+json",
                format!("{{\"data\":[{}]}}", checks.join(",")),
            )
        }
        "/readyz" => {
            let body = if query.split('&').any(|p| p == "full") {
                "ok: all services ready\n"
            } else {
                ""
            };
            (200, TEXT, body.into())
        }
        "/metrics" => {
            if let Some(token) = &info.metrics_token
                && auth != format!("Bearer {token}")
            {
                return (401, TEXT, "Unauthorized\n".into());
            }
            let body = format!(
                "# HELP version Node version information.\n# TYPE version gauge\nversion{{commit=\"{}\",version=\"{}\"}} 1\n\
                 # HELP uptime_seconds Seconds since the node started serving.\n# TYPE uptime_seconds gauge\nuptime_seconds {:.3}\n\
                 # HELP cl_double_lock_holder The client id holding the lock.\n# TYPE cl_double_lock_holder gauge\ncl_double_lock_holder{{client_id=\"{}\"}} 1\n",
                info.commit,
                info.version,
                info.started.elapsed().as_secs_f64(),
                info.client_id
            );
            (200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        _ => (404, TEXT, "404 page not found".into()),
    }
}

fn failing_checks(info: &NodeInfo) -> Vec<String> {
    std::fs::read_to_string(info.root.join(FAILING_CHECKS_FILE))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
