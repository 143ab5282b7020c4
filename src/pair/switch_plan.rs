//! The switchover's plan: from the pair as observed to what the switchover
//! will do, or a refusal. Pure: it reads no engine, so every refusal is
//! unit-tested without one.

use crate::handoff::steps;
use crate::handoff::timing::WaitLine;
use crate::members::sharing::{membership, unproven};
use crate::members::{LockRole, Member, PairNames, PairView, Which, same_lock_file};
use crate::report::Outcome;

/// Where the lock should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// To whichever member does not hold it.
    Other,
    /// To the primary (`failover back`).
    Back,
}

/// The pair as a switchover sees it before it changes anything.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Both members.
    pub view: PairView,
    /// Whether the secondary runs on another engine.
    pub split: bool,
    /// Each waiting member's last waiting line, when it started so recently
    /// that the line still tells when it tries the lock next.
    pub fresh: [Option<WaitLine>; 2],
}

/// How the member taking over comes to wait with a known next lock try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Successor {
    /// It waits and started a moment ago: its last waiting line times the
    /// stop (as after the `failover` that a `failover back` follows at once).
    Timed(WaitLine),
    /// A lease-era member that has waited a while tries at a random phase of
    /// its 1 s interval: it is restarted so that its next try is known.
    Restart,
    /// It is stopped: it is started and must wait.
    Start,
    /// It waits, and its tries cannot be timed (a bolt-era node retries
    /// every 50 ms): left be.
    AsIs,
}

/// A switchover to carry out.
#[derive(Clone, Debug)]
pub struct SwitchPlan {
    /// The member holding the lock.
    pub from: Which,
    /// The holder as observed.
    pub old: Member,
    /// The member taking over, as observed.
    pub new: Member,
    /// Where the member taking over answers once it holds the lock.
    pub to_addr: String,
    /// The two provably share the bolt-era lock file.
    pub shared: bool,
    /// How the member taking over comes to wait.
    pub successor: Successor,
}

/// What the plan says.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Move the lock.
    Switch(Box<SwitchPlan>),
    /// The pair already is as asked (the state, in words).
    AlreadyThere(String),
}

/// Why a switchover is refused before anything changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The outcome (refused, no holder, several holders).
    pub outcome: Outcome,
    /// Why.
    pub what: String,
    /// What to do.
    pub next_steps: Vec<String>,
}

impl Refusal {
    fn new(what: String, next: String) -> Refusal {
        Refusal {
            outcome: Outcome::Refused,
            what,
            next_steps: vec![next],
        }
    }
}

/// Whether the engine removes the member when it stops (`docker run --rm`).
pub fn auto_removed(m: &Member) -> bool {
    m.inspect
        .host_config
        .as_ref()
        .and_then(|h| h.auto_remove)
        .unwrap_or(false)
}

/// The plan of a switchover in `direction` (`hold`: the old holder stays
/// stopped; `named`: the operator named the secondary).
pub fn plan(
    o: &Observed,
    names: &PairNames,
    direction: Direction,
    hold: bool,
    named: bool,
) -> Result<Decision, Refusal> {
    let view = &o.view;
    let (Some(p), Some(s)) = (&view.primary, &view.secondary) else {
        let missing = if view.primary.is_none() {
            &names.primary
        } else {
            &names.secondary
        };
        let next = if missing == &names.secondary {
            "create the secondary first: `cl-maint failover up`"
        } else {
            "name the node's container with --container NAME"
        };
        return Err(Refusal::new(
            format!("there is no container named {missing}"),
            next.into(),
        ));
    };
    // A pair is worked on only when its secondary is proven a member.
    if membership(s, p, named, o.split).is_none() {
        let (what, next_steps) = unproven(s, p);
        return Err(Refusal {
            next_steps,
            ..Refusal::new(what, String::new())
        });
    }
    let from = match view.holders().as_slice() {
        [one] => *one,
        [] => {
            return Err(Refusal {
                outcome: Outcome::NoHolder,
                ..Refusal::new(
                    format!(
                        "neither {} nor {} answers as the lock holder",
                        names.primary, names.secondary
                    ),
                    "see `cl-maint status`; start the node before moving its lock".into(),
                )
            });
        }
        _ => {
            return Err(Refusal {
                outcome: Outcome::SeveralHolders,
                ..Refusal::new(
                    format!(
                        "both {} and {} answer as the lock holder: two nodes may be active",
                        names.primary, names.secondary
                    ),
                    "stop one of them at once (`docker stop NAME`), then check the database".into(),
                )
            });
        }
    };
    if direction == Direction::Back && from == Which::Primary {
        return Ok(Decision::AlreadyThere(format!(
            "{} already holds the lock",
            names.primary
        )));
    }
    let to = from.other();
    let (old, new) = (view.of(from).unwrap().clone(), view.of(to).unwrap().clone());
    if auto_removed(&old) {
        return Err(Refusal::new(
            format!(
                "{} was started with --rm: a switchover stops it, and the engine would then remove it, so it could neither wait for the lock again nor take it back",
                old.name
            ),
            format!(
                "recreate {} without --rm (a member of a pair must survive its stops; a systemd unit can run `docker start -a` of a kept container instead of `docker run --rm`), then run this again",
                old.name
            ),
        ));
    }
    let Some(to_addr) = new.addr.clone() else {
        return Err(Refusal {
            next_steps: Vec::new(),
            ..Refusal::new(
                format!(
                    "{} cannot be asked on the node's HTTP port from where cl-maint runs (--probe direct), so its takeover cannot be confirmed; run without --probe direct to ask it through the engine",
                    new.name
                ),
                String::new(),
            )
        });
    };
    // Both members take turns waiting: each must be able to wait.
    let must_wait: Vec<&Member> = match (new.lock, hold) {
        (LockRole::Stopped, true) => vec![&new],
        (LockRole::Stopped, false) => vec![&new, &old],
        (_, false) => vec![&old],
        (_, true) => vec![],
    };
    if let Some((m, why)) = must_wait.iter().find_map(|m| steps::cannot_wait(m).map(|w| (m, w))) {
        return Err(Refusal::new(why, steps::wait_fix(m)));
    }
    if !matches!(new.lock, LockRole::Waiting | LockRole::Stopped) {
        return Err(Refusal::new(
            format!("{}: {}", new.name, new.lock_evidence),
            format!(
                "look at its log: `docker logs --tail 50 {}`; if it is still starting, run this again in a minute",
                new.name
            ),
        ));
    }
    let fresh = o.fresh[usize::from(to == Which::Secondary)].filter(|_| new.lock == LockRole::Waiting);
    let successor = match (fresh, new.lock) {
        (Some(line), _) => Successor::Timed(line),
        (None, LockRole::Stopped) => Successor::Start,
        (None, _) if new.generation.is_some_and(|g| !g.line_precedes_attempt()) => Successor::Restart,
        (None, _) => Successor::AsIs,
    };
    let shared = same_lock_file(o.split, &old, &new);
    Ok(Decision::Switch(Box::new(SwitchPlan {
        from,
        old,
        new,
        to_addr,
        shared,
        successor,
    })))
}

#[cfg(test)]
#[path = "switch_plan_tests.rs"]
mod tests;
