//! The switchover's plan, without an engine: every refusal, and how the
//! member taking over comes to wait.

use std::time::Duration;

use super::*;
use crate::handoff::timing::WaitLine;
use crate::node::logs::Generation;

const PRIMARY: &str = "chainlink";
const SECONDARY: &str = "secondary";

fn names() -> PairNames {
    PairNames {
        primary: PRIMARY.into(),
        secondary: SECONDARY.into(),
    }
}

fn member(role: &str, name: &str, lock: LockRole, port: u16) -> Member {
    Member {
        port: Some(port),
        addr: Some(format!("127.0.0.1:{port}")),
        lock_evidence: "it is still starting".into(),
        generation: Some(Generation::Lease),
        ..crate::members::member::sample(role, name, lock)
    }
}

fn observed(primary: Option<Member>, secondary: Option<Member>) -> Observed {
    Observed {
        view: PairView { primary, secondary },
        split: false,
        fresh: [None, None],
    }
}

/// The usual pair: the primary holds, the secondary waits.
fn pair() -> Observed {
    observed(
        Some(member("primary", PRIMARY, LockRole::Holding, 6688)),
        Some(member("secondary", SECONDARY, LockRole::Waiting, 6687)),
    )
}

fn switch(o: &Observed, direction: Direction, hold: bool) -> SwitchPlan {
    match plan(o, &names(), direction, hold, true) {
        Ok(Decision::Switch(p)) => *p,
        other => panic!("not a switch: {other:?}"),
    }
}

fn refusal(o: &Observed, direction: Direction) -> Refusal {
    plan(o, &names(), direction, false, true).expect_err("refused")
}

#[test]
fn a_missing_member_is_refused_with_what_to_do() {
    let no_secondary = observed(Some(member("primary", PRIMARY, LockRole::Holding, 6688)), None);
    let r = refusal(&no_secondary, Direction::Other);
    assert_eq!(r.outcome, Outcome::Refused);
    assert_eq!(r.what, "there is no container named secondary");
    assert!(r.next_steps[0].contains("failover up"), "{r:?}");
    let no_primary = observed(None, Some(member("secondary", SECONDARY, LockRole::Waiting, 6687)));
    assert!(refusal(&no_primary, Direction::Other).next_steps[0].contains("--container"));
}

#[test]
fn no_holder_and_two_holders_have_their_own_outcomes() {
    let mut o = pair();
    o.view.primary.as_mut().unwrap().lock = LockRole::Stopped;
    assert_eq!(refusal(&o, Direction::Other).outcome, Outcome::NoHolder);
    let mut o = pair();
    o.view.secondary.as_mut().unwrap().lock = LockRole::Holding;
    let r = refusal(&o, Direction::Other);
    assert_eq!(r.outcome, Outcome::SeveralHolders);
    assert!(r.what.contains("two nodes may be active"), "{r:?}");
}

#[test]
fn back_when_the_primary_holds_is_nothing_to_do() {
    match plan(&pair(), &names(), Direction::Back, false, true) {
        Ok(Decision::AlreadyThere(state)) => assert_eq!(state, "chainlink already holds the lock"),
        other => panic!("{other:?}"),
    }
    // Otherwise `back` moves the lock to the primary.
    let mut o = pair();
    o.view.primary.as_mut().unwrap().lock = LockRole::Waiting;
    o.view.secondary.as_mut().unwrap().lock = LockRole::Holding;
    let p = switch(&o, Direction::Back, false);
    assert_eq!((p.from, p.new.name.as_str()), (Which::Secondary, PRIMARY));
}

#[test]
fn a_successor_that_neither_waits_nor_is_stopped_is_refused() {
    let mut o = pair();
    o.view.secondary.as_mut().unwrap().lock = LockRole::Unknown;
    let r = refusal(&o, Direction::Other);
    assert_eq!(r.what, "secondary: it is still starting");
    assert!(r.next_steps[0].contains("docker logs --tail 50 secondary"), "{r:?}");
    let mut o = pair();
    o.view.secondary.as_mut().unwrap().addr = None;
    assert!(refusal(&o, Direction::Other).what.contains("(--probe direct)"));
}

#[test]
fn a_bolt_era_member_that_cannot_wait_is_refused_before_any_change() {
    let mut o = pair();
    for m in [o.view.primary.as_mut().unwrap(), o.view.secondary.as_mut().unwrap()] {
        m.generation = Some(Generation::Bolt);
    }
    // Neither sets DATABASE_TIMEOUT: the bolt-era default gives up in 500 ms.
    let r = refusal(&o, Direction::Other);
    assert!(r.what.contains("DATABASE_TIMEOUT"), "{r:?}");
    // With --hold and a waiting successor, only the successor must wait:
    // it already does.
    assert_eq!(switch(&o, Direction::Other, true).successor, Successor::AsIs);
}

#[test]
fn how_the_successor_comes_to_wait() {
    // A lease-era standby that has waited a while is restarted.
    assert_eq!(switch(&pair(), Direction::Other, false).successor, Successor::Restart);
    // One that started a moment ago is timed by its last line.
    let line = WaitLine {
        generation: Generation::Lease,
        written: tokio::time::Instant::now() - Duration::from_millis(100),
    };
    let mut o = pair();
    o.fresh[1] = Some(line);
    assert_eq!(switch(&o, Direction::Other, false).successor, Successor::Timed(line));
    // A stopped one is started.
    let mut o = pair();
    o.view.secondary.as_mut().unwrap().lock = LockRole::Stopped;
    assert_eq!(switch(&o, Direction::Other, false).successor, Successor::Start);
    // A bolt-era one (line before its attempt, retries every 50 ms) is left be.
    let mut o = pair();
    for m in [o.view.primary.as_mut().unwrap(), o.view.secondary.as_mut().unwrap()] {
        m.generation = Some(Generation::Bolt);
        m.inspect.config = Some(bollard::models::ContainerConfig {
            env: Some(vec!["DATABASE_TIMEOUT=0".into()]),
            ..Default::default()
        });
    }
    let p = switch(&o, Direction::Other, false);
    assert_eq!(p.successor, Successor::AsIs);
    assert!(!p.shared, "no shared mount seen: not provably one lock file");
}

#[test]
fn a_holder_run_with_rm_is_refused_before_any_change() {
    let mut o = pair();
    o.view.primary.as_mut().unwrap().inspect.host_config = Some(bollard::models::HostConfig {
        auto_remove: Some(true),
        ..Default::default()
    });
    let r = refusal(&o, Direction::Other);
    assert!(r.what.contains("chainlink was started with --rm"), "{r:?}");
    assert!(r.next_steps[0].contains("recreate chainlink without --rm"), "{r:?}");
}

#[test]
fn a_secondary_not_proven_a_member_is_refused() {
    // The sample members carry no label and no database in common.
    let r = plan(&pair(), &names(), Direction::Other, false, false).expect_err("refused");
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.what.contains("but nothing proves it belongs to this node"), "{r:?}");
    assert!(r.next_steps[0].contains("--secondary"), "{r:?}");
}
