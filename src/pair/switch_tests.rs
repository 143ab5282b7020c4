//! Unit tests of how a switchover learns when its successor tries the lock
//! next, on the fake engine with tokio's paused time: a lease-era standby
//! that has waited a while is restarted; one that started a moment ago (as
//! the primary does when `failover back` follows `failover` at once) is
//! timed by its last waiting line and left running.

use std::time::Duration;

use super::*;
use crate::engine::fake::{Behaviour, FakeEngine, node_spec};
use crate::progress::Mode;
use crate::spec::CloneSpec;

const PRIMARY: &str = "chainlink";
const SECONDARY: &str = "chainlink-secondary";
const IMAGE: &str = "smartcontract/chainlink:2.9.0";

fn spec(name: &str, port: u16) -> CloneSpec {
    let mut spec = node_spec(name, IMAGE, port);
    // A bolt-era node must wait for ever to be a standby; the members share
    // the lock file's directory.
    spec.body.env = Some(vec!["DATABASE_TIMEOUT=0".to_string(), "ROOT=/chainlink".to_string()]);
    if let Some(host) = spec.body.host_config.as_mut() {
        host.binds = Some(vec!["chainlink-data:/chainlink".to_string()]);
    }
    spec
}

/// A lease-era pair: the primary holds the lock, the secondary waits.
async fn pair() -> FakeEngine {
    pair_of(Behaviour::node("2.9.0")).await
}

/// A pair of nodes that behave so: the primary holds the lock, the
/// secondary waits.
async fn pair_of(node: Behaviour) -> FakeEngine {
    let fake = FakeEngine::new();
    fake.image(IMAGE, node);
    for (name, port) in [(PRIMARY, 6688), (SECONDARY, 6687)] {
        let id = fake.create(&spec(name, port)).await.expect("create");
        fake.start(&id).await.expect("start");
    }
    assert_eq!(fake.holder().as_deref(), Some(PRIMARY));
    fake
}

/// Runs `failover` (or `failover back`) and returns the calls it made and
/// its phases.
async fn switch_calls(fake: &FakeEngine, direction: Direction) -> (Vec<String>, Vec<String>) {
    let before = fake.calls().len();
    let mut opts = PairOptions::new(PRIMARY, SECONDARY);
    opts.stop_timeout = Duration::from_secs(5);
    let events = Events::new(crate::progress::Progress::with_mode(Mode::Quiet));
    let report = events.report(
        switch(
            Hosts::one(fake),
            &opts,
            direction,
            false,
            &events,
            &Interrupt::new(),
            None,
        )
        .await,
    );
    assert_eq!(report.outcome, Outcome::SwitchedOver, "{:?}", report.error);
    assert!(fake.two_holders().is_empty(), "{:?}", fake.two_holders());
    let phases = report.phases.iter().map(|p| p.name.clone()).collect();
    (fake.calls()[before..].to_vec(), phases)
}

#[tokio::test(start_paused = true)]
async fn a_standby_that_has_waited_a_while_is_restarted_to_learn_its_next_try() {
    let fake = pair().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (calls, phases) = switch_calls(&fake, Direction::Other).await;
    assert!(phases.contains(&"lock-retry".to_string()), "{phases:?}");
    assert_eq!(
        calls,
        [
            "stop chainlink-secondary",
            "start chainlink-secondary",
            "stop chainlink",
            "start chainlink"
        ]
    );
    assert_eq!(fake.holder().as_deref(), Some(SECONDARY));
}

#[tokio::test(start_paused = true)]
async fn failover_back_at_once_times_the_primary_by_its_last_waiting_line_without_a_restart() {
    let fake = pair().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    switch_calls(&fake, Direction::Other).await;
    // The primary was started again a moment ago, to wait: the stop is
    // still timed to its next try.
    let (calls, phases) = switch_calls(&fake, Direction::Back).await;
    assert!(phases.contains(&"lock-retry".to_string()), "{phases:?}");
    assert_eq!(calls, ["stop chainlink-secondary", "start chainlink-secondary"]);
    assert_eq!(fake.holder().as_deref(), Some(PRIMARY));
}

#[tokio::test(start_paused = true)]
async fn failover_back_after_a_while_restarts_the_primary() {
    let fake = pair().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    switch_calls(&fake, Direction::Other).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (calls, _) = switch_calls(&fake, Direction::Back).await;
    assert_eq!(
        calls,
        [
            "stop chainlink",
            "start chainlink",
            "stop chainlink-secondary",
            "start chainlink-secondary"
        ]
    );
    assert_eq!(fake.holder().as_deref(), Some(PRIMARY));
}

#[tokio::test(start_paused = true)]
async fn a_bolt_era_standby_is_never_restarted_and_timed_only_when_it_started_a_moment_ago() {
    let fake = pair_of(Behaviour::bolt("1.0.0")).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // It tries every 50 ms: no restart, and no phase to wait for.
    let (calls, phases) = switch_calls(&fake, Direction::Other).await;
    assert_eq!(calls, ["stop chainlink", "start chainlink"]);
    assert!(!phases.contains(&"lock-retry".to_string()), "{phases:?}");
    // The primary started a moment ago: its line tells its tries' phase.
    let (calls, phases) = switch_calls(&fake, Direction::Back).await;
    assert_eq!(calls, ["stop chainlink-secondary", "start chainlink-secondary"]);
    assert!(phases.contains(&"lock-retry".to_string()), "{phases:?}");
}

#[tokio::test(start_paused = true)]
async fn a_switchover_not_confirmed_changes_nothing() {
    let fake = pair().await;
    let before = fake.calls().len();
    let opts = PairOptions::new(PRIMARY, SECONDARY);
    let events = Events::new(crate::progress::Progress::with_mode(Mode::Quiet));
    let asked = std::sync::Mutex::new(String::new());
    let no = |text: &str| {
        *asked.lock().unwrap() = text.to_string();
        false
    };
    let report = switch(
        Hosts::one(&fake),
        &opts,
        Direction::Other,
        false,
        &events,
        &Interrupt::new(),
        Some(&no),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Refused);
    assert_eq!(
        report.error.as_deref(),
        Some("not confirmed; chainlink still holds the lock")
    );
    assert!(
        asked
            .lock()
            .unwrap()
            .starts_with("Switchover: stop chainlink (it holds the lock); chainlink-secondary takes the lock"),
        "{}",
        asked.lock().unwrap()
    );
    assert_eq!(fake.calls()[before..].to_vec(), Vec::<String>::new());
    assert_eq!(fake.holder().as_deref(), Some(PRIMARY));
}
