//! Preflight's lock check, without an engine.

use bollard::models::ContainerState;

use super::*;
use crate::members::member::sample;

fn observed(now: Member, holders: Vec<Member>) -> Observed {
    Observed {
        endpoint: "unix:///var/run/docker.sock".into(),
        reach: Default::default(),
        primary: None,
        primary_image: None,
        target_image: None,
        target: "smartcontract/chainlink:2.11.0".into(),
        leftovers: Vec::new(),
        standby_port_users: Vec::new(),
        standby_port_free_here: None,
        generation: None,
        running_version: None,
        node_port: crate::members::port::NodePort::default_port(),
        primary_now: Some(now),
        primary_tail: vec!["the last line".into()],
        holders,
    }
}

fn opts(force: bool) -> UpgradeOptions {
    let mut o = UpgradeOptions::new("chainlink", "2.11.0");
    o.force = force;
    o
}

fn crash_looping() -> Member {
    let mut m = sample("primary", "chainlink", LockRole::Unknown);
    m.inspect.state = Some(ContainerState {
        running: Some(true),
        restarting: Some(true),
        exit_code: Some(1),
        ..Default::default()
    });
    m.inspect.restart_count = Some(7);
    m.restart = Some("unless-stopped".into());
    m
}

#[test]
fn a_holding_primary_is_upgraded_by_a_handoff() {
    let o = observed(sample("primary", "chainlink", LockRole::Holding), Vec::new());
    assert_eq!(lock_check(&o, &opts(false)), Ok(Mode::Handoff));
}

#[test]
fn a_crash_looping_primary_is_refused_with_its_restarts_and_last_lines() {
    let o = observed(crash_looping(), Vec::new());
    let r = lock_check(&o, &opts(false)).unwrap_err();
    assert!(r.reason.contains("holds no lock and serves nothing"), "{}", r.reason);
    assert!(
        r.reason
            .contains("is crash-looping: the engine has restarted it 7 times by its restart policy (unless-stopped), it last exited with code 1"),
        "{}",
        r.reason
    );
    assert!(r.fix.iter().any(|f| f.contains("--force")), "{:?}", r.fix);
    assert_eq!(r.tail, vec!["the last line".to_string()]);
    // With --force, a node that is down is recreated in place.
    assert_eq!(lock_check(&o, &opts(true)), Ok(Mode::Recreate));
}

#[test]
fn a_waiting_primary_is_refused_even_with_force_and_names_the_holder() {
    let mut waiting = sample("primary", "chainlink", LockRole::Waiting);
    waiting.lock_evidence = "no HTTP; its log says it waits for the lock (lease)".into();
    let mut holder = sample("holder", "chainlink-old-copy", LockRole::Holding);
    holder.addr = Some("127.0.0.1:6690".into());
    let o = observed(waiting.clone(), vec![holder]);
    for force in [false, true] {
        let r = lock_check(&o, &opts(force)).unwrap_err();
        assert!(
            r.reason
                .contains("chainlink does not hold the node's lock: it runs but waits for the lock"),
            "{}",
            r.reason
        );
        assert!(
            r.reason
                .contains("chainlink-old-copy (it answers on 127.0.0.1:6690) holds it"),
            "{}",
            r.reason
        );
        assert!(r.fix[0].contains("--container chainlink-old-copy"), "{:?}", r.fix);
    }
    // Nobody seen holding: the node may run elsewhere.
    let o = observed(waiting, Vec::new());
    let r = lock_check(&o, &opts(true)).unwrap_err();
    assert!(r.reason.contains("may run on another host"), "{}", r.reason);
}

#[test]
fn a_down_primary_is_recreated_only_while_nothing_else_holds_the_lock() {
    let stopped = sample("primary", "chainlink", LockRole::Stopped);
    let r = lock_check(&observed(stopped.clone(), Vec::new()), &opts(false)).unwrap_err();
    assert!(r.reason.contains("is not running"), "{}", r.reason);
    assert_eq!(
        lock_check(&observed(stopped.clone(), Vec::new()), &opts(true)),
        Ok(Mode::Recreate)
    );
    let holder = sample("holder", "other", LockRole::Holding);
    let r = lock_check(&observed(stopped, vec![holder]), &opts(true)).unwrap_err();
    assert!(r.reason.contains("other"), "{}", r.reason);
}

#[test]
fn a_primary_that_does_not_answer_is_refused_without_force() {
    let mut hung = sample("primary", "chainlink", LockRole::Unknown);
    hung.lock_evidence = "it booted but does not answer HTTP".into();
    let r = lock_check(&observed(hung, Vec::new()), &opts(false)).unwrap_err();
    assert!(
        r.reason.contains(
            "runs but does not answer on 127.0.0.1:6688 from where cl-maint runs (it booted but does not answer HTTP)"
        ),
        "{}",
        r.reason
    );
}
