//! A real `ssh://` engine: Debian's sshd on 127.0.0.1 in front of the test
//! machine's engine, reached through the system's `ssh` and an ssh
//! configuration that names the host alias, its port, key and known hosts.
//! The node publishes no port, so only the probe through the engine sees
//! it. Upgrade, failover and status work end to end; never two holders.

use crate::reach::network_only;
use crate::rig::ssh::Sshd;
use crate::rig::{NEW, OLD, Rig, free_port};
use crate::upgrade::{outcome, upgrade_args};

#[tokio::test]
async fn upgrade_failover_and_status_over_a_real_ssh_engine() {
    let rig = Rig::new("ssh-engine").await;
    let node = network_only(&rig, OLD).await;
    let sshd = Sshd::start(&rig.id);
    let (host, path) = (sshd.docker_host(), sshd.path());
    let env = [("DOCKER_HOST", host.as_str()), ("PATH", path.as_str())];
    let secondary = format!("{}-secondary", rig.id);
    let port = free_port().to_string();
    let pair = ["--container", node.name.as_str(), "--secondary", secondary.as_str()];

    // Wait until the node serves, as cl-maint sees it over SSH.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st = rig.cl_maint_env(&[&["status"][..], &pair].concat(), &env).await;
        if st.report["holder"] == node.name.as_str() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{st:?}\nsshd: {}", sshd.log());
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let args = upgrade_args(&node.name, NEW, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = rig.cl_maint_env(&args, &env).await;
    assert_eq!((up.code, outcome(&up)), (0, "upgraded"), "{up:?}\nsshd: {}", sshd.log());
    assert!(up.report["probes"].to_string().contains("curl inside"), "{up:?}");
    assert!(
        up.stderr.contains(&host),
        "the run names the engine it used: {}",
        up.stderr
    );

    let made = rig
        .cl_maint_env(
            &[&["failover", "up", "--secondary-port", &port][..], &pair].concat(),
            &env,
        )
        .await;
    assert_eq!(made.code, 0, "{made:?}");
    let over = rig
        .cl_maint_env(&[&["failover", "--yes"][..], &pair].concat(), &env)
        .await;
    assert_eq!(over.code, 0, "{over:?}");
    let st = rig.cl_maint_env(&[&["status"][..], &pair].concat(), &env).await;
    assert_eq!(st.report["holder"], secondary.as_str(), "{st:?}");
    let back = rig
        .cl_maint_env(&[&["failover", "back", "--yes"][..], &pair].concat(), &env)
        .await;
    assert_eq!(back.code, 0, "{back:?}");
    let st = rig.cl_maint_env(&[&["status"][..], &pair].concat(), &env).await;
    assert_eq!(st.report["holder"], node.name.as_str(), "{st:?}");
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    assert_eq!(figures.tenures.last().unwrap().version, NEW);
}
