//! cl-maint's own probe, run inside a helper container that shares a
//! node's network namespace (see `engine::docker::helper`); not a command
//! for operators. `cl-maint __probe get PORT PATH TIMEOUT_MS
//! [headers-on-stdin]` prints the body, a newline and the status, and
//! exits like curl (7: refused, 28: timed out, 52: no response); with
//! `headers-on-stdin` it reads an `Authorization: Bearer …` line from its
//! standard input. `cl-maint __probe agent` keeps the helper up until two
//! minutes pass without a probe.

use std::time::{Duration, SystemTime};

use crate::probe::NoAnswer;

/// Touched by every probe; the agent exits once it is old.
const USED: &str = "/tmp/cl-maint-probe-used";

/// How long the agent waits for the next probe.
const IDLE: Duration = Duration::from_secs(120);

/// Runs `__probe ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("agent") => agent(),
        Some("get") => get(&args[1..]),
        _ => {
            eprintln!("cl-maint __probe is cl-maint's own probe: `get PORT PATH TIMEOUT_MS` or `agent`");
            2
        }
    }
}

fn agent() -> i32 {
    let started = SystemTime::now();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let last = std::fs::metadata(USED).and_then(|m| m.modified()).unwrap_or(started);
        if last.elapsed().unwrap_or_default() > IDLE {
            return 0;
        }
    }
}

fn get(args: &[String]) -> i32 {
    let _ = std::fs::write(USED, b"");
    let (Some(port), Some(path), Some(ms)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: __probe get PORT PATH TIMEOUT_MS");
        return 2;
    };
    let timeout = Duration::from_millis(ms.parse().unwrap_or(2000));
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return 52;
    };
    let addr = format!("127.0.0.1:{port}");
    let mut bearer = None;
    if args.get(3).map(String::as_str) == Some("headers-on-stdin") {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        bearer = line.trim().strip_prefix("Authorization: Bearer ").map(str::to_string);
    }
    match runtime.block_on(crate::probe::get(&addr, path, bearer.as_deref(), timeout)) {
        Ok(answer) => {
            print!("{}\n{}", answer.body, answer.status);
            0
        }
        Err(e) => {
            eprintln!("{e}");
            match e {
                NoAnswer::Connect { .. } => 7,
                NoAnswer::Timeout { .. } => 28,
                NoAnswer::NoResponse { .. } => 52,
            }
        }
    }
}
