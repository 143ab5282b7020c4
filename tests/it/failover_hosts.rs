//! The failover pair across two Docker Engines: the primary on the machine's
//! engine, the secondary on the rig's second `dockerd` ("another host"),
//! sharing the node's data directory. A planned switchover and back, and the
//! `status` view of both hosts.

use crate::failover::{Pair, assert_no_overlap, lock_of, status_of};
use crate::rig::{Engine, Gen, Rig, free_port, second_engine};
use crate::upgrade::primary;

async fn switchover_across_hosts(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    // The second engine takes part: the rig cleans it too.
    let second = rig.docker_on(Engine::Second).await;
    let host2 = second_engine().endpoint();
    let node = primary(&rig, generation, &["DATABASE_TIMEOUT=0", "LEASE_LOCK_DURATION=3s"]).await;
    let pair = Pair {
        secondary: format!("{}-secondary", rig.id),
        primary: node,
        port: free_port(),
    };
    let run = pair.run(&rig, &["failover", "up", "--secondary-host", &host2]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "pair-ready", "{run:?}");
    assert!(
        second.inspect_container(&pair.secondary, None).await.is_ok(),
        "the secondary runs on the second engine"
    );
    assert!(
        rig.docker.inspect_container(&pair.secondary, None).await.is_err(),
        "and not on the first"
    );

    let st = status_of(&rig, &pair, &["--secondary-host", &host2]).await;
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    let hosts: Vec<&str> = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["host"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&host2.as_str()), "{st}");

    let run = pair.run(&rig, &["failover", "--secondary-host", &host2]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["outcome"], "switched-over", "{run:?}");
    let st = status_of(&rig, &pair, &["--secondary-host", &host2]).await;
    assert_eq!(st["holder"], pair.secondary.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.primary.name), "waiting", "{st}");

    let run = pair.run(&rig, &["failover", "back", "--secondary-host", &host2]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let st = status_of(&rig, &pair, &["--secondary-host", &host2]).await;
    assert_eq!(st["holder"], pair.primary.name.as_str(), "{st}");
    assert_eq!(lock_of(&st, &pair.secondary), "waiting", "{st}");
    let figures = assert_no_overlap(&rig);
    assert_eq!(figures.handoffs.len(), 2, "{figures:?}");
}

#[tokio::test]
async fn switchover_and_back_across_two_engines_bolt() {
    switchover_across_hosts(Gen::Bolt, "fo-hosts-bolt").await;
}

#[tokio::test]
async fn switchover_and_back_across_two_engines_lease() {
    switchover_across_hosts(Gen::Lease, "fo-hosts-lease").await;
}

#[tokio::test]
async fn a_local_volume_cannot_be_shared_with_another_host() {
    let rig = Rig::new("fo-hosts-volume").await;
    let _ = rig.docker_on(Engine::Second).await;
    let host2 = second_engine().endpoint();
    let node = crate::failover::primary_on_volume(&rig).await;
    let pair = Pair {
        secondary: format!("{}-secondary", rig.id),
        primary: node,
        port: free_port(),
    };
    let run = pair.run(&rig, &["failover", "up", "--secondary-host", &host2]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default();
    assert!(error.contains("local volume"), "{run:?}");
    assert!(
        rig.docker_on(Engine::Second)
            .await
            .inspect_container(&pair.secondary, None)
            .await
            .is_err(),
        "nothing was created"
    );
}
