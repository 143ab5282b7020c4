//! The run lock on the real engine: a second state-changing run on a node
//! is refused while the first runs (exit 11, nothing changed), read-only
//! commands are not, a lock left by a SIGKILLed run is taken over by the
//! next run, and a lock held by another machine needs `--break-lock`.

use std::collections::HashMap;
use std::time::Duration;

use crate::recover::{id_of, signal_and_wait, spawn, until};
use crate::rig::{Gen, NEW, Rig, SILENT, free_port};
use crate::upgrade::{outcome, primary, world};

fn lock_name(node: &str) -> String {
    format!("{node}-cl-maint-lock")
}

/// `upgrade --tag SILENT`: its standby never says it waits, so the run sits
/// in its wait (holding the run lock) until the test ends it.
fn start_a_long_upgrade(node: &str) -> tokio::process::Child {
    let port = free_port().to_string();
    let args = [
        "upgrade",
        "--container",
        node,
        "--tag",
        SILENT,
        "--standby-port",
        &port,
        "--wait-timeout",
        "60s",
    ];
    spawn(&args.map(String::from))
}

#[tokio::test]
async fn a_second_run_is_refused_while_the_first_runs() {
    let rig = Rig::new("lock-second").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let mut first = start_a_long_upgrade(&node.name);
    let standby = format!("{}-cl-maint-standby", node.name);
    let standby_runs = || async {
        let c = rig.docker.inspect_container(&standby, None).await.ok();
        c.and_then(|c| c.state?.running) == Some(true)
    };
    assert!(until(&mut first, standby_runs).await, "the first run started");
    let before = world(&rig).await;
    let secondary = format!("{}-secondary", rig.id);
    for args in [
        vec!["upgrade", "--container", &node.name, "--tag", NEW],
        vec!["failover", "up", "--container", &node.name, "--secondary", &secondary],
        vec!["recover", "--container", &node.name],
        vec!["recover", "--container", &node.name, "--break-lock"],
    ] {
        let run = rig.cl_maint(&args).await;
        assert_eq!((run.code, outcome(&run)), (11, "run-locked"), "{args:?}: {run:?}");
        let error = run.report["error"].as_str().unwrap();
        assert!(
            error.contains("in progress") && error.contains("cl-maint upgrade"),
            "names the owner: {error}"
        );
        assert!(error.contains(&format!("pid {}", first.id().unwrap())), "{error}");
        assert!(run.report["next_steps"].to_string().contains("wait"), "{run:?}");
        assert_eq!(world(&rig).await, before, "{args:?} changed something");
    }
    // Read-only commands are not refused; status says a run is in progress.
    let status = rig.cl_maint(&["status", "--container", &node.name]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status.report["run_in_progress"]["command"]
            .as_str()
            .unwrap()
            .contains("upgrade"),
        "{status:?}"
    );
    // A dry run takes no lock, but says a run is in progress.
    let dry = rig
        .cl_maint(&["upgrade", "--container", &node.name, "--tag", NEW, "--dry-run"])
        .await;
    assert_eq!(dry.code, 11, "{dry:?}");
    assert_eq!(world(&rig).await, before);
    // The first run, interrupted, rolls back and releases the lock.
    let first = signal_and_wait(first, libc::SIGINT).await;
    assert_eq!(first.code, 130, "{first:?}");
    assert!(
        id_of(&rig, &lock_name(&node.name)).await.is_none(),
        "the lock was released"
    );
    assert_eq!(world(&rig).await.len(), 1, "{:?}", world(&rig).await);
}

#[tokio::test]
async fn a_lock_left_by_a_killed_run_is_taken_over() {
    let rig = Rig::new("lock-stale").await;
    let node = primary(&rig, Gen::Bolt, &["DATABASE_TIMEOUT=0"]).await;
    let mut first = start_a_long_upgrade(&node.name);
    let standby = format!("{}-cl-maint-standby", node.name);
    assert!(until(&mut first, || async { id_of(&rig, &standby).await.is_some() }).await);
    signal_and_wait(first, libc::SIGKILL).await;
    let stale = id_of(&rig, &lock_name(&node.name))
        .await
        .expect("a SIGKILLed run leaves its lock");
    // The same command again takes the stale lock and points at recover.
    let port = free_port().to_string();
    let again = rig
        .cl_maint(&[
            "upgrade",
            "--container",
            &node.name,
            "--tag",
            NEW,
            "--standby-port",
            &port,
        ])
        .await;
    assert_eq!(again.code, 3, "{again:?}");
    assert!(
        again.report["next_steps"].to_string().contains("cl-maint recover"),
        "{again:?}"
    );
    assert!(
        id_of(&rig, &lock_name(&node.name)).await.is_none(),
        "stale lock taken over, then released"
    );
    // Recover: the original kept, the standby gone.
    let run = rig.cl_maint(&["recover", "--container", &node.name]).await;
    assert_eq!((run.code, outcome(&run)), (0, "recovered"), "{run:?}");
    assert_eq!(world(&rig).await.len(), 1, "{:?}", world(&rig).await);
    assert_eq!(rig.http(&node, "/health").await.unwrap().status, 200);
    assert_ne!(id_of(&rig, &lock_name(&node.name)).await, Some(stale));
    assert!(rig.journal().overlaps.is_empty());
}

#[tokio::test]
async fn a_lock_held_from_another_machine_needs_break_lock() {
    let rig = Rig::new("lock-remote").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    // A lock as a run on another machine leaves it.
    let mut labels = rig.labels();
    labels.extend(HashMap::from([
        ("io.cl-maint.primary".to_string(), node.name.clone()),
        ("io.cl-maint.role".to_string(), "lock".to_string()),
        ("io.cl-maint.lock.host".to_string(), "ci-runner-elsewhere".to_string()),
        ("io.cl-maint.lock.pid".to_string(), "4242".to_string()),
        ("io.cl-maint.lock.command".to_string(), "cl-maint failover".to_string()),
        ("io.cl-maint.lock.since".to_string(), "2026-01-01T00:00:00Z".to_string()),
    ]));
    let body = bollard::models::ContainerCreateBody {
        image: Some(rig.images.reference(crate::rig::OLD)),
        labels: Some(labels),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
        .name(&lock_name(&node.name))
        .build();
    rig.docker.create_container(Some(options), body).await.unwrap();
    let run = rig
        .cl_maint(&["upgrade", "--container", &node.name, "--tag", NEW])
        .await;
    assert_eq!(run.code, 11, "{run:?}");
    assert!(
        run.report["error"].as_str().unwrap().contains("ci-runner-elsewhere"),
        "{run:?}"
    );
    assert!(run.report["next_steps"].to_string().contains("--break-lock"), "{run:?}");
    // The lock is no leftover: status sees one holder and the run in progress.
    let status = rig.cl_maint(&["status", "--container", &node.name]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.report["members"].as_array().unwrap().len(), 1, "{status:?}");
    assert_eq!(status.report["run_in_progress"]["host"], "ci-runner-elsewhere");
    let broken = rig
        .cl_maint(&["recover", "--container", &node.name, "--break-lock"])
        .await;
    assert_eq!((broken.code, outcome(&broken)), (0, "nothing-to-do"), "{broken:?}");
    assert!(id_of(&rig, &lock_name(&node.name)).await.is_none());
    // And now an upgrade runs.
    let run = crate::upgrade::upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    rig.wait_serving(&node, Duration::from_secs(20)).await;
}
