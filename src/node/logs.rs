//! What the node's log lines mean, in every lock generation and log format.
//!
//! Lines arrive as pretty text (`<ts> [INFO]  <message> <caller> k=v`), with
//! ANSI colour codes, as one JSON object a line, and with or without the
//! timestamp prefix `docker logs -t` adds. Matching is done on the message text
//! after removing all of that, so every format gives the same answer.

use std::borrow::Cow;

/// The generation of the database lock a waiting line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// flock on `db.bolt` (the release the documented upgrade procedure was
    /// written for).
    Bolt,
    /// Postgres advisory lock, blocking (v0.6–v0.9.8).
    AdvisoryBlocking,
    /// Postgres advisory lock, retry loop (v0.9.9–v1.0).
    AdvisoryRetry,
    /// Advisory mode of v1.1–v1.13.
    Advisory,
    /// The `lease_lock` table (v1.1+ and all of v2).
    Lease,
}

impl Generation {
    /// Whether the waiting line is printed *before* the lock attempt (so it
    /// does not prove the node is waiting): bolt's `Waiting … for lock on db
    /// file` and the blocking advisory lock's `Locking … for exclusive access`.
    /// The other generations print it after a failed attempt.
    pub fn line_precedes_attempt(self) -> bool {
        matches!(self, Generation::Bolt | Generation::AdvisoryBlocking)
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Generation::Bolt => "bolt-era file lock",
            Generation::AdvisoryBlocking | Generation::AdvisoryRetry | Generation::Advisory => "Postgres advisory lock",
            Generation::Lease => "Postgres lease",
        })
    }
}

/// A log line that says something about the lock or the node's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node is waiting for the lock (bolt era: printed once *before* the
    /// attempt, so the holder prints it too).
    Waiting(Generation),
    /// Bolt era: `DATABASE_TIMEOUT` passed before the lock came free.
    LockTimeout,
    /// The node was stopped while still waiting (normal for a standby).
    StoppedWhileWaiting,
    /// The node refused a database a newer version has migrated.
    Downgrade,
    /// Another node took the lease or advisory lock; this one exits.
    LockLost,
    /// The node finished booting.
    Booted,
    /// The node is shutting down on a signal.
    ShuttingDown,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Waiting(g) => write!(f, "it waits for the lock ({g})"),
            Event::LockTimeout => f.write_str("it gave up waiting for the lock (DATABASE_TIMEOUT)"),
            Event::StoppedWhileWaiting => f.write_str("it was stopped while waiting for the lock"),
            Event::Downgrade => f.write_str("it refused a database a newer version has migrated"),
            Event::LockLost => f.write_str("another node took the lock, so it exited"),
            Event::Booted => f.write_str("it booted"),
            Event::ShuttingDown => f.write_str("it is shutting down"),
        }
    }
}

const LEASE_WAITING: &str = "Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...";

/// What the operator told cl-maint about a node's log (the config file's
/// `lock` and `lock_wait_pattern`, or `--lock` / `--lock-wait-pattern`).
#[derive(Clone, Debug, Default)]
pub struct LogSettings {
    /// The lock generation, instead of the one the log shows.
    pub generation: Option<Generation>,
    /// A line whose message matches this is a lock-wait line of
    /// `generation` (in addition to the built-in lines).
    pub lock_wait: Option<regex::Regex>,
}

tokio::task_local! {
    static SETTINGS: LogSettings;
}

/// Runs `work` with `settings` in force for every [`classify`] and
/// [`generation_override`] it makes (in its task: the log streams are read
/// where they are awaited).
pub async fn with_settings<F: std::future::Future>(settings: LogSettings, work: F) -> F::Output {
    SETTINGS.scope(settings, work).await
}

/// The lock generation the operator named, if any (it replaces the one a
/// node's log shows).
pub fn generation_override() -> Option<Generation> {
    SETTINGS.try_with(|s| s.generation).ok().flatten()
}

/// Classifies one log line: the built-in lines, then the operator's
/// lock-wait pattern (see [`with_settings`]).
pub fn classify(line: &str) -> Option<Event> {
    let msg = message(line);
    classify_builtin(msg.as_ref()).or_else(|| SETTINGS.try_with(|s| classify_custom(msg.as_ref(), s)).ok().flatten())
}

/// The operator's lock-wait pattern against a message: a waiting line of
/// the named generation.
pub fn classify_custom(message: &str, settings: &LogSettings) -> Option<Event> {
    let pattern = settings.lock_wait.as_ref()?;
    let generation = settings.generation?;
    pattern.is_match(message).then_some(Event::Waiting(generation))
}

fn classify_builtin(m: &str) -> Option<Event> {
    let event = if m.contains(LEASE_WAITING) {
        Event::Waiting(Generation::Lease)
    } else if m.contains("Another application holds the advisory lock, waiting...") {
        Event::Waiting(Generation::Advisory)
    } else if m.contains("Could not get lock, retrying...") || m.contains("Still waiting for lock...") {
        Event::Waiting(Generation::AdvisoryRetry)
    } else if is_bolt_waiting(m) {
        Event::Waiting(Generation::Bolt)
    } else if m.contains("Locking ") && m.contains(" for exclusive access with ") {
        Event::Waiting(Generation::AdvisoryBlocking)
    } else if m.contains("unable to open stormDB: timeout") {
        Event::LockTimeout
    } else if m.contains("failed to take initial lease on database: stopped") {
        Event::StoppedWhileWaiting
    } else if (m.contains("Application version (") && m.contains(") is lower than database version ("))
        || (m.contains("Application version (") && m.contains(") is older than database version ("))
    {
        Event::Downgrade
    } else if m.contains("Another node has taken the lease, exiting immediately")
        || m.contains("Another node has taken the advisory lock, exiting immediately")
    {
        Event::LockLost
    } else if m.contains("Chainlink booted in ") {
        Event::Booted
    } else if m.contains("Shutting down due to ") && m.contains(" signal received") {
        Event::ShuttingDown
    } else {
        return None;
    };
    Some(event)
}

/// `Waiting %s for lock on db file %s`, where `%s` is a Go duration or
/// `indefinitely`.
fn is_bolt_waiting(m: &str) -> bool {
    let Some(start) = m.find("Waiting ") else {
        return false;
    };
    let rest = &m[start + "Waiting ".len()..];
    match rest.split_once(" for lock on db file ") {
        Some((how_long, _)) => how_long == "indefinitely" || super::godur::parse(how_long).is_ok(),
        None => false,
    }
}

/// The message part of a line: without a `docker logs -t` timestamp, without
/// ANSI escapes, and the `msg` field when the line is a JSON object.
pub fn message(line: &str) -> Cow<'_, str> {
    let mut text: Cow<'_, str> = if line.contains('\x1b') {
        Cow::Owned(strip_ansi(line))
    } else {
        Cow::Borrowed(line)
    };
    // `docker logs -t` puts an RFC 3339 timestamp and a space first.
    if let Some((first, rest)) = text.split_once(' ')
        && first.len() >= 20
        && first.as_bytes()[4] == b'-'
        && first.contains('T')
        && rest.trim_start().starts_with('{')
    {
        text = Cow::Owned(rest.trim_start().to_string());
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('{')
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(trimmed)
        && let Some(serde_json::Value::String(msg)) = map.get("msg")
    {
        return Cow::Owned(msg.clone());
    }
    text
}

/// Removes ANSI CSI sequences (`ESC [ … final-byte`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether a node's last lines say it stopped because its database did not
/// answer (`opening db: …`), not because of anything in it: a node started
/// again once the database is back runs.
pub fn database_unreachable(tail: &[String]) -> bool {
    tail.iter().any(|line| {
        let m = message(line);
        m.contains("opening db:") && !m.contains("lower than database version")
    })
}

/// The port of a `Listening and serving HTTP on ADDR:PORT` line (the web
/// server's start, in any log format), if `line` is one.
pub fn listening_port(line: &str) -> Option<u16> {
    let m = message(line);
    let rest = m.split("Listening and serving HTTP on ").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.trim_end_matches(['"', ',']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_lines_in_every_generation() {
        let cases = [
            (
                "2019-01-01T00:00:00Z [INFO]  Waiting 1h0m0s for lock on db file /chainlink/db.bolt store/store.go:58",
                Generation::Bolt,
            ),
            (
                "Waiting indefinitely for lock on db file /chainlink/db.bolt",
                Generation::Bolt,
            ),
            (
                "Waiting 500ms for lock on db file /root/.chainlink/db.bolt",
                Generation::Bolt,
            ),
            (
                "[INFO]  Locking 1 for exclusive access with indefinite timeout",
                Generation::AdvisoryBlocking,
            ),
            ("[INFO]  Could not get lock, retrying...", Generation::AdvisoryRetry),
            ("[INFO]  Still waiting for lock...", Generation::AdvisoryRetry),
            (
                "[INFO]  Another application holds the advisory lock, waiting...",
                Generation::Advisory,
            ),
            (
                "2024-05-01T10:00:00.000Z [INFO]  Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire... pg/lease_lock.go:183 tryCount=0",
                Generation::Lease,
            ),
        ];
        for (line, generation) in cases {
            assert_eq!(classify(line), Some(Event::Waiting(generation)), "{line}");
        }
    }

    #[test]
    fn json_colour_and_docker_timestamps() {
        let json = r#"{"level":"info","ts":"2024-05-01T10:00:00Z","logger":"LeaseLock","caller":"pg/lease_lock.go:183","msg":"Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...","tryCount":4}"#;
        assert_eq!(classify(json), Some(Event::Waiting(Generation::Lease)));
        let stamped = format!("2024-05-01T10:00:00.123456789Z {json}");
        assert_eq!(classify(&stamped), Some(Event::Waiting(Generation::Lease)));
        let coloured = "2019-01-01T00:00:00Z \x1b[34m[INFO]\x1b[0m  Waiting 2m30s for lock on db file /chainlink/db.bolt store.go:58";
        assert_eq!(classify(coloured), Some(Event::Waiting(Generation::Bolt)));
    }

    #[test]
    fn other_events() {
        let cases = [
            ("unable to init DB: unable to open stormDB: timeout", Event::LockTimeout),
            (
                "opening db: failed to take initial lease on database: stopped",
                Event::StoppedWhileWaiting,
            ),
            (
                "Application version (1.0.0) is lower than database version (1.1.0). Only Chainlink 1.1.0 or higher can be run on this database",
                Event::Downgrade,
            ),
            (
                "Application version (1.0.0) is older than database version (1.1.0). Only Chainlink 1.1.0 or later can be run on this database",
                Event::Downgrade,
            ),
            (
                "[FATAL] Another node has taken the lease, exiting immediately",
                Event::LockLost,
            ),
            ("[INFO]  Chainlink booted in 1.52s", Event::Booted),
            (
                "[INFO]  Shutting down due to terminated signal received...",
                Event::ShuttingDown,
            ),
        ];
        for (line, event) in cases {
            assert_eq!(classify(line), Some(event), "{line}");
        }
    }

    #[test]
    fn near_misses_are_not_waiting_lines() {
        for line in [
            "Waiting for lock on db file /x",
            "Waiting forever for lock on db file /x",
            "[INFO]  Listening and serving HTTP on :6688",
            "",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }

    #[test]
    fn a_database_that_did_not_answer_is_told_apart() {
        let down = vec![
            "opening db: failed to take initial lease on database: failed to get lease lock: connection refused"
                .to_string(),
        ];
        assert!(database_unreachable(&down));
        let newer = vec!["Application version (1.0.0) is lower than database version (1.1.0)".to_string()];
        assert!(!database_unreachable(&newer));
    }

    #[test]
    fn the_port_the_web_server_listens_on() {
        assert_eq!(
            listening_port("[INFO]  Listening and serving HTTP on :6690"),
            Some(6690)
        );
        assert_eq!(
            listening_port(r#"{"level":"info","msg":"Listening and serving HTTP on 0.0.0.0:6688"}"#),
            Some(6688)
        );
        assert_eq!(listening_port("Starting Chainlink Node 2.10.0 at commit x"), None);
    }
}
