//! Unit tests of the executor's failure branches after the first handoff
//! (recreate-primary, hand-back): the node stays on the standby, or on the
//! replacement when that holds the lock, and the report says which.

use super::*;
use crate::engine::fake::{CRASHED, LockUse};

#[tokio::test(start_paused = true)]
async fn failing_rename_after_the_takeover_leaves_the_node_on_the_standby() {
    let fake = engine();
    fake.fail_on("rename", NAME);
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(3, &["rename chainlink chainlink-cl-maint-old (failed)"])
    );
    assert_on_standby(&fake);
    let primary = fake.container(PRIMARY_ID).expect("the primary");
    assert_eq!((primary.name.as_str(), primary.running), (NAME, false));
    assert_eq!(report.left, vec![STANDBY.to_string()]);
    assert_eq!(report.handoffs.len(), 1);
    assert!(
        error(&report).contains("renaming the old chainlink"),
        "{}",
        error(&report)
    );
}

/// The state after a failed replacement: the node on the standby, the old
/// container back under its name, no replacement.
fn assert_replacement_undone(report: &Report, fake: &FakeEngine) {
    assert_on_standby(fake);
    let old = fake.container(PRIMARY_ID).expect("the old container");
    assert_eq!(
        (old.name.as_str(), old.running, old.image.as_str()),
        (NAME, false, OLD_IMAGE)
    );
    assert_eq!(names(fake), vec![NAME.to_string(), STANDBY.to_string()]);
    assert_eq!(report.left, vec![STANDBY.to_string()]);
    assert_eq!(report.handoffs.len(), 1);
    assert!(report.state.contains("(it holds the lock)"), "{}", report.state);
}

#[tokio::test(start_paused = true)]
async fn failing_to_create_the_replacement_keeps_the_node_on_the_standby() {
    let fake = engine();
    fake.fail_on("create", NAME);
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(
            4,
            &["create chainlink (failed)", "rename chainlink-cl-maint-old chainlink"]
        )
    );
    assert_replacement_undone(&report, &fake);
}

#[tokio::test(start_paused = true)]
async fn failing_to_start_the_replacement_keeps_the_node_on_the_standby() {
    let fake = engine();
    fake.fail_nth("start", 2);
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(
            5,
            &[
                "start chainlink (failed)",
                "remove chainlink",
                "rename chainlink-cl-maint-old chainlink"
            ]
        )
    );
    assert_replacement_undone(&report, &fake);
}

#[tokio::test(start_paused = true)]
async fn replacement_without_a_lock_wait_line_keeps_the_node_on_the_standby() {
    let fake = engine();
    fake.behave_named(
        NAME,
        Behaviour {
            wait_line: None,
            ..new_node()
        },
    );
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(6, &["remove chainlink", "rename chainlink-cl-maint-old chainlink"])
    );
    assert_replacement_undone(&report, &fake);
    assert!(
        error(&report).contains("the new chainlink never logged that it waits for the lock"),
        "{}",
        error(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn failed_hand_back_stops_the_replacement_and_restarts_the_standby() {
    let fake = engine();
    fake.behave_named(
        NAME,
        Behaviour {
            lock: LockUse::Never,
            ..new_node()
        },
    );
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(7, &["stop chainlink", "start chainlink-cl-maint-standby"])
    );
    assert_on_standby(&fake);
    let replacement = fake.container(NAME).expect("the replacement");
    assert!(!replacement.running && replacement.image == NEW_IMAGE);
    assert_eq!(report.left, vec![STANDBY.to_string(), OLD.to_string()]);
    assert!(
        report.state.contains("the new chainlink is stopped"),
        "{}",
        report.state
    );
    assert!(
        error(&report).contains("the new chainlink did not take over"),
        "{}",
        error(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn replacement_crashing_in_the_hand_back_returns_the_node_to_the_standby() {
    let fake = engine();
    fake.behave_named(
        NAME,
        Behaviour {
            crash_after_lock: Some(secs(1)),
            ..new_node()
        },
    );
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(7, &["stop chainlink", "start chainlink-cl-maint-standby"])
    );
    // The crash released nothing: the standby took the lock once the lease expired.
    assert_on_standby(&fake);
    assert_eq!(error(&report), "the new chainlink did not take over: exited (code 1)");
    assert_eq!(report.log_tail.last().map(String::as_str), Some(CRASHED));
    let replacement = fake.container(NAME).expect("the replacement");
    assert_eq!((replacement.running, replacement.exit_code), (false, Some(1)));
}

#[tokio::test(start_paused = true)]
async fn replacement_holding_without_serving_is_left_holding() {
    let fake = engine();
    fake.behave_named(
        NAME,
        Behaviour {
            health: 204,
            ..new_node()
        },
    );
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(7, &[]),
        "nothing is started or stopped after the deadline"
    );
    assert_eq!(fake.holder().as_deref(), Some(NAME));
    assert_eq!(
        report.left,
        vec![NAME.to_string(), STANDBY.to_string(), OLD.to_string()]
    );
    assert!(
        error(&report).contains("chainlink took the lock but did not start serving"),
        "{}",
        error(&report)
    );
}
