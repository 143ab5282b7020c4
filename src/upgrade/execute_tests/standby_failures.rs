//! Unit tests of the executor's failure branches up to and during the first
//! handoff (start-standby, takeover): each rolls back to the untouched primary,
//! or stops and reports where the node is (or that no node holds the lock).

use super::*;
use crate::engine::fake::{CRASHED, FATAL_CONFIG, LockUse};

#[tokio::test(start_paused = true)]
async fn failing_to_create_the_standby_rolls_back() {
    let fake = engine();
    fake.fail_on("create", STANDBY);
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    assert_eq!(
        fake.calls(),
        calls(0, &["create chainlink-cl-maint-standby (failed)", SUCCESS[7]])
    );
    assert_primary_untouched(&fake);
    assert!(
        error(&report).contains("creating the standby failed"),
        "{}",
        error(&report)
    );
    assert!(report.state.contains("was not touched"), "{}", report.state);
}

#[tokio::test(start_paused = true)]
async fn failing_to_start_the_standby_rolls_back() {
    let fake = engine();
    fake.fail_on("start", STANDBY);
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    assert_eq!(
        fake.calls(),
        calls(1, &["start chainlink-cl-maint-standby (failed)", SUCCESS[7]])
    );
    assert_primary_untouched(&fake);
    assert!(
        error(&report).contains("starting the standby failed"),
        "{}",
        error(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn standby_exiting_before_its_lock_wait_line_rolls_back() {
    let fake = engine_with(Behaviour {
        exits_at_once: Some(1),
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    assert_eq!(fake.calls(), calls(2, &[SUCCESS[7]]));
    assert_primary_untouched(&fake);
    assert!(
        error(&report).contains("never logged that it waits for the lock: exited (code 1)"),
        "{}",
        error(&report)
    );
    assert_eq!(report.log_tail.last().map(String::as_str), Some(FATAL_CONFIG));
}

#[tokio::test(start_paused = true)]
async fn no_lock_wait_line_before_the_deadline_rolls_back() {
    let fake = engine_with(Behaviour {
        wait_line: None,
        ..new_node()
    });
    let started = tokio::time::Instant::now();
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    assert_eq!(started.elapsed(), options().wait_timeout);
    assert_eq!(fake.calls(), calls(2, &[SUCCESS[7]]));
    assert_primary_untouched(&fake);
    assert!(
        error(&report).contains("did not get there within 30s"),
        "{}",
        error(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn standby_answering_while_the_primary_runs_is_killed_at_once() {
    // A bolt-era node prints its wait line before its lock attempt; on a
    // database of its own it then takes that lock and answers at once.
    let fake = engine_with(Behaviour {
        lock: LockUse::Own,
        boot: Duration::ZERO,
        ..Behaviour::bolt("2.10.0")
    });
    let report = run(&fake).await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(report.exit_code, exit::ROLLED_BACK);
    assert_eq!(fake.two_holders(), Vec::<String>::new());
    // Two nodes were active from the standby's start until the kill (the
    // executor can only see it after the fact): once, and not for long.
    assert_eq!(fake.two_active(), vec![format!("0.000s: {NAME}, {STANDBY}")]);
    assert_eq!(
        fake.calls(),
        calls(2, &["kill chainlink-cl-maint-standby SIGKILL", SUCCESS[7]])
    );
    assert_primary_untouched(&fake);
    assert!(
        error(&report).contains("does not share chainlink's database"),
        "{}",
        error(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn takeover_timeout_restarts_the_primary_which_holds_again() {
    let fake = engine_with(Behaviour {
        lock: LockUse::Never,
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    assert_eq!(
        fake.calls(),
        calls(3, &["stop chainlink-cl-maint-standby", "start chainlink", SUCCESS[7]])
    );
    assert_eq!(names(&fake), vec![NAME.to_string()]);
    let primary = fake.container(PRIMARY_ID).expect("the primary");
    assert!(primary.running && primary.holds_lock && primary.image == OLD_IMAGE);
    assert_eq!(fake.db_version().as_deref(), Some("2.9.0"));
    assert!(
        error(&report).contains("the standby did not take over: did not get there within 30s"),
        "{}",
        error(&report)
    );
    assert!(report.state.contains("holds the lock again"), "{}", report.state);
    assert!(report.handoffs.is_empty());
}

#[tokio::test(start_paused = true)]
async fn failing_stop_leaves_the_primary_holding_and_rolls_back() {
    let fake = engine();
    fake.fail_on("stop", NAME);
    let started = tokio::time::Instant::now();
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::RolledBack, exit::ROLLED_BACK);
    // A failed stop ends the takeover at once: no waiting out the deadline.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.calls(), calls(2, &["stop chainlink (failed)", SUCCESS[7]]));
    assert_eq!(names(&fake), vec![NAME.to_string()]);
    assert_eq!(fake.holder().as_deref(), Some(NAME));
    assert!(
        error(&report).contains("stopping chainlink failed"),
        "{}",
        error(&report)
    );
    assert!(report.state.contains("kept the lock"), "{}", report.state);
}

#[tokio::test(start_paused = true)]
async fn old_version_refusing_the_migrated_database_keeps_the_new_version_on_the_standby() {
    // The standby takes the lock and migrates (silently, as before v2.15) for
    // longer than the takeover may take; the old version then refuses the database.
    let fake = engine_with(Behaviour {
        migration: secs(60),
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(
            3,
            &[
                "stop chainlink-cl-maint-standby",
                "start chainlink",
                "stop chainlink",
                "start chainlink-cl-maint-standby"
            ]
        )
    );
    assert_on_standby(&fake);
    assert_eq!(fake.db_version().as_deref(), Some("2.10.0"));
    let primary = fake.container(PRIMARY_ID).expect("the primary");
    assert_eq!(
        (primary.name.as_str(), primary.running, primary.exit_code),
        (NAME, false, Some(1))
    );
    assert!(
        primary
            .log
            .last()
            .is_some_and(|l| classify(l) == Some(Event::Downgrade))
    );
    assert!(
        error(&report).contains("now refuses the database as too new (its log says a newer version migrated it)"),
        "{}",
        error(&report)
    );
    assert_eq!(report.left, vec![STANDBY.to_string()]);
    assert!(
        report
            .state
            .starts_with("the node runs the new version in chainlink-cl-maint-standby")
    );
}

#[tokio::test(start_paused = true)]
async fn standby_still_migrating_at_the_deadline_is_left_holding() {
    // v2.15+: it answers 204 while it migrates, so the executor knows it holds the lock.
    let fake = engine_with(Behaviour {
        migration: secs(60),
        answers_204_while_migrating: true,
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    // The new primary, started beside the takeover once the standby held the
    // lock (its 204), is taken back: nothing else runs after the deadline.
    assert_eq!(
        fake.calls(),
        calls(3, &EARLY_UNDONE),
        "only the early new primary is started, then taken back"
    );
    assert_on_standby(&fake);
    let primary = fake.container(PRIMARY_ID).expect("the primary");
    assert_eq!((primary.name.as_str(), primary.running), (NAME, false));
    assert_eq!(report.left, vec![STANDBY.to_string(), NAME.to_string()]);
    assert!(
        error(&report).contains("took the lock but did not start serving"),
        "{}",
        error(&report)
    );
    // It does serve once its migrations are done.
    tokio::time::sleep(secs(60)).await;
    let answer = fake
        .http_get(STANDBY_ADDR, "/health", secs(1))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200);
}

#[tokio::test(start_paused = true)]
async fn standby_that_held_then_crashed_is_reported_even_when_the_old_version_runs_again() {
    // A rebuilt image of the same version: the old image accepts the database.
    let fake = engine_with(Behaviour {
        health: 204,
        crash_after_lock: Some(secs(1)),
        ..Behaviour::node("2.9.0")
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(
            3,
            &[
                &EARLY_UNDONE[..],
                &["stop chainlink-cl-maint-standby", "start chainlink", SUCCESS[7]]
            ]
            .concat()
        )
    );
    // The crash released nothing: the primary got the lock back after the lease.
    assert_eq!(names(&fake), vec![NAME.to_string()]);
    assert_eq!(fake.holder().as_deref(), Some(NAME));
    assert!(
        report.state.contains("the new version had held the lock first"),
        "{}",
        report.state
    );
    assert!(report.log_tail.iter().any(|l| l == CRASHED), "{:?}", report.log_tail);
}

#[tokio::test(start_paused = true)]
async fn standby_crashing_with_the_lock_leaves_no_node_and_says_so() {
    let fake = engine_with(Behaviour {
        crash_after_lock: Some(secs(1)),
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::NeedsHuman, exit::NEEDS_HUMAN);
    assert_eq!(
        fake.calls(),
        calls(
            3,
            &[
                "stop chainlink-cl-maint-standby",
                "start chainlink",
                "stop chainlink",
                "start chainlink-cl-maint-standby",
                // It cannot serve: stopped, not left to its restart policy.
                "stop chainlink-cl-maint-standby"
            ]
        )
    );
    assert_eq!(fake.holder(), None);
    assert!(fake.containers().iter().all(|c| !c.running), "{:?}", fake.containers());
    assert!(report.state.starts_with("NO node holds the lock"), "{}", report.state);
    assert_eq!(report.left, vec![STANDBY.to_string(), NAME.to_string()]);
    assert!(report.log_tail.iter().any(|l| l == CRASHED), "{:?}", report.log_tail);
}

// Two faults the fake found in review: a bolt-era waiting line that does not
// prove waiting, and an early roll back that trusted the original blindly.

#[tokio::test(start_paused = true)]
async fn a_bolt_standby_on_a_database_of_its_own_is_caught_before_the_handoff() {
    // A bolt-era node prints its wait line before its lock attempt. On a
    // database of its own it takes that lock at once and serves after its
    // boot (1 s): the one probe right after the wait line finds nothing, the
    // takeover then sees it serve, and two nodes run on two databases until
    // the primary is stopped.
    let fake = engine_with(Behaviour {
        lock: LockUse::Own,
        boot: secs(1),
        ..Behaviour::bolt("2.10.0")
    });
    let report = run(&fake).await;
    assert_eq!(
        report.outcome,
        Outcome::RolledBack,
        "calls: {:?}; two active: {:?}",
        fake.calls(),
        fake.two_active()
    );
    assert!(
        fake.calls()
            .contains(&"kill chainlink-cl-maint-standby SIGKILL".to_string())
    );
    assert_primary_untouched(&fake);
}

#[tokio::test(start_paused = true)]
async fn an_early_roll_back_checks_the_original_before_claiming_it_holds_the_lock() {
    // The primary crashes 1 s into the run; its lease expires at 11 s. The
    // standby reaches its lock attempt at 15 s, finds the lock free and takes
    // it (migrating the database) without a wait line. At the wait deadline
    // the executor force-removes the only node holding the lock and reports
    // "chainlink was not touched: it runs ... and holds the lock".
    let fake = FakeEngine::new();
    let crashing = Behaviour {
        crash_after_lock: Some(secs(1)),
        ..Behaviour::node("2.9.0")
    };
    fake.image(OLD_IMAGE, crashing);
    fake.image(
        NEW_IMAGE,
        Behaviour {
            startup: secs(15),
            ..new_node()
        },
    );
    fake.seed_holder(NAME, PRIMARY_ID, OLD_IMAGE, PRIMARY_ADDR);
    let report = run(&fake).await;
    assert_eq!(fake.two_holders(), Vec::<String>::new());
    // The original died on its own and the standby took the lock: the
    // standby is kept (it is the node now) and the report says so.
    assert_eq!(
        report.outcome,
        Outcome::NeedsHuman,
        "{report:#?}\ncalls: {:#?}",
        fake.calls()
    );
    assert_eq!(fake.holder().as_deref(), Some("chainlink-cl-maint-standby"));
    assert!(!report.state.contains("was not touched"), "{:?}", report.state);
    assert!(
        report.state.contains("chainlink-cl-maint-standby holds the lock"),
        "{:?}",
        report.state
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("remove chainlink-cl-maint-standby")),
        "{:?}",
        fake.calls()
    );
}
