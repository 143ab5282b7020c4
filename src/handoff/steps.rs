//! The steps around a transfer: start a container and confirm it waits for
//! the lock (and keeps waiting), start one and confirm it serves, and whether
//! a member can wait at all.

use std::time::Duration;

use futures::StreamExt;

use crate::engine::Engine;
use crate::interrupt::Interrupt;
use crate::members::Member;
use crate::node::logs::{self, Event, Generation};

use super::Failure;
use super::waits::{self, WaitLine};

/// A container that should wait for the lock while another holds it.
#[derive(Clone, Copy, Debug)]
pub struct Waiter<'a> {
    /// Its container id.
    pub id: &'a str,
    /// How messages name it (`secondary`, `the standby`).
    pub who: &'a str,
    /// Where it would answer HTTP if it held a lock.
    pub addr: &'a str,
    /// How messages name the container holding the lock meanwhile.
    pub holder: &'a str,
    /// It provably shares the bolt-era lock file with the holder (see
    /// [`crate::members::share_lock_file`]), so a bolt-era waiting line
    /// needs no watch: its `flock` contends with the holder's.
    pub shared_file: bool,
}

/// Follows a just-started container's log (past its first `skip` lines)
/// until it says that it waits for the lock. That alone proves nothing of a
/// lock of its own: [`confirm_waiting`] does. Only a container whose lock is
/// proven shared already (a clone of one that was confirmed, on the same
/// engine and mounts) is waited for with this alone: there, answering HTTP
/// later means it took the lock its predecessor let go, not a second lock.
pub async fn logs_waiting<E: Engine>(
    engine: &E,
    id: &str,
    who: &str,
    skip: usize,
    within: Duration,
    interrupt: &Interrupt,
) -> Result<WaitLine, Failure> {
    waits::lock_wait_line(engine, id, within, interrupt, skip)
        .await
        .map_err(|f| Failure::waited(&format!("{who} never logged that it waits for the lock"), &f, within))
}

/// Follows a just-started container's log (past its first `skip` lines)
/// until it waits for the lock, and proves it keeps waiting: for
/// generations whose line comes before the attempt (unless the bolt-era
/// lock file is provably shared), it must not go on to boot; and it must
/// not answer HTTP while another member holds the lock. A container that
/// turns out to hold a lock of its own is killed at once.
pub async fn confirm_waiting<E: Engine>(
    engine: &E,
    w: &Waiter<'_>,
    skip: usize,
    within: Duration,
    interrupt: &Interrupt,
) -> Result<WaitLine, Failure> {
    let (id, who, addr) = (w.id, w.who, w.addr);
    let line = logs_waiting(engine, id, who, skip, within, interrupt).await?;
    let generation = line.generation;
    let mut own_lock = if generation.line_precedes_attempt() && !(generation == Generation::Bolt && w.shared_file) {
        waits::settle(engine, id, addr, waits::SETTLE, skip).await.err()
    } else {
        None
    };
    if own_lock.is_none() && waits::answers(engine, addr).await {
        own_lock = Some(format!("it answered HTTP on {addr}"));
    }
    let Some(seen) = own_lock else {
        // A member that died right after its line is not waiting: say so,
        // with its last lines.
        return match died_after_line(engine, id, who).await {
            Some(f) => Err(f),
            None => Ok(line),
        };
    };
    if crate::node::logs::classify(&seen) == Some(crate::node::logs::Event::LockTimeout) {
        return Err(Failure::new(format!(
            "{who} gave up waiting for the lock ({seen}): its DATABASE_TIMEOUT is too short to wait while the other member holds the lock; set DATABASE_TIMEOUT=0"
        )));
    }
    // One that already stopped was not two nodes at once; one that runs is
    // killed at once.
    if !waits::still_runs(engine, id).await
        && let Some(f) = died_after_line(engine, id, who).await
    {
        return Err(f);
    }
    let _ = engine.kill(id, "SIGKILL").await;
    Err(Failure::new(format!(
        "{who} did not keep waiting for the lock ({seen}): it does not share {}'s database, so two nodes were active; it was killed at once",
        w.holder
    )))
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
pub async fn stays_waiting<E: Engine>(engine: &E, id: &str, who: &str, interrupt: &Interrupt) -> Result<(), Failure> {
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
            return Err(Failure {
                interrupted: true,
                ..Failure::new(format!("interrupted while watching {who} wait for the lock"))
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
async fn died_after_line<E: Engine>(engine: &E, id: &str, who: &str) -> Option<Failure> {
    let c = engine.inspect_container(id).await.ok()??;
    let state = crate::engine::state_of(&c);
    if state.running {
        return None;
    }
    let code = state
        .exit_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into());
    Some(Failure {
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
) -> Result<WaitLine, Failure> {
    let skip = waits::log_length(engine, &m.id).await;
    engine
        .start(&m.id)
        .await
        .map_err(|e| Failure::new(format!("starting {} failed: {e}", m.name)))?;
    let addr = m.addr.clone().unwrap_or_default();
    let waiter = Waiter {
        id: &m.id,
        who: &m.name,
        addr: &addr,
        holder: "the lock holder",
        shared_file,
    };
    confirm_waiting(engine, &waiter, skip, within, interrupt).await
}

/// Starts a stopped member and waits until it serves (it should take the
/// lock: nothing else holds it).
pub async fn start_serving<E: Engine>(engine: &E, m: &Member, within: Duration) -> Result<Duration, Failure> {
    let started = tokio::time::Instant::now();
    engine
        .start(&m.id)
        .await
        .map_err(|e| Failure::new(format!("starting {} failed: {e}", m.name)))?;
    let addr = m.addr.clone().unwrap_or_default();
    let watch = waits::serving(engine, &m.id, &addr, within, &Interrupt::new(), true).await;
    watch
        .result
        .map(|at| at - started)
        .map_err(|w| Failure::waited(&format!("{} did not serve", m.name), &w, within))
}

/// Describes a wait failure of a takeover.
pub fn takeover_failure(to: &str, wait: &super::WaitFailure, within: Duration) -> Failure {
    Failure::waited(&format!("{to} did not take over"), wait, within)
}

/// Why a bolt-era member cannot wait for the lock while the other member
/// holds it: its `DATABASE_TIMEOUT` is not 0, so it gives up and exits.
/// `None` when it can wait (or is not bolt-era).
pub fn cannot_wait(m: &Member) -> Option<String> {
    let env = m.env();
    if !crate::node::lock::is_bolt(m.generation, m.version.as_deref()) {
        return None;
    }
    let value = crate::node::lock::database_timeout(&env).unwrap_or("500ms (the default)");
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
    if m.role == crate::names::ROLE_SECONDARY {
        format!(
            "recreate {name} with DATABASE_TIMEOUT=0 while it does not hold the lock: `docker rm -f {name}`, then `cl-maint failover up` (it sets DATABASE_TIMEOUT=0)"
        )
    } else {
        format!(
            "recreate {name} with DATABASE_TIMEOUT=0 in its environment (`cl-maint upgrade --container {name} --tag TAG --force` does that with no downtime)"
        )
    }
}
