//! `--before-upgrade` and `--after-upgrade` on the real engine: a failing
//! hook refuses before any change, and a real `pg_dump` of the node's
//! PostgreSQL, taken by the hook, holds the database as the old version
//! left it.

use crate::rig::{Gen, NEW, OLD, Rig};
use crate::upgrade::{outcome, primary, upgrade, world};

/// A before-upgrade hook that fails: refused (exit 3) after the pull,
/// nothing changed, the hook's output in the report.
#[tokio::test]
async fn a_failing_before_upgrade_hook_refuses_and_changes_nothing() {
    let rig = Rig::new("hook-fails").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let hook = "echo \"no snapshot of $CL_MAINT_NODE ($CL_MAINT_OLD_VERSION)\"; exit 2";
    let run = upgrade(&rig, &node.name, NEW, &["--before-upgrade", hook]).await;
    assert_eq!((run.code, outcome(&run)), (3, "refused"), "{run:?}");
    let ran = &run.report["hooks"][0];
    assert_eq!(
        (&ran["hook"], &ran["exit_code"]),
        (&"before-upgrade".into(), &2.into()),
        "{run:?}"
    );
    assert_eq!(
        ran["output"][0],
        format!("no snapshot of {} ({OLD})", node.name),
        "{run:?}"
    );
    assert!(
        run.report["error"].as_str().unwrap().contains("failed (exit 2)"),
        "{run:?}"
    );
    assert_eq!(world(&rig).await, before, "nothing changed");
    assert_eq!(
        rig.wait_serving(&node, std::time::Duration::from_secs(5)).await.status,
        200
    );
}

/// The snapshot recipe: `pg_dump` of the node's database from the hook,
/// before the new version can migrate it; the after hook learns the new
/// version. The database's password, in the hook's own command, is
/// redacted in the report.
#[tokio::test]
async fn a_pg_dump_from_the_before_hook_holds_the_database_as_the_old_version_left_it() {
    let rig = Rig::new("hook-pgdump").await;
    let db = rig.database().await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let dump = rig.dir.join("before-upgrade.sql");
    let before = format!("pg_dump '{}' -f {}", db.host_url(), dump.display());
    let after = "echo \"$CL_MAINT_NODE runs $CL_MAINT_NEW_VERSION (was $CL_MAINT_OLD_VERSION)\"";
    let run = upgrade(
        &rig,
        &node.name,
        NEW,
        &["--before-upgrade", &before, "--after-upgrade", after],
    )
    .await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    let hooks = run.report["hooks"].as_array().expect("hooks in the report");
    assert_eq!(hooks.len(), 2, "{run:?}");
    assert_eq!(hooks[0]["exit_code"], 0, "{run:?}");
    assert_eq!(
        hooks[1]["output"][0],
        format!("{} runs {NEW} (was {OLD})", node.name),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains(&db.password) && !run.stderr.contains(&db.password),
        "the password in the hook's command is redacted"
    );
    let text = std::fs::read_to_string(&dump).expect("the hook wrote its dump");
    assert!(
        text.contains("CREATE TABLE public.lease_lock"),
        "the lease table is in the dump"
    );
    assert!(
        text.contains("CREATE TABLE public.node_versions"),
        "the version table too"
    );
    // The new version had not run yet: the database says OLD only.
    let versions = db.psql("SELECT string_agg(version, ',') FROM node_versions").await;
    assert_eq!(versions, NEW, "the new version migrated it afterwards");
    assert!(
        text.contains(&format!("{OLD}\t")) && !text.contains(&format!("{NEW}\t")),
        "the dump holds the old version's row only"
    );
}

/// A pair's upgrade runs the hooks too: a failing before hook refuses it
/// before either member changes; a passing one lets it through, and the
/// after hook sees the new version.
#[tokio::test]
async fn a_pair_upgrade_runs_the_hooks() {
    let rig = Rig::new("hook-pair").await;
    let pair = crate::failover::pair_up(&rig, Gen::Lease).await;
    let before = world(&rig).await;
    let refused = pair
        .run(&rig, &["upgrade", "--tag", NEW, "--before-upgrade", "exit 1"])
        .await;
    assert_eq!((refused.code, outcome(&refused)), (3, "refused"), "{refused:?}");
    assert_eq!(refused.report["hooks"][0]["exit_code"], 1, "{refused:?}");
    assert_eq!(world(&rig).await, before, "neither member changed");
    let done = pair
        .run(
            &rig,
            &[
                "upgrade",
                "--tag",
                NEW,
                "--before-upgrade",
                "echo snapshot",
                "--after-upgrade",
                "echo \"now $CL_MAINT_NEW_VERSION\"",
            ],
        )
        .await;
    assert_eq!((done.code, outcome(&done)), (0, "upgraded"), "{done:?}");
    assert_eq!(done.report["hooks"][1]["output"][0], format!("now {NEW}"), "{done:?}");
}
