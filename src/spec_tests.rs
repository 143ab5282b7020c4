//! The spec builder against `docker inspect` documents captured from a real
//! engine (tests/fixtures): a node container configured with everything an
//! operator sets, and the old image it ran.

use super::*;
use bollard::models::{ContainerInspectResponse, ImageInspect};

fn fixture() -> (ContainerInspectResponse, ImageConfig) {
    let container: ContainerInspectResponse =
        serde_json::from_str(include_str!("../tests/fixtures/inspect-container.json")).expect("container fixture");
    let image: ImageInspect =
        serde_json::from_str(include_str!("../tests/fixtures/inspect-image-old.json")).expect("image fixture");
    (container, image.config.expect("image config"))
}

fn request(port: Option<u16>) -> CloneRequest {
    CloneRequest {
        name: "chainlink-cl-maint-standby".into(),
        image: "registry.example/chainlink:1.1.0".into(),
        http_host_port: port.map(|host_port| Publish {
            node_port: 6688,
            host_port,
        }),
        set_env: vec![("DATABASE_TIMEOUT".into(), "1h".into())],
        labels: vec![("io.cl-maint.role".into(), "standby".into())],
        beside: port.is_some(),
    }
}

#[test]
fn keeps_operator_settings() {
    let (container, image) = fixture();
    let spec = clone_spec(&container, &image, &request(None)).unwrap();
    let body = &spec.body;
    let host = body.host_config.as_ref().unwrap();
    let env = body.env.as_ref().unwrap();
    for wanted in [
        "ROOT=/chainlink",
        "DATABASE_URL=postgresql://chainlink:hunter2@db.internal:5432/chainlink?sslmode=disable",
        "ETH_URL=wss://eth.example/ws",
        "CL_DOUBLE_LOCK=bolt",
    ] {
        assert!(env.contains(&wanted.to_string()), "env {wanted} kept: {env:?}");
    }
    assert_eq!(
        body.cmd.as_ref().unwrap(),
        &["local", "n", "-p", "/chainlink/.password", "-a", "/chainlink/.api"]
    );
    assert_eq!(
        body.user.as_deref(),
        Some("14933:14933"),
        "an operator's --user differs from the image's and is kept"
    );
    assert_eq!((body.tty, body.open_stdin), (Some(true), Some(true)));
    let labels = body.labels.as_ref().unwrap();
    assert_eq!(labels.get("com.example.team").map(String::as_str), Some("oracles"));
    assert_eq!(labels.get("io.cl-maint.role").map(String::as_str), Some("standby"));
    let binds = host.binds.as_ref().unwrap();
    assert!(
        binds.contains(&"/tmp/fx-root:/chainlink".to_string()) && binds.contains(&"fx-named:/data".to_string()),
        "{binds:?}"
    );
    assert_eq!(
        host.restart_policy
            .as_ref()
            .unwrap()
            .name
            .map(|n| n.to_string())
            .as_deref(),
        Some("unless-stopped")
    );
    let log = host.log_config.as_ref().unwrap();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(
        log.config.as_ref().unwrap().get("max-size").map(String::as_str),
        Some("10m")
    );
    assert_eq!(host.memory, Some(512 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(1_500_000_000));
    assert_eq!(host.cap_add.as_ref().unwrap(), &["CAP_NET_ADMIN"]);
    assert_eq!(host.cap_drop.as_ref().unwrap(), &["CAP_MKNOD"]);
    assert_eq!(host.ulimits.as_ref().unwrap()[0].name.as_deref(), Some("nofile"));
    assert_eq!(host.extra_hosts.as_ref().unwrap(), &["db.internal:10.1.2.3"]);
    assert_eq!(host.dns.as_ref().unwrap(), &["1.1.1.1"]);
    assert_eq!(host.dns_search.as_ref().unwrap(), &["example.internal"]);
    let ports = host.port_bindings.as_ref().unwrap();
    let http = ports["6688/tcp"].as_ref().unwrap();
    assert_eq!(
        (http[0].host_ip.as_deref(), http[0].host_port.as_deref()),
        (Some("127.0.0.1"), Some("6688"))
    );
    assert!(
        ports.contains_key("6689/tcp"),
        "a recreated primary keeps every published port"
    );
}

#[test]
fn drops_old_image_defaults_and_engine_generated_values() {
    let (container, image) = fixture();
    let spec = clone_spec(&container, &image, &request(None)).unwrap();
    let body = &spec.body;
    let env = body.env.as_ref().unwrap();
    for leaked in [
        "CHAINLINK_VERSION=1.0.0",
        "CHAINLINK_COMMIT=d0b1e100",
        "PATH=/usr/local/bin",
    ] {
        assert!(
            !env.contains(&leaked.to_string()),
            "old image env {leaked} leaked: {env:?}"
        );
    }
    let labels = body.labels.as_ref().unwrap();
    assert!(
        !labels.contains_key("org.opencontainers.image.version"),
        "old image label leaked"
    );
    assert_eq!(body.entrypoint, None, "the new image's entrypoint applies");
    assert_eq!(body.healthcheck, None, "the new image's healthcheck applies");
    assert_eq!(body.working_dir, None);
    assert_eq!(body.hostname, None, "a hostname equal to the old id is dropped");
    assert_eq!(body.image.as_deref(), Some("registry.example/chainlink:1.1.0"));
    assert_eq!(
        body.exposed_ports.as_deref(),
        Some(&["6689/tcp".to_string()][..]),
        "only the operator's -p 6689 stays exposed"
    );
}

#[test]
fn re_attaches_anonymous_volumes_by_name() {
    let (container, image) = fixture();
    let spec = clone_spec(&container, &image, &request(None)).unwrap();
    let binds = spec.body.host_config.as_ref().unwrap().binds.clone().unwrap();
    assert!(
        binds.contains(&"e0263120e52f3b0683eb06d03161e5079af327c30dde0bcc78160f127526c0af:/anon".to_string()),
        "{binds:?}"
    );
    assert_eq!(
        binds.iter().filter(|b| b.ends_with(":/data")).count(),
        1,
        "a named volume is not added twice"
    );
}

#[test]
fn networks_one_at_create_others_connected_with_aliases() {
    let (container, image) = fixture();
    let spec = clone_spec(&container, &image, &request(None)).unwrap();
    let created = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .as_ref()
        .unwrap();
    assert_eq!(created.len(), 1);
    let a = &created["fx-net-a"];
    assert_eq!(a.aliases.as_ref().unwrap(), &["chainlink-node"]);
    assert_eq!(
        spec.body.host_config.as_ref().unwrap().network_mode.as_deref(),
        Some("fx-net-a")
    );
    assert_eq!(spec.extra_networks.len(), 1);
    let (name, b) = &spec.extra_networks[0];
    assert_eq!(name, "fx-net-b");
    assert_eq!(b.aliases.as_ref().unwrap(), &["cl-b"], "the old id alias is dropped");
    assert!(b.ipam_config.is_none() && b.mac_address.is_none() && b.ip_address.is_none());
}

#[test]
fn standby_changes_only_the_http_host_port() {
    let (container, image) = fixture();
    let original = clone_spec(&container, &image, &request(None)).unwrap();
    let standby = clone_spec(&container, &image, &request(Some(6687))).unwrap();
    let ports = standby
        .body
        .host_config
        .as_ref()
        .unwrap()
        .port_bindings
        .clone()
        .unwrap();
    assert_eq!(ports.len(), 1, "the primary still holds 6689: {ports:?}");
    let http = ports["6688/tcp"].as_ref().unwrap();
    assert_eq!(
        (http[0].host_ip.as_deref(), http[0].host_port.as_deref()),
        (Some("127.0.0.1"), Some("6687"))
    );
    let mut a = original.body.host_config.clone().unwrap();
    let mut b = standby.body.host_config.clone().unwrap();
    a.port_bindings = None;
    b.port_bindings = None;
    assert_eq!(a, b, "nothing else in HostConfig differs");
    assert!(standby.changes.iter().any(|c| c.contains("6687")));
}

#[test]
fn set_env_replaces_an_existing_value() {
    let (container, image) = fixture();
    let spec = clone_spec(&container, &image, &request(None)).unwrap();
    let env = spec.body.env.unwrap();
    assert!(env.contains(&"DATABASE_TIMEOUT=1h".to_string()));
    assert_eq!(env.iter().filter(|e| e.starts_with("DATABASE_TIMEOUT=")).count(), 1);
    assert!(
        spec.changes.iter().all(|c| !c.contains("hunter2")),
        "plans never carry secret values"
    );
}

#[test]
fn links_are_rewritten_to_create_form() {
    assert_eq!(rewrite_link("/db:/chainlink/db"), "db:db");
    assert_eq!(rewrite_link("/postgres:/chainlink/pg"), "postgres:pg");
}

#[test]
fn finds_the_published_http_port() {
    let (container, _) = fixture();
    assert_eq!(published_port(&container, 6688), Some(("127.0.0.1".to_string(), 6688)));
}

#[test]
fn data_dir_on_host_names_the_mount_root_lives_on() {
    let (mut container, _) = fixture();
    assert_eq!(data_dir_on_host(&container).as_deref(), Some("bind:/tmp/fx-root/"));
    let env = |c: &mut ContainerInspectResponse, root: &str| {
        let env = c.config.as_mut().unwrap().env.as_mut().unwrap();
        env.retain(|e| !e.starts_with("ROOT="));
        env.push(format!("ROOT={root}"));
    };
    env(&mut container, "/chainlink/sepolia/");
    assert_eq!(
        data_dir_on_host(&container).as_deref(),
        Some("bind:/tmp/fx-root/sepolia")
    );
    env(&mut container, "/data");
    assert_eq!(data_dir_on_host(&container).as_deref(), Some("volume:fx-named/"));
    env(&mut container, "/chainlinkx");
    assert_eq!(
        data_dir_on_host(&container),
        None,
        "a prefix of a name is not a parent directory"
    );
    env(&mut container, "/root/.chainlink");
    assert_eq!(
        data_dir_on_host(&container),
        None,
        "not on a mount: each container has its own"
    );
    container
        .config
        .as_mut()
        .unwrap()
        .env
        .as_mut()
        .unwrap()
        .retain(|e| !e.starts_with("ROOT="));
    assert_eq!(data_dir_on_host(&container), None);
}

#[test]
fn a_clone_beside_the_node_is_not_composes() {
    let (mut container, image) = fixture();
    let labels = container
        .config
        .as_mut()
        .unwrap()
        .labels
        .get_or_insert_with(HashMap::new);
    labels.insert("com.docker.compose.project".into(), "node".into());
    labels.insert("com.docker.compose.service".into(), "chainlink".into());
    labels.insert("com.docker.compose.config-hash".into(), "abc".into());
    let standby = clone_spec(&container, &image, &request(Some(6687))).unwrap();
    let kept = standby.body.labels.clone().unwrap();
    assert!(kept.keys().all(|k| !k.starts_with("com.docker.compose.")), "{kept:?}");
    assert!(kept.contains_key("io.cl-maint.role"));
    assert!(standby.changes.iter().any(|c| c.contains("Compose labels")));
    let same_name = CloneRequest {
        name: container.name.clone().unwrap().trim_start_matches('/').to_string(),
        ..request(None)
    };
    // Recreated from its renamed self (`recover`): Compose's still.
    let from_old = CloneRequest {
        name: "anything".into(),
        ..request(None)
    };
    let recovered = clone_spec(&container, &image, &from_old).unwrap();
    assert_eq!(recovered.body.labels.unwrap()["com.docker.compose.config-hash"], "abc");
    let replacement = clone_spec(&container, &image, &same_name).unwrap();
    assert_eq!(
        replacement.body.labels.unwrap()["com.docker.compose.config-hash"],
        "abc"
    );
}
