//! Nodes whose port cannot be reached from where cl-maint runs: on a Docker
//! network only (behind a reverse proxy, by the alias `chainlink`), on the
//! host's network with their own HTTP port, and images without `curl`.
//! cl-maint asks them inside their containers, through the engine; the
//! handoffs keep one holder at a time.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use crate::failover::Pair;
use crate::rig::lease_nodes::V2_COMMAND;
use crate::rig::{Gen, LABELLED_NEW, LABELLED_OLD, NEW, Node, OLD, Rig, V2_NEW, V2_OLD, free_port};
use crate::upgrade::{outcome, upgrade};

/// Starts `body` as `<test id>-<suffix>` with the rig's labels.
pub async fn start_raw(rig: &Rig, suffix: &str, mut body: ContainerCreateBody) -> Node {
    let name = format!("{}-{suffix}", rig.id);
    body.labels = Some(rig.labels());
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let created = rig.docker.create_container(Some(options), body).await.unwrap();
    rig.docker.start_container(&created.id, None).await.unwrap();
    Node {
        id: created.id,
        name,
        addr: String::new(),
    }
}

/// A lease-era v1 node (image `tag`) on the test's database network only,
/// known there as `chainlink`: it publishes nothing.
pub async fn network_only(rig: &Rig, tag: &str) -> Node {
    network_only_with(rig, tag, &[]).await
}

/// [`network_only`] with `extra` environment.
async fn network_only_with(rig: &Rig, tag: &str, extra: &[&str]) -> Node {
    let db = rig.database().await;
    rig.pull(tag).await;
    let endpoint = EndpointSettings {
        aliases: Some(vec!["chainlink".into()]),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(tag)),
        env: Some(
            vec![
                "CL_DOUBLE_LOCK=lease".into(),
                "ROOT=/chainlink".into(),
                "LEASE_LOCK_DURATION=3s".into(),
                format!("DATABASE_URL={}", db.url()),
            ]
            .into_iter()
            .chain(extra.iter().map(|e| e.to_string()))
            .collect(),
        ),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/chainlink", rig.dir.display())]),
            network_mode: Some(db.network.clone()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(db.network.clone(), endpoint)])),
        }),
        ..Default::default()
    };
    start_raw(rig, "chainlink", body).await
}

/// `status --json` of the pair (or the node alone) until `holder` holds.
pub async fn wait_holder(rig: &Rig, pair: &Pair, holder: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = pair.run(rig, &["status"]).await.report;
        if st["holder"] == holder {
            return st;
        }
        assert!(tokio::time::Instant::now() < deadline, "{holder} never held: {st}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn probes(run: &crate::rig::Run) -> String {
    run.report["probes"].to_string()
}

/// The aliases container `name` has on `network`.
async fn aliases(rig: &Rig, name: &str, network: &str) -> Vec<String> {
    let c = rig.docker.inspect_container(name, None).await.unwrap();
    let networks = c.network_settings.unwrap().networks.unwrap();
    networks[network].aliases.clone().unwrap_or_default()
}

/// A node behind a reverse proxy: on a Docker network only, by the alias
/// `chainlink`. Upgrade, failover up, switchover and back all work, asked
/// through the engine with the image's own curl; the standby and the
/// secondary join the network with the same alias; never two holders.
#[tokio::test]
async fn a_node_on_a_docker_network_only_is_upgraded_and_failed_over_through_the_engine() {
    let rig = Rig::new("reach-network").await;
    let node = network_only(&rig, OLD).await;
    let pair = Pair::new(&rig, node.clone());
    wait_holder(&rig, &pair, &node.name).await;

    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(probes(&run).contains("curl inside"), "{run:?}");
    assert!(!probes(&run).contains("direct"), "{run:?}");
    let db = rig.database().await;
    assert!(
        aliases(&rig, &node.name, &db.network)
            .await
            .contains(&"chainlink".to_string())
    );

    let up = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    assert!(
        aliases(&rig, &pair.secondary, &db.network)
            .await
            .contains(&"chainlink".to_string())
    );
    let over = pair.run(&rig, &["failover", "--yes"]).await;
    assert_eq!(over.code, 0, "{over:?}");
    wait_holder(&rig, &pair, &pair.secondary).await;
    let back = pair.run(&rig, &["failover", "back", "--yes"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    let st = wait_holder(&rig, &pair, &node.name).await;
    assert!(st.to_string().contains("container://"), "{st}");
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    assert_eq!(figures.tenures.last().unwrap().version, NEW);
}

/// `--probe direct` on a node that publishes nothing: refused before any
/// change, saying how to go on.
#[tokio::test]
async fn probe_direct_refuses_a_node_it_cannot_reach() {
    let rig = Rig::new("reach-direct").await;
    let node = network_only(&rig, OLD).await;
    let run = upgrade(&rig, &node.name, NEW, &["--probe", "direct"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.report["error"].as_str().unwrap();
    assert!(
        error.contains("publishes no host port") && error.contains("--probe direct"),
        "{error}"
    );
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains("through the Docker Engine")
    );
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    assert_eq!(c.id.unwrap(), node.id, "nothing was changed");
}

/// An image without curl: cl-maint's own probe, in a helper container in
/// the node's network namespace, asks it; the report says so.
#[tokio::test]
async fn an_image_without_curl_is_asked_by_cl_maints_own_probe() {
    let rig = Rig::new("reach-nocurl").await;
    let node = network_only(&rig, LABELLED_OLD).await;
    let pair = Pair::new(&rig, node.clone());
    let run = upgrade(&rig, &node.name, LABELLED_NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(probes(&run).contains("helper container"), "{run:?}");
    wait_holder(&rig, &pair, &node.name).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}

/// A host-networked node: v2 with `HTTPPort` in `CL_CONFIG`, v1 with
/// `CHAINLINK_PORT`. The standby and the secondary listen on their port by
/// the node's own setting; the recreated node gets exactly the operator's.
async fn host_networked(v2: bool, test: &str) {
    let rig = Rig::new(test).await;
    let db = rig.database().await;
    let (old, new) = if v2 { (V2_OLD, V2_NEW) } else { (OLD, NEW) };
    rig.pull(old).await;
    let port = free_port();
    let mut env = vec!["CL_DOUBLE_LOCK=lease".to_string()];
    let cmd = if v2 {
        env.push(format!("CL_CONFIG=[WebServer]\nHTTPPort = {port}\n"));
        rig.write_v2_config(&db.host_url());
        Some(V2_COMMAND.map(String::from).to_vec())
    } else {
        env.extend([
            "LEASE_LOCK_DURATION=3s".into(),
            format!("CHAINLINK_PORT={port}"),
            "ROOT=/chainlink".into(),
            format!("DATABASE_URL={}", db.host_url()),
        ]);
        None
    };
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(old)),
        env: Some(env.clone()),
        cmd,
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/chainlink", rig.dir.display())]),
            network_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = start_raw(&rig, "chainlink", body).await;
    let node = Node {
        addr: format!("127.0.0.1:{port}"),
        ..node
    };
    rig.wait_serving(&node, Duration::from_secs(30)).await;

    // The plan says which of the operator's settings the standby changes.
    let dry = upgrade(&rig, &node.name, new, &["--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let setting = if v2 { "CL_CONFIG" } else { "CHAINLINK_PORT" };
    assert!(dry.report["plan"]["changes"].to_string().contains(setting), "{dry:?}");
    let run = upgrade(&rig, &node.name, new, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    // On the engine's own host, a host-networked node is asked directly.
    assert!(probes(&run).contains("direct"), "{run:?}");
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    let now: Vec<String> = c.config.unwrap().env.unwrap();
    for e in &env {
        assert!(now.contains(e), "{e} is the operator's and stays: {now:?}");
    }
    rig.wait_serving(&node, Duration::from_secs(30)).await;

    let mut pair = Pair::new(&rig, node.clone());
    pair.port = free_port();
    let up = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    let over = pair.run(&rig, &["failover", "--yes"]).await;
    assert_eq!(over.code, 0, "{over:?}");
    let secondary = Node {
        addr: format!("127.0.0.1:{}", pair.port),
        ..pair.secondary_node(&rig).await
    };
    rig.wait_serving(&secondary, Duration::from_secs(30)).await;
    let back = pair.run(&rig, &["failover", "back", "--yes"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&node, Duration::from_secs(30)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}

#[tokio::test]
async fn a_host_networked_v2_node_listens_by_cl_config() {
    host_networked(true, "reach-host-v2").await;
}

#[tokio::test]
async fn a_host_networked_v1_node_listens_by_chainlink_port() {
    host_networked(false, "reach-host-v1").await;
}

/// The lease era's probe path was shown above; the bolt era's handoff is
/// confirmed the same way, on a node that publishes nothing.
#[tokio::test]
async fn a_bolt_era_node_on_a_docker_network_only_is_upgraded() {
    let rig = Rig::new("reach-bolt").await;
    rig.pull(OLD).await;
    let network = format!("{}-net", rig.id);
    let mut labels = rig.labels();
    labels.insert("io.cl-maint.test-network".into(), rig.id.clone());
    rig.docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .unwrap();
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(OLD)),
        env: Some(vec![
            format!("CL_DOUBLE_LOCK={}", Gen::Bolt.env()),
            "ROOT=/chainlink".into(),
            "DATABASE_TIMEOUT=0".into(),
        ]),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/chainlink", rig.dir.display())]),
            network_mode: Some(network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = start_raw(&rig, "chainlink", body).await;
    let pair = Pair::new(&rig, node.clone());
    wait_holder(&rig, &pair, &node.name).await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(probes(&run).contains("curl inside"), "{run:?}");
    wait_holder(&rig, &pair, &node.name).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}

/// `health --metrics` with a bearer token on nodes that publish nothing:
/// through the image's curl and through cl-maint's own probe, the token
/// on the probe's standard input, never in the output.
#[tokio::test]
async fn health_reads_metrics_with_a_token_through_the_engine() {
    for (tag, test) in [(OLD, "reach-metrics"), (LABELLED_OLD, "reach-metrics-nocurl")] {
        let rig = Rig::new(test).await;
        let token = "tok3nS3cr3tForMetrics";
        let node = network_only_with(&rig, tag, &[&format!("CL_PROMETHEUS_AUTH_TOKEN={token}")]).await;
        let pair = Pair::new(&rig, node.clone());
        wait_holder(&rig, &pair, &node.name).await;
        let run = pair.run(&rig, &["health", "--metrics", "--metrics-token", token]).await;
        assert_eq!(run.code, 0, "{run:?}");
        let metrics = run.report["metrics"].as_array().cloned().unwrap_or_default();
        assert!(!metrics.is_empty(), "{tag}: {run:?}");
        assert!(!run.stdout.contains(token) && !run.stderr.contains(token), "{run:?}");
        let refused = pair
            .run(&rig, &["health", "--metrics", "--metrics-token", "wrong"])
            .await;
        assert!(
            refused.report["summary"].to_string().contains("HTTP 401"),
            "{refused:?}"
        );
    }
}
