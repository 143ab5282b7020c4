//! Steps the pair commands share: start a member and confirm it waits for
//! the lock, start a member and confirm it serves, and name what a wait saw.

use std::time::Duration;

use crate::engine::Engine;
use crate::interrupt::Interrupt;
use futures::StreamExt;

use crate::node::logs::{self, Event, Generation};
use crate::upgrade::waits::{self, WaitFailure, WaitLine};

use super::member::Member;

/// Why a member did not get where it should.
#[derive(Clone, Debug)]
pub struct StepFailure {
    /// What happened, in words.
    pub what: String,
    /// Its last log lines.
    pub tail: Vec<String>,
    /// The operator interrupted the wait.
    pub interrupted: bool,
    /// The member refused a database a newer version has migrated.
    pub migrated: bool,
}

impl StepFailure {
    /// A failure with no log to show.
    pub fn new(what: impl Into<String>) -> StepFailure {
        StepFailure {
            what: what.into(),
            tail: Vec::new(),
            interrupted: false,
            migrated: false,
        }
    }

    fn from_wait(who: &str, goal: &str, wait: WaitFailure, deadline: Duration) -> StepFailure {
        let what = match &wait {
            WaitFailure::Exited {
                code,
                downgrade_refused,
                ..
            } => {
                let code = code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
                if *downgrade_refused {
                    format!(
                        "{who} exited (code {code}) before it could {goal}: its version refuses a database a newer version has migrated"
                    )
                } else {
                    format!("{who} exited (code {code}) before it could {goal}")
                }
            }
            WaitFailure::Timeout { .. } => format!("{who} did not {goal} within {}s", deadline.as_secs()),
            WaitFailure::Interrupted => format!("interrupted while waiting for {who} to {goal}"),
            WaitFailure::Engine(e) => format!("the engine failed while waiting for {who}: {e}"),
        };
        StepFailure {
            what,
            tail: wait.tail().to_vec(),
            interrupted: matches!(wait, WaitFailure::Interrupted),
            migrated: matches!(
                wait,
                WaitFailure::Exited {
                    downgrade_refused: true,
                    ..
                }
            ),
        }
    }
}

/// Follows a just-started container's log (past its first `skip` lines)
/// until it waits for the lock, and proves it keeps waiting: for
/// generations whose line comes before the attempt, it must not go on to
/// boot; and it must not answer HTTP while another member holds the lock.
/// A container that turns out to hold a lock of its own is killed at once.
/// `shared_file`: it provably shares the bolt-era lock file with the holder
/// (see [`super::share_lock_file`]), so a bolt-era waiting line needs no
/// watch: its `flock` contends with the holder's.
#[allow(clippy::too_many_arguments)]
pub async fn confirm_waiting<E: Engine>(
    engine: &E,
    id: &str,
    who: &str,
    addr: &str,
    skip: usize,
    within: Duration,
    interrupt: &Interrupt,
    shared_file: bool,
) -> Result<WaitLine, StepFailure> {
    let line = waits::lock_wait_line(engine, id, within, interrupt, skip)
        .await
        .map_err(|w| StepFailure::from_wait(who, "log that it waits for the lock", w, within))?;
    let generation = line.generation;
    let own_lock = if generation == Generation::Bolt && shared_file {
        None
    } else if generation.line_precedes_attempt() {
        waits::settle(engine, id, addr, waits::SETTLE, skip).await.err()
    } else if waits::answers(engine, addr).await {
        Some(format!("it answered HTTP on {addr}"))
    } else {
        None
    };
    // A member that died right after its line is not waiting (and was not
    // two nodes at once): say so, with its last lines.
    if let Some(f) = died_after_line(engine, id, who).await {
        return Err(f);
    }
    if let Some(seen) = own_lock {
        if crate::node::logs::classify(&seen) == Some(crate::node::logs::Event::LockTimeout) {
            return Err(StepFailure::new(format!(
                "{who} gave up waiting for the lock ({seen}): its DATABASE_TIMEOUT is too short to wait while the other member holds the lock; set DATABASE_TIMEOUT=0"
            )));
        }
        let _ = engine.kill(id, "SIGKILL").await;
        return Err(StepFailure::new(format!(
            "{who} did not keep waiting for the lock ({seen}): it does not share the database of the node holding it, so two nodes were active; it was killed at once"
        )));
    }
    Ok(line)
}

/// How long a member left as the standby is watched after its waiting line
/// at most: past a lease-era node's next try (every 1 s ±10 %), with room
/// for the engine to deliver that try's line.
pub const STANDBY_WATCH: Duration = Duration::from_millis(1500);

/// Proves that a member [`confirm_waiting`] saw waiting, and that is now left
/// as the standby, stays waiting: it must outlive its next lock attempt. A
/// member that crashed right after its waiting line may still show as
/// running for a moment, and nothing else would notice it before the next
/// handoff. Watched until it logs another waiting line (the next try of a
/// lease- or advisory-era node) or [`STANDBY_WATCH`] passes (a bolt-era
/// node logs once); fails if it exits meanwhile.
pub async fn stays_waiting<E: Engine>(
    engine: &E,
    id: &str,
    who: &str,
    interrupt: &Interrupt,
) -> Result<(), StepFailure> {
    let skip = waits::log_length(engine, id).await;
    let mut lines = engine.log_lines(id, true).skip(skip);
    let next_try = async {
        while let Some(Ok(line)) = lines.next().await {
            if matches!(logs::classify(&line), Some(Event::Waiting(_))) {
                return;
            }
        }
        // The log ended: the container stopped; `exited` says so too.
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = next_try => {}
        _ = tokio::time::sleep(STANDBY_WATCH) => {}
        _ = interrupt.wait() => {
            return Err(StepFailure {
                interrupted: true,
                ..StepFailure::new(format!("interrupted while watching {who} wait for the lock"))
            });
        }
        // An engine that cannot say leaves the watch to its deadline.
        _ = async { if engine.exited(id).await.is_err() { std::future::pending::<()>().await } } => {}
    }
    match died_after_line(engine, id, who).await {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// The failure of a member that is no longer running after its waiting line.
async fn died_after_line<E: Engine>(engine: &E, id: &str, who: &str) -> Option<StepFailure> {
    let c = engine.inspect_container(id).await.ok()??;
    let state = crate::engine::state_of(&c);
    if state.running {
        return None;
    }
    let code = state
        .exit_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into());
    Some(StepFailure {
        what: format!("{who} exited (code {code}) right after logging that it waits for the lock"),
        tail: waits::last_lines(engine, id).await,
        interrupted: false,
        migrated: false,
    })
}

/// Starts a stopped member and confirms it waits for the lock
/// (`shared_file` as for [`confirm_waiting`]).
pub async fn start_waiting<E: Engine>(
    engine: &E,
    m: &Member,
    within: Duration,
    interrupt: &Interrupt,
    shared_file: bool,
) -> Result<WaitLine, StepFailure> {
    let skip = waits::log_length(engine, &m.id).await;
    engine
        .start(&m.id)
        .await
        .map_err(|e| StepFailure::new(format!("starting {} failed: {e}", m.name)))?;
    let addr = m.addr.clone().unwrap_or_default();
    confirm_waiting(engine, &m.id, &m.name, &addr, skip, within, interrupt, shared_file).await
}

/// Starts a stopped member and waits until it serves (it should take the
/// lock: nothing else holds it).
pub async fn start_serving<E: Engine>(engine: &E, m: &Member, within: Duration) -> Result<Duration, StepFailure> {
    let started = tokio::time::Instant::now();
    engine
        .start(&m.id)
        .await
        .map_err(|e| StepFailure::new(format!("starting {} failed: {e}", m.name)))?;
    let addr = m.addr.clone().unwrap_or_default();
    let watch = waits::serving(engine, &m.id, &addr, within, &Interrupt::new(), true).await;
    watch
        .result
        .map(|at| at - started)
        .map_err(|w| StepFailure::from_wait(&m.name, "serve", w, within))
}

/// Describes a wait failure of a takeover.
pub fn takeover_failure(to: &str, wait: WaitFailure, within: Duration) -> StepFailure {
    StepFailure::from_wait(to, "take over and serve", wait, within)
}

/// Why a bolt-era member cannot wait for the lock while the other member
/// holds it: its `DATABASE_TIMEOUT` is not 0, so it gives up and exits.
/// `None` when it can wait (or is not bolt-era).
pub fn cannot_wait(m: &Member) -> Option<String> {
    let env = m.env();
    if !crate::node::lock::is_bolt(m.generation, &env) {
        return None;
    }
    let value = env
        .iter()
        .find_map(|e| e.strip_prefix("DATABASE_TIMEOUT="))
        .unwrap_or("500ms (the default)");
    let forever = crate::node::godur::parse(value).is_ok_and(|d| d.is_zero());
    (!forever).then(|| {
        format!(
            "{} has DATABASE_TIMEOUT={value}: when the other member holds the lock it gives up after that long and exits, so it cannot serve as a standby",
            m.name
        )
    })
}

/// How to fix [`cannot_wait`] for `m`.
pub fn wait_fix(m: &Member) -> String {
    let name = &m.name;
    if m.role == super::ROLE_SECONDARY {
        format!(
            "recreate {name} with DATABASE_TIMEOUT=0 while it does not hold the lock: `docker rm -f {name}`, then `cl-maint failover up` (it sets DATABASE_TIMEOUT=0)"
        )
    } else {
        format!(
            "recreate {name} with DATABASE_TIMEOUT=0 in its environment (`cl-maint upgrade --container {name} --tag TAG --force` does that with no downtime)"
        )
    }
}
