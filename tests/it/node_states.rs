//! `upgrade` on nodes in the states real operators meet, on the real engine:
//! a crash-looping primary, a primary waiting for a lock another container
//! holds, a node that is down (`--force`), a primary run with `--rm`, and a
//! standby that crash-loops under the node's restart policy. Each asserts the
//! exit code, the time to the answer, the message, and what is left.

use std::time::{Duration, Instant};

use bollard::models::{HostConfig, RestartPolicy, RestartPolicyNameEnum};

use crate::fault_kit::{error_of, until};
use crate::rig::{CRASH, Gen, NEW, Node, NodeSpec, OLD, Rig};
use crate::upgrade::{outcome, upgrade, world};

/// A refusal must come from preflight, not from a deadline.
const AT_ONCE: Duration = Duration::from_secs(20);

fn spec(suffix: &str, tag: &'static str, generation: Gen, env: &[&str]) -> NodeSpec<'static> {
    NodeSpec {
        suffix: Box::leak(suffix.to_string().into_boxed_str()),
        tag,
        generation,
        env: env.iter().map(|e| e.to_string()).collect(),
    }
}

fn restart_unless_stopped(h: &mut HostConfig) {
    h.restart_policy = Some(RestartPolicy {
        name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
        maximum_retry_count: None,
    });
}

/// Marks the test's database as migrated by `version` (the double's
/// downgrade guard then refuses every older version): the bolt era's file
/// on the volume, the lease era's `node_versions` in PostgreSQL.
async fn migrated_by(rig: &Rig, generation: Gen, version: &str) {
    match generation {
        Gen::Bolt => std::fs::write(rig.dir.join("db_version"), format!("{version}\n")).expect("write db_version"),
        Gen::Lease => rig.database().await.set_version(version).await,
    }
}

/// Holds the test's bolt-era lock file from outside Docker (until dropped):
/// a node on it neither takes the lock nor sees another container hold it.
fn hold_lock_file(rig: &Rig) -> std::fs::File {
    let path = rig.dir.join("db.bolt");
    let lock = std::fs::File::create(&path).expect("the lock file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod the lock file");
    lock.lock().expect("hold the lock file");
    lock
}

/// Waits until the engine has restarted `node` at least twice.
async fn until_crash_looping(rig: &Rig, node: &Node) {
    until("the node to crash-loop", || async {
        let c = rig.docker.inspect_container(&node.id, None).await.ok()?;
        (c.restart_count.unwrap_or(0) >= 2).then_some(())
    })
    .await;
}

/// The names of the test's containers, sorted.
async fn names(rig: &Rig) -> Vec<String> {
    world(rig)
        .await
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// The image and `--rm` setting of the container named `name`.
async fn image_and_rm(rig: &Rig, name: &str) -> (String, bool) {
    let c = rig.docker.inspect_container(name, None).await.expect("the container");
    (
        c.config.and_then(|c| c.image).unwrap_or_default(),
        c.host_config.and_then(|h| h.auto_remove).unwrap_or(false),
    )
}

async fn crash_looping_primary_is_refused(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    migrated_by(&rig, generation, "9.0.0").await;
    let node = rig
        .start_node_with(spec("chainlink", OLD, generation, &[]), restart_unless_stopped)
        .await;
    until_crash_looping(&rig, &node).await;
    let before = names(&rig).await;
    let started = Instant::now();
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
    assert_eq!((run.code, outcome(&run)), (3, "refused"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains("is crash-looping: the engine has restarted it"),
        "{error}"
    );
    assert!(error.contains("restart policy (unless-stopped)"), "{error}");
    assert!(
        run.report["log_tail"]
            .to_string()
            .contains("is lower than database version"),
        "the last lines show why: {run:?}"
    );
    assert!(run.report["next_steps"].to_string().contains("--force"), "{run:?}");
    assert!(!error.contains("Docker Engine"), "{error}");
    assert_eq!(names(&rig).await, before, "nothing was created");

    // --force: the database refuses the new version too. The new container
    // never holds the lock, so the node is put back as it was, at once.
    let started = Instant::now();
    let run = upgrade(&rig, &node.name, NEW, &["--force", "--takeover-timeout", "2m"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    // Its exit code is lost when the engine restarted it before it was read.
    assert!(error.contains("the new") && error.contains("exited (code "), "{error}");
    assert!(
        error.contains("refuses a database a newer version has migrated"),
        "{error}"
    );
    assert!(
        !error.contains("migrated by the new version"),
        "the new version never held the lock: {error}"
    );
    assert!(run.report["state"].as_str().unwrap().contains("still down"), "{run:?}");
    assert_eq!(names(&rig).await, before, "nothing was left behind");
    let (image, _) = image_and_rm(&rig, &node.name).await;
    assert_eq!(image, rig.images.reference(OLD));
}

#[tokio::test]
async fn a_crash_looping_bolt_primary_is_refused_at_once() {
    crash_looping_primary_is_refused(Gen::Bolt, "ns-loop-bolt").await;
}

#[tokio::test]
async fn a_crash_looping_lease_primary_is_refused_at_once() {
    crash_looping_primary_is_refused(Gen::Lease, "ns-loop-lease").await;
}

/// A crash-looping node that the new version can run: `--force` recreates
/// it on the new image, and the new container takes the lock and serves.
#[tokio::test]
async fn force_recreates_a_crash_looping_node_on_the_new_image() {
    let rig = Rig::new("ns-force-loop").await;
    migrated_by(&rig, Gen::Lease, NEW).await;
    let node = rig
        .start_node_with(spec("chainlink", OLD, Gen::Lease, &[]), restart_unless_stopped)
        .await;
    until_crash_looping(&rig, &node).await;
    let run = upgrade(&rig, &node.name, NEW, &["--force"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(
        run.report["state"].as_str().unwrap().contains("it was down before"),
        "{run:?}"
    );
    assert!(
        run.report["handoffs"].as_array().unwrap().is_empty(),
        "no standby: {run:?}"
    );
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    assert_eq!(names(&rig).await, vec![node.name.clone()], "nothing left behind");
    let (image, _) = image_and_rm(&rig, &node.name).await;
    assert_eq!(image, rig.images.reference(NEW));
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    let policy = c.host_config.and_then(|h| h.restart_policy).and_then(|p| p.name);
    assert_eq!(
        policy,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED),
        "the operator's policy is kept"
    );
    rig.journal().assert_safe(Duration::MAX);
}

/// A node that exited: refused without `--force`, recreated with it.
#[tokio::test]
async fn force_recreates_a_stopped_node() {
    let rig = Rig::new("ns-force-stopped").await;
    let node = crate::upgrade::primary(&rig, Gen::Bolt, &[]).await;
    rig.stop(&node, 10).await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(error_of(&run).contains("is not running"), "{run:?}");
    let run = upgrade(&rig, &node.name, NEW, &["--force", "--dry-run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.report["plan"]["steps"]
            .to_string()
            .contains("confirm it takes the lock"),
        "{run:?}"
    );
    let run = upgrade(&rig, &node.name, NEW, &["--force"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    // The outcome is the progress display's last event.
    assert!(
        run.stderr.trim_end().ends_with("==> done: upgraded (exit 0)"),
        "{}",
        run.stderr
    );
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    assert_eq!(names(&rig).await, vec![node.name.clone()]);
    rig.journal().assert_safe(Duration::MAX);
}

async fn waiting_primary_is_refused(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let holder = rig.start_node(spec("holder", OLD, generation, &[])).await;
    rig.wait_serving(&holder, Duration::from_secs(20)).await;
    let node = rig
        .start_node(spec("chainlink", OLD, generation, &["DATABASE_TIMEOUT=0"]))
        .await;
    rig.wait_for_line(&node, Duration::from_secs(20), |l| {
        l.contains("Waiting indefinitely for lock") || l.contains("waiting for lease to expire")
    })
    .await;
    let before = world(&rig).await;
    for extra in [&[][..], &["--force"][..]] {
        let started = Instant::now();
        let run = upgrade(&rig, &node.name, NEW, extra).await;
        assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{extra:?}: {run:?}");
        let error = error_of(&run);
        assert!(
            error.contains("does not hold the node's lock: it runs but waits for the lock"),
            "{error}"
        );
        assert!(
            error.contains(&format!("{} (it answers on {}) holds it", holder.name, holder.addr)),
            "{error}"
        );
        assert!(
            run.report["next_steps"]
                .to_string()
                .contains(&format!("--container {}", holder.name)),
            "{run:?}"
        );
        assert_eq!(world(&rig).await, before, "{extra:?} changed something");
    }
    rig.journal().assert_safe(Duration::MAX);
}

#[tokio::test]
async fn a_bolt_primary_waiting_for_the_lock_is_refused_and_the_holder_named() {
    waiting_primary_is_refused(Gen::Bolt, "ns-wait-bolt").await;
}

#[tokio::test]
async fn a_lease_primary_waiting_for_the_lock_is_refused_and_the_holder_named() {
    waiting_primary_is_refused(Gen::Lease, "ns-wait-lease").await;
}

async fn rm_primary_is_upgraded(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let node = rig
        .start_node_with(spec("chainlink", OLD, generation, &[]), |h| h.auto_remove = Some(true))
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(
        run.report["warnings"].to_string().contains("was started with --rm"),
        "the supervisor warning: {run:?}"
    );
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    assert_eq!(names(&rig).await, vec![node.name.clone()], "nothing left behind");
    assert_eq!(
        image_and_rm(&rig, &node.name).await,
        (rig.images.reference(NEW), true),
        "the new node keeps --rm"
    );
    rig.journal().assert_safe(Duration::MAX);
}

#[tokio::test]
async fn a_bolt_primary_run_with_rm_is_upgraded() {
    rm_primary_is_upgraded(Gen::Bolt, "ns-rm-bolt").await;
}

#[tokio::test]
async fn a_lease_primary_run_with_rm_is_upgraded() {
    rm_primary_is_upgraded(Gen::Lease, "ns-rm-lease").await;
}

/// The rollback point of a `--rm` node is its settings: a node that runs
/// but serves nothing (something outside Docker holds its lock file) is
/// recreated with `--force`; the new one cannot take the lock either, so
/// the original is created again from its settings and started.
#[tokio::test]
async fn a_rm_node_is_created_again_from_its_settings_on_a_rollback() {
    let rig = Rig::new("ns-rm-back").await;
    let lock = hold_lock_file(&rig);
    let env = ["DATABASE_TIMEOUT=0", "CL_DOUBLE_FAULT=silent-wait"];
    let node = rig
        .start_node_with(spec("chainlink", OLD, Gen::Bolt, &env), |h| h.auto_remove = Some(true))
        .await;
    rig.wait_for_line(&node, Duration::from_secs(20), |l| {
        l.contains("Starting Chainlink Node")
    })
    .await;
    let run = upgrade(&rig, &node.name, NEW, &["--force", "--takeover-timeout", "3s"]).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    assert!(
        run.report["state"].as_str().unwrap().contains("running again"),
        "{run:?}"
    );
    assert_eq!(names(&rig).await, vec![node.name.clone()], "nothing left behind");
    assert_eq!(
        image_and_rm(&rig, &node.name).await,
        (rig.images.reference(OLD), true),
        "the original, as it was"
    );
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    assert_eq!(c.state.and_then(|s| s.running), Some(true));
    let env = c.config.and_then(|c| c.env).unwrap_or_default();
    assert!(env.contains(&"CL_DOUBLE_FAULT=silent-wait".to_string()), "{env:?}");
    drop(lock);
    rig.wait_serving(&node, Duration::from_secs(20)).await;
}

/// A standby that exits at boot under the node's restart policy restarts in
/// a loop: its exit is reported at once, with its code, as its own failure,
/// not as the engine not answering.
#[tokio::test]
async fn a_crash_looping_standby_is_an_exit_not_an_engine_error() {
    let rig = Rig::new("ns-standby-loop").await;
    let node = rig
        .start_node_with(spec("chainlink", OLD, Gen::Lease, &[]), restart_unless_stopped)
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let started = Instant::now();
    let run = upgrade(&rig, &node.name, CRASH, &[]).await;
    assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(error.contains("exited (code 2)"), "{error}");
    assert!(!error.contains("Docker Engine"), "{error}");
    assert!(
        run.report["log_tail"].to_string().contains("simulated crash at start"),
        "{run:?}"
    );
    assert_eq!(names(&rig).await, vec![node.name.clone()]);
    rig.wait_serving(&node, Duration::from_secs(20)).await;
}

/// A pair whose primary runs with `--rm`: `failover up` creates the
/// secondary without it (a standby must survive its stops); a switchover
/// and a pair upgrade, which stop the primary, are refused before any change.
#[tokio::test]
async fn a_pair_with_a_rm_primary() {
    let rig = Rig::new("ns-rm-pair").await;
    let env = ["DATABASE_TIMEOUT=0"];
    let node = rig
        .start_node_with(spec("chainlink", OLD, Gen::Lease, &env), |h| h.auto_remove = Some(true))
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let pair = crate::failover::Pair::new(&rig, node.clone());
    let run = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "pair-ready"), "{run:?}");
    assert!(
        !image_and_rm(&rig, &pair.secondary).await.1,
        "the secondary has no --rm"
    );
    let before = world(&rig).await;
    for args in [vec!["failover"], vec!["upgrade", "--tag", NEW]] {
        let run = pair.run(&rig, &args).await;
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{args:?}: {run:?}");
        let error = error_of(&run);
        assert!(
            error.contains(&format!("{} was started with --rm", node.name)),
            "{error}"
        );
        assert_eq!(world(&rig).await, before, "{args:?} changed something");
    }
    rig.journal().assert_safe(Duration::MAX);
}

/// Going back to an older version is refused before anything changes,
/// even with `--force` across a minor version: the node would refuse the
/// database the newer version migrated. For a node and for a pair.
#[tokio::test]
async fn a_downgrade_is_refused_before_any_change() {
    let rig = Rig::new("ns-downgrade").await;
    let node = rig
        .start_node(spec("chainlink", NEW, Gen::Lease, &["DATABASE_TIMEOUT=0"]))
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let pair = crate::failover::Pair::new(&rig, node.clone());
    let alone = format!("{}-nobody", rig.id);
    let check = async |args: &[&str], secondary: &str| {
        let before = world(&rig).await;
        let mut all = args.to_vec();
        all.extend(["--container", &node.name, "--secondary", secondary, "--tag", OLD]);
        let started = Instant::now();
        let run = rig.cl_maint(&all).await;
        assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{all:?}: {run:?}");
        let error = error_of(&run);
        assert!(error.contains(&format!("{OLD} is older than {NEW}")), "{error}");
        assert!(
            run.report["next_steps"]
                .to_string()
                .contains("restore the database snapshot"),
            "{run:?}"
        );
        assert_eq!(world(&rig).await, before, "{all:?} changed something");
    };
    let port = crate::rig::free_port().to_string();
    check(&["upgrade", "--standby-port", &port], &alone).await;
    check(&["upgrade", "--standby-port", &port, "--force"], &alone).await;
    let run = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    check(&["upgrade"], &pair.secondary).await;
    check(&["upgrade", "--force", "--dry-run"], &pair.secondary).await;
}

/// `--port` (or the config's `port`) guards against the wrong container:
/// upgrade and failover refuse one that publishes another port, status and
/// health say so.
#[tokio::test]
async fn a_node_on_another_port_than_set_is_refused_or_named() {
    let rig = Rig::new("ns-port").await;
    let node = crate::upgrade::primary(&rig, Gen::Lease, &[]).await;
    let wrong = crate::rig::free_port().to_string();
    let secondary = format!("{}-secondary", rig.id);
    let before = world(&rig).await;
    let says = format!(
        "the node's port is set to {wrong} (--port or the config's `port`), but {}",
        node.name
    );
    for args in [vec!["upgrade", "--tag", NEW], vec!["failover"], vec!["failover", "up"]] {
        let mut all = args.clone();
        all.extend(["--container", &node.name, "--secondary", &secondary, "--port", &wrong]);
        let run = rig.cl_maint(&all).await;
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{all:?}: {run:?}");
        assert!(error_of(&run).contains(&says), "{run:?}");
    }
    for command in ["status", "health"] {
        let all = [
            command,
            "--container",
            &node.name,
            "--secondary",
            &secondary,
            "--port",
            &wrong,
        ];
        let run = rig.cl_maint(&all).await;
        assert_eq!(run.code, 0, "{all:?}: {run:?}");
        assert!(run.report["summary"].as_str().unwrap().contains(&says), "{run:?}");
    }
    assert_eq!(world(&rig).await, before);
}

/// A node that runs but answers nothing where cl-maint asks (here: its
/// lock file is held outside Docker, and it logs no waiting line) is refused
/// by a dry run too, saying it does not answer from where cl-maint runs.
#[tokio::test]
async fn a_dry_run_says_when_the_node_does_not_answer_from_here() {
    let rig = Rig::new("ns-dry-silent").await;
    let lock = hold_lock_file(&rig);
    let env = ["DATABASE_TIMEOUT=0", "CL_DOUBLE_FAULT=silent-wait"];
    let node = rig.start_node(spec("chainlink", OLD, Gen::Bolt, &env)).await;
    rig.wait_for_line(&node, Duration::from_secs(20), |l| {
        l.contains("Starting Chainlink Node")
    })
    .await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, NEW, &["--dry-run"]).await;
    assert_eq!((run.code, outcome(&run)), (3, "refused"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains(&format!(
            "runs but does not answer on {} from where cl-maint runs",
            node.addr
        )),
        "{error}"
    );
    assert!(
        run.report["next_steps"].to_string().contains("--probe engine"),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before);
    drop(lock);
}

/// A node configured by v1's environment variables cannot be moved to a 2.x
/// release by cloning its settings (2.x refuses them at boot): refused
/// before any change or pull, even with `--force`.
#[tokio::test]
async fn a_v1_node_configured_by_env_is_not_moved_to_2x() {
    let rig = Rig::new("ns-v1-v2").await;
    let env = ["DATABASE_URL=postgresql://cl:s3cret@db:5432/cl", "ETH_CHAIN_ID=1"];
    let node = crate::upgrade::primary(&rig, Gen::Lease, &env).await;
    let before = world(&rig).await;
    for extra in [&[][..], &["--force"][..]] {
        let started = Instant::now();
        let run = upgrade(&rig, &node.name, "2.10.0", extra).await;
        assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{extra:?}: {run:?}");
        let error = error_of(&run);
        assert!(
            error.contains(
                "2.x refuses the legacy environment variables this node is configured by (ROOT, DATABASE_URL, ETH_CHAIN_ID)"
            ),
            "{error}"
        );
        assert!(run.report["next_steps"].to_string().contains("TOML"), "{run:?}");
        assert!(!format!("{run:?}").contains("s3cret"), "the password never appears");
        assert_eq!(world(&rig).await, before, "{extra:?} changed something");
    }
}
