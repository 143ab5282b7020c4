//! Tests of the command line, version and configuration reading.

use std::collections::HashMap;

use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn node(config: &[&str], secrets: &[&str]) -> Command {
    Command::Node(Invocation {
        config_files: config.iter().map(|s| s.to_string()).collect(),
        secrets_files: secrets.iter().map(|s| s.to_string()).collect(),
    })
}

/// An environment and a file system made of maps.
struct World {
    env: HashMap<&'static str, &'static str>,
    files: HashMap<&'static str, &'static str>,
}

impl World {
    fn new(env: &[(&'static str, &'static str)], files: &[(&'static str, &'static str)]) -> World {
        World {
            env: env.iter().copied().collect(),
            files: files.iter().copied().collect(),
        }
    }

    fn env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |n| self.env.get(n).map(|v| v.to_string())
    }

    fn read(&self) -> impl Fn(&str) -> std::io::Result<String> + '_ {
        |p| {
            self.files
                .get(p)
                .map(|t| t.to_string())
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
        }
    }

    fn load(&self, line: &str, version: &str) -> Result<Config, String> {
        let Command::Node(inv) = parse_args(&args(line)) else {
            panic!("not a node command: {line}")
        };
        Config::load(&inv, &self.env(), &self.read(), (version.into(), "abc1234".into()))
    }
}

#[test]
fn command_lines() {
    assert_eq!(parse_args(&args("--version")), Command::Version);
    assert_eq!(parse_args(&args("-v")), Command::Version);
    assert_eq!(parse_args(&args("healthcheck")), Command::Healthcheck);
    assert_eq!(parse_args(&args("local node")), node(&[], &[]));
    assert_eq!(parse_args(&args("")), node(&[], &[]));
    assert_eq!(
        parse_args(&args(
            "node -config /chainlink/config.toml -config more.toml -secrets /chainlink/secrets.toml start -a /chainlink/.api"
        )),
        node(&["/chainlink/config.toml", "more.toml"], &["/chainlink/secrets.toml"])
    );
    assert_eq!(
        parse_args(&args(
            "--json node --config=a.toml -c b.toml --secrets s1.toml -s=s2.toml n -c ignored.toml"
        )),
        node(&["a.toml", "b.toml"], &["s1.toml", "s2.toml"])
    );
    assert_eq!(parse_args(&args("node -config")), node(&[], &[]));
}

#[test]
fn version_from_env_then_file() {
    let read = |p: &str| match p {
        "/v" => Ok("2.10.0@deadbee\n".to_string()),
        "/bare" => Ok("1.1.0\n".to_string()),
        _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "none")),
    };
    let none = |_: &str| None;
    assert_eq!(read_version(&none, &read, "/v"), ("2.10.0".into(), "deadbee".into()));
    assert_eq!(read_version(&none, &read, "/bare"), ("1.1.0".into(), "0000000".into()));
    assert_eq!(
        read_version(&none, &read, "/missing"),
        ("0.0.0".into(), "0000000".into())
    );
    let env = |n: &str| match n {
        "CHAINLINK_VERSION" => Some("1.0.0".to_string()),
        "CHAINLINK_COMMIT" => Some("c0ffee0".to_string()),
        _ => None,
    };
    assert_eq!(read_version(&env, &read, "/v"), ("1.0.0".into(), "c0ffee0".into()));
    let empty = |n: &str| (n == "CHAINLINK_VERSION").then(String::new);
    assert_eq!(read_version(&empty, &read, "/v"), ("2.10.0".into(), "deadbee".into()));
}

#[test]
fn v1_reads_the_environment() {
    let w = World::new(
        &[
            ("CHAINLINK_PORT", "6687"),
            ("DATABASE_URL", "postgresql://cl:pw@db:5432/cl?sslmode=disable"),
            ("LEASE_LOCK_DURATION", "3s"),
            ("JSON_CONSOLE", "true"),
            ("LOG_LEVEL", "debug"),
            ("ROOT", "/data"),
            ("CL_DOUBLE_JOURNAL", "/journal"),
        ],
        &[],
    );
    let c = w.load("local node", "1.1.0").unwrap();
    assert_eq!(c.port, 6687);
    assert_eq!(c.mode, LockMode::Lease);
    assert_eq!(c.database.as_ref().unwrap().host, "db");
    assert_eq!(c.lease_duration, Duration::from_secs(3));
    assert_eq!(c.lease_refresh, Duration::from_secs(1));
    assert_eq!((c.format, c.level), (Format::Json, Level::Debug));
    assert_eq!(c.root, PathBuf::from("/data"));
    assert_eq!(c.journal_dir, PathBuf::from("/journal"));
    assert_eq!(c.db_timeout, Duration::from_millis(500));
}

#[test]
fn v1_lease_needs_a_database_and_bolt_does_not() {
    let w = World::new(&[], &[]);
    assert!(w.load("local node", "1.0.0").unwrap_err().contains("DATABASE_URL"));
    let w = World::new(&[("CL_DOUBLE_LOCK", "bolt"), ("DATABASE_TIMEOUT", "0")], &[]);
    let c = w.load("local node", "0.5.0").unwrap();
    assert_eq!(
        (c.mode, c.db_timeout, c.database.is_none()),
        (LockMode::Bolt, Duration::ZERO, true)
    );
    assert_eq!(c.journal_dir, PathBuf::from("/chainlink"));
    let w = World::new(&[("DATABASE_URL", "mysql://x")], &[]);
    assert!(
        w.load("local node", "1.0.0")
            .unwrap_err()
            .contains("invalid DATABASE_URL")
    );
    let w = World::new(
        &[
            ("DATABASE_URL", "postgres://db/x"),
            ("LEASE_LOCK_REFRESH_INTERVAL", "6s"),
        ],
        &[],
    );
    assert!(w.load("local node", "1.0.0").unwrap_err().contains("half"));
}

#[test]
fn v2_reads_toml_files_then_cl_config() {
    let w = World::new(
        &[
            ("CL_CONFIG", "[Log]\nLevel = 'warn'\n[WebServer]\nHTTPPort = 6690"),
            ("DATABASE_TIMEOUT", "0"),
            ("CL_LOG_COLOR", "true"),
        ],
        &[
            (
                "/chainlink/config.toml",
                "RootDir = '/chainlink'\n[WebServer]\nHTTPPort = 6687\n[Database.Lock]\nLeaseDuration = '4s'\nLeaseRefreshInterval = '500ms'\n[Log]\nLevel = 'debug'\n",
            ),
            (
                "/chainlink/more.toml",
                "ShutdownGracePeriod = '2s'\n[Database]\nLock.Enabled = false\n",
            ),
            (
                "/chainlink/secrets.toml",
                "[Database]\nURL = 'postgresql://cl@db:5432/cl'\n",
            ),
        ],
    );
    let c = w
        .load(
            "node -config /chainlink/config.toml -config /chainlink/more.toml -secrets /chainlink/secrets.toml start",
            "2.10.0",
        )
        .unwrap();
    assert_eq!(c.port, 6690);
    assert_eq!(c.level, Level::Warn);
    assert_eq!(c.format, Format::Colour);
    assert_eq!(c.lease_duration, Duration::from_secs(4));
    assert_eq!(c.lease_refresh, Duration::from_millis(500));
    assert_eq!(c.grace, Duration::from_secs(2));
    assert!(!c.lock_enabled);
    assert_eq!(c.database.as_ref().unwrap().dbname, "cl");
    assert_eq!(c.db_timeout, Duration::from_millis(500), "DATABASE_TIMEOUT is ignored");
}

#[test]
fn v2_database_url_from_secrets_then_env() {
    let files = [("/s.toml", "[Database]\nURL = 'postgresql://a@file-db/x'")];
    let w = World::new(&[("CL_DATABASE_URL", "postgresql://b@env-db/y")], &files);
    assert_eq!(
        w.load("node -s /s.toml start", "2.0.0").unwrap().database.unwrap().host,
        "env-db"
    );
    let w = World::new(&[], &files);
    assert_eq!(
        w.load("node -s /s.toml start", "2.0.0").unwrap().database.unwrap().host,
        "file-db"
    );
    let w = World::new(&[], &[]);
    assert!(w.load("node start", "2.0.0").unwrap_err().contains("Database.URL"));
    assert!(
        w.load("node -config /missing.toml start", "2.0.0")
            .unwrap_err()
            .contains("/missing.toml")
    );
    let w = World::new(
        &[("CL_DATABASE_URL", "postgres://db/x"), ("CL_DOUBLE_LOCK", "bolt")],
        &[],
    );
    assert!(w.load("node start", "2.0.0").is_err());
    let w = World::new(
        &[
            ("CL_DATABASE_URL", "postgres://db/x"),
            ("CL_CONFIG", "[Database.Lock]\nLeaseRefreshInterval = '6s'"),
        ],
        &[],
    );
    assert!(w.load("node start", "2.0.0").unwrap_err().contains("half"));
}

#[test]
fn v2_refuses_legacy_variables() {
    let w = World::new(
        &[
            ("CL_DATABASE_URL", "postgres://db/x"),
            ("DATABASE_URL", "postgres://db/x"),
        ],
        &[],
    );
    assert_eq!(
        w.load("node start", "2.0.0").unwrap_err(),
        "config validation failed: invalid environment: environment variable DATABASE_URL must not be set: unsupported with config v2"
    );
    let w = World::new(&[("CL_DATABASE_URL", "postgres://db/x"), ("CHAINLINK_PORT", "")], &[]);
    assert!(
        w.load("node start", "2.1.0")
            .unwrap_err()
            .contains("CHAINLINK_PORT must not be set")
    );
    let w = World::new(
        &[("CL_DATABASE_URL", "postgres://db/x"), ("DATABASE_TIMEOUT", "0")],
        &[],
    );
    assert!(w.load("node start", "2.1.0").is_ok());
    let w = World::new(&[("DATABASE_URL", "postgres://db/x"), ("ROOT", "/chainlink")], &[]);
    assert!(w.load("local node", "1.13.0").is_ok(), "a 1.x node reads them");
}

#[test]
fn healthcheck_finds_the_port_like_the_node() {
    let files = [("/c.toml", "[WebServer]\nHTTPPort = 6600")];
    let cmd = "chainlink\0node\0-config\0/c.toml\0-secrets\0/s.toml\0start\0";
    let w = World::new(&[("CHAINLINK_PORT", "6601")], &files);
    assert_eq!(healthcheck_port(cmd, &w.env(), &w.read()), 6600);
    let w = World::new(&[("CL_CONFIG", "WebServer.HTTPPort = 6602")], &files);
    assert_eq!(healthcheck_port("chainlink\0node\0start\0", &w.env(), &w.read()), 6602);
    let w = World::new(&[("CHAINLINK_PORT", "6601")], &files);
    assert_eq!(healthcheck_port("chainlink\0local\0node\0", &w.env(), &w.read()), 6601);
    let w = World::new(&[], &files);
    assert_eq!(healthcheck_port("", &w.env(), &w.read()), 6688);
}

#[test]
fn faults_apply_to_every_version_or_only_the_named_one() {
    let faults = parse_faults("ignore-term@1.0.0, exit-after-wait@1.1.0", "1.1.0").unwrap();
    assert_eq!(faults, vec![Fault::ExitAfterWait]);
    assert_eq!(parse_faults("silent-wait", "9.9.9").unwrap(), vec![Fault::SilentWait]);
    assert!(parse_faults("", "1.0.0").unwrap().is_empty());
    assert!(parse_faults("no-such-fault@1.0.0", "1.0.0").is_err());
}

#[test]
fn versions() {
    assert!(is_v2("2.0.0") && is_v2("2.10.0-rc1") && !is_v2("1.13.0") && !is_v2("0.0.0"));
    assert!(version_key("1.10.0") > version_key("1.9.9"));
}
