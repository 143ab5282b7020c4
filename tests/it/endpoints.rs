//! cl-maint connects where `docker` connects: `--host`, `DOCKER_HOST`
//! (`tcp://`, with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), `DOCKER_CONTEXT`,
//! the current context of the Docker config; and says which endpoint, from
//! where, when nothing answers. The engine is the real one, reached over a
//! loopback TCP proxy (plain or TLS) so that each test sees its own traffic.

use std::time::Duration;

use crate::rig::auth_registry::DockerConfigDir;
use crate::rig::tcp_proxy::{TcpProxy, TlsCerts, cl_maint, engine_host};
use crate::rig::{Gen, NEVER_PULLED, NEW, Rig, free_port};
use crate::upgrade::{outcome, primary, upgrade_args};

/// A container name no test creates: the engine answers "no such container",
/// which proves it was reached (exit 3, refused) without starting a node.
const NO_SUCH_CONTAINER: &str = "clm-endpoint-no-such-container";

fn args(container: &str, tag: &str, extra: &[&str]) -> Vec<String> {
    upgrade_args(container, tag, extra)
}

async fn run(args: &[String], env: &[(&str, Option<&str>)]) -> crate::rig::Run {
    cl_maint(&args.iter().map(String::as_str).collect::<Vec<_>>(), env).await
}

/// What the run said went wrong.
fn error_of(run: &crate::rig::Run) -> String {
    run.report["error"].as_str().unwrap_or_default().to_string()
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    free_port()
}

#[tokio::test]
async fn tcp_endpoints_from_the_flag_and_docker_host_reach_the_engine() {
    let rig = Rig::new("ep-tcp").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let proxy = TcpProxy::start();
    let dry = args(&node.name, NEVER_PULLED, &["--dry-run"]);

    let mut flag = vec!["--host".to_string(), proxy.host()];
    flag.extend(dry.iter().cloned());
    let run = run(&flag, &[("DOCKER_HOST", None)]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let through_flag = proxy.accepted();
    assert!(through_flag > 0, "cl-maint did not go through the proxy");
    assert!(
        run.stderr.contains(&proxy.host()),
        "progress names the endpoint: {}",
        run.stderr
    );

    let run = self::run(&dry, &[("DOCKER_HOST", Some(&proxy.host()))]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    assert!(
        proxy.accepted() > through_flag,
        "DOCKER_HOST did not go through the proxy"
    );
}

#[tokio::test]
async fn the_current_context_and_docker_context_choose_the_engine() {
    let rig = Rig::new("ep-context").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let proxy = TcpProxy::start();
    let config = DockerConfigDir::new();
    config.context("clm-tcp", &proxy.host(), None);
    config.context("clm-local", &engine_host(), None);
    config.config(serde_json::json!({"auths": {}, "currentContext": "clm-tcp"}));
    let dry = args(&node.name, NEVER_PULLED, &["--dry-run"]);

    // `docker context use clm-tcp`.
    let run = run(&dry, &[("DOCKER_HOST", None), ("DOCKER_CONFIG", Some(&config.dir()))]).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    let through_current = proxy.accepted();
    assert!(through_current > 0, "the current context was not used");
    assert!(run.stderr.contains("(context \"clm-tcp\")"), "{}", run.stderr);

    // DOCKER_CONTEXT wins over the current context.
    let env = [
        ("DOCKER_HOST", None),
        ("DOCKER_CONFIG", Some(config.dir())),
        ("DOCKER_CONTEXT", Some("clm-local".to_string())),
    ];
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    let run = self::run(&dry, &env).await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    assert_eq!(
        proxy.accepted(),
        through_current,
        "DOCKER_CONTEXT should have bypassed the proxy"
    );
    assert!(run.stderr.contains("(context \"clm-local\")"), "{}", run.stderr);

    // An explicit host wins over both.
    let run = self::run(
        &dry,
        &[
            ("DOCKER_HOST", Some(&proxy.host())),
            ("DOCKER_CONFIG", Some(&config.dir())),
            ("DOCKER_CONTEXT", Some("clm-local")),
        ],
    )
    .await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    assert!(proxy.accepted() > through_current, "DOCKER_HOST should have won");
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_exit_4_naming_the_endpoint_and_its_source() {
    let dead = format!("tcp://127.0.0.1:{}", closed_port());
    let probe = args(NO_SUCH_CONTAINER, NEW, &[]);

    let mut flag = vec!["--host".to_string(), dead.clone()];
    flag.extend(probe.iter().cloned());
    let run = run(&flag, &[("DOCKER_HOST", None)]).await;
    assert_eq!((run.code, outcome(&run)), (4, "unreachable"), "{run:?}");
    let error = error_of(&run);
    assert!(error.contains(&format!("{dead} (from --host)")), "{error}");
    // What the system said, without the client libraries' wrapping.
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!error.contains("hyper") && !error.contains("client error"), "{error}");
    assert!(
        run.report["next_steps"].to_string().contains("tcp://host:2376"),
        "{run:?}"
    );

    let run = self::run(&probe, &[("DOCKER_HOST", Some(&dead))]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        error_of(&run).contains(&format!("{dead} (from DOCKER_HOST)")),
        "{run:?}"
    );

    let config = DockerConfigDir::new();
    config.context("clm-gone-engine", &dead, None);
    config.config(serde_json::json!({"currentContext": "clm-gone-engine"}));
    let run = self::run(&probe, &[("DOCKER_HOST", None), ("DOCKER_CONFIG", Some(&config.dir()))]).await;
    assert_eq!(run.code, 4, "{run:?}");
    let error = error_of(&run);
    assert!(error.contains(&dead), "{error}");
    assert!(
        error.contains("Docker context \"clm-gone-engine\", the current context in"),
        "{error}"
    );

    let run = self::run(
        &probe,
        &[
            ("DOCKER_HOST", None),
            ("DOCKER_CONFIG", Some(&config.dir())),
            ("DOCKER_CONTEXT", Some("clm-no-such-context")),
        ],
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    let error = error_of(&run);
    assert!(error.contains("\"clm-no-such-context\" from DOCKER_CONTEXT"), "{error}");
    assert!(error.contains("there is no such context"), "{error}");

    // SSH goes through the system's ssh client (to port 22 of the loopback,
    // where no engine is); the message says how to make SSH work or forward
    // the socket.
    let ssh = "ssh://clm-nobody@127.0.0.1";
    let run = self::run(&probe, &[("DOCKER_HOST", Some(ssh))]).await;
    assert_eq!(run.code, 4, "{run:?}");
    let error = error_of(&run);
    assert!(error.contains(&format!("{ssh} (from DOCKER_HOST)")), "{error}");
    assert!(
        error.contains("docker system dial-stdio") && error.contains("ssh -nNT -L"),
        "{error}"
    );
    // bollard's SSH transport loses a port: refused before trying, with the fix.
    let run = self::run(&probe, &[("DOCKER_HOST", Some("ssh://clm-nobody@127.0.0.1:2222"))]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(error_of(&run).contains("~/.ssh/config"), "{run:?}");
    // Never tried: not reported as an engine that did not answer.
    assert!(error_of(&run).contains("so it did not try it"), "{run:?}");
    assert!(!error_of(&run).contains("did not answer"), "{run:?}");
    assert!(
        run.report["next_steps"]
            .to_string()
            .contains("correct the engine's address"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_cut_or_stalled_engine_is_unreachable_until_resumed() {
    let proxy = TcpProxy::start();
    let probe = args(NO_SUCH_CONTAINER, NEW, &[]);
    let env = [("DOCKER_HOST", Some(proxy.host()))];
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();

    let run = run(&probe, &env).await;
    assert_eq!(
        (run.code, outcome(&run)),
        (3, "refused"),
        "reached: no such container {run:?}"
    );

    proxy.cut();
    let run = self::run(&probe, &env).await;
    assert_eq!((run.code, outcome(&run)), (4, "unreachable"), "{run:?}");
    assert!(error_of(&run).contains(&proxy.host()), "{run:?}");

    proxy.stall();
    let started = std::time::Instant::now();
    let run = self::run(&probe, &env).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(error_of(&run).contains("no answer within"), "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "a hung engine is given up on"
    );

    proxy.resume();
    let run = self::run(&probe, &env).await;
    assert_eq!(run.code, 3, "reachable again: {run:?}");
}

#[tokio::test]
async fn tls_endpoints_from_docker_tls_verify_and_from_a_context() {
    let rig = Rig::new("ep-tls").await;
    let node = primary(&rig, Gen::Bolt, &[]).await;
    let certs_dir = std::env::temp_dir().join(format!("{}-certs", rig.id));
    let _remove = Remove(certs_dir.clone());
    let certs = TlsCerts::generate(&certs_dir);
    let proxy = TcpProxy::start_tls(&certs);
    let client = certs.client_dir().display().to_string();
    let dry = args(&node.name, NEVER_PULLED, &["--dry-run"]);

    let run = run(
        &dry,
        &[
            ("DOCKER_HOST", Some(&proxy.host())),
            ("DOCKER_TLS_VERIFY", Some("1")),
            ("DOCKER_CERT_PATH", Some(&client)),
        ],
    )
    .await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
    assert!(proxy.accepted() > 0);

    // Plain HTTP to a TLS engine: unreachable, and the hint names the TLS variables.
    let run = self::run(&dry, &[("DOCKER_HOST", Some(&proxy.host()))]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(error_of(&run).contains("DOCKER_TLS_VERIFY"), "{run:?}");

    // DOCKER_CERT_PATH defaults to the Docker config directory, as for `docker`.
    let config = DockerConfigDir::new();
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.client_dir().join(file), config.path.join(file)).unwrap();
    }
    let run = self::run(
        &dry,
        &[
            ("DOCKER_HOST", Some(&proxy.host())),
            ("DOCKER_TLS_VERIFY", Some("1")),
            ("DOCKER_CONFIG", Some(&config.dir())),
        ],
    )
    .await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");

    // A context with TLS material (`docker context create --docker host=…,ca=…,cert=…,key=…`).
    config.context("clm-tls", &proxy.host(), Some(&certs.client_dir()));
    let run = self::run(
        &dry,
        &[
            ("DOCKER_HOST", None),
            ("DOCKER_CONFIG", Some(&config.dir())),
            ("DOCKER_CONTEXT", Some("clm-tls")),
        ],
    )
    .await;
    assert_eq!((run.code, outcome(&run)), (0, "dry-run"), "{run:?}");
}

/// Removes a directory on drop.
struct Remove(std::path::PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
