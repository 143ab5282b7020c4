//! `cl-maint upgrade` when things go wrong, on the real engine: preflight
//! refusals, pull failures, bad new versions, timeouts and interrupts. Each
//! ends in a known state with a distinct exit code.

use std::time::Duration;

use crate::rig::{CRASH, CRASH_AFTER_LOCK, Gen, NEVER_PULLED, NEW, NodeSpec, OLD, Rig, SILENT, free_port};
use crate::upgrade::{outcome, primary, upgrade, upgrade_args, world};

#[tokio::test]
async fn preflight_refusals_change_nothing() {
    let rig = Rig::new("up-refuse").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let port = node.addr.rsplit(':').next().unwrap().to_string();
    // A running container publishing the port the standby would use.
    let squatter = rig
        .start_node(NodeSpec {
            suffix: "squat",
            tag: OLD,
            generation: Gen::Lease,
            env: vec![],
        })
        .await;
    let taken = squatter.addr.rsplit(':').next().unwrap().to_string();
    let free = free_port().to_string();
    let missing = format!("{}-nope", rig.id);
    let before = world(&rig).await;
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--container", &missing, "--tag", NEW, "--standby-port", &free],
            3,
            "there is no container",
        ),
        (
            vec!["--container", &node.name, "--tag", NEW, "--standby-port", &taken],
            3,
            "is taken by container",
        ),
        (
            vec!["--container", &node.name, "--tag", NEW, "--standby-port", &port],
            3,
            "the port",
        ),
        (
            vec!["--container", &node.name, "--tag", "no:colons", "--standby-port", &free],
            2,
            "invalid tag",
        ),
        (
            vec![
                "--container",
                &node.name,
                "--tag",
                NEW,
                "--image",
                "Bad/Repo",
                "--standby-port",
                &free,
            ],
            2,
            "invalid image repository",
        ),
        (
            vec!["--container", &node.name, "--tag", NEW, "--standby-port", "0"],
            2,
            "standby-port",
        ),
        (
            vec![
                "--container",
                &node.name,
                "--tag",
                NEW,
                "--wait-timeout",
                "5 minutes",
                "--standby-port",
                &free,
            ],
            2,
            "wait-timeout",
        ),
        (
            vec![
                "--container",
                &node.name,
                "--tag",
                NEW,
                "--standby-port",
                &free,
                "--host",
                "tcp://127.0.0.1:1",
            ],
            4,
            "did not answer",
        ),
    ];
    for (args, code, says) in cases {
        let mut full = vec!["upgrade"];
        full.extend(args.iter().copied());
        let run = rig.cl_maint(&full).await;
        assert_eq!(run.code, code, "{full:?}: {run:?}");
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(text.contains(says), "{full:?} should say {says:?}: {text}");
        assert_eq!(world(&rig).await, before, "{full:?} changed something");
    }
    // A node that publishes no host port for 6688, with `--probe direct`: a
    // takeover could not be confirmed (tests/it/reach.rs upgrades it
    // through the engine).
    let hidden = format!("{}-hidden", rig.id);
    let db = rig.database().await;
    let body = bollard::models::ContainerCreateBody {
        image: Some(rig.images.reference(OLD)),
        env: Some(vec![
            "ROOT=/chainlink".into(),
            "CL_DOUBLE_LOCK=lease".into(),
            format!("DATABASE_URL={}", db.url()),
        ]),
        labels: Some(rig.labels()),
        host_config: Some(bollard::models::HostConfig {
            binds: Some(vec![format!("{}:/chainlink", rig.dir.display())]),
            network_mode: Some(db.network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
        .name(&hidden)
        .build();
    let created = rig.docker.create_container(Some(options), body).await.unwrap();
    rig.docker.start_container(&created.id, None).await.unwrap();
    let before = world(&rig).await;
    let run = upgrade(&rig, &hidden, NEW, &["--probe", "direct"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.report["error"].as_str().unwrap().contains("publishes no host port"),
        "{run:?}"
    );
    assert!(
        run.report["next_steps"].to_string().contains("6688:6688"),
        "says how to fix it"
    );
    assert_eq!(world(&rig).await, before);
    // A stopped primary, and a container left by an interrupted run.
    rig.stop(&squatter, 10).await;
    let leftover = rig
        .start_node(NodeSpec {
            suffix: "chainlink-cl-maint-standby",
            tag: OLD,
            generation: Gen::Lease,
            env: vec![],
        })
        .await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.report["error"].as_str().unwrap().contains(&leftover.name),
        "{run:?}"
    );
    assert!(
        run.report["next_steps"].to_string().contains("docker rm -f"),
        "says how to recover"
    );
    let run = upgrade(&rig, &squatter.name, NEW, &[]).await;
    assert_eq!(run.code, 3);
    assert!(
        run.report["error"].as_str().unwrap().contains("is not running"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_tag_that_does_not_exist_changes_nothing() {
    let rig = Rig::new("up-notag").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, "1.9.9-nope", &[]).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    assert_eq!(world(&rig).await, before);
}

async fn rolled_back(generation: Gen, tag: &str, extra: &[&str], test: &str) -> (Rig, crate::rig::Run) {
    let rig = Rig::new(test).await;
    let node = primary(&rig, generation, &[]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, node.name.as_str(), tag, extra).await;
    assert_eq!((run.code, outcome(&run)), (5, "rolled-back"), "{run:?}");
    assert_eq!(
        world(&rig).await,
        before,
        "the original primary, untouched, and no leftovers"
    );
    assert_eq!(
        rig.wait_serving(&node, Duration::from_secs(20)).await.status,
        200,
        "the original holds the lock"
    );
    assert!(rig.journal().overlaps.is_empty());
    (rig, run)
}

#[tokio::test]
async fn a_standby_that_exits_at_once_is_rolled_back() {
    let (_rig, run) = rolled_back(Gen::Bolt, CRASH, &[], "up-crash").await;
    assert!(
        run.report["log_tail"].to_string().contains("simulated crash at start"),
        "{run:?}"
    );
    assert!(
        run.report["error"].as_str().unwrap().contains("exited (code 2)"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_standby_that_never_waits_for_the_lock_is_rolled_back() {
    let (_rig, run) = rolled_back(Gen::Lease, SILENT, &["--wait-timeout", "3s"], "up-silent").await;
    assert!(run.report["error"].as_str().unwrap().contains("within 3s"), "{run:?}");
}

#[tokio::test]
async fn a_takeover_that_times_out_before_the_new_version_held_the_lock_is_rolled_back() {
    // SIGKILL leaves the lease held for 10 s: the standby cannot take it within 2 s.
    let (rig, run) = rolled_back(Gen::Lease, NEW, &["--kill", "--takeover-timeout", "2s"], "up-takeover").await;
    assert!(
        run.report["state"].as_str().unwrap().contains("holds the lock again"),
        "{run:?}"
    );
    let versions: Vec<String> = rig.journal().tenures.iter().map(|t| t.version.clone()).collect();
    assert!(
        versions.iter().all(|v| v == OLD),
        "the new version never held the lock: {versions:?}"
    );
}

/// Starts `cl-maint upgrade … --json` as a child process.
fn spawn_upgrade(container: &str, tag: &str, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(upgrade_args(container, tag, extra))
        .arg("--json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start cl-maint")
}

/// Polls the container's running state until it is `running`.
async fn until_running(rig: &Rig, name: &str, running: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(c) = rig.docker.inspect_container(name, None).await
            && c.state.and_then(|s| s.running) == Some(running)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never got to running={running}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGINT to the child this test started (by its PID); its report.
async fn interrupt(child: tokio::process::Child) -> crate::rig::Run {
    let pid = child.id().expect("cl-maint's pid") as i32;
    // SAFETY: kill(2) on a child we spawned and still own.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("cl-maint ends after the interrupt")
        .expect("cl-maint's output");
    crate::rig::Run::from_output(out)
}

#[tokio::test]
async fn an_interrupt_while_the_standby_waits_rolls_back() {
    let rig = Rig::new("up-sigint").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let child = spawn_upgrade(&node.name, SILENT, &["--wait-timeout", "60s"]);
    until_running(&rig, &format!("{}-cl-maint-standby", node.name), true).await;
    let run = interrupt(child).await;
    assert_eq!((run.code, outcome(&run)), (130, "interrupted"), "{run:?}");
    assert_eq!(world(&rig).await, before, "standby removed, primary untouched");
    assert_eq!(rig.http(&node, "/health").await.unwrap().status, 200);
}

#[tokio::test]
async fn an_interrupt_after_the_old_node_stopped_finishes_the_upgrade() {
    let rig = Rig::new("up-sigint-late").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let child = spawn_upgrade(&node.name, NEW, &[]);
    // The takeover is in flight once cl-maint has stopped the old node.
    until_running(&rig, &node.name, false).await;
    let run = interrupt(child).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(run.stderr.contains("finishing the upgrade"), "{}", run.stderr);
    assert_eq!(world(&rig).await.len(), 1, "only the new node is left");
    assert_eq!(rig.wait_serving(&node, Duration::from_secs(20)).await.status, 200);
    assert!(rig.journal().overlaps.is_empty());
}

#[tokio::test]
async fn a_new_version_that_crashes_after_migrating_needs_a_human() {
    let rig = Rig::new("up-migrated").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let run = upgrade(&rig, &node.name, CRASH_AFTER_LOCK, &[]).await;
    assert_eq!((run.code, outcome(&run)), (6, "needs-human"), "{run:?}");
    let report = &run.report;
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("now refuses the database as too new"),
        "{report}"
    );
    assert!(
        report["state"].as_str().unwrap().contains("NO node holds the lock"),
        "{report}"
    );
    assert!(
        report["next_steps"]
            .to_string()
            .contains("restore the database snapshot"),
        "{report}"
    );
    assert!(
        report["left"].to_string().contains("cl-maint-standby"),
        "the report names what it left: {report}"
    );
    assert!(rig.journal().overlaps.is_empty(), "never two holders, even here");
}

#[tokio::test]
async fn pull_never_refuses_an_image_the_engine_lacks() {
    let rig = Rig::new("up-pullnever").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, NEVER_PULLED, &["--pull", "never"]).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    assert!(
        run.report["error"].as_str().unwrap().contains("--pull never"),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before);
    assert!(
        rig.docker
            .inspect_image(&rig.images.reference(NEVER_PULLED))
            .await
            .is_err(),
        "nothing was pulled"
    );
}

#[tokio::test]
async fn upgrades_from_images_loaded_on_the_engine_with_pull_never() {
    let rig = Rig::new("up-local").await;
    // Images that exist only on this engine, as after `docker load` on an air-gapped host.
    let repo = format!("cl-maint-local/{}", rig.id);
    let images = crate::rig::images::build_local(&crate::rig::rig_dir(), &repo)
        .await
        .expect("build images locally");
    let spec = NodeSpec {
        suffix: "chainlink",
        tag: OLD,
        generation: Gen::Bolt,
        env: vec![],
    };
    let node = rig.start_node_from(spec, &images.reference(OLD)).await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let run = upgrade(&rig, &node.name, NEW, &["--pull", "never"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(run.stderr.contains("--pull never"), "{}", run.stderr);
    assert!(rig.journal().overlaps.is_empty());
    // Remove the node, then this test's images.
    let force = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .build();
    rig.docker.remove_container(&node.name, Some(force)).await.unwrap();
    for tag in [OLD, NEW, "latest", CRASH, SILENT, CRASH_AFTER_LOCK, NEVER_PULLED] {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        let _ = rig
            .docker
            .remove_image(&images.reference(tag), Some(options), None)
            .await;
    }
}

/// A new version that crashes after taking the lock, on a node with a
/// restart policy: the engine restarts the standby at once, so it counts as
/// running again. Its restart count gives the crash away; the run must not
/// wait out the takeover deadline with no node serving.
#[tokio::test]
async fn a_crash_looping_standby_is_seen_at_its_first_crash() {
    let rig = Rig::new("up-crashloop").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let policy = bollard::models::ContainerUpdateBody {
        restart_policy: Some(bollard::models::RestartPolicy {
            name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    rig.docker_of(&node)
        .update_container(&node.id, policy)
        .await
        .expect("set the restart policy");
    let run = upgrade(&rig, &node.name, CRASH_AFTER_LOCK, &["--takeover-timeout", "10m"]).await;
    assert_eq!((run.code, outcome(&run)), (6, "needs-human"), "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exited") && !error.contains("within"),
        "the crash is reported as such, not as a deadline passing: {error}"
    );
    assert!(rig.journal().overlaps.is_empty(), "never two holders");
    // Seen at its first crash: the log the report carries shows one crash.
    // (The next crash can only come once the dead holder's lease expired,
    // about 10 s on; a run that misses the first restart, a 100 ms window,
    // reports two or more.)
    let crashes = run.report["log_tail"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| {
            l.as_str()
                .unwrap_or_default()
                .contains("simulated crash after taking the lock")
        })
        .count();
    assert_eq!(crashes, 1, "{run:?}");
    // And not left to crash-loop under its restart policy.
    let standby = format!("{}-cl-maint-standby", node.name);
    let inspect = rig
        .docker_of(&node)
        .inspect_container(&standby, None)
        .await
        .expect("the report names the standby as left");
    assert_eq!(inspect.state.and_then(|s| s.running), Some(false), "left stopped");
}
