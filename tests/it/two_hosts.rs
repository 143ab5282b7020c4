//! Two Docker Engines on one machine, sharing the node's data directory: a
//! node on the second engine ("another host") waits for the lock the first
//! engine's node holds, and takes over only when it is released. This is the
//! ground the failover between hosts stands on; the rig's second engine is in
//! `rig/second.rs`.

use std::time::Duration;

use cl_maint::node::logs::{self, Event, Generation};

use crate::rig::{Engine, Gen, NEW, Node, NodeSpec, OLD, Rig, second_engine};

/// Slack for a busy 2-core machine running tests in parallel.
const MARGIN: Duration = Duration::from_millis(400);

fn spec(suffix: &'static str, tag: &'static str, generation: Gen) -> NodeSpec<'static> {
    NodeSpec {
        suffix,
        tag,
        generation,
        env: vec!["DATABASE_TIMEOUT=0".to_string()],
    }
}

fn waiting_line(generation: Gen) -> impl Fn(&str) -> bool {
    let generation = match generation {
        Gen::Bolt => Generation::Bolt,
        Gen::Lease => Generation::Lease,
    };
    move |line| logs::classify(line) == Some(Event::Waiting(generation))
}

/// Asserts that `node` runs on the second engine and is unknown to the first.
async fn runs_on_second_only(rig: &Rig, node: &Node) {
    assert_eq!(rig.engine_of(node), Engine::Second);
    let second = rig.docker_on(Engine::Second).await;
    let inspected = second.inspect_container(&node.id, None).await.unwrap();
    let binds = inspected.host_config.and_then(|h| h.binds).unwrap_or_default();
    assert_eq!(
        binds,
        [format!("{}:/chainlink", rig.dir.display())],
        "the secondary mounts the shared host directory"
    );
    assert!(
        rig.docker.inspect_container(&node.id, None).await.is_err(),
        "{} is on the first engine too",
        node.name
    );
}

/// The primary on engine 1 holds the lock on the shared directory; the
/// secondary on engine 2 logs its waiting line and serves no HTTP; a graceful
/// stop of the primary hands over, with no overlap in the journal.
async fn secondary_waits_then_takes_over(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let _ = rig.docker_on(Engine::Second).await;
    let primary = rig.start_node(spec("primary", OLD, generation)).await;
    assert_eq!(rig.wait_serving(&primary, Duration::from_secs(20)).await.status, 200);
    let secondary = rig
        .start_node_on(Engine::Second, spec("secondary", NEW, generation))
        .await;
    runs_on_second_only(&rig, &secondary).await;
    rig.wait_for_line(&secondary, Duration::from_secs(20), waiting_line(generation))
        .await;
    let until = tokio::time::Instant::now() + generation.retry() + generation.boot();
    while tokio::time::Instant::now() < until {
        let answer = rig.http(&secondary, "/health").await;
        assert!(answer.is_err(), "a waiting secondary answered HTTP: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.journal().tenures.len(), 1, "only the primary has held the lock");

    rig.stop(&primary, 10).await;
    assert_eq!(rig.wait_exit(&primary, Duration::from_secs(15)).await, 0);
    let answer = rig.wait_serving(&secondary, Duration::from_secs(20)).await;
    assert_eq!(answer.status, 200);

    let figures = rig.journal().assert_safe(generation.handoff_bound(MARGIN));
    assert_eq!(figures.handoffs.len(), 1, "{figures:?}");
    let handoff = &figures.handoffs[0];
    assert_eq!((handoff.from_version.as_str(), handoff.to_version.as_str()), (OLD, NEW));
}

#[tokio::test]
async fn bolt_secondary_on_another_engine_waits_then_takes_over() {
    secondary_waits_then_takes_over(Gen::Bolt, "two-bolt").await;
}

#[tokio::test]
async fn lease_secondary_on_another_engine_waits_then_takes_over() {
    secondary_waits_then_takes_over(Gen::Lease, "two-lease").await;
}

/// The endpoint the rig hands out is one the CLI reaches: `cl-maint --host`
/// upgrades a node that only the second engine runs.
#[tokio::test]
async fn cl_maint_upgrades_a_node_on_the_second_engine_by_its_endpoint() {
    let rig = Rig::new("two-cli").await;
    let node = rig
        .start_node_on(Engine::Second, spec("chainlink", OLD, Gen::Bolt))
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let endpoint = second_engine().endpoint();
    assert!(endpoint.starts_with("unix:///"), "{endpoint}");
    let mut args = vec!["--host".to_string(), endpoint];
    args.extend(crate::upgrade::upgrade_args(&node.name, NEW, &[]));
    let run = rig.cl_maint(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(crate::upgrade::outcome(&run), "upgraded");
    let second = rig.docker_on(Engine::Second).await;
    let after = second.inspect_container(&node.name, None).await.unwrap();
    assert_eq!(
        after.config.and_then(|c| c.image).as_deref(),
        Some(rig.images.reference(NEW).as_str())
    );
    assert!(rig.docker.inspect_container(&node.name, None).await.is_err());
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}
