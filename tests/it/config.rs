//! The config file through the built binary: validation errors (exit 2,
//! file and line named, the engine never contacted), `config check` with
//! secrets redacted, the example file, colour, and `upgrade --all` on the
//! real engine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::rig::tcp_proxy::{TcpProxy, cl_maint};
use crate::rig::{Gen, NEW, OLD, Rig, free_port};
use crate::upgrade::{primary, world};

/// A directory of this test's own for config files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clm-{}-config-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs the binary without `--json`, stdout piped, with `env` set.
fn run_plain(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cl-maint"));
    command.args(args).env_remove("NO_COLOR").env_remove("CL_MAINT_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_config_is_a_usage_error_naming_file_and_line_before_any_engine_call() {
    let dir = scratch("bad");
    // Every command goes through the proxy: it counts what reaches the engine.
    let proxy = TcpProxy::start();
    let host = proxy.host();
    let cases = [
        (
            "unknown.toml",
            format!("[nodes.a]\nhost = \"{host}\"\nstandby_prot = 7000\n"),
            3,
            "standby_prot",
        ),
        (
            "duration.toml",
            format!("[nodes.a]\nhost = \"{host}\"\n[nodes.a.timeouts]\ntakeover = \"soon\"\n"),
            4,
            "soon",
        ),
        (
            "port.toml",
            format!("[nodes.a]\nhost = \"{host}\"\nport = 70000\n"),
            3,
            "70000",
        ),
        ("syntax.toml", format!("[nodes.a]\nhost = \"{host}\nport = 1\n"), 2, ""),
    ];
    for (file, text, line, named) in &cases {
        let path = write(&dir, file, text);
        for args in [
            vec!["--config", path.as_str(), "upgrade", "--tag", NEW],
            vec!["--config", path.as_str(), "status"],
            vec!["--config", path.as_str(), "config", "check"],
        ] {
            let run = cl_maint(&args, &[]).await;
            assert_eq!(run.code, 2, "{file} {args:?}: {run:?}");
            let location = format!("{path}:{line}: ");
            assert!(
                run.stderr.contains(&location),
                "{file}: names {location}: {}",
                run.stderr
            );
            assert!(run.stderr.contains(named), "{file}: names {named}: {}", run.stderr);
            assert!(
                run.stderr.contains("fix: "),
                "{file}: says how to fix it: {}",
                run.stderr
            );
            assert_eq!(
                run.report["valid"], false,
                "{file}: the --json document: {}",
                run.stdout
            );
            assert_eq!(run.report["error"]["line"], *line);
        }
    }
    // A node the file does not have.
    let good = write(&dir, "good.toml", &format!("[nodes.a]\nhost = \"{host}\"\n"));
    let run = cl_maint(&["--config", &good, "--node", "b", "upgrade", "--tag", NEW], &[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("no node \"b\"") && run.stderr.contains(&good),
        "{}",
        run.stderr
    );
    // A config file named but missing.
    let run = cl_maint(&["status"], &[("CL_MAINT_CONFIG", Some("/nonexistent/cl-maint.toml"))]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("CL_MAINT_CONFIG"), "{}", run.stderr);
    assert_eq!(
        proxy.accepted(),
        0,
        "a bad config must stop cl-maint before it talks to the engine"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn config_check_shows_sources_and_redacts_secrets() {
    let dir = scratch("check");
    let path = write(
        &dir,
        "cl-maint.toml",
        r#"
[defaults]
host = "tcp://ops:hunter2@10.0.0.5:2376"
[nodes.sepolia]
container = "chainlink-sepolia"
standby_port = 7001
health_token = "tok-s3cret-value"
[nodes.sepolia.timeouts]
takeover = "90s"
"#,
    );
    let run = cl_maint(&["config", "check", "--config", &path, "--port", "6690"], &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let s = &run.report["nodes"][0]["settings"];
    assert_eq!(s["standby_port"]["value"], "7001");
    assert_eq!(s["standby_port"]["source"], "file [nodes.sepolia]");
    assert_eq!(s["port"]["source"], "flag --port", "a flag beats the file");
    assert_eq!(s["host"]["source"], "file [defaults]");
    assert_eq!(s["timeouts.wait"]["source"], "default");
    assert_eq!(s["health_token"]["value"], "<redacted>");
    // Found in the working directory too, and printed for people.
    let (code, out, err) = run_plain(&["config", "check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no config file"),
        "the checkout has no cl-maint.toml: {out}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(["config", "check"])
        .current_dir(&dir)
        .env_remove("CL_MAINT_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("found by the working directory") && text.contains("takeover"),
        "{text}"
    );
    for output in [&run.stdout, &run.stderr, &text.to_string()] {
        for secret in ["tok-s3cret-value", "hunter2"] {
            assert!(!output.contains(secret), "{secret} leaked: {output}");
        }
    }
    // The user of an engine address is no secret: it is shown, the password not.
    assert!(run.stdout.contains("ops:<redacted>@"), "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cl-maint.toml");
    let (code, out, err) = run_plain(
        &["config", "check", "--config", example, "--json"],
        &[("SEPOLIA_METRICS_TOKEN", "x")],
    );
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["nodes"].as_array().unwrap().len() >= 2, "{doc}");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = scratch("colour");
    let path = write(&dir, "c.toml", "[nodes.a]\nport = 6688\n");
    let ansi = |s: &str| s.contains('\x1b');
    let (code, out, _) = run_plain(&["--config", &path, "config", "check", "--color", "always"], &[]);
    assert_eq!(code, 0);
    assert!(ansi(&out), "--color always colours: {out:?}");
    let (_, out, _) = run_plain(
        &["--config", &path, "config", "check", "--color", "always"],
        &[("NO_COLOR", "1")],
    );
    assert!(ansi(&out), "--color always beats NO_COLOR");
    let (_, out, _) = run_plain(&["--config", &path, "config", "check"], &[]);
    assert!(!ansi(&out), "piped output has no colour: {out:?}");
    let (_, out, _) = run_plain(&["--config", &path, "config", "check", "--color", "never"], &[]);
    assert!(!ansi(&out));
    let (_, out, _) = run_plain(
        &["--config", &path, "config", "check", "--color", "always", "--json"],
        &[],
    );
    assert!(!ansi(&out), "JSON is never coloured");
    // Errors on stderr follow the same rule.
    let bad = write(&dir, "bad.toml", "[nodes.a]\nprot = 1\n");
    let (code, _, err) = run_plain(&["--config", &bad, "config", "check", "--color", "always"], &[]);
    assert_eq!(code, 2);
    assert!(ansi(&err), "{err:?}");
    let (_, _, err) = run_plain(&["--config", &bad, "config", "check"], &[("NO_COLOR", "1")]);
    assert!(!ansi(&err), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A config file with `defaults` and `nodes` (name, container), each with
/// a free standby port.
fn nodes_config(dir: &Path, defaults: &str, nodes: &[(&str, &str)]) -> String {
    let mut text = format!("[defaults]\n{defaults}\n");
    for (name, container) in nodes {
        text.push_str(&format!(
            "\n[nodes.{name}]\ncontainer = \"{container}\"\nstandby_port = {}\n[nodes.{name}.timeouts]\nwait = \"60s\"\n",
            free_port()
        ));
    }
    write(dir, "all.toml", &text)
}

async fn image_of(rig: &Rig, name: &str) -> (String, String) {
    let c = rig.docker.inspect_container(name, None).await.unwrap();
    (c.id.unwrap(), c.config.unwrap().image.unwrap())
}

#[tokio::test]
async fn upgrade_all_upgrades_every_node_of_the_file() {
    let (rig_a, rig_b) = (Rig::new("cfg-all-a").await, Rig::new("cfg-all-b").await);
    let (a, b) = tokio::join!(primary(&rig_a, Gen::Lease, &[]), primary(&rig_b, Gen::Lease, &[]));
    let dir = scratch(&rig_a.id);
    // The lock generation named, and a pattern that never matches beside the
    // built-in lines.
    let defaults = "lock = \"lease\"\nlock_wait_pattern = \"^never matches$\"";
    let config = nodes_config(&dir, defaults, &[("a-first", &a.name), ("b-second", &b.name)]);
    let run = cl_maint(&["upgrade", "--all", "--tag", NEW, "--config", &config], &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let nodes = run.report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{}", run.report);
    for (n, (name, node)) in nodes.iter().zip([("a-first", &a), ("b-second", &b)]) {
        assert_eq!(n["node"], name);
        assert_eq!(n["outcome"], "upgraded", "{n}");
        assert_eq!(n["report"]["to"]["version"], NEW);
        assert_eq!(n["container"], node.name.as_str());
        // Each node's own handoffs and phases, not the run's so far.
        assert_eq!(n["report"]["handoffs"].as_array().map(Vec::len), Some(2), "{n}");
        let phases = n["report"]["phases"].as_array().unwrap();
        assert_eq!(phases.iter().filter(|p| p["name"] == "pull").count(), 1, "{n}");
    }
    for (rig, node) in [(&rig_a, &a), (&rig_b, &b)] {
        let (id, image) = image_of(rig, &node.name).await;
        assert_ne!(id, node.id, "{} was recreated", node.name);
        assert!(image.ends_with(&format!(":{NEW}")), "{image}");
        rig.wait_serving(node, Duration::from_secs(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn upgrade_all_stops_at_the_first_failure_and_leaves_the_rest_untouched() {
    let (rig_a, rig_b) = (Rig::new("cfg-fail-a").await, Rig::new("cfg-fail-b").await);
    let (a, b) = tokio::join!(primary(&rig_a, Gen::Bolt, &[]), primary(&rig_b, Gen::Bolt, &[]));
    let before_b = world(&rig_b).await;
    let dir = scratch(&rig_a.id);
    let config = nodes_config(&dir, "", &[("a-first", &a.name), ("b-second", &b.name)]);
    let run = cl_maint(
        &["upgrade", "--all", "--tag", "1.9.9-no-such-tag", "--config", &config],
        &[],
    )
    .await;
    assert_eq!(run.code, 7, "the first failure's code (pull failed): {run:?}");
    assert_eq!(run.report["failed_node"], "a-first");
    assert_eq!(run.report["nodes"][0]["outcome"], "pull-failed");
    assert_eq!(run.report["nodes"][1]["outcome"], "skipped");
    assert!(run.report["nodes"][1]["report"].is_null());
    assert_eq!(world(&rig_b).await, before_b, "the second node was not touched");
    let (_, image) = image_of(&rig_b, &b.name).await;
    assert!(image.ends_with(&format!(":{OLD}")), "{image}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-vv` shows the engine calls (reads included) as progress detail on
/// stderr, `-v` only changes, and neither touches stdout or shows secrets.
#[tokio::test]
async fn verbosity_shows_engine_calls_on_stderr() {
    let rig = Rig::new("cfg-verbose").await;
    let node = primary(&rig, Gen::Lease, &["DATABASE_URL=postgresql://u:verbose-secret@db/x"]).await;
    let status = |flags: &'static [&'static str]| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["status", "--container", node.name.as_str(), "--json"]);
        run_plain(&args, &[])
    };
    let (code, quiet_out, quiet_err) = status(&[]);
    assert_eq!(code, 0, "{quiet_err}");
    assert!(!quiet_err.contains("inspect container"), "{quiet_err}");
    let (_, _, one_err) = status(&["-v"]);
    assert!(
        !one_err.contains("inspect container"),
        "-v shows changes only: {one_err}"
    );
    let (code, out, err) = status(&["-vv"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("inspect container {}", node.name)), "{err}");
    assert!(
        !err.contains("verbose-secret") && !out.contains("verbose-secret"),
        "{err}"
    );
    let shape = |s: &str| serde_json::from_str::<serde_json::Value>(s).map(|v| v["verdict"].clone());
    assert_eq!(shape(&out).ok(), shape(&quiet_out).ok(), "stdout is the same document");
}
