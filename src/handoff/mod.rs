//! The handoff engine: the one implementation of moving a node's database
//! lock from the container holding it to a successor, and of confirming each
//! step on the node itself. Every command (`upgrade`, a pair upgrade,
//! `failover`, `failover up` / `back`, `recover`) is a plan of these steps:
//!
//! 1. start or create the successor ([`steps::start_waiting`],
//!    [`steps::start_serving`]);
//! 2. confirm it waits for the lock and has none of its own
//!    ([`steps::confirm_waiting`], [`steps::stays_waiting`]; a clone of a
//!    container already confirmed only logs it, [`steps::logs_waiting`]);
//! 3. time the release to its next lock try and look once more that it
//!    runs ([`transfer::align`], [`Transfer::successor_runs`], or both at
//!    once where nothing may interrupt, [`Transfer::prepare`]);
//! 4. stop the holder gracefully, or kill it ([`Release`]);
//! 5. confirm the takeover on HTTP and measure the gap ([`Transfer::run`]),
//!    with a step of the command's own (recreate the node, start the old
//!    holder again) beside it once the successor provably holds the lock.
//!
//! A step that fails says why in one [`Failure`], worded once here.
//! What a command does about it (roll back, go forward) is the command's.

pub mod steps;
pub mod timing;
pub mod transfer;
pub mod waits;

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod transfer_tests;

use std::time::Duration;

pub use transfer::{NotReady, Transfer};
pub use waits::{Release, Takeover, WaitFailure};

/// How long each wait of a handoff may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// A started container logging that it waits for the lock.
    pub wait: Duration,
    /// A takeover: the new holder answering HTTP (migrations run in it).
    pub takeover: Duration,
    /// A graceful stop, before the engine sends SIGKILL.
    pub stop: Duration,
}

impl Deadlines {
    /// The defaults of every command (`--wait-timeout 2m`,
    /// `--takeover-timeout 5m`, `--stop-timeout 15s`).
    pub const DEFAULT: Deadlines = Deadlines {
        wait: Duration::from_secs(120),
        takeover: Duration::from_secs(300),
        stop: Duration::from_secs(15),
    };
}

/// Why a step of a handoff did not get where it should: the one failure
/// type of every command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// What happened, in words (not yet redacted).
    pub what: String,
    /// The last log lines of the container that failed.
    pub tail: Vec<String>,
    /// The operator interrupted the wait.
    pub interrupted: bool,
    /// The container refused a database a newer version has migrated.
    pub migrated: bool,
}

impl Failure {
    /// A failure with no log to show.
    pub fn new(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            ..Failure::default()
        }
    }

    /// The failure of a wait: `failed` says what did not happen (`the
    /// standby never logged that it waits for the lock`), the wait why.
    pub fn waited(failed: &str, wait: &WaitFailure, deadline: Duration) -> Failure {
        Failure::new(describe(failed, wait, deadline)).tail_of(wait)
    }

    /// This failure with the wait's log lines and what they show.
    pub fn tail_of(mut self, wait: &WaitFailure) -> Failure {
        self.tail = wait.tail().to_vec();
        self.interrupted |= matches!(wait, WaitFailure::Interrupted);
        self.migrated |= matches!(
            wait,
            WaitFailure::Exited {
                downgrade_refused: true,
                ..
            }
        );
        self
    }
}

/// `failed` and why, in one sentence: `the standby did not take over:
/// exited (code 1)`, `… did not get there within 30s`.
pub fn describe(failed: &str, wait: &WaitFailure, deadline: Duration) -> String {
    let cause = match wait {
        WaitFailure::Exited {
            code,
            downgrade_refused,
            ..
        } => {
            let code = code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
            let refused = if *downgrade_refused {
                ": its version refuses a database a newer version has migrated"
            } else {
                ""
            };
            format!("exited (code {code}){refused}")
        }
        WaitFailure::Timeout { .. } => format!("did not get there within {}s", deadline.as_secs()),
        WaitFailure::Interrupted => "interrupted".to_string(),
        WaitFailure::Engine(e) => format!("the engine failed: {e}"),
    };
    format!("{failed}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_failure_is_worded_once() {
        let exited = WaitFailure::Exited {
            code: Some(1),
            tail: vec!["boom".into()],
            downgrade_refused: true,
        };
        let f = Failure::waited("the standby did not take over", &exited, Duration::from_secs(30));
        assert_eq!(
            f.what,
            "the standby did not take over: exited (code 1): its version refuses a database a newer version has migrated"
        );
        assert_eq!(f.tail, vec!["boom".to_string()]);
        assert!(f.migrated && !f.interrupted);
        let timeout = WaitFailure::Timeout { tail: Vec::new() };
        assert_eq!(
            describe(
                "x never logged that it waits for the lock",
                &timeout,
                Duration::from_secs(3)
            ),
            "x never logged that it waits for the lock: did not get there within 3s"
        );
        assert!(Failure::waited("x", &WaitFailure::Interrupted, Duration::ZERO).interrupted);
    }
}
