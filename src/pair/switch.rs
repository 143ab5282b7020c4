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
use super::{Hosts, PairOptions, PairView, Which};
use crate::handoff::Failure;
use crate::handoff::steps;

/// Where the lock should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// To whichever member does not hold it.
    Other,
    /// To the primary (`failover back`).
    Back,
}

/// `cl-maint failover` / `cl-maint failover back`. With `hold`, the old
/// holder is left stopped.
pub async fn switch<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    direction: Direction,
    hold: bool,
    events: &Events,
    interrupt: &Interrupt,
) -> Report {
    let names = &opts.names;
    let command = match direction {
        Direction::Other => "failover",
        Direction::Back => "failover back",
    };
    let mut report = Report::new(command, &names.primary, Outcome::Refused);
    events.step(&format!("checking {} and {}", names.primary, names.secondary));
    let view = match super::view(hosts, names).await {
        Ok(v) => v,
        Err(e) => return crate::report::engine_failed(report, e),
    };
    for member in [&view.primary, &view.secondary].into_iter().flatten() {
        events.secrets(&member.env());
    }
    let warned = AtomicBool::new(false);
    let ran = run(
        hosts,
        opts,
        direction,
        hold,
        &view,
        events,
        interrupt,
        &warned,
        &mut report,
    )
    .await;
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

/// The warning for an interrupt past the handoff.
const FINISHED: &str = "interrupt received after the old holder was stopped: finishing the switchover, the only way back to a holder and a standby";

#[allow(clippy::too_many_arguments)]
async fn run<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    direction: Direction,
    hold: bool,
    view: &PairView,
    events: &Events,
    interrupt: &Interrupt,
    warned: &AtomicBool,
    report: &mut Report,
) -> Result<(), Failure> {
    let names = &opts.names;
    report.state = "nothing was changed".into();
    let (Some(_), Some(_)) = (&view.primary, &view.secondary) else {
        let missing = if view.primary.is_none() {
            &names.primary
        } else {
            &names.secondary
        };
        report.next_steps = vec![if missing == &names.secondary {
            "create the secondary first: `cl-maint failover up`".to_string()
        } else {
            "name the node's container with --container NAME".to_string()
        }];
        return Err(Failure::new(format!("there is no container named {missing}")));
    };
    let holders = view.holders();
    let from = match holders.as_slice() {
        [one] => *one,
        [] => {
            report.set_outcome(Outcome::NoHolder);
            report.next_steps = vec!["see `cl-maint status`; start the node before moving its lock".into()];
            return Err(Failure::new(format!(
                "neither {} nor {} answers as the lock holder",
                names.primary, names.secondary
            )));
        }
        _ => {
            report.set_outcome(Outcome::SeveralHolders);
            report.next_steps = vec!["stop one of them at once (`docker stop NAME`), then check the database".into()];
            return Err(Failure::new(format!(
                "both {} and {} answer as the lock holder: two nodes may be active",
                names.primary, names.secondary
            )));
        }
    };
    if direction == Direction::Back && from == Which::Primary {
        report.set_outcome(Outcome::NothingToDo);
        report.state = format!("{} already holds the lock", names.primary);
        return Ok(());
    }
    let to = from.other();
    let (old, new) = (view.of(from).unwrap().clone(), view.of(to).unwrap().clone());
    let (from_engine, to_engine) = (hosts.of(from), hosts.of(to));
    let shared = super::share_lock_file(hosts, &old, &new);
    let Some(to_addr) = new.addr.clone() else {
        return Err(Failure::new(format!(
            "{} publishes no host port for the node's port, so its takeover cannot be confirmed",
            new.name
        )));
    };

    // Both members take turns waiting: each must be able to wait.
    let must_wait: Vec<&Member> = match (new.lock, hold) {
        (LockRole::Stopped, true) => vec![&new],
        (LockRole::Stopped, false) => vec![&new, &old],
        (_, false) => vec![&old],
        (_, true) => vec![],
    };
    if let Some((m, why)) = must_wait.iter().find_map(|m| steps::cannot_wait(m).map(|w| (m, w))) {
        report.next_steps = vec![steps::wait_fix(m)];
        return Err(Failure::new(why));
    }

    // 1. The member taking over must wait for the lock, and its next lock
    // try should be known. A member that started a moment ago (as after the
    // `failover` that a `failover back` follows at once) is timed by its
    // last waiting line's engine time. Otherwise a lease-era standby is
    // restarted (it tries at a random phase of its 1 s interval); a bolt-era
    // one tries every 50 ms and is left be.
    if !matches!(new.lock, LockRole::Waiting | LockRole::Stopped) {
        report.next_steps = vec![format!(
            "look at its log: `docker logs --tail 50 {}`; if it is still starting, run this again in a minute",
            new.name
        )];
        return Err(Failure::new(format!("{}: {}", new.name, new.lock_evidence)));
    }
    let fresh = if new.lock == LockRole::Waiting && started_recently(&new) {
        waits::last_wait_line(to_engine, &new.id)
            .await
            .filter(|line| transfer::release_at(Some(line)).is_some())
    } else {
        None
    };
    let restart =
        fresh.is_none() && new.lock == LockRole::Waiting && new.generation.is_some_and(|g| !g.line_precedes_attempt());
    let began = Instant::now();
    let mut first_try = fresh;
    if restart || new.lock == LockRole::Stopped {
        if restart {
            events.step(&format!("restarting {} so that its next lock try is known", new.name));
            to_engine
                .stop(&new.id, opts.stop_timeout)
                .await
                .map_err(|e| Failure::new(format!("stopping {} failed: {e}", new.name)))?;
        } else {
            events.step(&format!("starting {}; it should wait for the lock", new.name));
        }
        match steps::start_waiting(to_engine, &new, opts.wait_timeout, interrupt, shared).await {
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
        to_addr: &to_addr,
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
        steps::start_waiting(from_engine, &old, opts.wait_timeout, &Interrupt::new(), shared).await
    };
    let (took, early) = transfer.run(interrupt, (!hold).then_some(restart_old)).await;
    events.phase("takeover", began.elapsed());
    if took.gap.is_err() && early.is_some() {
        // Back to where the ways back expect it: the old holder stopped.
        let _ = from_engine.stop(&old.id, opts.stop_timeout).await;
    }
    match took.gap {
        Ok(gap) => events.handoff(&old.name, &new.name, gap),
        Err(wait) => return Err(failed_takeover(hosts, opts, from, &old, &new, took.stop_error, wait, report).await),
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
            steps::start_waiting(from_engine, &old, opts.wait_timeout, &Interrupt::new(), shared).await
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
