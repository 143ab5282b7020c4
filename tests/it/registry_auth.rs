//! cl-maint authenticates where `docker` authenticates: `auths`, `credHelpers`
//! and `credsStore` of the Docker config (`DOCKER_CONFIG`), against a real
//! registry with htpasswd authentication, with a password holding `>`, `+`,
//! `/` and `=` (which bollard's own `X-Registry-Auth` encoding breaks), and
//! never printing the password.

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use crate::rig::auth_registry::{AuthRegistry, DockerConfigDir};
use crate::rig::tcp_proxy::cl_maint;
use crate::rig::{Gen, NEW, Node, NodeSpec, OLD, Rig, Run};
use crate::upgrade::{outcome, upgrade_args, world};

const USER: &str = "clm-operator";
/// Six `>` in a row hold an aligned `>>>` (standard base64 `Pj4+`) wherever
/// they fall, so the header bollard builds always contains a `+`.
const PASSWORD: &str = "clm>>>>>>pa+ss/wo=rd";

/// A registry wanting [`USER`]/[`PASSWORD`], holding OLD and NEW of the
/// double; the engine keeps OLD (the node runs it) but not NEW (the upgrade
/// must pull it, with credentials); and the node, serving on OLD.
async fn setup(rig: &Rig) -> (AuthRegistry, Node) {
    let mut registry = AuthRegistry::start(rig, &[(USER, PASSWORD)]).await;
    registry.copy(rig, OLD, true).await;
    registry.copy(rig, NEW, false).await;
    let spec = NodeSpec {
        suffix: "chainlink",
        tag: OLD,
        generation: Gen::Bolt,
        env: Vec::new(),
    };
    let node = rig.start_node_from(spec, &registry.reference(OLD)).await;
    rig.wait_serving(&node, std::time::Duration::from_secs(20)).await;
    (registry, node)
}

async fn upgrade_with(node: &Node, env: &[(&str, Option<&str>)]) -> Run {
    let args = upgrade_args(&node.name, NEW, &[]);
    let mut env = env.to_vec();
    env.push(("RUST_LOG", Some("debug")));
    cl_maint(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await
}

fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"));
        for (name, out) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!out.contains(secret), "the password leaked on {name}:\n{out}");
            assert!(
                !out.contains(&encoded),
                "the encoded credentials leaked on {name}:\n{out}"
            );
        }
    }
}

fn auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test]
async fn auths_in_config_json_pull_with_a_password_bollard_alone_would_garble() {
    let rig = Rig::new("auth-auths").await;
    let (registry, node) = setup(&rig).await;

    // On the real engine, bollard's standard-base64 header is refused for this
    // password: the reason cl-maint re-encodes it.
    let options = CreateImageOptionsBuilder::new()
        .from_image(&registry.reference(NEW))
        .build();
    let credentials = DockerCredentials {
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        serveraddress: Some(registry.addr.clone()),
        ..Default::default()
    };
    let mut plain = rig.docker.create_image(Some(options), None, Some(credentials));
    let mut refused = false;
    while let Some(item) = plain.next().await {
        match item {
            Ok(info) if info.error_detail.is_some() => refused = true,
            Err(_) => refused = true,
            Ok(_) => {}
        }
    }
    assert!(
        refused,
        "the engine accepted bollard's standard base64: the awkward password proves nothing"
    );

    let config = DockerConfigDir::new();
    config.config(serde_json::json!({"auths": {registry.addr.clone(): {"auth": auth(USER, PASSWORD)}}}));
    let run = upgrade_with(&node, &[("DOCKER_CONFIG", Some(&config.dir()))]).await;
    assert_eq!(
        (run.code, outcome(&run)),
        (0, "upgraded"),
        "{run:?}\nregistry log:\n{}",
        registry.log()
    );
    assert_eq!(run.report["to"]["reference"], registry.reference(NEW));
    assert_no_secret(&run, &[PASSWORD]);
}

#[tokio::test]
async fn a_credential_helper_on_path_wins_over_auths() {
    let rig = Rig::new("auth-helper").await;
    let (registry, node) = setup(&rig).await;
    let config = DockerConfigDir::new();
    let asked = config.path.join("helper-asked");
    config.helper(
        "clmtest",
        &format!(
            "[ \"$1\" = get ] || exit 1\nread -r server || true\nprintf '%s' \"$server\" > '{}'\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"",
            asked.display()
        ),
    );
    config.config(serde_json::json!({
        "auths": {registry.addr.clone(): {"auth": auth(USER, "not-this-one")}},
        "credHelpers": {registry.addr.clone(): "clmtest"},
    }));
    let path = config.path_with_helpers();
    let run = upgrade_with(&node, &[("DOCKER_CONFIG", Some(&config.dir())), ("PATH", Some(&path))]).await;
    assert_eq!(
        (run.code, outcome(&run)),
        (0, "upgraded"),
        "{run:?}\nregistry log:\n{}",
        registry.log()
    );
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        registry.addr,
        "the helper is asked for the registry's host:port, as docker asks"
    );
    assert_no_secret(&run, &[PASSWORD, "not-this-one"]);
}

#[tokio::test]
async fn refused_missing_or_failing_credentials_are_exit_7_and_change_nothing() {
    let rig = Rig::new("auth-refused").await;
    let (registry, node) = setup(&rig).await;
    let before = world(&rig).await;
    let config = DockerConfigDir::new();
    let path = config.path_with_helpers();
    let env = vec![("DOCKER_CONFIG", Some(config.dir())), ("PATH", Some(path))];
    let wrong = "wr>>>>>>ong+pass/w=";

    // credsStore: a store whose password the registry refuses.
    config.helper(
        "clmwrong",
        &format!("read -r server || true\nprintf '{{\"Username\":\"{USER}\",\"Secret\":\"{wrong}\"}}'"),
    );
    config.config(serde_json::json!({"credsStore": "clmwrong"}));
    let run = run_with(&node, &env).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("docker-credential-clmwrong (credsStore in"), "{error}");
    assert_no_secret(&run, &[wrong]);

    // No credentials at all.
    config.config(serde_json::json!({"auths": {}}));
    let run = run_with(&node, &env).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains(&format!("none for {}", registry.addr)), "{error}");
    assert!(error.contains(&format!("docker login {}", registry.addr)), "{error}");

    // A helper that fails: its message, and the pull does not go ahead.
    config.helper("clmbroken", "echo 'the vault is sealed' >&2\nexit 3");
    config.config(serde_json::json!({"credHelpers": {registry.addr.clone(): "clmbroken"}}));
    let run = run_with(&node, &env).await;
    assert_eq!((run.code, outcome(&run)), (7, "pull-failed"), "{run:?}");
    let error = run.report["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("docker-credential-clmbroken") && error.contains("the vault is sealed"),
        "{error}"
    );

    // A helper that is not installed.
    config.config(serde_json::json!({"credHelpers": {registry.addr.clone(): "clm-not-installed"}}));
    let run = run_with(&node, &env).await;
    assert_eq!(run.code, 7, "{run:?}");
    assert!(
        run.report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is not on PATH"),
        "{run:?}"
    );

    assert_eq!(world(&rig).await, before, "nothing changed");
    rig.wait_serving(&node, std::time::Duration::from_secs(5)).await;
}

async fn run_with(node: &Node, env: &[(&'static str, Option<String>)]) -> Run {
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    upgrade_with(node, &env).await
}
