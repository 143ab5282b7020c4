//! Between the parsed command line and the config: what the command line
//! gave (by clap's value sources: a default is not "given", an environment
//! variable such as `DOCKER_HOST` is), finding and reading the file, and
//! writing a node's effective settings back into the parsed command line so
//! the commands run with them.

use clap::ArgMatches;
use clap::parser::ValueSource;

use super::ConfigError;
use super::file::{self, ConfigFile, Origin};
use super::resolve::{self, Effective, Given, Setting, Source};
use crate::cli::{Cli, Command};

/// The config a command runs with.
#[derive(Debug)]
pub struct Prepared {
    /// The file, when one was found.
    pub file: Option<ConfigFile>,
    /// How it was found.
    pub origin: Option<Origin>,
    /// The effective settings: one node, or every node with `upgrade --all`.
    pub nodes: Vec<Effective>,
}

/// Finds and reads the config file, chooses the node(s) and resolves their
/// settings (for the commands that act on a node; no nodes for the others).
/// Pure but for reading the file and the environment.
pub fn prepare(cli: &Cli, matches: &ArgMatches) -> Result<Prepared, ConfigError> {
    let uses_config = matches!(
        cli.command,
        Command::Upgrade(_) | Command::Failover(_) | Command::Status(_) | Command::Health(_) | Command::Config { .. }
    );
    if !uses_config {
        return Ok(Prepared {
            file: None,
            origin: None,
            nodes: Vec::new(),
        });
    }
    let named_by_env = matches!(source_of(matches, "config"), Some(ValueSource::EnvVariable));
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let found = file::find(
        cli.config.as_deref(),
        named_by_env,
        &cwd,
        xdg.as_deref(),
        home.as_deref(),
    )?;
    let (file, origin) = match found {
        Some((path, origin)) => (Some(file::load(&path)?), Some(origin)),
        None => (None, None),
    };
    let given = given(cli, matches);
    let env = |name: &str| std::env::var(name).ok();
    let all = matches!(&cli.command, Command::Upgrade(a) if a.all);
    let checking_all = matches!(&cli.command, Command::Config { .. }) && cli.node.is_none();
    let nodes = if all {
        let Some(f) = file.as_ref() else {
            return Err(ConfigError::new(
                std::path::Path::new(file::FILE_NAME),
                None,
                "--all upgrades every node of the config file, and none was found".to_string(),
                format!(
                    "name one with --config PATH (or CL_MAINT_CONFIG), or put {} in the working directory or ~/.config/cl-maint/",
                    file::FILE_NAME
                ),
            ));
        };
        resolve::resolve_all(f, &given, &env)?
    } else if checking_all && file.as_ref().is_some_and(|f| !f.nodes.is_empty()) {
        resolve::resolve_all(file.as_ref().expect("checked"), &given, &env)?
    } else {
        let container = given.container.as_ref().map(|c| c.value.as_str());
        let node = resolve::select(file.as_ref(), cli.node.as_deref(), container)?;
        vec![resolve::resolve(file.as_ref(), node.as_deref(), &given, &env)?]
    };
    Ok(Prepared { file, origin, nodes })
}

/// The highest source of `id` at any level of the command line (global
/// flags may be given before or after the subcommand).
fn source_of(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    let mut best = None;
    let mut level = Some(matches);
    while let Some(m) = level {
        if m.try_contains_id(id).is_ok() {
            best = best.max(m.value_source(id));
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    best
}

/// Marks the pair's secondary as named by the operator when a flag or an
/// environment variable gave it ([`apply`] does so for the config file).
pub fn mark_named(cli: &mut Cli, matches: &ArgMatches) {
    let named = matches!(
        source_of(matches, "secondary"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    if let Some(p) = cli.command.pair_mut() {
        p.secondary_named = named;
    }
}

/// What the command line gave: each setting whose value came from a flag or
/// an environment variable, not from a default.
pub fn given(cli: &Cli, matches: &ArgMatches) -> Given {
    let src = |id: &str, flag: &'static str, env: &'static str| match source_of(matches, id) {
        Some(ValueSource::CommandLine) => Some(Source::Flag(flag)),
        Some(ValueSource::EnvVariable) => Some(Source::Env(env)),
        _ => None,
    };
    let mut g = Given {
        // A host not from the flag came from DOCKER_HOST (`Cli::host_from_env`).
        host: match source_of(matches, "host") {
            Some(ValueSource::CommandLine) => Some(Source::Flag("--host")),
            _ => cli.host.as_ref().map(|_| Source::Env("DOCKER_HOST")),
        }
        .zip(cli.host.clone())
        .map(|(s, v)| Setting::new(v, s)),
        port: src("port", "--port", "").zip(cli.port).map(|(s, v)| Setting::new(v, s)),
        lock: src("lock", "--lock", "").zip(cli.lock).map(|(s, v)| Setting::new(v, s)),
        probe: src("probe", "--probe", "")
            .zip(cli.probe)
            .map(|(s, v)| Setting::new(v, s)),
        lock_wait_pattern: src("lock_wait_pattern", "--lock-wait-pattern", "")
            .zip(cli.lock_wait_pattern.clone())
            .map(|(s, v)| Setting::new(v, s)),
        ..Given::default()
    };
    let string = |id: &str, flag: &'static str, env: &'static str, v: &String| {
        src(id, flag, env).map(|s| Setting::new(v.clone(), s))
    };
    let opt = |id: &str, flag: &'static str, env: &'static str, v: &Option<String>| {
        src(id, flag, env).zip(v.clone()).map(|(s, v)| Setting::new(v, s))
    };
    let dur = |id: &str, flag: &'static str, v: std::time::Duration| src(id, flag, "").map(|s| Setting::new(v, s));
    let pair = |g: &mut Given, p: &crate::cli::PairArgs| {
        g.container = string("container", "--container", "", &p.container);
        g.secondary = string("secondary", "--secondary", "", &p.secondary);
        g.secondary_host = opt(
            "secondary_host",
            "--secondary-host",
            "CL_MAINT_SECONDARY_HOST",
            &p.secondary_host,
        );
    };
    let timeouts = |g: &mut Given, t: &crate::cli::Timeouts| {
        g.wait_timeout = dur("wait_timeout", "--wait-timeout", t.wait_timeout);
        g.takeover_timeout = dur("takeover_timeout", "--takeover-timeout", t.takeover_timeout);
        g.stop_timeout = dur("stop_timeout", "--stop-timeout", t.stop_timeout);
    };
    match &cli.command {
        Command::Upgrade(a) => {
            pair(&mut g, &a.pair);
            g.repository = opt("image", "--image", "", &a.image);
            g.standby_port = src("standby_port", "--standby-port", "").map(|s| Setting::new(a.standby_port, s));
            g.pull_timeout = dur("pull_timeout", "--pull-timeout", a.pull_timeout);
            g.before_upgrade = opt("before_upgrade", "--before-upgrade", "", &a.before_upgrade);
            g.after_upgrade = opt("after_upgrade", "--after-upgrade", "", &a.after_upgrade);
            timeouts(&mut g, &a.timeouts);
        }
        Command::Failover(a) => {
            pair(&mut g, &a.pair);
            g.secondary_port = src("secondary_port", "--secondary-port", "").map(|s| Setting::new(a.secondary_port, s));
            timeouts(&mut g, &a.timeouts);
        }
        Command::Recover(a) => {
            pair(&mut g, &a.pair);
            timeouts(&mut g, &a.timeouts);
        }
        Command::Status(a) => pair(&mut g, &a.pair),
        Command::Health(a) => {
            pair(&mut g, &a.pair);
            g.health_token = opt(
                "metrics_token",
                "--metrics-token",
                "CL_MAINT_METRICS_TOKEN",
                &a.metrics_token,
            );
        }
        _ => {}
    }
    g
}

/// Writes a node's effective settings into the parsed command line.
pub fn apply(cli: &mut Cli, e: &Effective) {
    cli.host = e.host.value.clone();
    cli.port = e.port.value;
    cli.lock = e.lock.value;
    cli.probe = e.probe.value;
    cli.lock_wait_pattern = e.lock_wait_pattern.value.clone();
    let pair = |p: &mut crate::cli::PairArgs| {
        p.container = e.container.value.clone();
        p.secondary = e.secondary.value.clone();
        p.secondary_host = e.secondary_host.value.clone();
        p.secondary_named = !matches!(e.secondary.source, Source::Default);
    };
    let timeouts = |t: &mut crate::cli::Timeouts| {
        t.wait_timeout = e.wait_timeout.value;
        t.takeover_timeout = e.takeover_timeout.value;
        t.stop_timeout = e.stop_timeout.value;
    };
    match &mut cli.command {
        Command::Upgrade(a) => {
            pair(&mut a.pair);
            a.image = e.repository.value.clone();
            a.standby_port = e.standby_port.value;
            a.pull_timeout = e.pull_timeout.value;
            a.before_upgrade = e.before_upgrade.value.clone();
            a.after_upgrade = e.after_upgrade.value.clone();
            timeouts(&mut a.timeouts);
        }
        Command::Failover(a) => {
            pair(&mut a.pair);
            a.secondary_port = e.secondary_port.value;
            timeouts(&mut a.timeouts);
        }
        Command::Recover(a) => {
            pair(&mut a.pair);
            timeouts(&mut a.timeouts);
        }
        Command::Status(a) => pair(&mut a.pair),
        Command::Health(a) => {
            pair(&mut a.pair);
            a.metrics_token = e.health_token.value.clone();
        }
        _ => {}
    }
}

/// What the node's log settings are for a parsed (and applied) command line.
pub fn log_settings(cli: &Cli) -> crate::node::logs::LogSettings {
    crate::node::logs::LogSettings {
        generation: cli.lock.map(super::LockKind::generation),
        // Checked by `resolve`; a pattern that does not compile is left out.
        lock_wait: cli
            .lock_wait_pattern
            .as_deref()
            .and_then(|p| super::compile_pattern(p).ok()),
    }
}
