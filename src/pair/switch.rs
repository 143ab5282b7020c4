//! `cl-maint failover` (a planned switchover) and `cl-maint failover back`:
//! move the lock to the other member, gracefully, confirming each step, and
//! make the pair whole again.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::Engine;
use crate::events::Events;
use crate::handoff::timing;
use crate::handoff::transfer::{self, Transfer};
use crate::handoff::waits::{self, Release};
use crate::interrupt::Interrupt;
use crate::node::logs::Generation;
use crate::report::{Outcome, Report};
use tokio::time::Instant;

use super::member::{LockRole, Member};
use super::switch_plan::{self, Decision, Observed, Successor, SwitchPlan};
use super::{Hosts, PairOptions, Which};
use crate::handoff::Failure;
use crate::handoff::steps;

pub use super::switch_plan::Direction;

/// `cl-maint failover` / `cl-maint failover back`. With `hold`, the old
/// holder is left stopped.
pub async fn switch<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    direction: Direction,
    hold: bool,
    events: &Events,
    interrupt: &Interrupt,
    confirm: Option<&crate::events::Confirm<'_>>,
) -> Report {
    let names = &opts.names;
    let command = match direction {
        Direction::Other => "failover",
        Direction::Back => "failover back",
    };
    let mut report = Report::new(command, &names.primary, Outcome::Refused);
    events.step(&format!("checking {} and {}", names.primary, names.secondary));
    let observed = match observe(hosts, names).await {
        Ok(o) => o,
        Err(e) => return crate::report::engine_failed(report, e),
    };
    for member in [&observed.view.primary, &observed.view.secondary].into_iter().flatten() {
        events.secrets(&member.env());
    }
    let warned = AtomicBool::new(false);
    report.state = "nothing was changed".into();
    let ran = match switch_plan::plan(&observed, names, direction, hold, opts.secondary_named) {
        Ok(Decision::Switch(plan)) if opts.dry_run => {
            super::dry::switch(&plan, hold, opts, &mut report);
            Ok(())
        }
        Ok(Decision::Switch(plan)) if confirm.is_some_and(|ask| !ask(&ask_text(&plan, hold))) => Err(Failure::new(
            format!("not confirmed; {} still holds the lock", plan.old.name),
        )),
        Ok(Decision::Switch(plan)) => execute(hosts, opts, hold, &plan, events, interrupt, &warned, &mut report).await,
        Ok(Decision::AlreadyThere(state)) => {
            report.set_outcome(Outcome::NothingToDo);
            report.state = state;
            Ok(())
        }
        Err(refusal) => {
            report.set_outcome(refusal.outcome);
            report.next_steps = refusal.next_steps;
            Err(Failure::new(refusal.what))
        }
    };
    if let Err(f) = ran {
        report.error = Some(f.what);
        report.log_tail = f.tail;
        if f.interrupted && report.outcome != Outcome::NeedsHuman {
            report.set_outcome(Outcome::Interrupted);
        }
    }
    report.members = super::final_members(hosts, names).await;
    if report.outcome == Outcome::SwitchedOver && interrupt.is_set() && !warned.load(Ordering::Relaxed) {
        events.warn(FINISHED);
    }
    report
}

/// What a switchover will do, for the operator to confirm.
fn ask_text(plan: &SwitchPlan, hold: bool) -> String {
    let then = if hold {
        format!("{} stays stopped (--hold)", plan.old.name)
    } else {
        format!("{} waits for the lock again", plan.old.name)
    };
    format!(
        "Switchover: stop {} (it holds the lock); {} takes the lock and answers on {}; then {then}.\n",
        plan.old.name, plan.new.name, plan.to_addr
    )
}

/// The warning for an interrupt past the handoff.
const FINISHED: &str = "interrupt received after the old holder was stopped: finishing the switchover, the only way back to a holder and a standby";

/// Reads both members and, for a member that started a moment ago, its
/// last waiting line (read-only).
async fn observe<E: Engine>(hosts: Hosts<'_, E>, names: &super::PairNames) -> crate::engine::EngineResult<Observed> {
    let view = super::view(hosts, names).await?;
    let mut fresh = [None, None];
    // Only the member that would take over (the other one holds the lock)
    // can use it: no log is read for a switchover that will be refused.
    let holders = view.holders();
    for (i, which) in [Which::Primary, Which::Secondary].into_iter().enumerate() {
        if let Some(m) = view.of(which)
            && holders == [which.other()]
            && m.lock == LockRole::Waiting
            && started_recently(m)
        {
            fresh[i] = waits::last_wait_line(hosts.of(which), &m.id)
                .await
                .filter(|line| transfer::release_at(Some(line)).is_some());
        }
    }
    Ok(Observed {
        view,
        split: hosts.split(),
        fresh,
    })
}

/// Carries out a switchover `plan`.
#[allow(clippy::too_many_arguments)]
async fn execute<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    hold: bool,
    plan: &SwitchPlan,
    events: &Events,
    interrupt: &Interrupt,
    warned: &AtomicBool,
    report: &mut Report,
) -> Result<(), Failure> {
    let (from, old, new) = (plan.from, &plan.old, &plan.new);
    let (to_addr, shared) = (&plan.to_addr, plan.shared);
    let (from_engine, to_engine) = (hosts.of(from), hosts.of(from.other()));

    // 1. The member taking over must wait for the lock, and its next lock
    // try should be known (see `Successor`).
    let began = Instant::now();
    let mut first_try = match plan.successor {
        Successor::Timed(line) => Some(line),
        _ => None,
    };
    let restart = plan.successor == Successor::Restart;
    if restart || plan.successor == Successor::Start {
        if restart {
            events.step(&format!("restarting {} so that its next lock try is known", new.name));
            to_engine
                .stop(&new.id, opts.stop_timeout)
                .await
                .map_err(|e| Failure::new(format!("stopping {} failed: {e}", new.name)))?;
        } else {
            events.step(&format!("starting {}; it should wait for the lock", new.name));
        }
        match steps::start_waiting(to_engine, new, opts.wait_timeout, interrupt, shared).await {
            Ok(line) => {
                first_try = Some(line);
                events.phase("start-standby", began.elapsed());
            }
            Err(f) => {
                let _ = to_engine.stop(&new.id, opts.stop_timeout).await;
                report.set_outcome(Outcome::RolledBack);
                report.state = format!(
                    "{} still holds the lock; {} is stopped{}",
                    old.name,
                    new.name,
                    if restart { "" } else { ", as it was" }
                );
                report.next_steps = vec![format!("look at its log: `docker logs --tail 50 {}`", new.name)];
                return Err(f);
            }
        }
    }
    let interrupted = |report: &mut Report| {
        report.set_outcome(Outcome::Interrupted);
        report.state = format!("{} still holds the lock; {} waits for it", old.name, new.name);
    };
    if interrupt.is_set() {
        interrupted(report);
        return Ok(());
    }
    // The stop is timed to the successor's next try, after a last look
    // that it still runs.
    let transfer = Transfer {
        from_engine,
        from: &old.id,
        release: Release::Stop(opts.stop_timeout),
        to_engine,
        to: &new.id,
        to_addr,
        within: opts.takeover_timeout,
        bolt_shared: shared && new.generation == Some(Generation::Bolt),
    };
    if let Some(at) = transfer::release_at(first_try.as_ref()) {
        match transfer::align(at, Some(interrupt)).await {
            Ok(took) => events.phase("lock-retry", took),
            Err(_) => {
                interrupted(report);
                return Ok(());
            }
        }
    }
    if transfer.successor_runs().await.is_err() {
        report.set_outcome(Outcome::RolledBack);
        report.state = format!("{} still holds the lock; {} is not running", old.name, new.name);
        report.next_steps = look_then_up(&new.name);
        return Err(Failure::new(format!(
            "{} stopped after it logged that it waits for the lock",
            new.name
        )));
    }

    // 2. The handoff; the old holder is started again (to wait) while the
    // new one boots, once the new one provably holds the lock.
    events.step(&format!("stopping {} gracefully; {} takes over", old.name, new.name));
    let began = Instant::now();
    let restart_old = || async {
        events.step(&format!(
            "starting {} again while {} boots; it should wait for the lock",
            old.name, new.name
        ));
        steps::start_waiting(from_engine, old, opts.wait_timeout, &Interrupt::new(), shared).await
    };
    let (took, early) = transfer.run(interrupt, (!hold).then_some(restart_old)).await;
    events.phase("takeover", began.elapsed());
    if took.gap.is_err() && early.is_some() {
        // Back to where the ways back expect it: the old holder stopped.
        let _ = from_engine.stop(&old.id, opts.stop_timeout).await;
    }
    match took.gap {
        Ok(gap) => events.handoff(&old.name, &new.name, gap),
        Err(wait) => return Err(failed_takeover(hosts, opts, from, old, new, took.stop_error, wait, report).await),
    }
    // Past the handoff, the way to one holder and one standby is forward.
    let warn_finishing = |events: &Events| {
        if interrupt.is_set() && !warned.swap(true, Ordering::Relaxed) {
            events.warn(FINISHED);
        }
    };
    warn_finishing(events);

    // 3. The pair whole again (or the old holder held back).
    if hold {
        report.set_outcome(Outcome::SwitchedOver);
        report.state = format!("{} holds the lock; {} is stopped (--hold)", new.name, old.name);
        report.next_steps = vec![if from == Which::Primary {
            format!(
                "when {}'s host is ready: `cl-maint failover back` starts it, confirms it waits for the lock and hands the lock back to it",
                old.name
            )
        } else {
            format!(
                "when {}'s host is ready: `cl-maint failover up` starts it again as the standby",
                old.name
            )
        }];
        return Ok(());
    }
    let restarted = match early {
        Some(restarted) => restarted,
        None => {
            events.step(&format!("starting {} again; it should wait for the lock", old.name));
            steps::start_waiting(from_engine, old, opts.wait_timeout, &Interrupt::new(), shared).await
        }
    };
    warn_finishing(events);
    match restarted {
        Ok(_) => {
            report.set_outcome(Outcome::SwitchedOver);
            report.state = format!("{} holds the lock; {} waits for it", new.name, old.name);
            Ok(())
        }
        Err(f) => {
            let _ = from_engine.stop(&old.id, opts.stop_timeout).await;
            report.set_outcome(Outcome::NeedsHuman);
            report.state = format!(
                "{} holds the lock and serves, but {} did not come back as the standby and is stopped: nothing would take over if {} died",
                new.name, old.name, new.name
            );
            report.next_steps = look_then_up(&old.name);
            Err(f)
        }
    }
}

/// The successor did not serve: put the old holder back if the successor
/// never held the lock.
#[allow(clippy::too_many_arguments)]
async fn failed_takeover<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    from: Which,
    old: &Member,
    new: &Member,
    stop_error: Option<String>,
    wait: waits::WaitFailure,
    report: &mut Report,
) -> Failure {
    let (from_engine, to_engine) = (hosts.of(from), hosts.of(from.other()));
    let mut failure = steps::takeover_failure(&new.name, &wait, opts.takeover_timeout);
    if let Some(e) = stop_error {
        report.set_outcome(Outcome::NeedsHuman);
        report.state = format!(
            "stopping {} failed ({e}); it may still hold the lock; {} waits",
            old.name, new.name
        );
        report.next_steps = vec!["check with `cl-maint status`".into()];
        return failure;
    }
    // Nothing serves now. Make sure the successor lets go, then bring the
    // old holder back.
    let _ = to_engine.stop(&new.id, opts.stop_timeout).await;
    match steps::start_serving(
        from_engine,
        old,
        opts.takeover_timeout.max(std::time::Duration::from_secs(60)),
    )
    .await
    {
        Ok(_) => {
            report.set_outcome(Outcome::RolledBack);
            report.state = format!(
                "{} holds the lock again; {} is stopped (it failed to take over)",
                old.name, new.name
            );
            report.next_steps = look_then_up(&new.name);
        }
        Err(f) => {
            report.set_outcome(Outcome::NeedsHuman);
            report.state = format!(
                "NO node serves: {} failed to take over and {} did not come back ({})",
                new.name, old.name, f.what
            );
            report.next_steps = vec![
                format!("start the node by hand: `docker start {}`", old.name),
                format!(
                    "read both logs: `docker logs --tail 50 {}` and `docker logs --tail 50 {}`",
                    old.name, new.name
                ),
            ];
            failure.what = format!("{}; then {}", failure.what, f.what);
        }
    }
    failure
}

/// Read `name`'s log, then make the pair whole.
fn look_then_up(name: &str) -> Vec<String> {
    vec![
        format!("look at {name}'s log: `docker logs --tail 50 {name}`"),
        "then make the pair whole: `cl-maint failover up`".into(),
    ]
}

/// Whether the member started so recently that its last waiting line may
/// still tell when it tries next (see [`timing::started_recently`]).
fn started_recently(m: &Member) -> bool {
    m.started_at
        .as_deref()
        .and_then(crate::time::engine_time)
        .is_some_and(|at| timing::started_recently(at, std::time::SystemTime::now()))
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
