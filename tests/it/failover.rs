//! `cl-maint failover`, `status` and `health` end to end on the real engine,
//! against the node double in both lock generations.

use std::time::Duration;

use crate::rig::{Gen, Node, Rig, free_port};
use crate::upgrade::primary;

const MARGIN: Duration = Duration::from_millis(600);
/// A short lease, so that a takeover after SIGKILL (which waits for the
/// lease to expire) is quick.
const SHORT_LEASE: &str = "LEASE_LOCK_DURATION=3s";

/// The pair of one test: the primary and the secondary's name and port.
pub struct Pair {
    pub primary: Node,
    pub secondary: String,
    pub port: u16,
}

impl Pair {
    /// `primary` and the secondary `<test id>-secondary` on a fresh port.
    pub fn new(rig: &Rig, primary: Node) -> Pair {
        Pair {
            primary,
            secondary: format!("{}-secondary", rig.id),
            port: free_port(),
        }
    }

    /// `cl-maint ARGS --container P --secondary S --secondary-port N --json`.
    pub async fn run(&self, rig: &Rig, args: &[&str]) -> crate::rig::Run {
        let port = self.port.to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--container", &self.primary.name, "--secondary", &self.secondary]);
        if args[0] == "failover" && self.port != 0 {
            all.extend(["--secondary-port", &port]);
        }
        rig.cl_maint(&all).await
    }

    /// The secondary as a rig node.
    pub async fn secondary_node(&self, rig: &Rig) -> Node {
        let c = rig
            .docker
            .inspect_container(&self.secondary, None)
            .await
            .unwrap_or_else(|e| panic!("no secondary {}: {e}", self.secondary));
        Node {
            id: c.id.unwrap(),
            name: self.secondary.clone(),
            addr: format!("127.0.0.1:{}", self.port),
        }
    }
}

/// A primary serving on OLD, and `failover up` done.
pub async fn pair_up(rig: &Rig, generation: Gen) -> Pair {
    // Bolt era: the primary must wait forever to take its turn as standby.
    let node = primary(rig, generation, &[SHORT_LEASE, "DATABASE_TIMEOUT=0"]).await;
    let pair = Pair::new(rig, node);
    let run = pair.run(rig, &["failover", "up"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "pair-ready", "{run:?}");
    pair
}

/// `cl-maint ARGS --container P --secondary S` without `--json`: its stdout.
async fn human(pair: &Pair, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(args)
        .args(["--container", &pair.primary.name, "--secondary", &pair.secondary])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run cl-maint");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `status --json EXTRA…`: the document.
pub async fn status_of(rig: &Rig, pair: &Pair, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["status"];
    args.extend(extra);
    let run = pair.run(rig, &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    run.report
}

/// A primary whose data directory is a named local volume (not a bind mount).
pub async fn primary_on_volume(rig: &Rig) -> Node {
    use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
    let name = format!("{}-chainlink", rig.id);
    let volume = format!("{}-data", rig.id);
    let port = free_port();
    rig.pull(crate::rig::OLD).await;
    let labels = rig.labels();
    rig.docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let db = rig.database().await;
    let across = rig.uses_second();
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(crate::rig::OLD)),
        env: Some(vec![
            "ROOT=/chainlink".into(),
            "CL_DOUBLE_LOCK=lease".into(),
            format!("DATABASE_URL={}", db.url_for(across)),
        ]),
        // A fresh volume belongs to root.
        user: Some("0".into()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:/chainlink")]),
            port_bindings: Some(std::collections::HashMap::from([(
                "6688/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            network_mode: (!across).then(|| db.network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
        .name(&name)
        .build();
    let created = rig.docker.create_container(Some(options), body).await.unwrap();
    rig.docker.start_container(&created.id, None).await.unwrap();
    let node = Node {
        id: created.id,
        name,
        addr: format!("127.0.0.1:{port}"),
    };
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    node
}

/// `status --json`, with its exit code.
async fn status(rig: &Rig, pair: &Pair) -> (i32, serde_json::Value) {
    let run = pair.run(rig, &["status"]).await;
    (run.code, run.report)
}

pub fn lock_of(status: &serde_json::Value, name: &str) -> String {
    status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["lock"].as_str().unwrap().to_string())
        .unwrap_or_else(|| format!("absent from {status}"))
}

/// No overlap, and every handoff within the node's retry interval plus its
/// boot time (and a margin for a busy machine).
pub fn assert_handoffs_quick(rig: &Rig, generation: Gen) -> crate::rig::journal::Figures {
    rig.journal().assert_safe(generation.handoff_bound(MARGIN))
}

/// No overlap (handoff gaps are not bounded: a takeover after SIGKILL waits
/// for the lease to expire).
pub fn assert_no_overlap(rig: &Rig) -> crate::rig::journal::Figures {
    rig.journal().assert_safe(std::time::Duration::MAX)
}

async fn up_kill_primary_and_back(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let pair = pair_up(&rig, generation).await;
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["holder"], pair.primary.name.as_str());
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");

    // Again: nothing changes.
    let before = crate::upgrade::world(&rig).await;
    let again = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.report["outcome"], "nothing-to-do");
    assert_eq!(crate::upgrade::world(&rig).await, before);

    // The primary dies: the secondary takes over by itself.
    rig.kill(&pair.primary, "SIGKILL").await;
    let secondary = pair.secondary_node(&rig).await;
    rig.wait_serving(&secondary, Duration::from_secs(30)).await;
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["holder"], pair.secondary.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.primary.name), "stopped", "{st}");

    // Back to normal roles.
    let back = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(back.report["outcome"], "switched-over", "{back:?}");
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    // And once more: nothing to do.
    let again = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(again.report["outcome"], "nothing-to-do", "{again:?}");
    assert_no_overlap(&rig);
}

#[tokio::test]
async fn pair_up_unplanned_failover_and_back_bolt() {
    up_kill_primary_and_back(Gen::Bolt, "fo-unplanned-bolt").await;
}

#[tokio::test]
async fn pair_up_unplanned_failover_and_back_lease() {
    up_kill_primary_and_back(Gen::Lease, "fo-unplanned-lease").await;
}

async fn planned_switchover(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let pair = pair_up(&rig, generation).await;
    let run = pair.run(&rig, &["failover"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "switched-over", "{run:?}");
    assert_eq!(run.report["handoffs"].as_array().unwrap().len(), 1, "{run:?}");
    let (_, st) = status(&rig, &pair).await;
    assert_eq!(st["holder"], pair.secondary.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.primary.name), "waiting", "{st}");

    // --hold: the lock goes back to the primary and the secondary stays stopped.
    let run = pair.run(&rig, &["failover", "--hold"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.report["next_steps"].to_string().contains("`cl-maint failover up`"),
        "the held secondary comes back with `failover up`: {run:?}"
    );
    let (_, st) = status(&rig, &pair).await;
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "stopped", "{st}");
    let running = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["running"] == true)
        .count();
    assert_eq!(running, 1, "{st}");
    // Resume: the secondary waits again.
    let run = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "pair-ready", "{run:?}");
    let (_, st) = status(&rig, &pair).await;
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");

    // --hold of the primary (its host is patched): `failover back` brings it
    // back, waiting first, and returns the lock to it.
    let run = pair.run(&rig, &["failover", "--hold"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains("`cl-maint failover back`"),
        "the held primary comes back with `failover back`: {run:?}"
    );
    let run = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(
        (run.code, run.report["outcome"].as_str()),
        (0, Some("switched-over")),
        "{run:?}"
    );
    let (_, st) = status(&rig, &pair).await;
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");

    let figures = assert_handoffs_quick(&rig, generation);
    assert_eq!(figures.handoffs.len(), 4, "{figures:?}");
}

#[tokio::test]
async fn planned_switchover_and_hold_bolt() {
    planned_switchover(Gen::Bolt, "fo-planned-bolt").await;
}

#[tokio::test]
async fn planned_switchover_and_hold_lease() {
    planned_switchover(Gen::Lease, "fo-planned-lease").await;
}

/// A switchover starts the old holder again while the new one boots (a 1 s
/// boot here, so that it surely starts before the boot ends). In the lease era it first
/// restarts the waiting member, so that its next lock try is known; a
/// bolt-era one is left running.
async fn switchover_overlaps(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let env = [SHORT_LEASE, "DATABASE_TIMEOUT=0", "CL_DOUBLE_BOOT=1s"];
    let pair = Pair::new(&rig, primary(&rig, generation, &env).await);
    let up = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    let started_at = |name: String| {
        let docker = rig.docker.clone();
        async move {
            let c = docker.inspect_container(&name, None).await.unwrap();
            c.state.unwrap().started_at.unwrap()
        }
    };
    let secondary_before = started_at(pair.secondary.clone()).await;
    // A standby that has waited a while: one that started less than a
    // second ago is timed by its waiting line instead of being restarted.
    let started = cl_maint::time::engine_time(&secondary_before).expect("an engine time");
    let waited = std::time::SystemTime::now().duration_since(started).unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(1200).saturating_sub(waited)).await;
    let run = pair.run(&rig, &["failover"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let secondary_after = started_at(pair.secondary.clone()).await;
    assert_eq!(
        secondary_before != secondary_after,
        generation == Gen::Lease,
        "the waiting secondary is restarted first in the lease era only"
    );
    let phases: Vec<&str> = run.report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let expected: &[&str] = match generation {
        // Restarted, then the stop timed to its next try.
        Gen::Lease => &["start-standby", "lock-retry", "takeover"],
        Gen::Bolt => &["takeover"],
    };
    assert_eq!(phases, expected, "{run:?}");
    // The step is announced only when it starts before the takeover ends,
    // i.e. before the new holder serves.
    let overlapped = format!("starting {} again while {} boots", pair.primary.name, pair.secondary);
    assert!(run.stderr.contains(&overlapped), "{}", run.stderr);
    rig.journal()
        .assert_safe(generation.handoff_bound(MARGIN) + Duration::from_millis(750));
    let (_, st) = status(&rig, &pair).await;
    assert_eq!(st["holder"], pair.secondary.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.primary.name), "waiting", "{st}");
}

#[tokio::test]
async fn a_bolt_era_switchover_restarts_the_old_holder_while_the_new_one_boots() {
    switchover_overlaps(Gen::Bolt, "fo-overlap-bolt").await;
}

#[tokio::test]
async fn a_lease_era_switchover_restarts_the_standby_first_and_the_old_holder_while_the_new_one_boots() {
    switchover_overlaps(Gen::Lease, "fo-overlap-lease").await;
}

#[tokio::test]
async fn status_and_health_exit_codes() {
    let rig = Rig::new("fo-status-codes").await;
    let pair = pair_up(&rig, Gen::Lease).await;
    // One holder, all checks passing.
    let health = pair.run(&rig, &["health", "--metrics"]).await;
    assert_eq!(health.code, 0, "{health:?}");
    assert_eq!(health.report["verdict"], "passing");
    let versions: Vec<_> = health.report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "version")
        .collect();
    assert_eq!(versions.len(), 1, "{health:?}");
    // A failing check: health says so (failing first), status still has one holder.
    std::fs::write(rig.dir.join("cl-double-failing-checks"), "JobSpawner\n").unwrap();
    let health = pair.run(&rig, &["health"]).await;
    assert_eq!(health.code, 10, "{health:?}");
    assert_eq!(
        health.report["checks"][0]["name"], "JobSpawner",
        "failing first: {health:?}"
    );
    assert_eq!(health.report["checks"][0]["passing"], false);
    // The table for people lists it first, too.
    let human = human(&pair, &["health"]).await;
    let first_check = human.lines().nth(1).unwrap_or_default();
    assert!(
        first_check.starts_with("JobSpawner") && first_check.contains("FAILING"),
        "{human}"
    );
    let (code, _) = status(&rig, &pair).await;
    assert_eq!(code, 0);
    std::fs::remove_file(rig.dir.join("cl-double-failing-checks")).unwrap();

    // No holder: both stopped.
    let secondary = pair.secondary_node(&rig).await;
    rig.stop(&secondary, 5).await;
    rig.stop(&pair.primary, 5).await;
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 8, "{st}");
    assert_eq!(st["verdict"], "no-holder");
    let health = pair.run(&rig, &["health"]).await;
    assert_eq!(health.code, 8, "{health:?}");
    let switch = pair.run(&rig, &["failover"]).await;
    assert_eq!(switch.code, 8, "{switch:?}");
}

#[tokio::test]
async fn two_answering_holders_are_reported() {
    let rig = Rig::new("fo-two-holders").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    // A "secondary" that ignores the lock: both answer.
    let rogue = rig
        .start_node(crate::rig::NodeSpec {
            suffix: "secondary",
            tag: crate::rig::OLD,
            generation: Gen::Bolt,
            env: vec!["CL_DOUBLE_FAULT=ignore-lock".into()],
        })
        .await;
    rig.wait_serving(&rogue, Duration::from_secs(20)).await;
    let pair = Pair {
        primary: node,
        secondary: rogue.name.clone(),
        port: 0,
    };
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 9, "{st}");
    assert_eq!(st["verdict"], "several-holders");
    let before = crate::upgrade::world(&rig).await;
    let switch = pair.run(&rig, &["failover"]).await;
    assert_eq!(switch.code, 9, "{switch:?}");
    assert_eq!(crate::upgrade::world(&rig).await, before, "nothing changed");
}

async fn upgrade_the_pair(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let pair = pair_up(&rig, generation).await;
    dry_run_plans_both_members(&rig, &pair).await;
    let run = pair
        .run(
            &rig,
            &[
                "upgrade",
                "--tag",
                crate::rig::NEW,
                "--standby-port",
                &free_port().to_string(),
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "upgraded", "{run:?}");
    assert_eq!(run.report["handoffs"].as_array().unwrap().len(), 2, "{run:?}");
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["holder"], pair.primary.name.as_str(), "roles as they were: {st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    for m in st["members"].as_array().unwrap() {
        assert_eq!(m["version"], crate::rig::NEW, "{st}");
    }
    let world = crate::upgrade::world(&rig).await;
    assert_eq!(world.len(), 2, "no temporary or old container is left: {world:?}");
    assert_handoffs_quick(&rig, generation);
}

/// `upgrade --dry-run --json` on a pair: a plan naming both members'
/// replacements and the commands, and nothing changed or pulled.
async fn dry_run_plans_both_members(rig: &Rig, pair: &Pair) {
    let before = crate::upgrade::world(rig).await;
    let run = pair.run(rig, &["upgrade", "--tag", crate::rig::NEW, "--dry-run"]).await;
    assert_eq!(
        (run.code, run.report["outcome"].as_str()),
        (0, Some("dry-run")),
        "{run:?}"
    );
    let plan = &run.report["plan"];
    let containers: Vec<(&str, &str)> = plan["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan: {run:?}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["role"].as_str().unwrap()))
        .collect();
    let (p, s) = (pair.primary.name.as_str(), pair.secondary.as_str());
    assert_eq!(
        containers,
        [(s, "secondary"), (p, "primary")],
        "the waiting member first: {plan}"
    );
    for c in plan["containers"].as_array().unwrap() {
        let image = c["image"].as_str().unwrap();
        assert!(image.ends_with(&format!(":{}", crate::rig::NEW)), "{plan}");
    }
    let commands = plan["docker_commands"].to_string();
    for expected in [
        "docker pull ",
        &format!("docker rename {p} {p}-cl-maint-old"),
        "docker run -d",
    ] {
        assert!(commands.contains(expected), "{expected:?} missing: {plan}");
    }
    assert_eq!(plan["steps"].as_array().unwrap().len(), 6, "{plan}");
    assert_eq!(crate::upgrade::world(rig).await, before, "a dry run changes nothing");
}

#[tokio::test]
async fn upgrade_a_pair_bolt() {
    upgrade_the_pair(Gen::Bolt, "fo-upgrade-bolt").await;
}

#[tokio::test]
async fn upgrade_a_pair_lease() {
    upgrade_the_pair(Gen::Lease, "fo-upgrade-lease").await;
}

#[tokio::test]
async fn a_pair_upgrade_to_a_crashing_image_rolls_back() {
    let rig = Rig::new("fo-upgrade-crash").await;
    let pair = pair_up(&rig, Gen::Lease).await;
    let before = crate::upgrade::world(&rig).await;
    let run = pair.run(&rig, &["upgrade", "--tag", crate::rig::CRASH]).await;
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.report["outcome"], "rolled-back", "{run:?}");
    let (code, st) = status(&rig, &pair).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    let after: Vec<String> = crate::upgrade::world(&rig)
        .await
        .into_iter()
        .map(|c| c.replace("exited", "running"))
        .collect();
    assert_eq!(
        after.len(),
        before.len(),
        "the same containers: {after:?} vs {before:?}"
    );
    assert_no_overlap(&rig);
}

#[tokio::test]
async fn secrets_stay_out_of_pair_output_even_with_debug_diagnostics() {
    let rig = Rig::new("fo-secrets").await;
    let node = primary(
        &rig,
        Gen::Lease,
        &[
            "DATABASE_URL=postgresql://cl:pairs3cr3t@db:5432/cl",
            "API_PASSWORD=pairs3cr3t2",
        ],
    )
    .await;
    let pair = Pair::new(&rig, node);
    let port = pair.port.to_string();
    for args in [
        vec!["failover", "up", "--secondary-port", &port],
        vec!["status"],
        vec!["failover", "--secondary-port", &port],
        vec!["status", "--json"],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
            .args(&args)
            .args(["--container", &pair.primary.name, "--secondary", &pair.secondary])
            .env("RUST_LOG", "debug")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {all}");
        assert!(!all.contains("pairs3cr3t"), "{args:?} leaked a secret: {all}");
    }
}
