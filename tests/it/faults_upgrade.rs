//! `cl-maint upgrade` under faults not covered by `upgrade_faults.rs`: an
//! unreachable registry, a standby that dies after its lock-wait line, a
//! standby port taken after the preflight, a main port taken after the old
//! node stopped, an old node that ignores SIGTERM, and a new version that
//! crashes after taking a lease; and the Docker Engine unreachable for a few
//! seconds mid-run. Each ends with exactly one lock holder (or
//! says plainly that there is none), no overlap in the journal, the node's
//! volume untouched, a distinct exit code and a message naming the cause.

use std::time::Duration;

use crate::fault_kit::{
    RegistryGate, assert_one_holder, assert_sentinel, container, error_of, finish, holders, plant_sentinel, spawn,
    until, until_logged,
};
use crate::rig::{CRASH_AFTER_LOCK, Gen, NEW, Node, OLD, Rig, Run, free_port};
use crate::upgrade::{outcome, primary, upgrade, world};

/// A short lease, so that a takeover after SIGKILL is quick.
pub const SHORT_LEASE: &str = "LEASE_LOCK_DURATION=3s";

/// A rig with the primary serving on OLD (with `env`) and the operator's
/// file in its volume.
pub async fn setup(test: &str, generation: Gen, env: &[&str]) -> (Rig, Node) {
    let rig = Rig::new(test).await;
    let node = primary(&rig, generation, env).await;
    plant_sentinel(&rig);
    (rig, node)
}

/// The host port of `host:port`.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The rig registry's `host:port`.
pub fn registry_addr(rig: &Rig) -> String {
    rig.images.repo.split('/').next().unwrap().to_string()
}

#[tokio::test]
async fn an_unreachable_registry_is_exit_7_and_changes_nothing() {
    let (rig, node) = setup("fu-noregistry", Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let registry = format!("127.0.0.1:{}", free_port());
    let repo = format!("{registry}/cl-node-double");
    let run = upgrade(&rig, &node.name, NEW, &["--image", &repo]).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    let error = error_of(&run);
    assert!(error.contains(&format!("{repo}:{NEW}")), "names the image: {error}");
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains(&format!("docker login {registry}")),
        "says what to check: {run:?}"
    );
    assert!(
        run.report["state"].as_str().unwrap().contains("nothing was changed"),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before);
    assert_one_holder(&rig, &node, true).await;
}

async fn standby_dies_after_its_wait_line(generation: Gen, test: &str) {
    let fault = format!("CL_DOUBLE_FAULT=exit-after-wait@{NEW}");
    let (rig, node) = setup(test, generation, &[&fault]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains("standby") && error.contains("exited (code 2)"),
        "{error}"
    );
    assert!(
        run.report["log_tail"].to_string().contains("exit-after-wait"),
        "the report shows the standby's last lines: {run:?}"
    );
    assert!(run.report["state"].as_str().unwrap().contains(&node.name), "{run:?}");
    assert_eq!(
        world(&rig).await,
        before,
        "the original, untouched; the standby removed"
    );
    assert_one_holder(&rig, &node, true).await;
    let tenures = rig.journal().tenures;
    let versions: Vec<String> = tenures.iter().map(|t| t.version.clone()).collect();
    assert!(versions.iter().all(|v| v == OLD), "{versions:?}");
    if generation == Gen::Lease {
        // The stop waits for the standby's next lock try (0.8 s), and the
        // standby is looked at once more before it: it is gone by then, so
        // the original was never stopped (one tenure, never released).
        assert_eq!(tenures.len(), 1, "the original kept the lock throughout: {tenures:?}");
    }
}

#[tokio::test]
async fn a_standby_that_dies_after_its_wait_line_is_rolled_back_bolt() {
    standby_dies_after_its_wait_line(Gen::Bolt, "fu-diewait-bolt").await;
}

#[tokio::test]
async fn a_standby_that_dies_after_its_wait_line_is_rolled_back_lease() {
    standby_dies_after_its_wait_line(Gen::Lease, "fu-diewait-lease").await;
}

#[tokio::test]
async fn a_standby_port_taken_during_the_pull_is_rolled_back() {
    let (rig, node) = setup("fu-portrace", Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let gate = RegistryGate::held(&registry_addr(&rig));
    let port = free_port();
    let args: Vec<String> = [
        "upgrade",
        "--container",
        &node.name,
        "--tag",
        NEW,
        "--image",
        &gate.repository(&rig),
        "--standby-port",
        &port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn(&args, &[]);
    // cl-maint passed its preflight (the port was free) and pulls: take the port.
    until("the pull reaching the registry", || async {
        (gate.accepted() > 0).then_some(())
    })
    .await;
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the standby port");
    gate.release();
    let run = finish(child, Duration::ZERO).await;
    drop(squatter);
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains("standby") && error.contains(&port.to_string()),
        "{error}"
    );
    assert_eq!(world(&rig).await, before, "the standby was removed");
    assert_one_holder(&rig, &node, true).await;
}

#[tokio::test]
async fn a_main_port_taken_after_the_old_node_stopped_keeps_the_node_on_the_standby() {
    let (rig, node) = setup("fu-mainport", Gen::Lease, &[]).await;
    let standby_port = free_port();
    let args: Vec<String> = [
        "upgrade",
        "--container",
        &node.name,
        "--tag",
        NEW,
        "--standby-port",
        &standby_port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn(&args, &[]);
    // The old node stopped: its port is free for a moment; take it.
    until("the old node stopped", || async {
        container(&rig, &node.id).await.filter(|(_, r)| !r).map(|_| ())
    })
    .await;
    let main = port_of(&node.addr);
    let squatter = until("the main port free", || async {
        std::net::TcpListener::bind(("127.0.0.1", main)).ok()
    })
    .await;
    let run = finish(child, Duration::ZERO).await;
    assert_eq!((run.code, outcome(&run)), (6, "needs-human"), "{run:?}");
    let error = error_of(&run);
    assert!(error.contains(&format!("starting the new {}", node.name)), "{error}");
    assert!(error.contains(&main.to_string()), "names the port: {error}");
    let standby = format!("{}-cl-maint-standby", node.name);
    let state = run.report["state"].as_str().unwrap();
    assert!(
        state.contains(&standby) && state.contains(&standby_port.to_string()),
        "{state}"
    );
    assert!(run.report["left"].to_string().contains(&standby), "{run:?}");
    // The node serves on the standby's port, alone; the old container is kept, stopped.
    let answering = holders(&rig).await;
    assert_eq!(answering.len(), 1, "{answering:?}");
    assert!(answering[0].starts_with(&standby), "{answering:?}");
    assert_eq!(
        container(&rig, &node.name).await.map(|(id, r)| (id == node.id, r)),
        Some((true, false))
    );
    assert_eq!(world(&rig).await.len(), 2, "{:?}", world(&rig).await);
    rig.journal().assert_safe(Duration::MAX);
    assert_sentinel(&rig);
    drop(squatter);
}

async fn old_node_ignores_sigterm(generation: Gen, test: &str) {
    let fault = format!("CL_DOUBLE_FAULT=ignore-term@{OLD}");
    let (rig, node) = setup(test, generation, &[&fault, SHORT_LEASE]).await;
    let run = upgrade(&rig, &node.name, NEW, &["--stop-timeout", "2s"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert_eq!(world(&rig).await.len(), 1, "{:?}", world(&rig).await);
    assert_one_holder(&rig, &node, true).await;
    let figures = rig.journal();
    assert_eq!(figures.tenures.len(), 3, "{figures:?}");
    let old = &figures.tenures[0];
    assert!(
        old.version == OLD && !old.released,
        "the old node never let go by itself: it was killed after its grace period: {figures:?}"
    );
    assert!(
        figures.tenures[1].lock_ns > old.end_ns,
        "the standby took the lock only after the old node's last beat"
    );
}

#[tokio::test]
async fn an_old_node_that_ignores_sigterm_is_killed_after_its_grace_without_overlap_bolt() {
    old_node_ignores_sigterm(Gen::Bolt, "fu-noterm-bolt").await;
}

#[tokio::test]
async fn an_old_node_that_ignores_sigterm_is_killed_after_its_grace_without_overlap_lease() {
    old_node_ignores_sigterm(Gen::Lease, "fu-noterm-lease").await;
}

#[tokio::test]
async fn a_new_version_that_crashes_holding_a_lease_needs_a_human() {
    let (rig, node) = setup("fu-crashlease", Gen::Lease, &[SHORT_LEASE]).await;
    let run = upgrade(&rig, &node.name, CRASH_AFTER_LOCK, &[]).await;
    assert_eq!((run.code, outcome(&run)), (6, "needs-human"), "{run:?}");
    let error = error_of(&run);
    // It died before answering: what is known is the old version's refusal.
    assert!(error.contains("now refuses the database as too new"), "{error}");
    assert!(!error.contains("migrated by the new version"), "{error}");
    let state = run.report["state"].as_str().unwrap();
    assert!(state.contains("NO node holds the lock"), "{state}");
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains("restore the database snapshot"),
        "{run:?}"
    );
    assert!(holders(&rig).await.is_empty(), "said so: nothing holds the lock");
    rig.journal().assert_safe(Duration::MAX);
    assert_sentinel(&rig);
    // What is left is what the report names.
    let left = run.report["left"].to_string();
    for line in world(&rig).await {
        let name = line.split_whitespace().next().unwrap();
        assert!(left.contains(name), "{name} is left but not named in {left}");
    }
}

/// The engine unreachable for a few seconds from the moment `step` is seen
/// (cl-maint talks to it through a TCP proxy the test cuts and resumes).
async fn engine_outage(test: &str, step: &str) -> (Rig, crate::rig::Node, Run) {
    let (rig, node) = setup(test, Gen::Lease, &[]).await;
    let proxy = crate::rig::tcp_proxy::TcpProxy::start();
    let mut args = vec!["--host".to_string(), proxy.host()];
    args.extend(crate::upgrade::upgrade_args(&node.name, NEW, &[]));
    let child = spawn(&args, &[("DOCKER_HOST", None)]);
    match step {
        "standby" => {
            until_logged(&rig, &format!("{}-cl-maint-standby", node.name), "waiting for lease").await;
        }
        "takeover" => {
            until("the old node stopped", || async {
                container(&rig, &node.id).await.filter(|(_, r)| !r)
            })
            .await;
        }
        _ => unreachable!(),
    }
    proxy.cut();
    // The outage itself: a few seconds without an engine.
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.resume();
    let run = finish(child, Duration::ZERO).await;
    (rig, node, run)
}

#[tokio::test]
async fn an_engine_outage_while_the_standby_waits() {
    let (rig, node, run) = engine_outage("fi-outage-standby", "standby").await;
    assert_rode_out(&rig, &node, &run).await;
}

#[tokio::test]
async fn an_engine_outage_during_the_takeover() {
    let (rig, node, run) = engine_outage("fi-outage-takeover", "takeover").await;
    assert_rode_out(&rig, &node, &run).await;
}

/// cl-maint tried again while the engine did not answer, and finished.
async fn assert_rode_out(rig: &Rig, node: &crate::rig::Node, run: &Run) {
    assert_eq!((run.code, outcome(run)), (0, "upgraded"), "{run:?}");
    assert_eq!(world(rig).await.len(), 1, "only the new node: {:?}", world(rig).await);
    assert_one_holder(rig, node, true).await;
}
