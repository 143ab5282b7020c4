//! The command line, parsed and validated before anything does I/O.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::node::godur;
use crate::upgrade::options;

/// cl-maint: safe, boring maintenance of Chainlink nodes on Docker.
#[derive(Debug, Clone, Parser)]
#[command(name = "cl-maint", version, about, long_about = None, after_help = exit_code_help())]
pub struct Cli {
    /// The Docker Engine to talk to: unix:///path/docker.sock, tcp://host:port
    /// (TLS with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) or ssh://user@host
    /// [env: DOCKER_HOST]; without either, DOCKER_CONTEXT or the current
    /// Docker context, then the local socket.
    // DOCKER_HOST is read after parsing (`Cli::host_from_env`), not by clap,
    // whose usage line would then show --host as if it were required.
    #[arg(long, global = true, help_heading = "Global options", value_name = "URL")]
    pub host: Option<String>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print nothing on stderr but warnings and errors.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// More progress detail on stderr: -v each change the engine is asked
    /// for, -vv every engine call and poll answer (RUST_LOG still controls
    /// diagnostics).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour in human output: auto (when printing to a terminal and NO_COLOR
    /// is not set), always, never.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = crate::color::ColorChoice::Auto, value_name = "WHEN")]
    pub color: crate::color::ColorChoice,
    /// The config file [default: ./cl-maint.toml, then
    /// $XDG_CONFIG_HOME/cl-maint/cl-maint.toml or ~/.config/cl-maint/cl-maint.toml].
    /// Flags beat the file; the file beats the defaults.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "CL_MAINT_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<std::path::PathBuf>,
    /// The node of the config file to act on (default: the file's only node).
    #[arg(long, global = true, help_heading = "Global options", value_name = "NAME")]
    pub node: Option<String>,
    /// The host port the node publishes its HTTP port on, to guard against
    /// the wrong container: upgrade and failover refuse a container that
    /// publishes another; status and health say so.
    #[arg(long, global = true, help_heading = "Global options", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The lock generation, instead of detecting it from the node's log.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "GENERATION"
    )]
    pub lock: Option<crate::config::LockKind>,
    /// A regular expression matching the node's "waiting for the lock" log
    /// line, for builds whose line cl-maint does not know (needs --lock).
    #[arg(long, global = true, help_heading = "Global options", value_name = "REGEX")]
    pub lock_wait_pattern: Option<String>,
    /// How to reach the nodes' HTTP ports: `direct` on the published host
    /// port from here, `engine` inside the container through the Docker
    /// Engine, `auto` (the default) directly where the port can be reached
    /// from here and through the engine where it cannot.
    #[arg(long, global = true, help_heading = "Global options", value_enum, value_name = "HOW")]
    pub probe: Option<crate::probe::ProbeMode>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The pair a command works on, when it works on one.
    pub fn pair_mut(&mut self) -> Option<&mut PairArgs> {
        match self {
            Command::Upgrade(a) => Some(&mut a.pair),
            Command::Failover(a) => Some(&mut a.pair),
            Command::Recover(a) => Some(&mut a.pair),
            Command::Status(a) => Some(&mut a.pair),
            Command::Health(a) => Some(&mut a.pair),
            _ => None,
        }
    }
}

impl Cli {
    /// Checks what clap cannot declare, before anything does I/O: `--hold`
    /// given before `up` (`failover --hold up`). After it, clap refuses it
    /// itself (`up` has no `--hold`).
    pub fn validate(&self) -> Result<(), String> {
        if let Command::Failover(f) = &self.command
            && f.hold
            && f.action == Some(FailoverAction::Up)
        {
            return Err("--hold applies to a switchover (`cl-maint failover --hold`, `cl-maint failover back --hold`), not to `failover up`; nothing was changed".into());
        }
        Ok(())
    }

    /// `DOCKER_HOST` stands for `--host` when the flag is not given (an
    /// empty value counts as unset, as for `docker`).
    pub fn host_from_env(&mut self) {
        if self.host.is_none() {
            self.host = std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty());
        }
    }
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Upgrade the node to another image tag with no downtime, rolling back on failure.
    ///
    /// Pulls the new image, starts a standby clone on the standby port, waits
    /// until it waits for the database lock, stops the node gracefully so the
    /// standby takes over, recreates the node on the new image, and hands the
    /// lock back. Never two nodes holding the lock at once.
    Upgrade(UpgradeArgs),
    /// Manage the hot standby ("secondary") that takes over when the primary dies.
    ///
    /// Without a subcommand: a planned switchover. Finds the member holding
    /// the lock, stops it gracefully, confirms the other took over (its HTTP
    /// port answers), then starts the stopped one again and confirms it waits
    /// for the lock. `up` creates the secondary; `back` returns the lock to
    /// the primary.
    Failover(FailoverArgs),
    /// Who holds the lock, and what runs where: every member of the pair and
    /// any container an interrupted run left.
    Status(StatusArgs),
    /// The /health checks of the member holding the lock (failing first), and
    /// chosen Prometheus metrics.
    Health(HealthArgs),
    /// Finish or undo what an interrupted run left (a killed upgrade or
    /// failover): converge to exactly one node holding the lock, and say on
    /// which version.
    ///
    /// Before the new version has held the lock, the untouched original is
    /// kept; after, the way is forward (recreate the node on the new image
    /// on its port and hand the lock back). Exit 0 when converged, 6 when it
    /// cannot decide safely (the report says what to do).
    Recover(RecoverArgs),
    /// Print a shell completion script (for example: `cl-maint completions bash > /etc/bash_completion.d/cl-maint`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from the same definitions as --help.
    Man,
    /// The config file (cl-maint.toml).
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// What `cl-maint config` does.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum ConfigAction {
    /// Validate the config file and print each node's effective settings and
    /// where each came from (flag, env, file, default), secrets redacted.
    /// Exit 0 when valid, 2 when not.
    Check,
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cl-maint", &mut out);
    out
}

/// The manual page, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// The failover pair, as every pair command names it.
#[derive(Debug, Args, Clone)]
pub struct PairArgs {
    /// The primary: the node's container, on its main port.
    #[arg(long, help_heading = "The node and its pair", default_value = "chainlink", value_parser = parse_container, global = true)]
    pub container: String,
    /// The secondary (hot standby) container.
    #[arg(long, help_heading = "The node and its pair", default_value = crate::pair::DEFAULT_SECONDARY, value_parser = parse_container, global = true)]
    pub secondary: String,
    /// The Docker Engine running the secondary, when it is not the primary's
    /// (same forms as --host).
    #[arg(
        long,
        help_heading = "The node and its pair",
        env = "CL_MAINT_SECONDARY_HOST",
        value_name = "URL",
        global = true
    )]
    pub secondary_host: Option<String>,
    /// Whether the operator named the secondary (a flag, or the config's
    /// `secondary`), which proves it a member of the pair; set after parsing.
    #[arg(skip)]
    pub secondary_named: bool,
}

/// `cl-maint status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The pair.
    #[command(flatten)]
    pub pair: PairArgs,
}

/// `cl-maint health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The pair.
    #[command(flatten)]
    pub pair: PairArgs,
    /// Also show chosen Prometheus metrics from /metrics.
    #[arg(long)]
    pub metrics: bool,
    /// A metric to show (repeatable) instead of the default selection.
    #[arg(long = "metric", value_name = "NAME")]
    pub metric: Vec<String>,
    /// The bearer token /metrics requires (the node's CL_PROMETHEUS_AUTH_TOKEN).
    #[arg(long, env = "CL_MAINT_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// The deadlines of a handoff, shared by every command that moves the lock.
#[derive(Debug, Clone, Args)]
pub struct Timeouts {
    /// How long a started container may take to log that it waits for the lock.
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION", global = true)]
    pub wait_timeout: Duration,
    /// How long a takeover may take (the new holder answering HTTP; migrations
    /// run in it), or a stop an interrupted run left in flight.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION", global = true)]
    pub takeover_timeout: Duration,
    /// Grace period of a graceful stop before the engine sends SIGKILL.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION", global = true)]
    pub stop_timeout: Duration,
}

impl Timeouts {
    /// The deadlines.
    pub fn deadlines(&self) -> crate::handoff::Deadlines {
        crate::handoff::Deadlines {
            wait: self.wait_timeout,
            takeover: self.takeover_timeout,
            stop: self.stop_timeout,
        }
    }
}

/// `cl-maint recover`.
#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    /// The pair (or the single node: --container).
    #[command(flatten)]
    pub pair: PairArgs,
    /// Take over the run lock even when another machine holds it (only when
    /// that machine's run is surely gone).
    #[arg(long)]
    pub break_lock: bool,
    /// Keep the renamed original (NAME-cl-maint-old) instead of removing it.
    #[arg(long)]
    pub keep_old: bool,
    /// Print what recover would finish or undo, and the equivalent docker
    /// commands; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accepted for every state-changing command; recover never asks.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// The deadlines.
    #[command(flatten)]
    pub timeouts: Timeouts,
}

impl RecoverArgs {
    /// The validated options.
    pub fn options(&self) -> crate::recover::RecoverOptions {
        let mut o = crate::recover::RecoverOptions::new(&self.pair.container, &self.pair.secondary);
        let d = self.timeouts.deadlines();
        (o.wait_timeout, o.takeover_timeout, o.stop_timeout) = (d.wait, d.takeover, d.stop);
        o.keep_old = self.keep_old;
        o.dry_run = self.dry_run;
        o
    }
}

/// `cl-maint failover`.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// `up` or `back`; none for a planned switchover.
    #[command(subcommand)]
    pub action: Option<FailoverAction>,
    /// The pair.
    #[command(flatten)]
    pub pair: PairArgs,
    /// The host port the secondary publishes the node's port on.
    #[arg(long, default_value_t = 6687, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub secondary_port: u16,
    /// Leave the old holder stopped after the switchover (to patch its host).
    /// A switchover's flag: `failover up` has none, and `failover back`
    /// takes its own (`failover back --hold`).
    #[arg(long)]
    pub hold: bool,
    /// Do not ask before a switchover (cl-maint never asks when stdin is
    /// not a terminal).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Print the plan and the equivalent docker commands; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// The deadlines.
    #[command(flatten)]
    pub timeouts: Timeouts,
}

/// What `cl-maint failover` does besides a switchover.
#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum FailoverAction {
    /// Create (or start) the secondary and confirm it waits for the lock.
    /// Changes nothing when the pair is in place.
    Up,
    /// Return the lock to the primary (starting it first if it is stopped),
    /// and make the secondary wait again.
    Back {
        /// Leave the secondary stopped after the handoff.
        #[arg(long)]
        hold: bool,
    },
}

impl FailoverArgs {
    /// The validated options.
    pub fn options(&self) -> crate::pair::PairOptions {
        let mut o = crate::pair::PairOptions::new(&self.pair.container, &self.pair.secondary);
        o.secondary_port = self.secondary_port;
        o.dry_run = self.dry_run;
        o.secondary_named = self.pair.secondary_named;
        let d = self.timeouts.deadlines();
        (o.wait_timeout, o.takeover_timeout, o.stop_timeout) = (d.wait, d.takeover, d.stop);
        o
    }
}

impl PairArgs {
    /// The names of the pair.
    pub fn names(&self) -> crate::pair::PairNames {
        crate::pair::PairNames {
            primary: self.container.clone(),
            secondary: self.secondary.clone(),
        }
    }
}

/// `cl-maint upgrade`.
#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// The tag to upgrade to (for example 2.10.0, or latest: it is resolved and reported).
    #[arg(long, value_parser = parse_tag)]
    pub tag: String,
    /// The node and its failover pair's secondary: when the secondary
    /// exists, both members are upgraded in turn with no temporary container.
    #[command(flatten)]
    pub pair: PairArgs,
    /// The image repository to upgrade to [default: the one the node runs now].
    #[arg(long, value_name = "REPO", value_parser = parse_repository)]
    pub image: Option<String>,
    /// The host port the temporary standby publishes the node's port on.
    #[arg(long, default_value_t = 6687, value_parser = clap::value_parser!(u16).range(1..))]
    pub standby_port: u16,
    /// How long the pull may take.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub pull_timeout: Duration,
    /// The deadlines.
    #[command(flatten)]
    pub timeouts: Timeouts,
    /// Stop the old node with SIGKILL as the documented procedure does (with a lease lock, takeover then waits for the lease to expire).
    #[arg(long)]
    pub kill: bool,
    /// Recreate the node even when the pulled image is the one it runs.
    #[arg(long)]
    pub force: bool,
    /// Keep the old container (stopped, renamed NAME-cl-maint-old) after success.
    #[arg(long)]
    pub keep_old: bool,
    /// Print the plan and the equivalent docker commands; change and pull nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// When to pull the new image: always, missing (only if the engine lacks it), never.
    #[arg(long, value_enum, default_value_t = options::PullPolicy::Always)]
    pub pull: options::PullPolicy,
    /// Do not ask for confirmation (cl-maint never asks when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// With a secondary: leave it holding the lock at the end instead of
    /// handing the lock back (saves one handoff).
    #[arg(long)]
    pub no_hand_back: bool,
    /// A command (run with `sh -c` on this machine) once the new image is
    /// pulled and every check passed, before anything changes: a database
    /// snapshot. If it fails, the upgrade is refused (exit 3). It gets
    /// CL_MAINT_NODE, CL_MAINT_OLD_IMAGE, CL_MAINT_NEW_IMAGE,
    /// CL_MAINT_OLD_VERSION, CL_MAINT_NEW_VERSION and DOCKER_HOST.
    #[arg(long, value_name = "CMD")]
    pub before_upgrade: Option<String>,
    /// A command (run like --before-upgrade) once the node runs the new
    /// version; if it fails, the report warns.
    #[arg(long, value_name = "CMD")]
    pub after_upgrade: Option<String>,
    /// A node run by Docker Compose: `update` edits the service's `image:`
    /// (or its variable in the project's `.env`) and gives the container the
    /// labels Compose expects, or refuses before any change when it cannot;
    /// `ignore` upgrades the container alone and warns.
    #[arg(long, value_enum, default_value_t = crate::compose::Mode::Update, value_name = "WHAT")]
    pub compose: crate::compose::Mode,
    /// Upgrade every node of the config file, one after another, stopping at
    /// the first failure; one combined report.
    #[arg(long, conflicts_with_all = ["container", "node"])]
    pub all: bool,
}

impl UpgradeArgs {
    /// The validated options.
    pub fn options(&self) -> options::UpgradeOptions {
        let mut o = options::UpgradeOptions::new(&self.pair.container, &self.tag);
        o.image = self.image.clone();
        o.standby_port = self.standby_port;
        o.pull_timeout = self.pull_timeout;
        let d = self.timeouts.deadlines();
        (o.wait_timeout, o.takeover_timeout, o.stop_timeout) = (d.wait, d.takeover, d.stop);
        o.kill = self.kill;
        o.force = self.force;
        o.keep_old = self.keep_old;
        o.dry_run = self.dry_run;
        o.pull = self.pull;
        o.compose = self.compose;
        o.hooks = crate::upgrade::hooks::Hooks {
            before: self.before_upgrade.clone(),
            after: self.after_upgrade.clone(),
        };
        o
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = godur::parse(s)?;
    if d.is_zero() {
        return Err("must be longer than zero (examples: 30s, 2m, 1h30m)".into());
    }
    Ok(d)
}

fn parse_tag(s: &str) -> Result<String, String> {
    options::validate_tag(s).map(|_| s.to_string())
}

fn parse_repository(s: &str) -> Result<String, String> {
    options::validate_repository(s).map(|_| s.to_string())
}

fn parse_container(s: &str) -> Result<String, String> {
    options::validate_container_name(s).map(|_| s.to_string())
}

fn exit_code_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in crate::exit::TABLE {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("cl-maint").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn hold_applies_to_switchovers_only() {
        let hold = |args: &[&str]| match parse(args).command {
            Command::Failover(f) => f.hold || matches!(f.action, Some(FailoverAction::Back { hold: true })),
            _ => unreachable!(),
        };
        assert!(hold(&["failover", "--hold"]));
        assert!(hold(&["failover", "back", "--hold"]));
        assert!(hold(&["failover", "--hold", "back"]));
        // Declared in clap: `failover up` has no --hold.
        let e = Cli::try_parse_from(["cl-maint", "failover", "up", "--hold"]).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::USAGE);
        assert!(e.to_string().contains("unexpected argument '--hold'"), "{e}");
        // Given before `up`, it parses; validation refuses it.
        let e = parse(&["failover", "--hold", "up"]).validate().unwrap_err();
        assert!(e.contains("--hold applies to a switchover"), "{e}");
        assert!(parse(&["failover", "--hold"]).validate().is_ok());
    }

    #[test]
    fn every_command_that_moves_the_lock_takes_the_same_deadlines() {
        let deadlines = |cli: Cli| match cli.command {
            Command::Upgrade(a) => a.timeouts.deadlines(),
            Command::Failover(a) => a.timeouts.deadlines(),
            Command::Recover(a) => a.timeouts.deadlines(),
            _ => unreachable!(),
        };
        let given = [
            "--wait-timeout",
            "3s",
            "--takeover-timeout",
            "1m",
            "--stop-timeout",
            "2s",
        ];
        let want = crate::handoff::Deadlines {
            wait: Duration::from_secs(3),
            takeover: Duration::from_secs(60),
            stop: Duration::from_secs(2),
        };
        for command in [&["upgrade", "--tag", "1.0.0"][..], &["failover", "up"], &["recover"]] {
            let args: Vec<&str> = command.iter().chain(given.iter()).copied().collect();
            assert_eq!(deadlines(parse(&args)), want, "{command:?}");
            assert_eq!(
                deadlines(parse(command)),
                crate::handoff::Deadlines::DEFAULT,
                "{command:?}"
            );
        }
    }
}
