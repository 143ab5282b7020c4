//! Bad input to every command (`upgrade`, `failover`, `failover up`,
//! `failover back`, `status`, `health`): a container that does not exist or
//! is not a Chainlink node, invalid names, image references, tags,
//! durations and ports, an engine that does not answer. Each is refused with
//! a message naming the input and a distinct exit code, and changes nothing:
//! the test's containers (ids, names, states) and the images named are the
//! same before and after. (`upgrade_faults.rs` has the upgrade's own
//! preflight refusals; cl-maint reads no env files, so there are none to
//! get wrong.)

use crate::fault_kit::{assert_one_holder, error_of, plant_sentinel};
use crate::rig::{Gen, NEVER_PULLED, NodeSpec, OLD, Rig, free_port};
use crate::upgrade::{primary, world};

/// The world as far as these tests can change it: the test's containers,
/// and whether each image named is on the engine.
async fn snapshot(rig: &Rig, images: &[String]) -> (Vec<String>, Vec<bool>) {
    let mut present = Vec::new();
    for i in images {
        present.push(rig.docker.inspect_image(i).await.is_ok());
    }
    (world(rig).await, present)
}

#[tokio::test]
async fn bad_input_to_every_command_is_refused_and_changes_nothing() {
    let rig = Rig::new("bad-input").await;
    let node = primary(&rig, Gen::Lease, &[]).await;
    plant_sentinel(&rig);
    // A "secondary" that is no Chainlink node as far as cl-maint can tell:
    // it runs, answers no HTTP and never says it waits for the lock.
    let stranger = rig
        .start_node(NodeSpec {
            suffix: "secondary",
            tag: OLD,
            generation: Gen::Lease,
            env: vec!["CL_DOUBLE_FAULT=silent-wait".into()],
        })
        .await;
    let main = node.addr.rsplit(':').next().unwrap().to_string();
    let missing = format!("{}-nope", rig.id);
    let free = free_port().to_string();
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    let (p, s) = (node.name.as_str(), stranger.name.as_str());
    let images = vec![rig.images.reference(NEVER_PULLED)];
    let before = snapshot(&rig, &images).await;
    // (arguments, exit code, what the message must name)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // Containers that do not exist.
        (vec!["failover", "--container", &missing, "--secondary", s], 3, &missing),
        (
            vec!["failover", "up", "--container", &missing, "--secondary", s],
            3,
            &missing,
        ),
        (
            vec!["failover", "back", "--container", &missing, "--secondary", s],
            3,
            &missing,
        ),
        (
            vec!["failover", "--container", p, "--secondary", &missing],
            3,
            "failover up",
        ),
        // Not a Chainlink node.
        (
            vec!["failover", "--container", p, "--secondary", s],
            3,
            "no lock-wait line",
        ),
        (
            vec!["failover", "up", "--container", p, "--secondary", s],
            3,
            "not a Chainlink node",
        ),
        // A flag that does not apply.
        (
            vec!["failover", "up", "--hold", "--container", p, "--secondary", s],
            2,
            "unexpected argument '--hold'",
        ),
        (
            vec!["failover", "--hold", "up", "--container", p, "--secondary", s],
            2,
            "--hold applies to a switchover",
        ),
        // Invalid names, references, tags, durations, ports.
        (
            vec!["failover", "--container", "bad name!", "--secondary", s],
            2,
            "invalid container name",
        ),
        (
            vec!["status", "--container", p, "--secondary", "bad/name"],
            2,
            "invalid container name",
        ),
        (
            vec!["upgrade", "--container", p, "--tag=-1.0", "--standby-port", &free],
            2,
            "invalid tag",
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                "1.1.0",
                "--image",
                "x@sha256:00",
                "--standby-port",
                &free,
            ],
            2,
            "drop the digest",
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                "1.1.0",
                "--image",
                "host:port/x",
                "--standby-port",
                &free,
            ],
            2,
            "registry port",
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                NEVER_PULLED,
                "--pull-timeout",
                "0s",
                "--standby-port",
                &free,
            ],
            2,
            "longer than zero",
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                NEVER_PULLED,
                "--stop-timeout=-5s",
                "--standby-port",
                &free,
            ],
            2,
            "stop-timeout",
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                NEVER_PULLED,
                "--standby-port",
                "70000",
            ],
            2,
            "70000",
        ),
        (
            vec![
                "failover",
                "up",
                "--container",
                p,
                "--secondary",
                &missing,
                "--wait-timeout",
                "soon",
            ],
            2,
            "wait-timeout",
        ),
        (
            vec![
                "failover",
                "up",
                "--container",
                p,
                "--secondary",
                &missing,
                "--secondary-port",
                "0",
            ],
            2,
            "secondary-port",
        ),
        (
            vec![
                "failover",
                "up",
                "--container",
                p,
                "--secondary",
                &missing,
                "--secondary-port",
                "65536",
            ],
            2,
            "65536",
        ),
        (
            vec![
                "failover",
                "up",
                "--container",
                p,
                "--secondary",
                &missing,
                "--secondary-port",
                &main,
            ],
            3,
            "is the port",
        ),
        // An engine that does not answer.
        (
            vec!["failover", "--container", p, "--secondary", s, "--host", &dead],
            4,
            &dead,
        ),
        (
            vec!["failover", "up", "--container", p, "--secondary", s, "--host", &dead],
            4,
            &dead,
        ),
        (
            vec!["failover", "back", "--container", p, "--secondary", s, "--host", &dead],
            4,
            &dead,
        ),
        (
            vec!["status", "--container", p, "--secondary", s, "--host", &dead],
            4,
            &dead,
        ),
        (
            vec!["health", "--container", p, "--secondary", s, "--host", &dead],
            4,
            &dead,
        ),
        (
            vec![
                "upgrade",
                "--container",
                p,
                "--tag",
                NEVER_PULLED,
                "--standby-port",
                &free,
                "--host",
                &dead,
            ],
            4,
            &dead,
        ),
    ];
    for (args, code, says) in cases {
        let run = rig.cl_maint(&args).await;
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(text.contains(says), "{args:?} should name {says:?}: {text}");
        if code != 2 {
            assert!(
                !run.report["next_steps"].as_array().is_none_or(|n| n.is_empty()),
                "{args:?} says what to do: {run:?}"
            );
        }
        assert_eq!(snapshot(&rig, &images).await, before, "{args:?} changed something");
    }
    assert_one_holder(&rig, &node, true).await;
}

#[tokio::test]
async fn an_upgrade_of_a_container_that_never_says_it_waits_is_rolled_back_unchanged() {
    // Not a Chainlink node as far as its logs go: its clone never logs a
    // lock-wait line, so the standby is removed again at --wait-timeout.
    let rig = Rig::new("bad-notanode").await;
    let node = primary(&rig, Gen::Lease, &["CL_DOUBLE_FAULT=silent-wait"]).await;
    plant_sentinel(&rig);
    let before = world(&rig).await;
    let run = crate::upgrade::upgrade(&rig, &node.name, crate::rig::NEW, &["--wait-timeout", "3s"]).await;
    assert_eq!((run.code, crate::upgrade::outcome(&run)), (5, "rolled-back"), "{run:?}");
    let error = error_of(&run);
    assert!(
        error.contains("never logged that it waits for the lock") && error.contains("3s"),
        "{error}"
    );
    assert_eq!(world(&rig).await, before);
    assert_one_holder(&rig, &node, true).await;
}
