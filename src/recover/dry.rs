//! `recover --dry-run`: what recover would finish or undo, in words and as
//! the equivalent docker commands, decided as a real run decides it
//! (`survey::decide`, `pair_plan::decide`) and changing nothing. Pure.

use crate::report::{Outcome, Report};
use crate::upgrade::shown::Shown;

use super::pair_plan::{Look, PairPlan, Restore};
use super::survey::{Decision, Single};

/// Fills `report` with the plan, when the decision would change anything
/// (`true`); a decision that changes nothing is reported as a real run
/// reports it. `grace` is the graceful stop's (`--stop-timeout`).
pub fn single(name: &str, s: &Single, decision: &Decision, grace: std::time::Duration, report: &mut Report) -> bool {
    let named = |x: &Option<super::survey::Seen>| x.as_ref().map(|x| x.m.name.clone());
    let (standby, old) = (named(&s.standby), named(&s.old));
    let image = |x: &Option<super::survey::Seen>| x.as_ref().map(|x| x.m.image.clone()).unwrap_or_default();
    let mut steps = Vec::new();
    let mut commands = Vec::new();
    let remove = |list: &[Option<String>], steps: &mut Vec<String>, commands: &mut Vec<String>| {
        for n in list.iter().flatten() {
            steps.push(format!("remove {n}, left by the interrupted run"));
            commands.push(format!("docker rm -f {n}"));
        }
    };
    match decision {
        Decision::CleanUp { on_new } => {
            let version = if *on_new { "the new version" } else { "the old version" };
            steps.push(format!("{name} holds the lock on {version}: keep it"));
            remove(&[standby, old], &mut steps, &mut commands);
        }
        Decision::Forward | Decision::StartStandby => {
            let standby = standby.unwrap_or_default();
            if *decision == Decision::StartStandby {
                steps.push(format!(
                    "start {standby}: the new version ({}) had held the lock, so the way is forward",
                    image(&s.standby)
                ));
                commands.push(format!("docker start {standby}"));
            }
            steps.push(format!(
                "finish the upgrade: recreate {name} on {} (the original's settings), confirm it waits for the lock, hand the lock back from {standby}, and remove {standby} and the original",
                image(&s.standby)
            ));
            commands.push(format!(
                "docker logs -f {name}   # the new {name}, until it waits for the lock"
            ));
            commands.push(format!("docker stop -t {} {standby}", grace.as_secs()));
            commands.push(format!("docker rm {standby}"));
        }
        Decision::StartOriginal => {
            steps.push(format!(
                "start the original {name} ({}): the new version never held the lock",
                image(&s.primary)
            ));
            commands.push(format!("docker start {name}"));
            remove(&[standby], &mut steps, &mut commands);
        }
        Decision::StartNew => {
            steps.push(format!(
                "start the new {name} ({}) and confirm it serves",
                image(&s.primary)
            ));
            commands.push(format!("docker start {name}"));
            remove(&[standby, old], &mut steps, &mut commands);
        }
        Decision::NothingToDo | Decision::SeveralHolders | Decision::Human(_) => return false,
    }
    show(name, &steps, &commands, report);
    true
}

/// The pair's plan in words.
pub fn pair(names: [&str; 2], look: &Look, plan: &PairPlan, hold: bool, report: &mut Report) {
    let mut steps = Vec::new();
    let mut commands = Vec::new();
    let holder = look
        .all()
        .into_iter()
        .find(|s| s.m.id == plan.holder_id)
        .map(|s| (s.m.name.clone(), s.m.image.clone()))
        .unwrap_or_default();
    steps.push(format!("{} holds the lock: it keeps it", holder.0));
    for (i, restore) in plan.restore.iter().enumerate() {
        let (Some(restore), Some(old)) = (restore, &look.olds[i]) else {
            continue;
        };
        let (name, old) = (names[i], &old.m.name);
        match restore {
            Restore::OriginalBack => {
                steps.push(format!(
                    "put the original {name} back (the new version never held the lock): remove the new {name}, rename {old} to {name}"
                ));
                commands.push(format!("docker rm -f {name}"));
                commands.push(format!("docker rename {old} {name}"));
            }
            Restore::RenameBack => {
                steps.push(format!("rename {old} back to {name}"));
                commands.push(format!("docker rename {old} {name}"));
            }
            Restore::DropOriginal => {
                steps.push(format!("remove {old}: {name} runs the holder's version"));
                commands.push(format!("docker rm {old}"));
            }
            Restore::Recreate => {
                steps.push(format!(
                    "recreate {name} on {} from {old}'s settings, then remove {old}",
                    holder.1
                ));
                commands.push(format!("docker rm {old}   # after {name} is recreated"));
            }
        }
    }
    if hold {
        steps.push("leave the member that let go stopped (the interrupted run was `failover --hold`)".into());
    } else {
        steps.push("make the other member wait for the lock again (start it, and confirm it waits)".into());
    }
    show(names[0], &steps, &commands, report);
}

fn show(name: &str, steps: &[String], commands: &[String], report: &mut Report) {
    let shown = Shown {
        title: format!("Plan for recover ({name})"),
        steps,
        containers: Vec::new(),
        changes: &[],
        docker_commands: commands,
        generation: None,
        warnings: &[],
    };
    report.set_outcome(Outcome::DryRun);
    report.plan = Some(shown.to_json());
    report.plan_text = Some(shown.to_human());
    report.state = "nothing was changed".into();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::member::LockRole;
    use crate::recover::pair_plan::sample_seen as seen;

    #[test]
    fn a_pairs_plan_in_words() {
        let mut look = Look::default();
        look.members[0] = seen("chainlink", LockRole::Waiting, "new");
        look.olds[0] = seen("chainlink-cl-maint-old", LockRole::Stopped, "old");
        look.members[1] = seen("secondary", LockRole::Holding, "old");
        let plan = crate::recover::pair_plan::decide(&look, true).unwrap();
        let mut report = Report::new("recover", "chainlink", Outcome::NothingToDo);
        pair(["chainlink", "secondary"], &look, &plan, false, &mut report);
        assert_eq!(report.outcome, Outcome::DryRun);
        let text = report.plan_text.unwrap();
        assert!(text.contains("secondary holds the lock: it keeps it"), "{text}");
        assert!(
            text.contains("docker rename chainlink-cl-maint-old chainlink"),
            "{text}"
        );
        assert!(text.contains("make the other member wait"), "{text}");
    }
}
