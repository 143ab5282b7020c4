//! The node double is faithful to the Chainlink node in everything cl-maint
//! observes, proven on the real Docker Engine. Each test would fail if the
//! double ignored its lock (see `a_double_that_ignores_its_lock_is_caught`).

use std::time::Duration;

use cl_maint::node::logs::{self, Event, Generation};

use crate::rig::{Gen, NEW, Node, NodeSpec, OLD, Rig, images};

/// Slack for a busy 2-core machine running tests in parallel.
const MARGIN: Duration = Duration::from_millis(400);

fn spec(suffix: &'static str, tag: &'static str, generation: Gen, env: &[&str]) -> NodeSpec<'static> {
    NodeSpec {
        suffix,
        tag,
        generation,
        env: env.iter().map(|e| e.to_string()).collect(),
    }
}

/// Starts a holder and waits until it serves HTTP.
async fn holder(rig: &Rig, generation: Gen, env: &[&str]) -> Node {
    let node = rig.start_node(spec("holder", OLD, generation, env)).await;
    let answer = rig.wait_serving(&node, Duration::from_secs(20)).await;
    assert_eq!(answer.status, 200, "holder /health: {answer:?}");
    node
}

fn is_waiting(line: &str, generation: Generation) -> bool {
    logs::classify(line) == Some(Event::Waiting(generation))
}

fn generation_of(g: Gen) -> Generation {
    match g {
        Gen::Bolt => Generation::Bolt,
        Gen::Lease => Generation::Lease,
    }
}

/// A standby on the holder's volume logs its waiting line and serves no HTTP;
/// a graceful stop of the holder hands over within the retry interval plus
/// boot time, with no overlap in the journal.
async fn standby_waits_then_takes_over(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let a = holder(&rig, generation, &["DATABASE_TIMEOUT=0"]).await;
    let b = rig
        .start_node(spec("standby", NEW, generation, &["DATABASE_TIMEOUT=0"]))
        .await;
    let line = rig
        .wait_for_line(&b, Duration::from_secs(20), |l| {
            is_waiting(l, generation_of(generation))
        })
        .await;
    if generation == Gen::Bolt {
        assert!(
            line.contains("Waiting indefinitely for lock on db file /chainlink/db.bolt"),
            "{line}"
        );
    }
    // Blocked: no HTTP at all, for longer than a retry interval and a boot.
    let until = tokio::time::Instant::now() + generation.retry() + generation.boot();
    while tokio::time::Instant::now() < until {
        let answer = rig.http(&b, "/health").await;
        assert!(answer.is_err(), "a waiting standby answered HTTP: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.stop(&a, 10).await;
    assert_eq!(
        rig.wait_exit(&a, Duration::from_secs(15)).await,
        0,
        "graceful stop exits 0"
    );
    let a_log = rig.logs(&a).await;
    assert!(
        a_log.contains("Shutting down due to terminated signal received..."),
        "{a_log}"
    );
    assert!(a_log.contains("Gracefully exiting..."), "{a_log}");
    let answer = rig.wait_serving(&b, Duration::from_secs(20)).await;
    assert_eq!(answer.status, 200);

    let figures = rig.journal();
    assert!(
        figures.overlaps.is_empty(),
        "two holders at once: {:?}",
        figures.overlaps
    );
    assert_eq!(figures.handoffs.len(), 1, "{figures:?}");
    let gap = figures.handoffs[0].gap_ms;
    let bound = (generation.retry() + generation.boot() + MARGIN).as_secs_f64() * 1000.0;
    assert!(
        gap <= bound,
        "handoff gap {gap:.0} ms exceeds retry + boot + margin = {bound:.0} ms"
    );
    assert!(
        gap >= generation.boot().as_secs_f64() * 1000.0 * 0.9,
        "gap {gap:.0} ms is shorter than a boot"
    );
    assert_eq!(figures.handoffs[0].from_version, OLD);
    assert_eq!(figures.handoffs[0].to_version, NEW);
}

#[tokio::test]
async fn bolt_standby_waits_without_http_then_takes_over() {
    standby_waits_then_takes_over(Gen::Bolt, "bolt-takeover").await;
}

#[tokio::test]
async fn lease_standby_waits_without_http_then_takes_over() {
    standby_waits_then_takes_over(Gen::Lease, "lease-takeover").await;
}

#[tokio::test]
async fn lease_of_a_killed_holder_is_not_taken_before_it_expires() {
    let rig = Rig::new("lease-kill").await;
    let a = holder(&rig, Gen::Lease, &[]).await;
    let b = rig.start_node(spec("standby", NEW, Gen::Lease, &[])).await;
    rig.wait_for_line(&b, Duration::from_secs(20), |l| is_waiting(l, Generation::Lease))
        .await;
    rig.kill(&a, "SIGKILL").await;
    assert_eq!(rig.wait_exit(&a, Duration::from_secs(10)).await, 137);
    rig.wait_serving(&b, Duration::from_secs(25)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let (dead, heir) = (&figures.tenures[0], &figures.tenures[1]);
    assert!(!dead.released, "a SIGKILLed holder cannot release");
    let expiry = dead.lease_expiry_ns.expect("the holder recorded its lease");
    assert!(
        heir.lock_ns >= expiry,
        "the standby took the lease {} ms before it expired",
        (expiry - heir.lock_ns) / 1_000_000
    );
    // The 10 s lease, not the retry interval, decides the gap.
    assert!(figures.handoffs[0].gap_ms > 8_000.0, "{figures:?}");
    // The standby's waiting line repeats at the real cadence: tryCount 0, 1, 2, 4, 8.
    let log = rig.logs(&b).await;
    let counts: Vec<&str> = log
        .lines()
        .filter(|l| is_waiting(l, Generation::Lease))
        .filter_map(|l| l.split("tryCount=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(counts[..4], ["0", "1", "2", "4"], "{log}");
}

#[tokio::test]
async fn bolt_lock_of_a_killed_holder_is_free_at_once() {
    let rig = Rig::new("bolt-kill").await;
    let a = holder(&rig, Gen::Bolt, &[]).await;
    let b = rig
        .start_node(spec("standby", NEW, Gen::Bolt, &["DATABASE_TIMEOUT=1h"]))
        .await;
    let line = rig
        .wait_for_line(&b, Duration::from_secs(20), |l| is_waiting(l, Generation::Bolt))
        .await;
    assert!(
        line.contains("Waiting 1h0m0s for lock on db file /chainlink/db.bolt"),
        "{line}"
    );
    rig.kill(&a, "SIGKILL").await;
    rig.wait_serving(&b, Duration::from_secs(10)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let bound = (Gen::Bolt.retry() + Gen::Bolt.boot() + MARGIN).as_secs_f64() * 1000.0 + 20.0;
    assert!(figures.handoffs[0].gap_ms <= bound, "{figures:?}");
}

#[tokio::test]
async fn bolt_timeout_ends_the_node_with_the_exact_error() {
    let rig = Rig::new("bolt-timeout").await;
    let _a = holder(&rig, Gen::Bolt, &[]).await;
    let b = rig
        .start_node(spec("late", NEW, Gen::Bolt, &["DATABASE_TIMEOUT=300ms"]))
        .await;
    assert_eq!(rig.wait_exit(&b, Duration::from_secs(10)).await, 1);
    let log = rig.logs(&b).await;
    assert!(
        log.contains("Waiting 300ms for lock on db file /chainlink/db.bolt"),
        "{log}"
    );
    assert!(
        log.contains("unable to init DB: unable to open stormDB: timeout"),
        "{log}"
    );
    assert!(
        rig.journal().tenures.len() == 1,
        "the timed-out node never held the lock"
    );
}

#[tokio::test]
async fn lease_standby_stopped_while_waiting_says_stopped() {
    let rig = Rig::new("lease-stopped").await;
    let _a = holder(&rig, Gen::Lease, &[]).await;
    let b = rig.start_node(spec("standby", NEW, Gen::Lease, &[])).await;
    rig.wait_for_line(&b, Duration::from_secs(20), |l| is_waiting(l, Generation::Lease))
        .await;
    rig.stop(&b, 10).await;
    assert_eq!(rig.wait_exit(&b, Duration::from_secs(15)).await, 1);
    let log = rig.logs(&b).await;
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(logs::classify(last), Some(Event::StoppedWhileWaiting), "{log}");
    assert!(last.contains("opening db: failed to take initial lease on database: stopped"));
}

#[tokio::test]
async fn lease_holder_exits_when_another_node_takes_the_lease() {
    let rig = Rig::new("lease-lost").await;
    let a = holder(&rig, Gen::Lease, &[]).await;
    // Another client writes itself into the lease row, as a rogue node would.
    let db = rig.database().await;
    db.psql(
        "UPDATE lease_lock SET client_id = '00000000-0000-4000-8000-00000000beef', expires_at = NOW() + interval '60 seconds'",
    )
    .await;
    assert_eq!(rig.wait_exit(&a, Duration::from_secs(10)).await, 1);
    let log = rig.logs(&a).await;
    assert!(
        log.contains("Another node has taken the lease, exiting immediately"),
        "{log}"
    );
    assert_eq!(
        logs::classify(log.lines().last().unwrap_or_default()),
        Some(Event::LockLost)
    );
}

async fn downgrade_is_refused(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let new = rig.start_node(spec("new", NEW, generation, &[])).await;
    rig.wait_serving(&new, Duration::from_secs(20)).await;
    rig.stop(&new, 10).await;
    rig.wait_exit(&new, Duration::from_secs(15)).await;
    let old = rig.start_node(spec("old", OLD, generation, &[])).await;
    assert_eq!(rig.wait_exit(&old, Duration::from_secs(20)).await, 1);
    let log = rig.logs(&old).await;
    let want = format!(
        "Application version ({OLD}) is lower than database version ({NEW}). Only Chainlink {NEW} or higher can be run on this database"
    );
    assert!(log.contains(&want), "{log}");
    let figures = rig.journal();
    assert!(
        figures.tenures.iter().all(|t| t.version == NEW || t.serve_ns.is_none()),
        "the old version must never serve"
    );
    // The same version, and a newer one, are accepted.
    let again = rig.start_node(spec("again", NEW, generation, &[])).await;
    assert_eq!(rig.wait_serving(&again, Duration::from_secs(20)).await.status, 200);
}

#[tokio::test]
async fn bolt_downgrade_guard_fires() {
    downgrade_is_refused(Gen::Bolt, "bolt-downgrade").await;
}

#[tokio::test]
async fn lease_downgrade_guard_fires() {
    downgrade_is_refused(Gen::Lease, "lease-downgrade").await;
}

#[tokio::test]
async fn json_and_coloured_logs_carry_the_same_lines() {
    let rig = Rig::new("log-formats").await;
    let _a = holder(&rig, Gen::Lease, &[]).await;
    let json = rig
        .start_node(spec("json", NEW, Gen::Lease, &["JSON_CONSOLE=true"]))
        .await;
    let colour = rig
        .start_node(spec("colour", NEW, Gen::Lease, &["CL_LOG_COLOR=true"]))
        .await;
    let line = rig
        .wait_for_line(&json, Duration::from_secs(20), |l| is_waiting(l, Generation::Lease))
        .await;
    let doc: serde_json::Value = serde_json::from_str(&line).expect("JSON_CONSOLE lines are JSON");
    assert_eq!(doc["level"], "info");
    assert_eq!(doc["tryCount"], 0);
    assert!(doc["version"].as_str().unwrap().starts_with(NEW));
    let line = rig
        .wait_for_line(&colour, Duration::from_secs(20), |l| is_waiting(l, Generation::Lease))
        .await;
    assert!(line.contains("\x1b[34m[INFO]\x1b[0m"), "{line:?}");
    let start = rig.logs(&colour).await;
    assert!(
        start.contains(&format!("Starting Chainlink Node {NEW} at commit ")),
        "{start}"
    );
}

#[tokio::test]
async fn endpoints_health_readyz_and_metrics() {
    let rig = Rig::new("endpoints").await;
    let a = holder(&rig, Gen::Bolt, &["CL_PROMETHEUS_AUTH_TOKEN=s3cret-token"]).await;
    let health = rig.http(&a, "/health").await.unwrap();
    let checks = cl_maint::node::health::parse(&health.body).expect("JSON:API health document");
    assert!(checks.len() >= 3 && checks.iter().all(|c| c.passing), "{checks:?}");
    assert_eq!(rig.http(&a, "/readyz").await.unwrap().status, 200);
    assert_eq!(
        rig.http(&a, "/metrics").await.unwrap().status,
        401,
        "metrics need the bearer token"
    );
    let metrics = cl_maint::probe::get(&a.addr, "/metrics", Some("s3cret-token"), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    // The version comes from the image's default environment.
    assert!(metrics.body.contains(&format!("version=\"{OLD}\"")), "{}", metrics.body);
    // A failing check on demand: 207, listed first by cl-maint, and alone under ?failing.
    std::fs::write(rig.dir.join("cl-double-failing-checks"), "JobSpawner\n").unwrap();
    let health = rig.http(&a, "/health").await.unwrap();
    assert_eq!(health.status, 207);
    let checks = cl_maint::node::health::parse(&health.body).unwrap();
    assert_eq!((checks[0].name.as_str(), checks[0].passing), ("JobSpawner", false));
    let failing = rig.http(&a, "/health?failing").await.unwrap();
    assert_eq!(cl_maint::node::health::parse(&failing.body).unwrap().len(), 1);
}

#[tokio::test]
async fn lease_node_answers_204_while_migrating() {
    let rig = Rig::new("migrating").await;
    let a = rig
        .start_node(spec(
            "slow",
            OLD,
            Gen::Lease,
            &["CL_DOUBLE_MIGRATION=3s", "CL_DOUBLE_BOOT=3s"],
        ))
        .await;
    let first = rig.wait_http(&a, Duration::from_secs(20)).await;
    assert_eq!(
        first.status, 204,
        "first answer after taking the lease is the migration window's 204"
    );
    assert_eq!(rig.http(&a, "/readyz").await.unwrap().status, 404);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = rig.http(&a, "/health").await
            && answer.status == 200
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never left the migration window"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigint_shuts_down_gracefully() {
    let rig = Rig::new("sigint").await;
    let a = holder(&rig, Gen::Bolt, &[]).await;
    rig.kill(&a, "SIGINT").await;
    assert_eq!(rig.wait_exit(&a, Duration::from_secs(10)).await, 0);
    let log = rig.logs(&a).await;
    assert!(
        log.contains("Shutting down due to interrupt signal received..."),
        "{log}"
    );
    assert!(rig.journal().tenures[0].released);
}

#[tokio::test]
async fn images_are_static_scratch_images_with_node_defaults() {
    let rig = Rig::new("image").await;
    rig.pull(NEW).await;
    let image = rig.docker.inspect_image(&rig.images.reference(NEW)).await.unwrap();
    let config = image.config.unwrap();
    assert_eq!(config.user.as_deref(), Some(crate::rig::images::NODE_UID));
    assert_eq!(config.entrypoint, Some(vec!["chainlink".to_string()]));
    assert_eq!(config.cmd, Some(vec!["local".to_string(), "node".to_string()]));
    // Like Chainlink's: no version label, no version env.
    let env = config.env.unwrap_or_default();
    assert!(!env.iter().any(|e| e.starts_with("CHAINLINK_VERSION=")), "{env:?}");
    assert!(
        !config
            .labels
            .unwrap_or_default()
            .contains_key("org.opencontainers.image.version"),
        "no version label"
    );
    assert!(config.healthcheck.is_some());
    // FROM scratch: the binary's layer, its `curl`'s (the same binary, as
    // the real image has curl), its version file's and WORKDIR's, nothing
    // from a base image.
    assert_eq!(image.root_fs.unwrap().layers.unwrap_or_default().len(), 4);
    let digests = image.repo_digests.unwrap_or_default();
    assert!(
        digests.iter().any(|d| d.starts_with(&images().repo)),
        "pulled from the registry: {digests:?}"
    );
    let latest = rig.docker.inspect_image(&rig.images.reference(NEW)).await.unwrap();
    rig.pull("latest").await;
    let via_latest = rig.docker.inspect_image(&rig.images.reference("latest")).await.unwrap();
    assert_eq!(latest.id, via_latest.id, "latest is {NEW}");
}

#[tokio::test]
async fn a_waiting_standby_is_unhealthy_by_design() {
    let rig = Rig::new("unhealthy").await;
    let a = holder(&rig, Gen::Bolt, &["DATABASE_TIMEOUT=0"]).await;
    let b = rig
        .start_node(spec("standby", NEW, Gen::Bolt, &["DATABASE_TIMEOUT=0"]))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (ha, hb) = (docker_health(&rig, &a).await, docker_health(&rig, &b).await);
        if ha == "healthy" && hb == "unhealthy" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "holder {ha:?}, standby {hb:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn docker_health(rig: &Rig, node: &Node) -> String {
    let c = rig.docker.inspect_container(&node.id, None).await.unwrap();
    c.state
        .and_then(|s| s.health)
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The rig's own check: a double that skips its lock is caught by the journal
/// (overlap) and by the "no HTTP while waiting" probe. This is what makes the
/// tests above able to fail.
async fn ignoring_the_lock_is_caught(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let _a = holder(&rig, generation, &[]).await;
    let b = rig
        .start_node(spec(
            "rogue",
            NEW,
            generation,
            &["CL_DOUBLE_FAULT=ignore-lock", "DATABASE_TIMEOUT=0"],
        ))
        .await;
    let answer = rig.wait_serving(&b, Duration::from_secs(20)).await;
    assert_eq!(answer.status, 200, "the rogue serves while the holder does");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.journal().overlaps.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the journal shows no overlap for a lock-ignoring double"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_double_that_ignores_its_lock_is_caught_bolt() {
    ignoring_the_lock_is_caught(Gen::Bolt, "rogue-bolt").await;
}

#[tokio::test]
async fn a_double_that_ignores_its_lock_is_caught_lease() {
    ignoring_the_lock_is_caught(Gen::Lease, "rogue-lease").await;
}
