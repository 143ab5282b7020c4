//! Preflight's look at the node itself, before anything changes: the
//! primary must be the container holding the lock (answering on its port,
//! or answering 204 while it migrates). A primary that waits for the lock,
//! restarts in a loop, or serves nothing is refused at once, with what it is
//! doing and who holds the lock when that can be seen. Pure.

use crate::engine::state_of;
use crate::members::member::{LockRole, Member};

use super::observe::Observed;
use super::options::UpgradeOptions;

/// Why the upgrade will not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub reason: String,
    /// What to do about it.
    pub fix: Vec<String>,
    /// The node's last log lines, when they show why.
    pub tail: Vec<String>,
}

/// How the node is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Chainlink's procedure: a standby takes the lock over, the node is
    /// recreated on the new image, and the lock is handed back.
    Handoff,
    /// `--force` on a node that holds nothing and serves nothing (down,
    /// crash-looping, hung), while no container sharing its database holds
    /// the lock: it is recreated on the new image in place, and confirmed by
    /// the new container taking the lock and serving.
    Recreate,
}

/// Decides from what the primary does with the lock whether, and how, it
/// can be upgraded.
pub fn lock_check(o: &Observed, opts: &UpgradeOptions) -> Result<Mode, Refusal> {
    let name = &opts.container;
    let Some(now) = &o.primary_now else {
        return Ok(Mode::Handoff);
    };
    if now.lock == LockRole::Holding {
        return Ok(Mode::Handoff);
    }
    let doing = doing(now);
    let refusal = |reason: String, fix: Vec<String>| Refusal {
        reason,
        fix,
        tail: o.primary_tail.clone(),
    };
    if !o.holders.is_empty() {
        let list: Vec<String> = o
            .holders
            .iter()
            .map(|h| match &h.addr {
                Some(addr) => format!("{} (it answers on {addr})", h.name),
                None => h.name.clone(),
            })
            .collect();
        let first = &o.holders[0].name;
        return Err(refusal(
            format!(
                "{name} does not hold the node's lock: it {doing}; {} holds it",
                list.join(" and ")
            ),
            vec![
                format!(
                    "upgrade the container that holds the lock instead: `cl-maint upgrade --container {first} --tag {}`",
                    opts.tag
                ),
                format!(
                    "or make {name} the node again first: stop {first} (`docker stop {first}`) and check that {name} takes the lock (`cl-maint status --container {name}`)"
                ),
                "--force does not override this: two containers would then compete for one lock".into(),
            ],
        ));
    }
    if now.lock == LockRole::Waiting {
        return Err(refusal(
            format!(
                "{name} does not hold the node's lock: it {doing}; no running container on {} that shares its database answers as the holder, so the node may run on another host",
                o.endpoint
            ),
            vec![
                "find the container that holds the lock (`cl-maint status`, or `docker ps` on the node's other hosts) and upgrade that one".into(),
                format!("--force does not apply: a new {name} would wait for the lock as this one does"),
            ],
        ));
    }
    if opts.force {
        return Ok(Mode::Recreate);
    }
    let mut fix = vec![format!("read why in its log: `docker logs --tail 50 {name}`")];
    let inside = now
        .addr
        .as_deref()
        .is_some_and(|a| crate::probe::parse_inside(a).is_some());
    if now.running && !state_of(&now.inspect).restarting && !inside {
        fix.push(format!(
            "if it does serve but not to this machine, run with `--probe engine`: cl-maint then asks it inside its container, through the engine, instead of on {}",
            now.addr.as_deref().unwrap_or("its port")
        ));
    }
    Err(refusal(
        format!("{name} holds no lock and serves nothing: it {doing}"),
        [
            fix,
            vec![
            format!(
                "to replace a node that is down with the new image anyway, run again with --force: the new {name} must then take the lock and serve, or {name} is put back as it is now"
            )],
        ]
        .concat(),
    ))
}

/// What the primary is doing, as a verb phrase (`is crash-looping: …`).
fn doing(now: &Member) -> String {
    let state = state_of(&now.inspect);
    let exit = state.exit_code.map(|c| format!(" with code {c}")).unwrap_or_default();
    let policy = now
        .restart
        .as_deref()
        .map(|p| format!(" by its restart policy ({p})"))
        .unwrap_or_default();
    let addr = now.addr.as_deref().unwrap_or("its port");
    if state.restarting || (state.restart_count > 0 && now.lock != LockRole::Waiting) {
        let times = match state.restart_count {
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        return format!(
            "is crash-looping: the engine has restarted it {times}{policy}, it last exited{exit}, and it does not answer on {addr}"
        );
    }
    match now.lock {
        LockRole::Stopped => format!("is not running ({}, exited{exit})", state.status),
        LockRole::Waiting => format!("runs but waits for the lock ({})", now.lock_evidence),
        _ => format!(
            "runs but does not answer on {addr}{} ({}); if it just started, wait until it serves and run again",
            if addr.starts_with("container://") {
                " (asked inside its container, through the engine)"
            } else {
                " from where cl-maint runs"
            },
            now.lock_evidence
        ),
    }
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
