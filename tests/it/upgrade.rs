//! `cl-maint upgrade` end to end on the real engine, against the node double
//! in both lock generations, through the built binary.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use crate::rig::{Gen, LABELLED_NEW, LABELLED_OLD, NEVER_PULLED, NEW, Node, NodeSpec, OLD, Rig, free_port};

const MARGIN: Duration = Duration::from_millis(600);

/// Starts the primary `NAME-chainlink` on OLD and waits until it serves.
pub async fn primary(rig: &Rig, generation: Gen, env: &[&str]) -> Node {
    let node = rig
        .start_node(NodeSpec {
            suffix: "chainlink",
            tag: OLD,
            generation,
            env: env.iter().map(|e| e.to_string()).collect(),
        })
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    node
}

/// Names of every container of this test, sorted, with their state and image id.
pub async fn world(rig: &Rig) -> Vec<String> {
    let all = rig
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .build(),
        ))
        .await
        .unwrap();
    let mut out: Vec<String> = all
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_string();
            name.starts_with(&rig.id).then(|| {
                format!(
                    "{name} {} {}",
                    c.id.unwrap_or_default(),
                    c.state.map(|s| s.to_string()).unwrap_or_default()
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// `upgrade --container CONTAINER --tag TAG --standby-port <a free port> EXTRA…`.
pub fn upgrade_args(container: &str, tag: &str, extra: &[&str]) -> Vec<String> {
    let port = free_port().to_string();
    let mut args: Vec<String> = [
        "upgrade",
        "--container",
        container,
        "--tag",
        tag,
        "--standby-port",
        &port,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Runs `cl-maint` with [`upgrade_args`] and `--json`.
pub async fn upgrade(rig: &Rig, container: &str, tag: &str, extra: &[&str]) -> crate::rig::Run {
    let args = upgrade_args(container, tag, extra);
    rig.cl_maint(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
}

pub fn outcome(run: &crate::rig::Run) -> &str {
    run.report["outcome"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON report; stdout {} stderr {}", run.stdout, run.stderr))
}

async fn upgrade_a_to_b(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let node = primary(
        &rig,
        generation,
        &["DATABASE_URL=postgresql://chainlink:s3cr3tpw@db:5432/cl"],
    )
    .await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(outcome(&run), "upgraded");
    let report = &run.report;
    assert_eq!(report["from"]["version"], OLD);
    assert_eq!(report["to"]["version"], NEW);
    assert!(
        report["to"]["digest"].as_str().unwrap().contains("@sha256:"),
        "{report}"
    );
    assert_eq!(report["handoffs"].as_array().unwrap().len(), 2);
    assert!(
        !run.stdout.contains("s3cr3tpw") && !run.stderr.contains("s3cr3tpw"),
        "a secret leaked"
    );

    // The node runs the new version on its port, under its name; nothing else is left.
    let after = rig.docker.inspect_container(&node.name, None).await.unwrap();
    assert_ne!(after.id.as_deref(), Some(node.id.as_str()), "recreated");
    assert!(after.config.unwrap().image.unwrap().ends_with(&format!(":{NEW}")));
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let metrics = cl_maint::probe::get(&node.addr, "/metrics", None, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        metrics.body.contains(&format!("version=\"{NEW}\"")),
        "the new image's version default applies"
    );
    assert_eq!(world(&rig).await.len(), 1, "{:?}", world(&rig).await);

    // The journal: never two holders, each handoff within retry + boot + margin.
    let figures = rig.journal().assert_safe(generation.handoff_bound(MARGIN));
    assert_eq!(figures.tenures.len(), 3, "old, standby, new: {figures:?}");
}

#[tokio::test]
async fn upgrades_a_bolt_era_node() {
    upgrade_a_to_b(Gen::Bolt, "up-bolt").await;
}

#[tokio::test]
async fn upgrades_a_lease_era_node() {
    upgrade_a_to_b(Gen::Lease, "up-lease").await;
}

/// The node is recreated while the standby boots (a 1 s boot here, so that
/// it surely starts before the boot ends).
async fn recreated_while_the_standby_boots(generation: Gen, test: &str) {
    let rig = Rig::new(test).await;
    let node = primary(&rig, generation, &["CL_DOUBLE_BOOT=1s"]).await;
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let bound = generation.handoff_bound(MARGIN) + Duration::from_millis(750);
    let figures = rig.journal().assert_safe(bound);
    assert_eq!(figures.tenures.len(), 3, "old, standby, new: {figures:?}");
    // The step is announced only when it starts before the takeover ends,
    // i.e. before the standby serves.
    let overlapped = format!("recreating {} on the new image while", node.name);
    assert!(run.stderr.contains(&overlapped), "{}", run.stderr);
}

#[tokio::test]
async fn recreates_a_bolt_era_node_while_the_standby_boots() {
    recreated_while_the_standby_boots(Gen::Bolt, "up-overlap-bolt").await;
}

#[tokio::test]
async fn recreates_a_lease_era_node_while_the_standby_migrates() {
    recreated_while_the_standby_boots(Gen::Lease, "up-overlap-lease").await;
}

#[tokio::test]
async fn keeps_every_operator_setting_and_drops_old_image_defaults() {
    let rig = Rig::new("up-settings").await;
    let network = format!("{}-net", rig.id);
    let create = bollard::models::NetworkCreateRequest {
        name: network.clone(),
        labels: Some(rig.labels()),
        ..Default::default()
    };
    rig.docker.create_network(create).await.unwrap();
    // The node's database answers as db.internal on the node's own network.
    let db = rig.database().await;
    let join = bollard::models::NetworkConnectRequest {
        container: db.container.clone(),
        endpoint_config: Some(bollard::models::EndpointSettings {
            aliases: Some(vec!["db.internal".into()]),
            ..Default::default()
        }),
    };
    rig.docker.connect_network(&network, join).await.unwrap();
    let volume = format!("{}-vol", rig.id);
    let create = bollard::models::VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(rig.labels()),
        ..Default::default()
    };
    rig.docker.create_volume(create).await.unwrap();
    rig.pull(LABELLED_OLD).await;
    let port = free_port();
    let name = format!("{}-chainlink", rig.id);
    let mut labels = rig.labels();
    labels.insert("com.example.team".into(), "oracles".into());
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(LABELLED_OLD)),
        env: Some(vec![
            "ROOT=/chainlink".into(),
            "CL_DOUBLE_LOCK=lease".into(),
            "ETH_URL=wss://eth.example/ws".into(),
            "DATABASE_URL=postgresql://chainlink:hunter2@db.internal:5432/chainlink".into(),
        ]),
        cmd: Some(vec!["local".into(), "n".into(), "-a".into(), "/chainlink/.api".into()]),
        labels: Some(labels),
        tty: Some(true),
        open_stdin: Some(true),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:/chainlink", rig.dir.display()),
                format!("{volume}:/data"),
            ]),
            port_bindings: Some(HashMap::from([(
                "6688/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([("max-size".to_string(), "10m".to_string())])),
            }),
            network_mode: Some(network.clone()),
            memory: Some(256 * 1024 * 1024),
            cap_add: Some(vec!["NET_ADMIN".into()]),
            cap_drop: Some(vec!["MKNOD".into()]),
            ulimits: Some(vec![bollard::models::ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(4096),
                hard: Some(8192),
            }]),
            extra_hosts: Some(vec!["metrics.internal:10.1.2.3".into()]),
            dns: Some(vec!["127.0.0.53".into()]),
            ..Default::default()
        }),
        networking_config: Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                bollard::models::EndpointSettings {
                    aliases: Some(vec!["chainlink-node".into()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let created = rig
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
        .await
        .unwrap();
    rig.docker.start_container(&created.id, None).await.unwrap();
    let node = Node {
        id: created.id,
        name: name.clone(),
        addr: format!("127.0.0.1:{port}"),
    };
    rig.wait_serving(&node, Duration::from_secs(20)).await;
    let before = rig.docker.inspect_container(&name, None).await.unwrap();

    let run = upgrade(&rig, &name, LABELLED_NEW, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let after = rig.docker.inspect_container(&name, None).await.unwrap();

    let (b, a) = (before.config.clone().unwrap(), after.config.clone().unwrap());
    let operator_env = |env: &Vec<String>| -> Vec<String> {
        let mut e: Vec<String> = env
            .iter()
            .filter(|v| !v.starts_with("CHAINLINK_") && !v.starts_with("PATH=") && !v.starts_with("CL_DOUBLE_FAULT="))
            .cloned()
            .collect();
        e.sort();
        e
    };
    assert_eq!(
        operator_env(b.env.as_ref().unwrap()),
        operator_env(a.env.as_ref().unwrap()),
        "operator env identical"
    );
    assert!(
        a.env.as_ref().unwrap().contains(&format!("CHAINLINK_VERSION={NEW}")),
        "new image default applies"
    );
    assert!(
        !a.env.as_ref().unwrap().contains(&format!("CHAINLINK_VERSION={OLD}")),
        "old image default must not leak"
    );
    assert_eq!(
        a.labels
            .as_ref()
            .unwrap()
            .get("org.opencontainers.image.version")
            .map(String::as_str),
        Some(NEW)
    );
    assert_eq!(
        a.labels.as_ref().unwrap().get("com.example.team").map(String::as_str),
        Some("oracles")
    );
    assert!(
        a.labels
            .as_ref()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("io.cl-maint.primary")),
        "no cl-maint label on the node"
    );
    assert_eq!(b.cmd, a.cmd);
    assert_eq!(b.entrypoint, a.entrypoint);
    assert_eq!((b.tty, b.open_stdin), (a.tty, a.open_stdin));
    assert_eq!(b.user, a.user);
    assert_eq!(b.healthcheck, a.healthcheck);
    let (hb, ha) = (before.host_config.clone().unwrap(), after.host_config.clone().unwrap());
    assert_eq!(hb.binds, ha.binds);
    assert_eq!(hb.port_bindings, ha.port_bindings);
    assert_eq!(hb.restart_policy, ha.restart_policy);
    assert_eq!(hb.log_config, ha.log_config);
    assert_eq!(hb.network_mode, ha.network_mode);
    assert_eq!(hb.memory, ha.memory);
    assert_eq!(hb.cap_add, ha.cap_add);
    assert_eq!(hb.cap_drop, ha.cap_drop);
    assert_eq!(hb.ulimits, ha.ulimits);
    assert_eq!(hb.extra_hosts, ha.extra_hosts);
    assert_eq!(hb.dns, ha.dns);
    let aliases = |c: &bollard::models::ContainerInspectResponse| {
        let mut a = c.network_settings.as_ref().unwrap().networks.as_ref().unwrap()[&network]
            .aliases
            .clone()
            .unwrap_or_default();
        a.retain(|x| x.len() != 12);
        a
    };
    assert_eq!(aliases(&before), aliases(&after));
    assert!(rig.journal().overlaps.is_empty());
}

#[tokio::test]
async fn an_up_to_date_node_is_left_alone() {
    let rig = Rig::new("up-to-date").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let before = world(&rig).await;
    let run = upgrade(&rig, &node.name, OLD, &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "up-to-date"), "{run:?}");
    assert_eq!(world(&rig).await, before, "nothing changed");
    assert_eq!(rig.journal().tenures.len(), 1, "no other node ever took the lock");
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_changes_and_pulls_nothing() {
    let rig = Rig::new("up-dry").await;
    let node = primary(
        &rig,
        Gen::Bolt,
        &["API_TOKEN=tok-very-secret", "DATABASE_URL=postgresql://u:hunter2@db/cl"],
    )
    .await;
    let before = world(&rig).await;
    let target = rig.images.reference(NEVER_PULLED);
    assert!(
        rig.docker.inspect_image(&target).await.is_err(),
        "precondition: {target} is not on the engine"
    );
    let run = upgrade(&rig, node.name.as_str(), NEVER_PULLED, &["--dry-run"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let plan = &run.report["plan"];
    assert!(plan["steps"].as_array().unwrap().len() >= 8);
    let commands = plan["docker_commands"].as_array().unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("docker run -d --name")),
        "{commands:?}"
    );
    assert!(
        plan["changes"]
            .to_string()
            .contains("DATABASE_TIMEOUT=7m15s (unset: 500ms)"),
        "bolt era: the plan says it raises the lock wait to the run's deadlines: {plan}"
    );
    // The same dry run for people (no --json).
    let port = free_port().to_string();
    let human = std::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args([
            "upgrade",
            "--container",
            &node.name,
            "--tag",
            NEVER_PULLED,
            "--standby-port",
            &port,
            "--dry-run",
        ])
        .output()
        .unwrap();
    let human_text = String::from_utf8_lossy(&human.stdout);
    assert!(human_text.contains("Equivalent docker commands"), "{human_text}");
    for out in [&run.stdout, &run.stderr, &human_text.to_string()] {
        assert!(
            !out.contains("hunter2") && !out.contains("tok-very-secret"),
            "a secret leaked: {out}"
        );
    }
    assert_eq!(world(&rig).await, before, "nothing changed");
    assert!(
        rig.docker.inspect_image(&target).await.is_err(),
        "--dry-run pulled {target}"
    );
}

#[tokio::test]
async fn latest_is_reported_as_the_version_and_digest_it_resolved_to() {
    let rig = Rig::new("up-latest").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let run = upgrade(&rig, &node.name, "latest", &[]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    let to = &run.report["to"];
    assert!(to["reference"].as_str().unwrap().ends_with(":latest"), "{to}");
    assert_eq!(to["version"], NEW, "{to}");
    assert!(to["digest"].as_str().unwrap().contains("@sha256:"), "{to}");
    assert!(to["id"].as_str().unwrap().starts_with("sha256:"), "{to}");
}

#[tokio::test]
async fn force_recreates_an_up_to_date_node() {
    let rig = Rig::new("up-force").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let run = upgrade(&rig, &node.name, OLD, &["--force"]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    let after = rig.docker.inspect_container(&node.name, None).await.unwrap();
    assert_ne!(
        after.id.as_deref(),
        Some(node.id.as_str()),
        "recreated on the same image"
    );
    assert_eq!(run.report["handoffs"].as_array().unwrap().len(), 2);
    assert!(rig.journal().overlaps.is_empty());
}

/// The operator's `DATABASE_TIMEOUT` is theirs: kept on a bolt-era node when
/// it already lets the node wait its turn, and left alone on a lease-era
/// node (which ignores it; it never makes cl-maint take the node for a
/// bolt-era one).
#[tokio::test]
async fn the_operators_database_timeout_is_kept() {
    for (generation, test) in [(Gen::Bolt, "up-dbtimeout-bolt"), (Gen::Lease, "up-dbtimeout-lease")] {
        let rig = Rig::new(test).await;
        let node = primary(&rig, generation, &["DATABASE_TIMEOUT=1h"]).await;
        let run = upgrade(&rig, &node.name, NEW, &["--dry-run"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        let changes = run.report["plan"]["changes"].to_string();
        assert!(!changes.contains("DATABASE_TIMEOUT"), "{generation:?}: {changes}");
        if generation == Gen::Lease {
            // Its lease at the first try: no waiting line in its log.
            assert_eq!(
                run.report["plan"]["lock_generation"],
                serde_json::Value::Null,
                "{run:?}"
            );
        }
        let run = upgrade(&rig, &node.name, NEW, &[]).await;
        assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{generation:?}: {run:?}");
        let env = rig
            .docker
            .inspect_container(&node.name, None)
            .await
            .unwrap()
            .config
            .and_then(|c| c.env)
            .unwrap_or_default();
        let timeouts: Vec<&String> = env.iter().filter(|e| e.starts_with("DATABASE_TIMEOUT=")).collect();
        assert_eq!(timeouts, vec!["DATABASE_TIMEOUT=1h"], "{generation:?}: {env:?}");
        assert!(rig.journal().overlaps.is_empty());
    }
}
