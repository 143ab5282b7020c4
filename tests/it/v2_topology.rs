//! The topology of seed deployments: members that share only their
//! PostgreSQL database. The primary has its volume, the secondary (created
//! by hand, as operators do) a volume of its own with its own copy of the
//! TOML files; only a journal directory, the tests' judge, is mounted in
//! both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use crate::failover::Pair;
use crate::rig::journal::{self, Figures};
use crate::rig::lease_nodes::V2_COMMAND;
use crate::rig::{Gen, Node, NodeSpec, Rig, V2_NEW, V2_OLD, free_port};
use crate::upgrade::outcome;

/// A directory under the test's own, writable by the node's user.
fn dir_in(rig: &Rig, name: &str) -> PathBuf {
    let dir = rig.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The journal both members write.
fn figures(journal: &Path) -> Figures {
    journal::read(journal)
}

/// The secondary, by hand: image `tag`, its own volume `volume` holding
/// its config and secrets (the same database), the journal, the
/// database's network, its port on 127.0.0.1.
async fn secondary_by_hand(rig: &Rig, volume: &Path, journal: &Path, port: u16) -> Node {
    let db = rig.database().await;
    std::fs::write(volume.join("config.toml"), "[Log]\nLevel = 'info'\n").unwrap();
    std::fs::write(
        volume.join("secrets.toml"),
        format!("[Database]\nURL = '{}'\n", db.url()),
    )
    .unwrap();
    rig.pull(V2_OLD).await;
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(port.to_string()),
    };
    let body = ContainerCreateBody {
        image: Some(rig.images.reference(V2_OLD)),
        cmd: Some(V2_COMMAND.map(String::from).to_vec()),
        env: Some(vec!["CL_DOUBLE_JOURNAL=/journal".into()]),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:/chainlink", volume.display()),
                format!("{}:/journal", journal.display()),
            ]),
            port_bindings: Some(HashMap::from([("6688/tcp".to_string(), Some(vec![binding]))])),
            network_mode: Some(db.network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = crate::reach::start_raw(rig, "secondary", body).await;
    Node {
        addr: format!("127.0.0.1:{port}"),
        ..node
    }
}

/// A 2.x pair whose members share only the database: the secondary, made
/// by hand with its own volume, is a member because it names the same
/// database; switchover and back, then the pair's upgrade, each with one
/// holder at a time.
#[tokio::test]
async fn a_pair_that_shares_only_its_database_fails_over_and_upgrades() {
    let rig = Rig::new("v2-topology").await;
    let journal = dir_in(&rig, "journal");
    let spec = NodeSpec {
        suffix: "chainlink",
        tag: V2_OLD,
        generation: Gen::Lease,
        env: vec!["CL_DOUBLE_JOURNAL=/journal".into()],
    };
    let mount = format!("{}:/journal", journal.display());
    let primary = rig
        .start_node_with(spec, |h| h.binds.get_or_insert_default().push(mount))
        .await;
    rig.wait_serving(&primary, Duration::from_secs(20)).await;
    let port = free_port();
    let secondary = secondary_by_hand(&rig, &dir_in(&rig, "secondary-volume"), &journal, port).await;
    rig.wait_for_line(&secondary, Duration::from_secs(20), |l| {
        l.contains("waiting for lease to expire")
    })
    .await;
    let pair = Pair {
        primary: primary.clone(),
        secondary: secondary.name.clone(),
        port,
    };

    let status = crate::failover::status_of(&rig, &pair, &[]).await;
    assert_eq!(status["members"][1]["lock"], "waiting", "{status}");
    let switched = pair.run(&rig, &["failover"]).await;
    assert_eq!(switched.code, 0, "{switched:?}");
    rig.wait_serving(&secondary, Duration::from_secs(5)).await;
    let back = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&primary, Duration::from_secs(5)).await;

    let upgraded = pair.run(&rig, &["upgrade", "--tag", V2_NEW]).await;
    assert_eq!((upgraded.code, outcome(&upgraded)), (0, "upgraded"), "{upgraded:?}");
    rig.wait_serving(&primary, Duration::from_secs(5)).await;
    // The secondary kept its own volume.
    let c = rig.docker.inspect_container(&secondary.name, None).await.unwrap();
    let binds = c.host_config.and_then(|h| h.binds).unwrap_or_default();
    assert!(binds.iter().any(|b| b.contains("secondary-volume")), "{binds:?}");

    let figures = figures(&journal);
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let versions: Vec<&str> = figures.tenures.iter().map(|t| t.version.as_str()).collect();
    assert_eq!(versions.last(), Some(&V2_NEW), "{versions:?}");
    assert!(figures.tenures.len() >= 4, "{versions:?}");
}
