//! The rig's PostgreSQL server (`rig/postgres.rs`): a real server per test,
//! reachable on its network and from the host, quick to start, keeping its
//! data over a stop and a start, and one per rig when tests run at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rig::{Gen, NodeSpec, OLD, Rig, postgres};

/// The networks `container` is attached to.
async fn networks_of(rig: &Rig, container: &str) -> Vec<String> {
    let inspect = rig
        .docker
        .inspect_container(container, None)
        .await
        .unwrap_or_else(|e| panic!("inspecting {container}: {e}"));
    let networks = inspect.network_settings.and_then(|s| s.networks).unwrap_or_default();
    networks.into_keys().collect()
}

#[tokio::test]
async fn a_server_answers_and_keeps_its_data_over_a_restart() {
    let rig = Rig::new("pg-smoke").await;
    let built = Instant::now();
    let image = postgres::image();
    eprintln!("{image} ready in {:?}", built.elapsed());

    let started = Instant::now();
    let (db, again) = tokio::join!(rig.database(), rig.database());
    eprintln!(
        "PostgreSQL accepted connections {:?} after the start",
        started.elapsed()
    );
    assert!(Arc::ptr_eq(&db, &again), "one server per rig");
    assert_eq!(db.psql("select 1").await, "1");

    // As a node on the network reaches it (by container name), and from the host.
    assert_eq!(db.psql_at(&db.url(), "select current_user").await, "chainlink");
    let host = tokio::process::Command::new("psql")
        .args(["-X", "-d", &db.host_url(), "-Atc", "select current_database()"])
        .output()
        .await
        .expect("run the host's psql (Debian's postgresql-client, installed with postgresql)");
    assert!(host.status.success(), "{}", String::from_utf8_lossy(&host.stderr));
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "chainlink");

    db.psql("create table kept (x int); insert into kept values (42)").await;
    db.stop().await;
    let restarted = Instant::now();
    db.start().await;
    eprintln!(
        "PostgreSQL accepted connections {:?} after a restart",
        restarted.elapsed()
    );
    assert_eq!(db.psql("select x from kept").await, "42");
    db.stop_for(Duration::from_millis(200)).await;
    assert_eq!(db.psql("select count(*) from kept").await, "1");

    // The downgrade guard's row and the lease.
    db.set_version("1.0.0").await;
    db.set_version("1.1.0").await;
    assert_eq!(db.psql("select version from node_versions").await, "1.1.0");
    assert_eq!(db.lease().await, None, "no lease_lock table yet");
    db.psql("create table lease_lock (client_id uuid not null, expires_at timestamptz not null)")
        .await;
    assert_eq!(db.lease().await, None, "no row yet");
    let client = "7d7c0c4e-8c3f-4b5e-9f0a-2b1c3d4e5f60";
    db.psql(&format!(
        "insert into lease_lock values ('{client}', now() + interval '10 seconds')"
    ))
    .await;
    assert_eq!(db.lease().await, Some((client.to_string(), true)));
    db.psql("update lease_lock set expires_at = now() - interval '1 second'")
        .await;
    assert_eq!(db.lease().await, Some((client.to_string(), false)));

    // A node leaves the server's network and joins it again.
    let node = rig
        .start_node(NodeSpec {
            suffix: "node",
            tag: OLD,
            generation: Gen::Lease,
            env: vec![],
        })
        .await;
    // (A lease-era node joins it when it starts.)
    assert!(networks_of(&rig, &node.name).await.contains(&db.network));
    db.disconnect(&node.name).await;
    assert!(!networks_of(&rig, &node.name).await.contains(&db.network));
    db.connect(&node.name).await;
    assert!(networks_of(&rig, &node.name).await.contains(&db.network));
}

#[tokio::test]
async fn two_rigs_get_two_servers_at_once() {
    let (a, b) = tokio::join!(Rig::new("pg-a"), Rig::new("pg-b"));
    postgres::image();
    let started = Instant::now();
    let (da, db) = tokio::join!(a.database(), b.database());
    eprintln!(
        "two PostgreSQL servers accepted connections {:?} after the start",
        started.elapsed()
    );
    assert_ne!(da.container, db.container);
    assert_ne!(da.network, db.network);
    assert_ne!(da.host_port, db.host_port);
    assert_ne!(da.password, db.password);
    da.psql("create table only_in_a (x int)").await;
    assert_eq!(da.psql("select to_regclass('only_in_a') is not null").await, "t");
    assert_eq!(db.psql("select to_regclass('only_in_a') is not null").await, "f");

    // Dropping a rig removes its server and its network.
    let (container, network) = (da.container.clone(), da.network.clone());
    drop(da);
    drop(a);
    assert!(
        b.docker.inspect_container(&container, None).await.is_err(),
        "{container} left"
    );
    assert!(
        b.docker
            .inspect_network(&network, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
            .is_err(),
        "{network} left"
    );
}
