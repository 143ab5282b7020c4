//! A pair upgrade's checks before anything changes: who holds the lock, that
//! the other member waits, no member run with `--rm`, nothing left by an
//! interrupted run, no step back to an older version. Pure: what they need
//! was observed before.

use crate::members::Leftover;
use crate::members::member::{LockRole, Member};
use crate::report::Outcome;

use super::{PairView, Which};

/// Why a pair upgrade will not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// How the run ends (refused, no holder, several holders).
    pub outcome: Outcome,
    /// What is wrong.
    pub what: String,
    /// What to do.
    pub next: Vec<String>,
}

fn refused(what: String, next: Vec<String>) -> Refusal {
    Refusal {
        outcome: Outcome::Refused,
        what,
        next,
    }
}

/// The member holding the lock, when the pair may be upgraded. `container`
/// names the node (for the fixes); `leftovers` are what an interrupted run
/// left on either engine; `target_version` is the version the tag names, if
/// it names one.
pub fn check(
    view: &PairView,
    container: &str,
    leftovers: &[Leftover],
    target_version: Option<&str>,
    force: bool,
) -> Result<Which, Refusal> {
    let (Some(p), Some(s)) = (&view.primary, &view.secondary) else {
        return Err(refused("the pair is not complete".into(), Vec::new()));
    };
    let holder = match view.holders().as_slice() {
        [one] => *one,
        [] => {
            return Err(Refusal {
                outcome: Outcome::NoHolder,
                what: format!("neither {} nor {} answers as the lock holder", p.name, s.name),
                next: vec!["see `cl-maint status`".into()],
            });
        }
        _ => {
            return Err(Refusal {
                outcome: Outcome::SeveralHolders,
                what: format!("both {} and {} answer as the lock holder", p.name, s.name),
                next: vec!["stop one at once (`docker stop NAME`), then check the database".into()],
            });
        }
    };
    let (h, w) = match holder {
        Which::Primary => (p, s),
        Which::Secondary => (s, p),
    };
    if let Some(m) = [h, w].into_iter().find(|m| super::switch_plan::auto_removed(m)) {
        return Err(refused(
            format!(
                "{} was started with --rm: the upgrade stops each member, and the engine would then remove it",
                m.name
            ),
            vec![format!(
                "recreate {} without --rm (a member of a pair must survive its stops), then run the upgrade again",
                m.name
            )],
        ));
    }
    if w.lock != LockRole::Waiting {
        return Err(refused(
            format!("{} does not wait for the lock ({})", w.name, w.lock_evidence),
            vec!["make the pair whole first: `cl-maint failover up`".into()],
        ));
    }
    if let Some(l) = leftovers.first() {
        return Err(refused(
            format!("an earlier cl-maint run left {} ({}, {})", l.name, l.role, l.state),
            vec![
                format!("run `cl-maint recover --container {container}`, then the upgrade again"),
                format!(
                    "or by hand: check `cl-maint status`, then remove it: `docker rm -f {}`",
                    l.name
                ),
            ],
        ));
    }
    if let Some(target) = target_version {
        downgrade(h, w, target, force)?;
    }
    Ok(holder)
}

/// Refuses going back from a version either member runs to `target`, and
/// a move to 2.x of a member configured by legacy environment variables.
pub fn downgrade(h: &Member, w: &Member, target: &str, force: bool) -> Result<(), Refusal> {
    for m in [h, w] {
        let down = m
            .version
            .as_deref()
            .and_then(|running| crate::node::version::downgrade_refusal(running, target, force));
        if let Some((what, next)) = down.or_else(|| crate::node::config::v2_refusal(&m.env(), target)) {
            return Err(refused(format!("{}: {what}", m.name), next));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::member::sample;

    fn pair(p: LockRole, s: LockRole) -> PairView {
        PairView {
            primary: Some(sample("primary", "chainlink", p)),
            secondary: Some(sample("secondary", "secondary", s)),
        }
    }

    fn refusal(view: &PairView, leftovers: &[Leftover], target: Option<&str>) -> Refusal {
        check(view, "chainlink", leftovers, target, false).expect_err("refused")
    }

    #[test]
    fn a_whole_pair_is_upgraded_from_its_holder() {
        let view = pair(LockRole::Holding, LockRole::Waiting);
        assert_eq!(
            check(&view, "chainlink", &[], Some("2.11.0"), false),
            Ok(Which::Primary)
        );
        let view = pair(LockRole::Waiting, LockRole::Holding);
        assert_eq!(check(&view, "chainlink", &[], None, false), Ok(Which::Secondary));
    }

    #[test]
    fn the_lock_must_be_held_by_exactly_one_and_awaited_by_the_other() {
        let r = refusal(&pair(LockRole::Waiting, LockRole::Waiting), &[], None);
        assert_eq!(r.outcome, Outcome::NoHolder);
        let r = refusal(&pair(LockRole::Holding, LockRole::Holding), &[], None);
        assert_eq!(r.outcome, Outcome::SeveralHolders);
        let r = refusal(&pair(LockRole::Holding, LockRole::Stopped), &[], None);
        assert_eq!(r.outcome, Outcome::Refused);
        assert!(r.what.starts_with("secondary does not wait for the lock"), "{r:?}");
        assert!(r.next[0].contains("failover up"), "{r:?}");
    }

    #[test]
    fn rm_members_leftovers_and_downgrades_are_refused() {
        let mut view = pair(LockRole::Holding, LockRole::Waiting);
        view.secondary.as_mut().unwrap().inspect.host_config = Some(bollard::models::HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        });
        assert!(
            refusal(&view, &[], None)
                .what
                .starts_with("secondary was started with --rm")
        );

        let view = pair(LockRole::Holding, LockRole::Waiting);
        let left = Leftover {
            name: "chainlink-cl-maint-standby".into(),
            role: "standby".into(),
            state: "running".into(),
        };
        let r = refusal(&view, &[left], None);
        assert!(
            r.what.contains("left chainlink-cl-maint-standby (standby, running)"),
            "{r:?}"
        );
        assert!(r.next[0].contains("cl-maint recover --container chainlink"), "{r:?}");

        // A member configured by v1's environment, moved to 2.x.
        let mut v1 = pair(LockRole::Holding, LockRole::Waiting);
        for m in [v1.primary.as_mut().unwrap(), v1.secondary.as_mut().unwrap()] {
            m.version = Some("1.13.0".into());
            m.inspect.config = Some(bollard::models::ContainerConfig {
                env: Some(vec!["DATABASE_URL=postgresql://x".into()]),
                ..Default::default()
            });
        }
        let r = check(&v1, "chainlink", &[], Some("2.0.0"), true).expect_err("refused even with --force");
        assert!(
            r.what.starts_with("chainlink: 2.0.0 is a Chainlink 2.x release"),
            "{r:?}"
        );

        // The sample members run 2.10.0.
        let r = refusal(&view, &[], Some("2.9.0"));
        assert!(r.what.starts_with("chainlink: 2.9.0 is older than 2.10.0"), "{r:?}");
        assert_eq!(
            check(&view, "chainlink", &[], Some("2.10.0"), false),
            Ok(Which::Primary)
        );
    }
}
