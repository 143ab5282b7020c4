//! `--dry-run` of the failover commands: the plan in words and the
//! equivalent `docker` commands, with nothing changed (no pull, no create,
//! no stop). Shown the way an upgrade's plan is (`upgrade::shown`).

use crate::engine::Engine;
use crate::events::Events;
use crate::handoff::Failure;
use crate::report::{Outcome, Report};
use crate::upgrade::shown::{Shown, run_commands};

use super::switch_plan::{Successor, SwitchPlan};
use super::up_plan::{Action, UpPlan};
use super::{Hosts, PairOptions};

/// Fills `report` with a plan that was not carried out.
fn planned(report: &mut Report, shown: &Shown<'_>, state: String) {
    report.set_outcome(Outcome::DryRun);
    report.plan = Some(shown.to_json());
    report.plan_text = Some(shown.to_human());
    report.state = state;
}

/// `failover up --dry-run` of a pair that is not in place yet.
pub async fn up<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    plan: &UpPlan,
    events: &Events,
    report: &mut Report,
) -> Result<(), Failure> {
    let (p, s) = (&plan.primary.name, &opts.names.secondary);
    let wait = opts.wait_timeout.as_secs();
    let (steps, commands, spec) = match &plan.action {
        // In place: nothing to plan (`up` says so as it is).
        Action::AlreadyThere { .. } => return Ok(()),
        Action::Start(_) => (
            vec![
                format!("start {s}"),
                format!("confirm (up to {wait}s) that it logs that it waits for the lock, and serves no HTTP"),
            ],
            vec![
                format!("docker start {s}"),
                format!("docker logs -f {s}   # until it says it is waiting for the lock"),
            ],
            None,
        ),
        Action::Create => {
            // The primary's image by reference: a dry run pulls nothing.
            let (spec, _) =
                super::secondary::spec(hosts, opts, &plan.primary, plan.primary.image.clone(), events).await?;
            let mut commands = run_commands(&spec);
            commands.push(format!(
                "docker logs -f {s}   # until it says it is waiting for the lock"
            ));
            let steps = vec![
                format!(
                    "create {s} on {} as a clone of {p} (its image {}; pulled there by digest when that engine lacks it), publishing the node's port on host port {}",
                    hosts.secondary.endpoint(),
                    plan.primary.image,
                    opts.secondary_port
                ),
                format!(
                    "start it; confirm (up to {wait}s) that it logs that it waits for the lock, serves no HTTP, and still runs after its next lock try"
                ),
                format!("on failure, remove {s} again: {p} keeps the lock"),
            ];
            (steps, commands, Some(spec))
        }
    };
    let changes = spec.as_ref().map(|s| s.changes.clone()).unwrap_or_default();
    let shown = Shown {
        title: format!("Plan for failover up ({p} / {s})"),
        steps: &steps,
        containers: spec.iter().map(|spec| (spec, "secondary")).collect(),
        changes: &changes,
        docker_commands: &commands,
        generation: plan.primary.generation,
        warnings: &[],
    };
    planned(report, &shown, format!("nothing was changed; {p} holds the lock"));
    Ok(())
}

/// `failover --dry-run`, `failover back --dry-run`.
pub fn switch(plan: &SwitchPlan, hold: bool, opts: &PairOptions, report: &mut Report) {
    let (old, new) = (&plan.old.name, &plan.new.name);
    let grace = opts.stop_timeout.as_secs();
    let mut steps = Vec::new();
    let mut commands = Vec::new();
    match plan.successor {
        Successor::Start => {
            steps.push(format!("start {new}; confirm that it logs that it waits for the lock"));
            commands.push(format!("docker start {new}"));
        }
        Successor::Restart => {
            steps.push(format!(
                "restart {new} (it waits), so that its next lock try is known, and confirm that it waits again"
            ));
            commands.push(format!("docker restart -t {grace} {new}"));
        }
        Successor::Timed(_) | Successor::AsIs => {
            steps.push(format!("{new} waits for the lock already"));
        }
    }
    commands.push(format!(
        "docker logs -f {new}   # until it says it is waiting for the lock"
    ));
    steps.push(format!(
        "stop {old} gracefully (SIGTERM, up to {grace}s), timed to {new}'s next lock try; {new} takes the lock"
    ));
    commands.push(format!("docker stop -t {grace} {old}"));
    steps.push(format!(
        "confirm {new} answers HTTP on {} (up to {}s)",
        plan.to_addr,
        opts.takeover_timeout.as_secs()
    ));
    commands.push(format!("curl -fsS http://{}/health   # until it answers", plan.to_addr));
    if hold {
        steps.push(format!("leave {old} stopped (--hold)"));
    } else {
        steps.push(format!("start {old} again; confirm that it waits for the lock"));
        commands.push(format!("docker start {old}"));
    }
    let shown = Shown {
        title: format!("Plan for the switchover ({old} -> {new})"),
        steps: &steps,
        containers: Vec::new(),
        changes: &[],
        docker_commands: &commands,
        generation: plan.old.generation.or(plan.new.generation),
        warnings: &[],
    };
    planned(report, &shown, format!("nothing was changed; {old} holds the lock"));
}
