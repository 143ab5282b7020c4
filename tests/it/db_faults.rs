//! The lease-era database misbehaving under a handoff, on the test's real
//! PostgreSQL server: stopped for 3 s while the standby waits, and the holder
//! cut off from it. Each ends with one holder, no overlap in the journal, a
//! report that says what happened, and `recover` finding nothing broken.

use std::time::Duration;

use cl_maint::node::logs::{self, Event, Generation};

use crate::fault_kit::until;
use crate::rig::{Gen, NEW, Node, Rig};
use crate::upgrade::{outcome, primary, upgrade};

/// The containers of the test that answer `/health` as the holder.
async fn holders(rig: &Rig, nodes: &[&Node]) -> Vec<String> {
    let mut serving = Vec::new();
    for n in nodes {
        if let Ok(answer) = rig.http(n, "/health").await
            && (answer.status == 200 || answer.status == 207)
        {
            serving.push(n.name.clone());
        }
    }
    serving
}

/// `recover --container NAME`: nothing is left to put right.
async fn recover_finds_nothing(rig: &Rig, name: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["recover", "--container", name, "--yes"];
    args.extend(extra);
    let run = rig.cl_maint(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    run.report
}

/// PostgreSQL stops for 3 s while the standby waits for the lease: the
/// standby cannot ask for it and exits, as the node does. If the original
/// still ran, it keeps its lease; if cl-maint had already stopped it, it
/// cannot reach the database either at first, and cl-maint starts it again
/// until the database answers. The upgrade is rolled back (or, had the
/// standby's tries missed the outage, done): one holder, no overlap, and the
/// report names what the standby said.
#[tokio::test]
async fn postgres_stopped_for_3s_while_the_standby_waits() {
    let rig = Rig::new("db-outage").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    let db = rig.database().await;
    let standby_name = format!("{}-cl-maint-standby", node.name);
    let outage = async {
        // Running: a followed log of a container not started yet ends at once.
        let id = until("the standby to run", || async {
            let c = rig.docker.inspect_container(&standby_name, None).await.ok()?;
            let running = c.state.as_ref().and_then(|s| s.running) == Some(true);
            running.then_some(c.id).flatten()
        })
        .await;
        let standby = Node {
            id,
            name: standby_name.clone(),
            addr: String::new(),
        };
        rig.wait_for_line(&standby, Duration::from_secs(30), |l| {
            logs::classify(l) == Some(Event::Waiting(Generation::Lease))
        })
        .await;
        db.stop_for(Duration::from_secs(3)).await;
    };
    let (run, ()) = tokio::join!(upgrade(&rig, &node.name, NEW, &[]), outage);
    match run.code {
        5 => {
            assert_eq!(outcome(&run), "rolled-back", "{run:?}");
            let said = format!("{} {}", run.report["error"], run.report["log_tail"]);
            assert!(said.contains("lease"), "the report says what the standby said: {run:?}");
        }
        0 => assert_eq!(outcome(&run), "upgraded", "{run:?}"),
        _ => panic!("neither rolled back nor done: {run:?}"),
    }
    assert_eq!(holders(&rig, &[&node]).await, vec![node.name.clone()]);
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    recover_finds_nothing(&rig, &node.name, &[]).await;
    // The node is whole: the next upgrade goes through.
    let again = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!((again.code, outcome(&again)), (0, "upgraded"), "{again:?}");
}

/// The holder of a pair loses its way to the database: it cannot refresh
/// its lease and exits before the lease can expire; the secondary takes the
/// lease only once it has. With its network back, `recover` leaves the
/// pair as it is and `failover back` returns the lock to the primary.
#[tokio::test]
async fn a_holder_cut_off_from_its_database_exits_before_the_secondary_takes_over() {
    let rig = Rig::new("db-cutoff").await;
    let pair = crate::failover::pair_up(&rig, Gen::Lease).await;
    let db = rig.database().await;
    db.disconnect(&pair.primary.name).await;
    assert_eq!(rig.wait_exit(&pair.primary, Duration::from_secs(30)).await, 1);
    let log = rig.logs(&pair.primary).await;
    assert!(
        log.contains("Could not refresh the database lease before it expired"),
        "{log}"
    );
    let secondary = pair.secondary_node(&rig).await;
    rig.wait_serving(&secondary, Duration::from_secs(30)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);

    let status = crate::failover::status_of(&rig, &pair, &[]).await;
    assert_eq!(status["members"][1]["lock"], "holding", "{status}");
    assert_eq!(status["members"][0]["running"], false, "{status}");
    // Once the primary's network is back, `recover` finds a pair it can
    // leave as it is: the secondary holds the lock.
    db.connect(&pair.primary.name).await;
    let report = recover_finds_nothing(&rig, &pair.primary.name, &["--secondary", &pair.secondary]).await;
    assert!(!report["state"].as_str().unwrap_or_default().is_empty(), "{report}");
    let back = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&pair.primary, Duration::from_secs(10)).await;
    assert_eq!(
        holders(&rig, &[&pair.primary, &secondary]).await,
        vec![pair.primary.name.clone()]
    );
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}

/// The holder of a pair is SIGKILLed: its connection dies but its lease
/// row stays, so the secondary takes the lease only once it has expired
/// (the database's clock says so, not the node's). `recover` then finds
/// the pair as it should be, and `failover back` restores the roles.
#[tokio::test]
async fn a_sigkilled_holder_keeps_its_lease_until_it_expires() {
    let rig = Rig::new("db-sigkill").await;
    let pair = crate::failover::pair_up(&rig, Gen::Lease).await;
    let db = rig.database().await;
    let (holder, live) = db.lease().await.expect("the primary's lease");
    assert!(live);
    rig.kill(&pair.primary, "SIGKILL").await;
    // The row outlives its holder: still the primary's, still live.
    let (after, still_live) = db.lease().await.expect("the row stays");
    assert_eq!((after.as_str(), still_live), (holder.as_str(), true));
    let secondary = pair.secondary_node(&rig).await;
    rig.wait_serving(&secondary, Duration::from_secs(30)).await;
    let (taken, _) = db.lease().await.expect("the secondary's lease");
    assert_ne!(taken, holder, "the secondary holds it now");
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let killed = figures
        .tenures
        .iter()
        .find(|t| t.client == holder)
        .expect("the primary's tenure");
    let next = figures
        .tenures
        .iter()
        .find(|t| t.client == taken)
        .expect("the secondary's tenure");
    let expiry = killed.lease_expiry_ns.expect("the primary renewed its lease");
    assert!(
        next.lock_ns >= expiry,
        "the secondary took the lease {} ms before the primary's expired",
        (expiry - next.lock_ns) / 1_000_000
    );
    recover_finds_nothing(&rig, &pair.primary.name, &["--secondary", &pair.secondary]).await;
    let back = pair.run(&rig, &["failover", "back"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&pair.primary, Duration::from_secs(10)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
}
