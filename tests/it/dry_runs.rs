//! `--dry-run` of the failover commands on the real engine: the plan and the
//! equivalent docker commands, and nothing changed.

use crate::failover::{Pair, pair_up};
use crate::rig::{Gen, Rig};
use crate::upgrade::{outcome, primary, world};

#[tokio::test]
async fn failover_dry_runs_change_nothing() {
    let rig = Rig::new("dry-failover").await;
    // failover up: the secondary it would create, and nothing created.
    let node = primary(&rig, Gen::Lease, &["DATABASE_TIMEOUT=0"]).await;
    let alone = Pair::new(&rig, node.clone());
    let before = world(&rig).await;
    let run = alone.run(&rig, &["failover", "up", "--dry-run"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let plan = &run.report["plan"];
    assert_eq!(plan["containers"][0]["name"], alone.secondary.as_str(), "{plan}");
    assert_eq!(plan["containers"][0]["role"], "secondary", "{plan}");
    assert!(
        plan["docker_commands"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("docker run -d --name {}", alone.secondary)),
        "{plan}"
    );
    assert_eq!(world(&rig).await, before, "nothing was created");

    // With the pair in place: the switchover's plan, and the lock stays.
    let rig = Rig::new("dry-switch").await;
    let pair = pair_up(&rig, Gen::Lease).await;
    let before = world(&rig).await;
    let run = pair.run(&rig, &["failover", "--dry-run"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let plan = &run.report["plan"];
    let (p, s) = (&pair.primary.name, &pair.secondary);
    assert!(
        plan["steps"].to_string().contains(&format!("stop {p} gracefully")),
        "{plan}"
    );
    assert!(
        plan["steps"].to_string().contains(&format!("{s} takes the lock")),
        "{plan}"
    );
    assert!(
        plan["docker_commands"]
            .to_string()
            .contains(&format!("docker stop -t 15 {p}")),
        "{plan}"
    );
    assert!(
        plan["docker_commands"]
            .to_string()
            .contains(&format!("docker start {p}")),
        "{plan}"
    );
    assert!(
        run.report["state"]
            .as_str()
            .unwrap()
            .contains(&format!("{p} holds the lock")),
        "{run:?}"
    );
    let held = pair.run(&rig, &["failover", "--hold", "--dry-run"]).await;
    assert!(held.report["plan"]["steps"].to_string().contains("--hold"), "{held:?}");
    assert!(
        !held.report["plan"]["docker_commands"]
            .to_string()
            .contains(&format!("docker start {p}"))
    );
    // failover back: the lock is home already.
    let back = pair.run(&rig, &["failover", "back", "--dry-run"]).await;
    assert_eq!((back.code, outcome(&back)), (0, "nothing-to-do"), "{back:?}");
    assert_eq!(world(&rig).await, before, "nothing changed");
    assert_eq!(
        rig.wait_serving(&pair.primary, std::time::Duration::from_secs(5))
            .await
            .status,
        200
    );
    rig.journal().assert_safe(std::time::Duration::MAX);
}

/// `recover --dry-run` says what it would finish or undo, and leaves it.
#[tokio::test]
async fn recover_dry_run_says_what_it_would_do() {
    let rig = Rig::new("dry-recover").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let run = crate::upgrade::upgrade(&rig, &node.name, crate::rig::NEW, &["--keep-old"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let old = format!("{}-cl-maint-old", node.name);
    let before = world(&rig).await;
    let run = rig.cl_maint(&["recover", "--container", &node.name, "--dry-run"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let plan = &run.report["plan"];
    assert!(plan["steps"].to_string().contains(&format!("remove {old}")), "{plan}");
    assert!(
        plan["docker_commands"]
            .to_string()
            .contains(&format!("docker rm -f {old}")),
        "{plan}"
    );
    assert_eq!(world(&rig).await, before, "nothing changed");
    // The real run does it.
    let run = rig.cl_maint(&["recover", "--container", &node.name, "--yes"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(world(&rig).await.iter().all(|c| !c.starts_with(&old)), "{run:?}");
}
