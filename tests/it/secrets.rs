//! Secrets never appear in any output: a password inside `DATABASE_URL`, the
//! values of variables whose names hold PASSWORD, SECRET, TOKEN or KEY, and
//! the registry credentials (plain and base64-encoded), across `upgrade`
//! (dry run, refusal, failed pull, rollback, success), `failover up`,
//! `failover`, `failover back`, `status` and `health`, for people and as
//! JSON, with `RUST_LOG=debug`.

use base64::Engine as _;

use crate::failover::Pair;
use crate::rig::auth_registry::{AuthRegistry, DockerConfigDir};
use crate::rig::{CRASH, Gen, NEW, NodeSpec, OLD, Rig, free_port};

const USER: &str = "clm-secret-user";
const REGISTRY_PASSWORD: &str = "reg>>>>>>S3cr3t+/=";
const SECRETS: [&str; 6] = [
    "dbpwS3cr3t",
    "apipwS3cr3t",
    "sessS3cr3t",
    "tokS3cr3t",
    "keyS3cr3t",
    REGISTRY_PASSWORD,
];

/// `cl-maint ARGS` (with `--json` when asked), `RUST_LOG=debug` and `env`:
/// exit code and everything it printed.
async fn run(args: &[&str], json: bool, env: &[(&str, &str)]) -> (i32, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"));
    command
        .args(args)
        .env("RUST_LOG", "debug")
        .env_remove("DOCKER_CONFIG")
        .stdin(std::process::Stdio::null());
    if json {
        command.arg("--json");
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("run cl-maint");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Arguments, environment and the exit code they must give.
type Step<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32);

fn assert_clean(what: &str, text: &str) {
    let encoded = [
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{REGISTRY_PASSWORD}")),
        base64::engine::general_purpose::URL_SAFE.encode(format!("{USER}:{REGISTRY_PASSWORD}")),
    ];
    for secret in SECRETS.iter().map(|s| s.to_string()).chain(encoded) {
        assert!(!text.contains(&secret), "{what} printed the secret {secret:?}:\n{text}");
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_output_of_any_command() {
    let rig = Rig::new("secrets").await;
    let mut registry = AuthRegistry::start(&rig, &[(USER, REGISTRY_PASSWORD)]).await;
    registry.copy(&rig, OLD, true).await;
    registry.copy(&rig, NEW, false).await;
    registry.copy(&rig, CRASH, false).await;
    let env: Vec<String> = [
        "DATABASE_URL=postgresql://chainlink:dbpwS3cr3t@db.internal:5432/chainlink?sslmode=disable",
        "API_PASSWORD=apipwS3cr3t",
        "SESSION_SECRET=sessS3cr3t",
        "CL_PROMETHEUS_AUTH_TOKEN=tokS3cr3t",
        "ETH_PRIVATE_KEY=keyS3cr3t",
        "DATABASE_TIMEOUT=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let spec = NodeSpec {
        suffix: "chainlink",
        tag: OLD,
        generation: Gen::Lease,
        env,
    };
    let node = rig.start_node_from(spec, &registry.reference(OLD)).await;
    rig.wait_serving(&node, std::time::Duration::from_secs(20)).await;
    let config = DockerConfigDir::new();
    let good = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{REGISTRY_PASSWORD}"));
    config.config(serde_json::json!({"auths": {registry.addr.clone(): {"auth": good}}}));
    let wrong_config = DockerConfigDir::new();
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:keyS3cr3t"));
    wrong_config.config(serde_json::json!({"auths": {registry.addr.clone(): {"auth": wrong}}}));
    let (good_dir, wrong_dir) = (config.dir(), wrong_config.dir());
    let with_creds = [("DOCKER_CONFIG", good_dir.as_str())];
    let main = node.addr.rsplit(':').next().unwrap().to_string();
    let (standby, secondary_port) = (free_port().to_string(), free_port().to_string());
    let secondary = format!("{}-secondary", rig.id);
    let n = node.name.as_str();
    let up = |tag: &'static str| -> Vec<&str> { vec!["upgrade", "--container", n, "--tag", tag] };

    // upgrade: dry run, refusal, pull refused, rollback, success.
    let steps: Vec<Step> = vec![
        (
            [up(NEW), vec!["--standby-port", &standby, "--dry-run"]].concat(),
            vec![],
            0,
        ),
        ([up(NEW), vec!["--standby-port", &main]].concat(), vec![], 3),
        (
            [up(NEW), vec!["--standby-port", &standby]].concat(),
            vec![("DOCKER_CONFIG", wrong_dir.as_str())],
            7,
        ),
        (
            [up(CRASH), vec!["--standby-port", &standby]].concat(),
            with_creds.to_vec(),
            5,
        ),
        (
            [up(NEW), vec!["--standby-port", &standby]].concat(),
            with_creds.to_vec(),
            0,
        ),
    ];
    for (args, env, code) in &steps {
        for json in [true, false] {
            let (got, text) = run(args, json, env).await;
            assert_eq!(got, *code, "{args:?} (json: {json}): {text}");
            assert_clean(&format!("{args:?} (json: {json})"), &text);
        }
    }

    // The pair: up, status, health, switchover, back (each once as JSON, once for people).
    let pair = Pair {
        primary: node.clone(),
        secondary: secondary.clone(),
        port: secondary_port.parse().unwrap(),
    };
    let names = ["--container", n, "--secondary", &pair.secondary];
    for (args, code) in [
        (vec!["failover", "up", "--secondary-port", &secondary_port], 0),
        (vec!["upgrade", "--tag", NEW, "--dry-run"], 0),
        (vec!["status"], 0),
        (vec!["health", "--metrics", "--metrics-token", "tokS3cr3t"], 0),
        (vec!["failover", "--secondary-port", &secondary_port], 0),
        (vec!["status"], 0),
        (vec!["failover", "back", "--secondary-port", &secondary_port], 0),
    ] {
        let args: Vec<&str> = [args, names.to_vec()].concat();
        let (got, text) = run(&args, true, &[]).await;
        assert_eq!(got, code, "{args:?}: {text}");
        assert_clean(&format!("{args:?} (json)"), &text);
        if args[0] != "failover" || args.get(1) == Some(&"up") {
            let (_, text) = run(&args, false, &[]).await;
            assert_clean(&format!("{args:?}"), &text);
        }
    }
    drop(registry);
}
