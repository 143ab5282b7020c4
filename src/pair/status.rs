//! `cl-maint status`: every member of the pair and every container an
//! interrupted run left, with who holds the lock. Read-only.

use serde::Serialize;

use crate::engine::{Engine, EngineError};

use super::{Hosts, PairNames, Which};
use crate::members::member::{LockRole, Member};
use crate::members::members;

pub use crate::report::Verdict;

/// The status document.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// `status`.
    pub command: String,
    /// Who holds the lock, in one word.
    pub verdict: Verdict,
    /// The process exit code.
    pub exit_code: i32,
    /// The container holding the lock, when exactly one does.
    pub holder: Option<String>,
    /// The primary, the secondary (when there is one) and leftovers.
    pub members: Vec<Member>,
    /// The situation in one or two sentences.
    pub summary: String,
    /// What to do, when something needs doing.
    pub next_steps: Vec<String>,
    /// The cl-maint run holding the node's run lock, if one is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_in_progress: Option<crate::runlock::Owner>,
}

/// `cl-maint status`.
pub async fn status<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Status {
    match members(hosts, names).await {
        Ok(members) => {
            let mut status = judge(names, members);
            status.run_in_progress = crate::runlock::holder(hosts.primary, &names.primary).await;
            status
        }
        Err(e) => unreachable(e),
    }
}

/// The status when an engine could not be read.
pub fn unreachable(e: EngineError) -> Status {
    Status {
        command: "status".into(),
        verdict: if e.unreachable() {
            Verdict::Unreachable
        } else {
            Verdict::EngineFailed
        },
        exit_code: if e.unreachable() {
            Verdict::Unreachable.exit_code()
        } else {
            Verdict::EngineFailed.exit_code()
        },
        holder: None,
        members: Vec::new(),
        summary: e.to_string(),
        run_in_progress: None,
        next_steps: e.next_steps(),
    }
}

/// The verdict, summary and advice for what was seen. Pure.
pub fn judge(names: &PairNames, members: Vec<Member>) -> Status {
    let verdict = Verdict::of(&members);
    let holders: Vec<&Member> = members.iter().filter(|m| m.lock == LockRole::Holding).collect();
    let find = |w: Which| members.iter().find(|m| m.role == w.word());
    let (primary, secondary) = (find(Which::Primary), find(Which::Secondary));
    let mut next = Vec::new();
    let summary = match verdict {
        Verdict::OneHolder => {
            let h = holders[0];
            let mut s = format!("{} holds the lock", h.name);
            if h.role == Which::Primary.word() {
                match secondary {
                    Some(sec) if sec.waiting() => s.push_str(&format!("; {} waits to take over", sec.name)),
                    Some(sec) => {
                        s.push_str(&format!(
                            "; the secondary {} is {}, so nothing would take over",
                            sec.name,
                            sec.lock.word()
                        ));
                        next.push("make the pair whole again: `cl-maint failover up`".to_string());
                    }
                    None => s.push_str("; there is no secondary"),
                }
            } else if h.role == Which::Secondary.word() {
                match primary {
                    Some(p) if p.waiting() => {
                        s.push_str(&format!("; the primary {} waits", p.name));
                        next.push("hand the lock back to the primary: `cl-maint failover back`".to_string());
                    }
                    Some(p) => {
                        s.push_str(&format!("; the primary {} is {}", p.name, p.lock.word()));
                        next.push(format!(
                            "once {} can run again, hand the lock back: `cl-maint failover back`",
                            p.name
                        ));
                    }
                    None => s.push_str(&format!("; there is no primary named {}", names.primary)),
                }
            } else {
                s.push_str(&format!(" but it was left by an interrupted cl-maint run ({})", h.role));
                next.push(format!(
                    "finish or undo the interrupted run: run the same cl-maint command again, or see `docker ps -a --filter label={}={}`",
                    crate::names::LABEL_PRIMARY,
                    names.primary
                ));
            }
            s
        }
        Verdict::NoHolder => {
            match primary {
                Some(p) => next.push(format!("look at the logs: `docker logs --tail 50 {}`", p.name)),
                // No such container: its logs would not help.
                None => next.push(format!(
                    "find the node's container: `docker ps -a` (on the right engine: --host / DOCKER_HOST), then name it with --container NAME (here: {})",
                    names.primary
                )),
            }
            if primary.is_some_and(|p| !p.running) {
                next.push(format!("start the primary: `docker start {}`", names.primary));
            }
            if members.is_empty() {
                format!(
                    "no container named {} (or {}) exists: nothing holds the lock",
                    names.primary, names.secondary
                )
            } else if let Some(w) = members.iter().find(|m| m.waiting()) {
                format!(
                    "NO container answers as the lock holder: the node is down; {} waits for the lock and takes it when the last holder's lock is released (after a crash or SIGKILL, once its lease expires)",
                    w.name
                )
            } else {
                "NO container answers as the lock holder: the node is down".to_string()
            }
        }
        Verdict::SeveralHolders => {
            let list: Vec<&str> = holders.iter().map(|m| m.name.as_str()).collect();
            next.push(format!(
                "stop at once every holder but one (`docker stop NAME`), then check the database; {} answer",
                list.join(" and ")
            ));
            format!(
                "MORE THAN ONE container answers as the lock holder ({}): two nodes may be active",
                list.join(", ")
            )
        }
        Verdict::Unreachable | Verdict::EngineFailed => String::new(),
    };
    Status {
        command: "status".into(),
        verdict,
        exit_code: verdict.exit_code(),
        holder: (holders.len() == 1).then(|| holders[0].name.clone()),
        members,
        summary,
        next_steps: next,
        run_in_progress: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: &str, name: &str, lock: LockRole) -> Member {
        crate::members::member::sample(role, name, lock)
    }

    fn names() -> PairNames {
        PairNames {
            primary: "chainlink".into(),
            secondary: "secondary".into(),
        }
    }

    #[test]
    fn one_holder_with_a_waiting_secondary_is_the_normal_state() {
        let s = judge(
            &names(),
            vec![
                member("primary", "chainlink", LockRole::Holding),
                member("secondary", "secondary", LockRole::Waiting),
            ],
        );
        assert_eq!((s.verdict, s.exit_code), (Verdict::OneHolder, 0));
        assert_eq!(s.holder.as_deref(), Some("chainlink"));
        assert!(s.next_steps.is_empty(), "{s:?}");
    }

    #[test]
    fn after_an_unplanned_failover_the_advice_is_failover_back() {
        let s = judge(
            &names(),
            vec![
                member("primary", "chainlink", LockRole::Stopped),
                member("secondary", "secondary", LockRole::Holding),
            ],
        );
        assert_eq!(s.exit_code, 0);
        assert!(s.summary.contains("secondary holds the lock"), "{}", s.summary);
        assert!(s.next_steps[0].contains("failover back"), "{:?}", s.next_steps);
    }

    #[test]
    fn no_holder_and_two_holders_have_their_own_codes() {
        let none = judge(&names(), vec![member("primary", "chainlink", LockRole::Stopped)]);
        assert_eq!(
            (none.verdict, none.exit_code),
            (Verdict::NoHolder, crate::exit::NO_HOLDER)
        );
        assert!(none.next_steps.iter().any(|s| s.contains("docker start chainlink")));
        let two = judge(
            &names(),
            vec![
                member("primary", "chainlink", LockRole::Holding),
                member("secondary", "secondary", LockRole::Holding),
            ],
        );
        assert_eq!(
            (two.verdict, two.exit_code),
            (Verdict::SeveralHolders, crate::exit::SEVERAL_HOLDERS)
        );
        assert!(two.summary.contains("MORE THAN ONE"));
    }

    #[test]
    fn a_missing_container_is_looked_for_not_its_logs() {
        let s = judge(&names(), Vec::new());
        assert_eq!(s.verdict, Verdict::NoHolder);
        assert!(s.summary.contains("no container named chainlink"), "{}", s.summary);
        assert!(
            s.next_steps[0].starts_with("find the node's container: `docker ps -a`"),
            "{:?}",
            s.next_steps
        );
        assert!(s.next_steps[0].contains("--container NAME"), "{:?}", s.next_steps);
        assert!(
            !s.next_steps.iter().any(|n| n.contains("docker logs")),
            "{:?}",
            s.next_steps
        );
    }

    #[test]
    fn a_leftover_holding_the_lock_is_named() {
        let s = judge(
            &names(),
            vec![
                member("primary", "chainlink", LockRole::Stopped),
                member(
                    "standby (left by an interrupted run)",
                    "chainlink-cl-maint-standby",
                    LockRole::Holding,
                ),
            ],
        );
        assert_eq!(s.exit_code, 0);
        assert!(s.summary.contains("interrupted"), "{}", s.summary);
    }
}
