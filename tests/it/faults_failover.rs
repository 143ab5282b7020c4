//! The failover pair under faults: a successor that crashes right after
//! taking the lock, a holder that ignores SIGTERM, a secondary that dies
//! right after its lock-wait line (`failover up`, pair upgrade), an
//! unreachable registry and a new version that crashes holding the lock
//! during a pair upgrade. Each ends with exactly one holder (or says there is
//! none), no overlap, the volume untouched, and its own exit code.

use std::time::Duration;

use crate::failover::{Pair, lock_of, pair_up, status_of};
use crate::fault_kit::{assert_one_holder, assert_sentinel, error_of, holders, plant_sentinel};
use crate::faults_upgrade::{SHORT_LEASE, port_of};
use crate::rig::{CRASH_AFTER_LOCK, Gen, NEW, NodeSpec, OLD, Rig, free_port};
use crate::upgrade::{outcome, primary, world};

/// A pair started by hand (as an operator following Chainlink's failover
/// example would): the primary with `primary_env`, and a secondary named
/// `ID-secondary` on the same volume with `DATABASE_TIMEOUT=0` and
/// `secondary_env`, waiting for the lock.
async fn manual_pair(rig: &Rig, generation: Gen, primary_env: &[&str], secondary_env: &[&str]) -> Pair {
    let mut env = vec![SHORT_LEASE, "DATABASE_TIMEOUT=0"];
    env.extend(primary_env);
    let node = primary(rig, generation, &env).await;
    let mut env: Vec<String> = vec![SHORT_LEASE.into(), "DATABASE_TIMEOUT=0".into()];
    env.extend(secondary_env.iter().map(|e| e.to_string()));
    let secondary = rig
        .start_node(NodeSpec {
            suffix: "secondary",
            tag: OLD,
            generation,
            env,
        })
        .await;
    let wording = match generation {
        Gen::Bolt => "for lock on db file",
        Gen::Lease => "waiting for lease",
    };
    rig.wait_for_line(&secondary, Duration::from_secs(30), |l| l.contains(wording))
        .await;
    plant_sentinel(rig);
    Pair {
        primary: node,
        secondary: secondary.name.clone(),
        port: port_of(&secondary.addr),
    }
}

async fn successor_crashes_after_taking_the_lock(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let pair = manual_pair(&rig, generation, &[], &["CL_DOUBLE_FAULT=crash-after-lock"]).await;
    let run = pair.run(&rig, &["failover"]).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains(&pair.secondary) && error.contains("exited (code 2)"),
        "{error}"
    );
    let state = run.report["state"].as_str().unwrap();
    assert!(
        state.contains(&format!("{} holds the lock again", pair.primary.name)),
        "{state}"
    );
    assert!(run.report["next_steps"].to_string().contains("docker logs"), "{run:?}");
    assert_one_holder(&rig, &pair.primary, true).await;
    let st = status_of(&rig, &pair, &[]).await;
    assert_eq!(lock_of(&st, &pair.secondary), "stopped", "{st}");
}

#[tokio::test]
async fn a_successor_that_crashes_after_taking_the_lock_is_rolled_back_bolt() {
    successor_crashes_after_taking_the_lock(Gen::Bolt, "ff-crash-bolt").await;
}

#[tokio::test]
async fn a_successor_that_crashes_after_taking_the_lock_is_rolled_back_lease() {
    successor_crashes_after_taking_the_lock(Gen::Lease, "ff-crash-lease").await;
}

async fn holder_ignores_sigterm(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let pair = manual_pair(&rig, generation, &["CL_DOUBLE_FAULT=ignore-term"], &[]).await;
    let run = pair.run(&rig, &["failover", "--stop-timeout", "2s"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "switched-over"), "{run:?}");
    let secondary = pair.secondary_node(&rig).await;
    assert_one_holder(&rig, &secondary, true).await;
    let figures = rig.journal();
    let old = &figures.tenures[0];
    assert!(
        !old.released,
        "the primary was killed after its grace period: {figures:?}"
    );
    assert!(figures.tenures[1].lock_ns > old.end_ns, "{figures:?}");
    let st = status_of(&rig, &pair, &[]).await;
    assert_eq!(lock_of(&st, &pair.primary.name), "waiting", "{st}");
}

#[tokio::test]
async fn a_holder_that_ignores_sigterm_is_killed_after_its_grace_without_overlap_bolt() {
    holder_ignores_sigterm(Gen::Bolt, "ff-noterm-bolt").await;
}

#[tokio::test]
async fn a_holder_that_ignores_sigterm_is_killed_after_its_grace_without_overlap_lease() {
    holder_ignores_sigterm(Gen::Lease, "ff-noterm-lease").await;
}

#[tokio::test]
async fn failover_up_with_a_secondary_that_dies_after_its_wait_line_removes_it() {
    secondary_dies_waiting("exit-after-wait", "ff-up-diewait").await;
}

#[tokio::test]
async fn failover_up_with_a_secondary_that_dies_before_its_next_try_removes_it() {
    // It still runs when its waiting line is read: only a watch past its
    // next try (1 s later) sees it die.
    secondary_dies_waiting("exit-while-waiting", "ff-up-diewhile").await;
}

async fn secondary_dies_waiting(fault: &str, name: &str) {
    // Lease era: the primary took a free lease at its first try (no waiting
    // line, so the fault never fires in it); its clone waits, says so, dies.
    let rig = Rig::new(name).await;
    let node = primary(&rig, Gen::Lease, &[&format!("CL_DOUBLE_FAULT={fault}")]).await;
    plant_sentinel(&rig);
    let before = world(&rig).await;
    let pair = Pair::new(&rig, node.clone());
    let run = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains(&pair.secondary) && error.contains("exited (code 2)"),
        "{error}"
    );
    assert!(run.report["log_tail"].to_string().contains(fault), "{run:?}");
    assert!(
        run.report["state"].as_str().unwrap().contains("removed again"),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before);
    assert_one_holder(&rig, &node, true).await;
}

#[tokio::test]
async fn a_pair_upgrade_whose_new_member_dies_after_its_wait_line_rolls_back() {
    let rig = Rig::new("ff-upg-diewait").await;
    let fault = format!("CL_DOUBLE_FAULT=exit-after-wait@{NEW}");
    let pair = manual_pair(&rig, Gen::Lease, &[&fault], &[&fault]).await;
    let run = pair.run(&rig, &["upgrade", "--tag", NEW]).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(error.contains("exited (code 2)"), "{error}");
    assert!(
        run.report["state"].as_str().unwrap().contains("both members run"),
        "{run:?}"
    );
    assert_one_holder(&rig, &pair.primary, true).await;
    let st = status_of(&rig, &pair, &[]).await;
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    assert_eq!(world(&rig).await.len(), 2, "no temporary or renamed container left");
}

#[tokio::test]
async fn a_pair_upgrade_from_an_unreachable_registry_changes_nothing() {
    let rig = Rig::new("ff-upg-noregistry").await;
    let pair = pair_up(&rig, Gen::Lease).await;
    plant_sentinel(&rig);
    let before = world(&rig).await;
    let registry = format!("127.0.0.1:{}", free_port());
    let repo = format!("{registry}/cl-node-double");
    let run = pair.run(&rig, &["upgrade", "--tag", NEW, "--image", &repo]).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    assert!(error_of(&run).contains(&format!("{repo}:{NEW}")), "{run:?}");
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains(&format!("docker login {registry}")),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before);
    assert_one_holder(&rig, &pair.primary, true).await;
}

#[tokio::test]
async fn a_pair_upgrade_whose_new_version_crashes_holding_the_lock_needs_a_human() {
    let rig = Rig::new("ff-upg-crashlock").await;
    let pair = pair_up(&rig, Gen::Lease).await;
    plant_sentinel(&rig);
    let run = pair.run(&rig, &["upgrade", "--tag", CRASH_AFTER_LOCK]).await;
    assert_eq!((run.code, outcome(&run)), (6, "needs-human"), "{run:?}");
    let state = run.report["state"].as_str().unwrap().to_string();
    assert!(
        state.contains("NO node holds the lock") && state.contains(&pair.secondary) && state.contains("migrated"),
        "names the member that failed and why the old version cannot run: {state}"
    );
    assert!(run.report["next_steps"].to_string().contains("snapshot"), "{run:?}");
    assert!(
        run.report["log_tail"].to_string().contains("crash-after-lock"),
        "{run:?}"
    );
    let answering = holders(&rig).await;
    assert!(answering.len() <= 1, "never two holders: {answering:?}");
    rig.journal().assert_safe(Duration::MAX);
    assert_sentinel(&rig);
    // Everything left is named in the report.
    let report = run.report.to_string();
    for line in world(&rig).await {
        let name = line.split_whitespace().next().unwrap();
        assert!(
            report.contains(name),
            "{name} is left but the report does not name it: {report}"
        );
    }
}
