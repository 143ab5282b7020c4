//! The failover pair across two Docker Engines: the primary on the machine's
//! engine, the secondary on the rig's second `dockerd` ("another host"),
//! sharing the node's data directory. A planned switchover and back, and the
//! `status` view of both hosts.

use crate::failover::{Pair, assert_no_overlap, lock_of, status_of};
use crate::rig::{Engine, Gen, NodeSpec, OLD, Rig, second_engine};

/// Commits a container of OLD into an image with a label of this test (so a
/// new image id), pushes it to the registry under a tag of its own, and
/// returns its reference.
async fn unique_image(rig: &Rig) -> String {
    use bollard::query_parameters::{CommitContainerOptionsBuilder, PushImageOptionsBuilder};
    use futures::StreamExt;
    rig.pull(OLD).await;
    let scratch = rig
        .docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(rig.images.reference(OLD)),
                labels: Some(rig.labels()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tag = format!("u{}", rig.id.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    let commit = CommitContainerOptionsBuilder::new()
        .container(&scratch.id)
        .repo(&rig.images.repo)
        .tag(&tag)
        .changes(&format!("LABEL io.cl-maint.test-image={}", rig.id))
        .build();
    rig.docker
        .commit_container(commit, bollard::models::ContainerConfig::default())
        .await
        .unwrap();
    let _ = rig
        .docker
        .remove_container(&scratch.id, None::<bollard::query_parameters::RemoveContainerOptions>)
        .await;
    let mut push = rig.docker.push_image(
        &rig.images.repo,
        Some(PushImageOptionsBuilder::new().tag(&tag).build()),
        None,
    );
    while let Some(item) = push.next().await {
        let info = item.unwrap_or_else(|e| panic!("pushing {tag}: {e}"));
        assert!(info.error_detail.is_none(), "pushing {tag}: {info:?}");
    }
    format!("{}:{tag}", rig.images.repo)
}

async fn switchover_across_hosts(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    // The second engine takes part: the rig cleans it too.
    let second = rig.docker_on(Engine::Second).await;
    let host2 = second_engine().endpoint();
    // An image of this test's own, which the second engine cannot have yet:
    // `failover up` must pull it there (by digest) for the secondary.
    let reference = unique_image(&rig).await;
    let node = rig
        .start_node_from(
            NodeSpec {
                suffix: "chainlink",
                tag: OLD,
                generation,
                env: vec!["DATABASE_TIMEOUT=0".into(), "LEASE_LOCK_DURATION=3s".into()],
            },
            &reference,
        )
        .await;
    rig.wait_serving(&node, std::time::Duration::from_secs(20)).await;
    let pair = Pair::new(&rig, node);
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
    let pair = Pair::new(&rig, node);
    refused_on_the_second_host(&rig, &pair, &host2, "local volume").await;
}

/// `failover up --secondary-host HOST2` is refused (exit 3) saying `says`,
/// and nothing is created there; returns the run.
async fn refused_on_the_second_host(rig: &Rig, pair: &Pair, host2: &str, says: &str) -> crate::rig::Run {
    let run = pair.run(rig, &["failover", "up", "--secondary-host", host2]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "{run:?}");
    assert!(
        rig.docker_on(Engine::Second)
            .await
            .inspect_container(&pair.secondary, None)
            .await
            .is_err(),
        "nothing was created"
    );
    run
}

/// A v2 node names its database in its secrets file (`-secrets FILE` on its
/// command line): cl-maint reads it from the container through the engine,
/// and refuses a secondary on another host when it names `localhost`.
#[tokio::test]
async fn a_database_on_localhost_in_the_secrets_file_is_refused_for_another_host() {
    let rig = Rig::new("fo-hosts-secrets").await;
    let _ = rig.docker_on(Engine::Second).await;
    let host2 = second_engine().endpoint();
    let secrets = rig.dir.join("secrets.toml");
    std::fs::write(
        &secrets,
        "[Database]\nURL = 'postgresql://cl:s3cr3t@localhost:5432/chainlink'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The double reads no secrets file in its 1.x bolt mode, so it runs
    // while its command line names a database it could not reach; cl-maint
    // reads the file as it would a 2.x node's.
    let spec = crate::rig::NodeSpec {
        suffix: "chainlink",
        tag: crate::rig::OLD,
        generation: Gen::Bolt,
        env: vec!["DATABASE_TIMEOUT=0".into()],
    };
    let node = rig
        .start_node_with_body(spec, |body| {
            body.cmd = Some(
                ["local", "node", "-secrets", "/chainlink/secrets.toml"]
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            )
        })
        .await;
    rig.wait_serving(&node, std::time::Duration::from_secs(20)).await;
    let pair = Pair::new(&rig, node);
    let says = "/chainlink/secrets.toml ([Database] URL) points at localhost";
    let run = refused_on_the_second_host(&rig, &pair, &host2, says).await;
    assert!(
        !format!("{run:?}").contains("s3cr3t"),
        "the password never appears: {run:?}"
    );
}
