//! `failover up`'s plan: from the pair as observed to what `failover up`
//! will do, or a refusal. Pure: it reads no engine, so every refusal is
//! unit-tested without one.

use crate::handoff::steps;
use crate::members::sharing::{membership, unproven};
use crate::members::{LockRole, Member, PairView};

use super::PairOptions;

/// The pair as `failover up` sees it before it changes anything.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Both members.
    pub view: PairView,
    /// Whether the secondary runs on another engine.
    pub split: bool,
    /// The primary's engine and the secondary's, for messages.
    pub endpoints: (String, String),
    /// The containers publishing the secondary's host port on its engine
    /// (looked at when there is no secondary yet), or why the engine could
    /// not tell.
    pub port_users: Result<Vec<String>, String>,
    /// Whether that port can be bound on this machine (`None`: the engine
    /// is not local, so this machine's ports say nothing).
    pub port_free_here: Option<bool>,
}

/// What `failover up` does.
#[derive(Clone, Debug)]
pub enum Action {
    /// The pair is in place already (nothing to do): the state and, maybe,
    /// advice.
    AlreadyThere {
        /// The state, in words.
        state: String,
        /// Advice, when something is worth doing.
        next_steps: Vec<String>,
    },
    /// The secondary exists but is stopped: start it, to wait.
    Start(Box<Member>),
    /// There is no secondary: create it as a clone of the primary.
    Create,
}

/// A plan: the primary, and what to do.
#[derive(Clone, Debug)]
pub struct UpPlan {
    /// The primary as observed.
    pub primary: Member,
    /// What to do.
    pub action: Action,
}

/// Why `failover up` is refused before anything changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub what: String,
    /// The state, in words.
    pub state: String,
    /// What to do.
    pub next_steps: Vec<String>,
}

fn refuse(what: String, state: &str, next_steps: Vec<String>) -> Refusal {
    Refusal {
        what,
        state: state.to_string(),
        next_steps,
    }
}

/// The plan of `failover up`.
pub fn plan(o: &Observed, opts: &PairOptions) -> Result<UpPlan, Refusal> {
    let names = &opts.names;
    let Some(primary) = o.view.primary.clone() else {
        return Err(refuse(
            format!("there is no container named {} on {}", names.primary, o.endpoints.0),
            "nothing was changed",
            vec!["name the node's container with --container NAME".into()],
        ));
    };
    let action = match &o.view.secondary {
        // A pair is worked on only when its secondary is proven a member.
        Some(secondary) if membership(secondary, &primary, opts.secondary_named, o.split).is_none() => {
            let (what, next_steps) = unproven(secondary, &primary);
            return Err(refuse(what, "nothing was changed", next_steps));
        }
        Some(secondary) => existing(&primary, secondary)?,
        None => {
            create(o, opts, &primary)?;
            Action::Create
        }
    };
    Ok(UpPlan { primary, action })
}

/// The pair exists: start the secondary if it is stopped; otherwise say how
/// it is.
fn existing(primary: &Member, secondary: &Member) -> Result<Action, Refusal> {
    let (p, s) = (&primary.name, &secondary.name);
    match secondary.lock {
        LockRole::Waiting => Ok(Action::AlreadyThere {
            state: format!(
                "the pair is in place: {p} is {}, {s} waits for the lock",
                primary.lock.word()
            ),
            next_steps: steps::cannot_wait(primary)
                .map(|why| vec![format!("{why}; {}", steps::wait_fix(primary))])
                .unwrap_or_default(),
        }),
        LockRole::Holding => Ok(Action::AlreadyThere {
            state: format!("{s} holds the lock; {p} is {}", primary.lock.word()),
            next_steps: vec!["hand the lock back to the primary: `cl-maint failover back`".into()],
        }),
        LockRole::Stopped if primary.lock != LockRole::Holding => Err(refuse(
            format!(
                "{p} does not answer as the lock holder ({}), so {s} would not start as a standby",
                primary.lock_evidence
            ),
            &format!("nothing was changed: {s} is stopped and {p} does not hold the lock"),
            Vec::new(),
        )),
        LockRole::Stopped => Ok(Action::Start(Box::new(secondary.clone()))),
        LockRole::Unknown => Err(refuse(
            format!("{s}: {}", secondary.lock_evidence),
            &format!("nothing was changed; {s} runs but neither holds nor waits for the lock"),
            vec![
                format!(
                    "look at its log: `docker logs --tail 50 {s}` (it may still be starting: run again in a minute)"
                ),
                format!("if it is not a Chainlink node, pick another name with --secondary NAME"),
            ],
        )),
    }
}

/// No secondary yet: whether one may be created as a clone of the primary.
fn create(o: &Observed, opts: &PairOptions, primary: &Member) -> Result<(), Refusal> {
    let p = &primary.name;
    let refused = |what: String, next: Vec<String>| refuse(what, "nothing was changed", next);
    if primary.lock != LockRole::Holding {
        return Err(refused(
            format!(
                "{p} does not answer as the lock holder ({}): a secondary started now would take the lock instead of waiting",
                primary.lock_evidence
            ),
            vec![format!(
                "start {p} and check it answers on its port (`cl-maint status`), then run this again"
            )],
        ));
    }
    if let Some(why) = steps::cannot_wait(primary) {
        return Err(refused(why, vec![steps::wait_fix(primary)]));
    }
    let port = opts.secondary_port;
    let engine = &o.endpoints.1;
    if !o.split && primary.port == Some(port) {
        return Err(refused(
            format!("--secondary-port {port} is the port {p} publishes"),
            vec!["choose another port, for example --secondary-port 6687".into()],
        ));
    }
    let users = o.port_users.as_ref().map_err(|e| refused(e.clone(), Vec::new()))?;
    if let Some(user) = users.first() {
        return Err(refused(
            format!("host port {port} is taken by container {user} on {engine}"),
            vec!["choose a free port with --secondary-port PORT".into()],
        ));
    }
    if o.port_free_here == Some(false) {
        return Err(refused(
            format!("host port {port} is in use on this host"),
            vec!["choose a free port with --secondary-port PORT".into()],
        ));
    }
    if o.split {
        two_hosts(primary, engine).map_err(|(what, next)| refused(what, next))?;
    }
    Ok(())
}

/// With the secondary on another host: the node's files and database must
/// be reachable from there.
fn two_hosts(primary: &Member, engine: &str) -> Result<(), (String, Vec<String>)> {
    for m in primary.inspect.mounts.iter().flatten() {
        let is_volume = m.typ.as_ref().map(|t| t.to_string()).as_deref() == Some("volume");
        if is_volume && m.driver.as_deref().unwrap_or("local") == "local" {
            return Err((
                format!(
                    "{} keeps {} on the local volume {}: on {} a volume of that name is another directory, so the secondary would not share the node's files",
                    primary.name,
                    m.destination.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default(),
                    engine
                ),
                vec![
                    "use a bind mount of a directory both hosts share (NFS, EFS) or a volume driver both hosts reach"
                        .into(),
                    "or run the secondary on the same host (leave out --secondary-host)".into(),
                ],
            ));
        }
    }
    if let Some(db) = &primary.database {
        let (var, url) = (db.source.as_str(), db.url.as_str());
        let host = url
            .split('@')
            .nth(1)
            .unwrap_or(url)
            .split(['/', ':', '?'])
            .next()
            .unwrap_or("");
        if matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]") {
            return Err((
                format!(
                    "{}'s {var} points at {host}: from another host that is another database",
                    primary.name
                ),
                vec![format!(
                    "point {var} at an address both hosts reach, then recreate the node"
                )],
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "up_plan_tests.rs"]
mod tests;
