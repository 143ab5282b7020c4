//! Tests of the config file and its resolution: precedence (flag > file >
//! default), validation errors with their line, node selection, redaction.

use std::path::Path;
use std::time::Duration;

use super::file::{self, parse};
use super::resolve::{Given, Setting, Source, defaults, resolve, resolve_all, select};
use super::{ConfigError, LockKind, redact_host};

const FULL: &str = r#"
[defaults]
host = "tcp://ops:hunter2@10.0.0.5:2376"
standby_port = 7001

[nodes.sepolia]
container = "chainlink-sepolia"
repository = "smartcontract/chainlink"
port = 6688
standby_port = 6687
secondary = "chainlink-sepolia-secondary"
lock = "lease"
lock_wait_pattern = "waiting for the lease"
health_token = "tok-s3cret"
before_upgrade = "/usr/local/bin/cl-snapshot"

[nodes.sepolia.timeouts]
takeover = "90s"

[nodes.mainnet]
health_token_env = "MAINNET_TOKEN"
"#;

fn path() -> &'static Path {
    Path::new("/etc/cl-maint.toml")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn err(text: &str) -> ConfigError {
    parse(path(), text).expect_err("the file is invalid")
}

#[test]
fn file_beats_defaults_and_node_beats_its_defaults_table() {
    let f = parse(path(), FULL).unwrap();
    let e = resolve(Some(&f), Some("sepolia"), &Given::default(), &no_env).unwrap();
    assert_eq!(e.container.value, "chainlink-sepolia");
    assert_eq!(e.standby_port, Setting::new(6687, Source::File("nodes.sepolia".into())));
    assert_eq!(e.host.source, Source::File("defaults".into()));
    assert_eq!(e.takeover_timeout.value, Duration::from_secs(90));
    assert_eq!(e.wait_timeout, Setting::new(defaults::WAIT, Source::Default));
    assert_eq!(e.lock.value, Some(LockKind::Lease));
    assert_eq!(e.health_token.value.as_deref(), Some("tok-s3cret"));
    assert_eq!(
        e.before_upgrade,
        Setting::new(
            Some("/usr/local/bin/cl-snapshot".to_string()),
            Source::File("nodes.sepolia".into())
        )
    );
    assert_eq!(e.after_upgrade.value, None);
    let m = resolve(Some(&f), Some("mainnet"), &Given::default(), &no_env).unwrap();
    assert_eq!(m.container.value, "mainnet", "a node without `container` uses its name");
    assert_eq!(m.standby_port, Setting::new(7001, Source::File("defaults".into())));
    assert_eq!(m.notes.len(), 1, "the unset token variable is noted");
}

#[test]
fn flags_beat_the_file() {
    let f = parse(path(), FULL).unwrap();
    let given = Given {
        standby_port: Some(Setting::new(9000, Source::Flag("--standby-port"))),
        host: Some(Setting::new("unix:///x.sock".into(), Source::Env("DOCKER_HOST"))),
        takeover_timeout: Some(Setting::new(Duration::from_secs(5), Source::Flag("--takeover-timeout"))),
        ..Given::default()
    };
    let e = resolve(Some(&f), Some("sepolia"), &given, &no_env).unwrap();
    assert_eq!(e.standby_port, Setting::new(9000, Source::Flag("--standby-port")));
    assert_eq!(e.host.value.as_deref(), Some("unix:///x.sock"));
    assert_eq!(e.host.source.to_string(), "env DOCKER_HOST");
    assert_eq!(e.takeover_timeout.value, Duration::from_secs(5));
    assert_eq!(e.container.source, Source::File("nodes.sepolia".into()));
}

#[test]
fn without_a_file_the_defaults_apply() {
    let e = resolve(None, None, &Given::default(), &no_env).unwrap();
    assert_eq!(
        e.container,
        Setting::new(defaults::CONTAINER.to_string(), Source::Default)
    );
    assert_eq!(e.standby_port.value, defaults::STANDBY_PORT);
    assert_eq!(e.stop_timeout.value, defaults::STOP);
    assert_eq!(e.host.value, None);
}

#[test]
fn the_defaults_are_the_flags_defaults() {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from(["cl-maint", "upgrade", "--tag", "1.0.0"]).unwrap();
    let crate::cli::Command::Upgrade(a) = cli.command else {
        unreachable!()
    };
    assert_eq!(a.pair.container, defaults::CONTAINER);
    assert_eq!(a.pair.secondary, defaults::SECONDARY);
    assert_eq!(a.standby_port, defaults::STANDBY_PORT);
    let t = &a.timeouts;
    assert_eq!(
        (a.pull_timeout, t.wait_timeout, t.takeover_timeout, t.stop_timeout),
        (defaults::PULL, defaults::WAIT, defaults::TAKEOVER, defaults::STOP)
    );
    let cli = crate::cli::Cli::try_parse_from(["cl-maint", "failover"]).unwrap();
    let crate::cli::Command::Failover(f) = cli.command else {
        unreachable!()
    };
    assert_eq!(f.secondary_port, defaults::SECONDARY_PORT);
}

#[test]
fn precedence_through_the_command_line() {
    use clap::{CommandFactory, FromArgMatches};
    let f = parse(path(), FULL).unwrap();
    let parse_args = |args: &[&str]| {
        let m = crate::cli::Cli::command().try_get_matches_from(args).unwrap();
        let cli = crate::cli::Cli::from_arg_matches(&m).unwrap();
        super::apply::given(&cli, &m)
    };
    // A default is not "given": the file wins over it.
    let g = parse_args(&["cl-maint", "upgrade", "--tag", "1"]);
    assert!(g.standby_port.is_none() && g.container.is_none() && g.wait_timeout.is_none());
    let e = resolve(Some(&f), Some("sepolia"), &g, &no_env).unwrap();
    assert_eq!(e.standby_port.value, 6687);
    // A flag, before or after the subcommand, wins over the file.
    let g = parse_args(&[
        "cl-maint",
        "--lock",
        "bolt",
        "upgrade",
        "--tag",
        "1",
        "--standby-port",
        "7777",
    ]);
    let e = resolve(Some(&f), Some("sepolia"), &g, &no_env).unwrap();
    assert_eq!(e.standby_port, Setting::new(7777, Source::Flag("--standby-port")));
    assert_eq!(e.lock, Setting::new(Some(LockKind::Bolt), Source::Flag("--lock")));
    let g = parse_args(&["cl-maint", "failover", "up", "--secondary-port", "7688"]);
    assert_eq!(g.secondary_port.map(|s| s.value), Some(7688));
}

#[test]
fn node_selection() {
    let f = parse(path(), FULL).unwrap();
    assert_eq!(
        select(Some(&f), Some("mainnet"), None).unwrap().as_deref(),
        Some("mainnet")
    );
    let several = select(Some(&f), None, None).unwrap_err();
    assert!(several.what.contains("mainnet, sepolia"), "{several}");
    assert!(several.fix.contains("--node"), "{several}");
    assert_eq!(
        select(Some(&f), None, Some("chainlink-sepolia")).unwrap().as_deref(),
        Some("sepolia"),
        "--container picks the node with that container"
    );
    let missing = select(Some(&f), Some("goerli"), None).unwrap_err();
    assert_eq!(missing.path, path());
    assert!(missing.what.contains("no node \"goerli\""), "{missing}");
    let one = parse(path(), "[nodes.only]\nport = 6688\n").unwrap();
    assert_eq!(select(Some(&one), None, None).unwrap().as_deref(), Some("only"));
    assert!(select(None, Some("x"), None).is_err(), "--node without a file");
    assert_eq!(select(None, None, None).unwrap(), None);
}

#[test]
fn validation_errors_name_the_line_and_the_fix() {
    let unknown = err("[nodes.a]\ncontainer = \"x\"\nstandby_prot = 5\n");
    assert_eq!(unknown.line, Some(3));
    assert!(unknown.what.contains("standby_prot"), "{unknown}");
    assert!(
        unknown.fix.contains("standby_port"),
        "the fix lists the keys: {unknown}"
    );
    let top = err("[node.a]\nport = 1\n");
    assert_eq!(top.line, Some(1));
    assert!(top.what.contains("node"), "{top}");
    let duration = err("[nodes.a.timeouts]\n\nwait = \"5 minutes\"\n");
    assert_eq!(duration.line, Some(3));
    assert!(duration.fix.contains("30s"), "{duration}");
    let zero = err("[defaults.timeouts]\nstop = \"0s\"\n");
    assert_eq!(zero.line, Some(2));
    let port = err("[nodes.a]\nport = 70000\n");
    assert_eq!(port.line, Some(2));
    assert!(port.what.contains("70000"), "{port}");
    assert!(err("[nodes.a]\nstandby_port = 0\n").what.contains("1 to 65535"));
    assert!(err("[nodes.a]\nport = \"6688\"\n").line == Some(2));
    let toml = err("[nodes.a\nport = 7\n");
    assert_eq!(toml.line, Some(1));
    let name = err("[nodes.a]\ncontainer = \"-bad\"\n");
    assert!(name.what.contains("invalid container name"), "{name}");
    let lock = err("[nodes.a]\nlock = \"advisory\"\n");
    assert_eq!(lock.line, Some(2));
    let host = err("[nodes.a]\nhost = \"10.0.0.5:2376\"\n");
    assert!(host.what.contains("unix://"), "{host}");
    let pattern = err("[nodes.a]\nlock = \"bolt\"\nlock_wait_pattern = \"waiting (for\"\n");
    assert_eq!(pattern.line, Some(3));
    let lockless = err("[nodes.a]\n\nlock_wait_pattern = \"waiting\"\n");
    assert_eq!(lockless.line, Some(3));
    assert!(lockless.fix.contains("lock = \"bolt\""), "{lockless}");
    let shared = err("[defaults]\ncontainer = \"x\"\n");
    assert_eq!(shared.line, Some(2));
    let shown = format!("{unknown}");
    assert!(shown.starts_with("/etc/cl-maint.toml:3: "), "{shown}");
}

#[test]
fn combinations_are_checked() {
    let f = parse(path(), "[nodes.a]\nport = 6687\n").unwrap();
    let e = resolve(Some(&f), Some("a"), &Given::default(), &no_env).unwrap_err();
    assert!(e.what.contains("both 6687"), "{e}");
    let given = Given {
        lock_wait_pattern: Some(Setting::new("x".into(), Source::Flag("--lock-wait-pattern"))),
        ..Given::default()
    };
    let e = resolve(None, None, &given, &no_env).unwrap_err();
    assert!(e.fix.contains("--lock"), "{e}");
}

#[test]
fn tokens_from_the_environment_and_redaction() {
    let f = parse(path(), FULL).unwrap();
    let env = |name: &str| (name == "MAINNET_TOKEN").then(|| "env-tok".to_string());
    let m = resolve(Some(&f), Some("mainnet"), &Given::default(), &env).unwrap();
    assert_eq!(m.health_token.value.as_deref(), Some("env-tok"));
    assert!(m.notes.is_empty());
    let all = resolve_all(&f, &Given::default(), &env).unwrap();
    assert_eq!(all.len(), 2);
    let report = super::check::CheckReport {
        file: Some(path().to_path_buf()),
        origin: Some(file::Origin::Flag),
        looked_in: Vec::new(),
        nodes: all,
    };
    for text in [report.to_human(), report.to_json()] {
        for secret in ["tok-s3cret", "env-tok", "hunter2"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("<redacted>"));
    }
    // The user is shown (no secret); a password is not.
    assert_eq!(redact_host("ssh://ops@node-1"), "ssh://ops@node-1");
    assert_eq!(
        redact_host("tcp://ops:hunter2@10.0.0.5:2376"),
        "tcp://ops:<redacted>@10.0.0.5:2376"
    );
    assert_eq!(
        redact_host("unix:///var/run/docker.sock"),
        "unix:///var/run/docker.sock"
    );
    assert_eq!(redact_host("tcp://10.0.0.5:2376/a@b"), "tcp://10.0.0.5:2376/a@b");
}

#[test]
fn the_file_is_found_in_order() {
    let dir = std::env::temp_dir().join(format!("clm-config-find-{}", std::process::id()));
    let (cwd, xdg, home) = (dir.join("cwd"), dir.join("xdg"), dir.join("home"));
    for d in [&cwd, &xdg.join("cl-maint"), &home.join(".config/cl-maint")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let found = |named: Option<&Path>| file::find(named, false, &cwd, Some(&xdg), Some(&home)).unwrap();
    assert_eq!(found(None), None);
    std::fs::write(home.join(".config/cl-maint/cl-maint.toml"), "").unwrap();
    let home_only = file::find(None, false, &cwd, None, Some(&home)).unwrap().unwrap();
    assert_eq!(home_only.1, file::Origin::UserDir);
    std::fs::write(xdg.join("cl-maint/cl-maint.toml"), "").unwrap();
    assert_eq!(found(None).unwrap().0, xdg.join("cl-maint/cl-maint.toml"));
    std::fs::write(cwd.join("cl-maint.toml"), "").unwrap();
    assert_eq!(
        found(None).unwrap(),
        (cwd.join("cl-maint.toml"), file::Origin::WorkingDir)
    );
    let named = xdg.join("cl-maint/cl-maint.toml");
    assert_eq!(found(Some(&named)).unwrap().1, file::Origin::Flag);
    let missing = file::find(Some(&dir.join("nope.toml")), true, &cwd, None, None).unwrap_err();
    assert!(missing.what.contains("CL_MAINT_CONFIG"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_custom_lock_wait_line_is_a_waiting_line_of_the_named_generation() {
    use crate::node::logs::{Event, Generation, LogSettings, classify_custom};
    let settings = LogSettings {
        generation: Some(Generation::Bolt),
        lock_wait: Some(super::compile_pattern(r"^db busy, retrying in \d+s$").unwrap()),
    };
    assert_eq!(
        classify_custom("db busy, retrying in 5s", &settings),
        Some(Event::Waiting(Generation::Bolt))
    );
    assert_eq!(classify_custom("db busy", &settings), None);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let line = "2024-01-01T00:00:00Z db busy, retrying in 5s";
    assert_eq!(crate::node::logs::classify(line), None, "outside the settings' scope");
    let inside = rt.block_on(crate::node::logs::with_settings(
        LogSettings {
            generation: Some(Generation::Lease),
            lock_wait: Some(super::compile_pattern(r"db busy, retrying").unwrap()),
        },
        async move {
            (
                crate::node::logs::classify(line),
                crate::node::logs::generation_override(),
            )
        },
    ));
    assert_eq!(
        inside,
        (Some(Event::Waiting(Generation::Lease)), Some(Generation::Lease))
    );
}
