//! `curl`, as far as cl-maint and a HEALTHCHECK use it: the real image has
//! curl, so the double's image has this in its place (the binary answers
//! to the name `curl`). `curl [-s] [-S] [-f] [-m SECS] [-w FMT] [-o FILE]
//! [-H HEADER | -H @-] http://HOST:PORT/PATH` (`@-`: header lines from
//! standard input): GET, the body on stdout (or FILE), then FMT with
//! `%{http_code}` and `\n` expanded; exit 0, or curl's codes (6: bad host,
//! 7: refused, 22: `-f` and a status of 400 or more, 28: timed out, 52:
//! empty reply).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What a request came to: the status (0 when none) and the body, or an
/// exit code.
fn fetch(url: &str, headers: &[String], timeout: Duration) -> Result<(u16, Vec<u8>), i32> {
    let rest = url.strip_prefix("http://").ok_or(1)?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr = authority
        .replace("localhost", "127.0.0.1")
        .to_socket_addrs()
        .map_err(|_| 6)?
        .next()
        .ok_or(6)?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => 28,
        _ => 7,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(|_| 7)?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|_| 55)?;
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        return Err(
            if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut {
                28
            } else {
                56
            },
        );
    }
    if raw.is_empty() {
        return Err(52);
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(52)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or(52)?;
    Ok((status, raw[split + 4..].to_vec()))
}

/// Runs `curl ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (mut fail, mut silent_errors, mut timeout) = (false, false, Duration::from_secs(300));
    let (mut format, mut output, mut url) = (None, None, None);
    let mut headers = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" | "--silent" => {}
            "-S" | "--show-error" => silent_errors = true,
            "-f" | "--fail" => fail = true,
            "-m" | "--max-time" => {
                let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(300.0);
                timeout = Duration::from_secs_f64(secs.max(0.001));
            }
            "-w" | "--write-out" => format = it.next().cloned(),
            "-o" | "--output" => output = it.next().cloned(),
            "-H" | "--header" => match it.next().map(String::as_str) {
                Some("@-") => {
                    let mut text = String::new();
                    let _ = std::io::stdin().read_to_string(&mut text);
                    headers.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
                }
                Some(h) => headers.push(h.to_string()),
                None => return 2,
            },
            other if !other.starts_with('-') => url = Some(other.to_string()),
            other => {
                eprintln!("curl: option {other}: not known to the double's curl");
                return 2;
            }
        }
    }
    let Some(url) = url else {
        eprintln!("curl: no URL specified");
        return 2;
    };
    let result = fetch(&url, &headers, timeout);
    let status = result.as_ref().map_or(0, |(s, _)| *s);
    if let Ok((_, body)) = &result {
        match output.as_deref() {
            Some("/dev/null") => {}
            Some(path) if path != "-" => {
                let _ = std::fs::write(path, body);
            }
            _ => {
                let _ = std::io::stdout().write_all(body);
            }
        }
    }
    if let Some(f) = format {
        print!(
            "{}",
            f.replace("\\n", "\n").replace("%{http_code}", &format!("{status:03}"))
        );
    }
    let _ = std::io::stdout().flush();
    match result {
        Ok((s, _)) if fail && s >= 400 => 22,
        Ok(_) => 0,
        Err(code) => {
            if silent_errors {
                eprintln!("curl: ({code}) {url}");
            }
            code
        }
    }
}
