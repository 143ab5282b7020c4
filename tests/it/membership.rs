//! A failover pair's secondary is a member only when that is proven, never
//! guessed from its name or image. On the rig's second engine, so that the
//! default name `secondary` (which no other test uses there) can be taken.

use std::time::Duration;

use bollard::query_parameters::{RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder};

use crate::fault_kit::error_of;
use crate::rig::{Engine, Gen, NEW, Node, NodeSpec, OLD, Rig, free_port, second_engine};
use crate::upgrade::outcome;

/// The default name of a secondary.
const SECONDARY: &str = "secondary";

/// Starts a node on the second engine under the name `secondary`.
async fn secondary_named(rig: &Rig, suffix: &'static str, env: Vec<String>) -> Node {
    let docker = rig.docker_on(Engine::Second).await;
    // A `secondary` a crashed earlier run of this test left.
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(SECONDARY, Some(force)).await;
    let node = rig
        .start_node_on(
            Engine::Second,
            NodeSpec {
                suffix,
                tag: OLD,
                generation: Gen::Lease,
                env,
            },
        )
        .await;
    let to = RenameContainerOptionsBuilder::new().name(SECONDARY).build();
    docker
        .rename_container(&node.id, to)
        .await
        .expect("rename to secondary");
    Node {
        name: SECONDARY.into(),
        ..node
    }
}

/// `cl-maint ARGS --host <second engine> --container NAME --json`, with the
/// secondary left to its default name.
async fn run(rig: &Rig, container: &str, args: &[&str]) -> crate::rig::Run {
    let host = second_engine().endpoint();
    let mut all = args.to_vec();
    all.extend(["--host", &host, "--container", container]);
    rig.cl_maint(&all).await
}

/// The image reference the container `name` on the second engine runs.
async fn image(rig: &Rig, name: &str) -> String {
    let docker = rig.docker_on(Engine::Second).await;
    let c = docker.inspect_container(name, None).await.unwrap();
    c.config.and_then(|c| c.image).unwrap_or_default()
}

#[tokio::test]
async fn a_secondary_is_a_member_only_when_proven() {
    let rig = Rig::new("member").await;
    let node = rig
        .start_node_on(
            Engine::Second,
            NodeSpec {
                suffix: "mainnet",
                tag: OLD,
                generation: Gen::Lease,
                env: vec![],
            },
        )
        .await;
    rig.wait_serving(&node, Duration::from_secs(20)).await;

    // Another node's standby, left from Chainlink's example: the same image,
    // the default name, its own database.
    let other_dir = rig.dir.join("sepolia");
    std::fs::create_dir_all(&other_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stranger = secondary_named(
        &rig,
        "sepolia",
        vec![
            "ROOT=/chainlink/sepolia".into(),
            "DATABASE_URL=postgresql://chainlink:sepolia-pw@db/sepolia".into(),
        ],
    )
    .await;
    rig.wait_serving(&stranger, Duration::from_secs(20)).await;
    let port = free_port().to_string();
    for args in [
        vec!["upgrade", "--tag", NEW, "--standby-port", &port],
        vec!["failover"],
        vec!["failover", "up"],
    ] {
        let run = run(&rig, &node.name, &args).await;
        assert_eq!((run.code, outcome(&run)), (3, "refused"), "{args:?}: {run:?}");
        let error = error_of(&run);
        assert!(
            error.contains(&format!(
                "secondary may be the secondary of {}, but nothing proves it",
                node.name
            )),
            "{error}"
        );
        assert!(
            run.report["next_steps"].to_string().contains("--secondary secondary"),
            "{run:?}"
        );
    }
    // Neither container was touched.
    for n in [&node, &stranger] {
        assert_eq!(rig.wait_serving(n, Duration::from_secs(5)).await.status, 200);
    }
    assert_eq!(image(&rig, &node.name).await, rig.images.reference(OLD));

    // This node's standby, on its database: proven by it, and upgraded with
    // the node as a pair.
    let docker = rig.docker_on(Engine::Second).await;
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(SECONDARY, Some(force)).await.unwrap();
    let standby = secondary_named(&rig, "standby", vec![]).await;
    rig.wait_for_line(&standby, Duration::from_secs(20), |l| l.contains("waiting for lease"))
        .await;
    let run = run(&rig, &node.name, &["upgrade", "--tag", NEW, "--standby-port", &port]).await;
    assert_eq!((run.code, outcome(&run)), (0, "upgraded"), "{run:?}");
    assert!(
        run.report["members"].to_string().contains("\"secondary\""),
        "a pair upgrade: {run:?}"
    );
    assert_eq!(image(&rig, &node.name).await, rig.images.reference(NEW));
    assert_eq!(image(&rig, SECONDARY).await, rig.images.reference(NEW));
    rig.journal().assert_safe(Duration::MAX);
}

/// Runs `cl-maint ARGS` on a terminal (util-linux `script` gives it a pty)
/// and answers `answer` to its question; returns the exit code and what
/// the terminal showed.
async fn on_a_terminal(args: &[String], answer: &str) -> (i32, String) {
    let command = std::iter::once(env!("CARGO_BIN_EXE_cl-maint").to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run script(1) from util-linux");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("cl-maint ends")
        .unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// On a terminal, a switchover and a pair upgrade ask first; "n" changes
/// nothing.
#[tokio::test]
async fn a_switchover_and_a_pair_upgrade_ask_on_a_terminal() {
    let rig = Rig::new("member-ask").await;
    let pair = crate::failover::pair_up(&rig, Gen::Lease).await;
    let base = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--container".into(),
            pair.primary.name.clone(),
            "--secondary".into(),
            pair.secondary.clone(),
        ]);
        v
    };
    let port = free_port().to_string();
    let secondary_port = pair.port.to_string();
    for (args, shows) in [
        (
            base(&["failover", "--secondary-port", &secondary_port]),
            "Switchover: stop",
        ),
        (
            base(&["upgrade", "--tag", NEW, "--standby-port", &port]),
            "Plan for the pair",
        ),
    ] {
        let (code, text) = on_a_terminal(&args, "n\n").await;
        assert_eq!(code, 3, "{args:?}: {text}");
        assert!(
            text.contains(shows) && text.contains("Proceed? [y/N]"),
            "{args:?}: {text}"
        );
        assert!(text.contains("not confirmed"), "{text}");
        assert_eq!(
            rig.wait_serving(&pair.primary, Duration::from_secs(5)).await.status,
            200,
            "the primary still holds the lock"
        );
    }
    rig.journal().assert_safe(Duration::MAX);
}
