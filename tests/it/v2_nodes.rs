//! Real current nodes: 2.x doubles configured by TOML (`node -config …
//! -secrets … start`), their lease in the test's PostgreSQL server, images
//! that carry no version, and a `[WebServer] HTTPPort` other than 6688.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::PortBinding;

use crate::rig::{Gen, Node, NodeSpec, OLD, Rig, V2_NEW, V2_OLD, V2_STABLE, free_port};
use crate::upgrade::{outcome, upgrade, world};

fn spec(suffix: &'static str, tag: &'static str, env: &[&str]) -> NodeSpec<'static> {
    NodeSpec {
        suffix,
        tag,
        generation: Gen::Lease,
        env: env.iter().map(|e| e.to_string()).collect(),
    }
}

/// The environment of container `name`.
async fn env_of(rig: &Rig, name: &str) -> Vec<String> {
    let c = rig.docker.inspect_container(name, None).await.expect("the container");
    c.config.and_then(|c| c.env).unwrap_or_default()
}

/// A 2.x node configured by TOML, its image versionless, upgraded by a tag
/// that names no version: the new version is learnt from the image's own
/// `--version` (in a one-off container, removed at once), the running one
/// from its start line; the operator's `DATABASE_TIMEOUT` (which 2.x
/// ignores) is kept, and the lease passes in PostgreSQL with no overlap.
#[tokio::test]
async fn a_toml_configured_node_is_upgraded_by_a_tag_that_names_no_version() {
    let rig = Rig::new("v2-upgrade").await;
    let node = rig
        .start_node(spec("chainlink", V2_OLD, &["DATABASE_TIMEOUT=1h"]))
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    // A one-off `--version` container a killed run left: no leftover to
    // refuse over, and removed by the next run that needs one.
    let mut labels = rig.labels();
    labels.insert("io.cl-maint.primary".into(), node.name.clone());
    labels.insert("io.cl-maint.role".into(), "version".into());
    let stale = bollard::models::ContainerCreateBody {
        image: Some(rig.images.reference(V2_OLD)),
        cmd: Some(vec!["--version".into()]),
        labels: Some(labels),
        ..Default::default()
    };
    let name = format!("{}-cl-maint-version-1", node.name);
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
        .name(&name)
        .build();
    rig.docker.create_container(Some(options), stale).await.unwrap();
    let run = upgrade(&rig, &node.name, V2_STABLE, &["-vv"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    let password = rig.database().await.password.clone();
    assert!(
        !run.stdout.contains(&password) && !run.stderr.contains(&password),
        "the database password in the node's secrets file never appears"
    );
    let (from, to) = (&run.report["from"], &run.report["to"]);
    assert_eq!(
        (&from["version"], &from["version_source"]),
        (&V2_OLD.into(), &"start line".into())
    );
    assert_eq!(
        (&to["version"], &to["version_source"]),
        (&V2_NEW.into(), &"chainlink --version".into()),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("(version {V2_NEW}, from its chainlink --version)")),
        "{}",
        run.stderr
    );
    // Only the node is left: the one-offs (the stale one too) and the
    // standby are gone.
    let names: Vec<String> = world(&rig)
        .await
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![node.name.clone()]);
    let env = env_of(&rig, &node.name).await;
    assert!(
        env.contains(&"DATABASE_TIMEOUT=1h".to_string()),
        "the operator's value is kept: {env:?}"
    );
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    assert_eq!(
        c.config.and_then(|c| c.cmd).unwrap_or_default(),
        crate::rig::lease_nodes::V2_COMMAND.map(String::from).to_vec(),
        "the TOML command line is kept"
    );
    // The database: one live lease, held by the node that serves now.
    let (holder, live) = rig.database().await.lease().await.expect("a lease row");
    assert!(live, "the lease is live");
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let last = figures.tenures.last().expect("tenures");
    assert_eq!((last.client.as_str(), last.version.as_str()), (holder.as_str(), V2_NEW));
}

/// An env-configured 1.x node and a tag that names no version: the image's
/// `--version` says 2.x, and 2.x would refuse the node's variables at boot.
/// Refused after the pull, before any other change.
#[tokio::test]
async fn a_v1_node_is_not_moved_to_2x_by_a_tag_that_names_no_version() {
    let rig = Rig::new("v2-from-v1").await;
    let node = crate::upgrade::primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, V2_STABLE, &[]).await;
    assert_eq!((run.code, outcome(&run)), (3, "refused"), "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("{V2_NEW} is a Chainlink 2.x release")) && error.contains("DATABASE_URL"),
        "{error}"
    );
    assert_eq!(run.report["to"]["version_source"], "chainlink --version", "{run:?}");
    assert_eq!(world(&rig).await, before, "nothing changed");
    assert_eq!(rig.wait_serving(&node, Duration::from_secs(5)).await.status, 200);
}

/// A 2.x double is as strict as the node: a legacy variable stops it at
/// boot with the node's message, and `DATABASE_TIMEOUT` is ignored.
#[tokio::test]
async fn a_2x_node_refuses_legacy_variables_and_ignores_database_timeout() {
    let rig = Rig::new("v2-legacy").await;
    let refused = rig
        .start_node(spec("legacy", V2_OLD, &["CHAINLINK_PORT=6688", "DATABASE_TIMEOUT=0"]))
        .await;
    assert_eq!(rig.wait_exit(&refused, Duration::from_secs(20)).await, 1);
    let log = rig.logs(&refused).await;
    assert!(
        log.contains("environment variable CHAINLINK_PORT must not be set: unsupported with config v2"),
        "{log}"
    );
    assert!(!log.contains("DATABASE_TIMEOUT"), "{log}");
    let fine = rig.start_node(spec("fine", V2_OLD, &["DATABASE_TIMEOUT=0"])).await;
    rig.wait_serving(&fine, Duration::from_secs(20)).await;
}

/// Publishes container port `node_port` on a fresh 127.0.0.1 port.
fn publish(body: &mut bollard::models::ContainerCreateBody, node_port: u16) -> u16 {
    let port = free_port();
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(port.to_string()),
    };
    body.host_config.as_mut().expect("host config").port_bindings =
        Some(HashMap::from([(format!("{node_port}/tcp"), Some(vec![binding]))]));
    // `docker run -p` exposes the port it publishes.
    body.exposed_ports = Some(vec![format!("{node_port}/tcp")]);
    port
}

/// `HTTPPort = 6690` in the node's config file, published as
/// `-p 127.0.0.1:PORT:6690`: upgraded, paired and switched over like any
/// other node; the standby and the secondary publish 6690 too.
#[tokio::test]
async fn a_node_whose_http_port_is_6690_is_upgraded_and_failed_over() {
    let rig = Rig::new("v2-port").await;
    std::fs::write(
        rig.dir.join("config.toml"),
        "[WebServer]\nHTTPPort = 6690\n\n[Log]\nLevel = 'info'\n",
    )
    .unwrap();
    let mut host_port = 0;
    let node = rig
        .start_node_with_body(spec("chainlink", V2_OLD, &[]), |body| host_port = publish(body, 6690))
        .await;
    let node = Node {
        addr: format!("127.0.0.1:{host_port}"),
        ..node
    };
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let run = upgrade(&rig, &node.name, V2_NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    rig.wait_serving(&node, Duration::from_secs(5)).await;

    let pair = crate::failover::Pair::new(&rig, node.clone());
    let up = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!((up.code, outcome(&up)), (0, "pair-ready"), "{up:?}");
    let secondary = rig.docker.inspect_container(&pair.secondary, None).await.unwrap();
    let bindings = secondary.host_config.and_then(|h| h.port_bindings).unwrap_or_default();
    assert!(bindings.contains_key("6690/tcp"), "{bindings:?}");
    let status = crate::failover::status_of(&rig, &pair, &[]).await;
    let primary = &status["members"][0];
    assert_eq!(
        (&primary["node_port"], &primary["lock"]),
        (&6690.into(), &"holding".into()),
        "{status}"
    );

    let switched = pair.run(&rig, &["failover"]).await;
    assert_eq!(switched.code, 0, "{switched:?}");
    let back = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&node, Duration::from_secs(5)).await;
    assert!(rig.journal().overlaps.is_empty(), "{:?}", rig.journal().overlaps);
}

/// The labelled image variant still gives its version from its metadata.
#[tokio::test]
async fn a_labelled_image_gives_its_version_from_its_metadata() {
    let rig = Rig::new("v2-labelled").await;
    let node = crate::upgrade::primary(&rig, Gen::Lease, &[]).await;
    let run = upgrade(&rig, &node.name, crate::rig::LABELLED_NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert_eq!(run.report["to"]["version_source"], "image metadata", "{run:?}");
    assert_eq!(run.report["from"]["version"], OLD, "{run:?}");
}
