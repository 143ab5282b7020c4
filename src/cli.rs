//! The command line, parsed and validated before anything does I/O.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::node::godur;
use crate::upgrade::options;

/// cl-maint: safe, boring maintenance of Chainlink nodes on Docker.
#[derive(Debug, Parser)]
#[command(name = "cl-maint", version, about, long_about = None, after_help = exit_code_help())]
pub struct Cli {
    /// The Docker Engine to talk to: unix:///path/to/docker.sock or tcp://host:port.
    #[arg(long, global = true, env = "DOCKER_HOST", value_name = "URL")]
    pub host: Option<String>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on stderr but warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upgrade the node to another image tag with no downtime, rolling back on failure.
    ///
    /// Pulls the new image, starts a standby clone on the standby port, waits
    /// until it waits for the database lock, stops the node gracefully so the
    /// standby takes over, recreates the node on the new image, and hands the
    /// lock back. Never two nodes holding the lock at once.
    Upgrade(UpgradeArgs),
}

/// `cl-maint upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The tag to upgrade to (for example 2.10.0, or latest: it is resolved and reported).
    #[arg(long, value_parser = parse_tag)]
    pub tag: String,
    /// The node's container.
    #[arg(long, default_value = "chainlink", value_parser = parse_container)]
    pub container: String,
    /// The image repository to upgrade to [default: the one the node runs now].
    #[arg(long, value_name = "REPO", value_parser = parse_repository)]
    pub image: Option<String>,
    /// The host port the temporary standby publishes the node's port on.
    #[arg(long, default_value_t = 6687, value_parser = clap::value_parser!(u16).range(1..))]
    pub standby_port: u16,
    /// How long the pull may take.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub pull_timeout: Duration,
    /// How long a new container may take to log that it waits for the lock.
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait_timeout: Duration,
    /// How long a takeover may take (the new holder answering HTTP; migrations run in it).
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub takeover_timeout: Duration,
    /// Grace period of a graceful stop before the engine sends SIGKILL.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub stop_timeout: Duration,
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
}

impl UpgradeArgs {
    /// The validated options.
    pub fn options(&self) -> options::UpgradeOptions {
        let mut o = options::UpgradeOptions::new(&self.container, &self.tag);
        o.image = self.image.clone();
        o.standby_port = self.standby_port;
        o.pull_timeout = self.pull_timeout;
        o.wait_timeout = self.wait_timeout;
        o.takeover_timeout = self.takeover_timeout;
        o.stop_timeout = self.stop_timeout;
        o.kill = self.kill;
        o.force = self.force;
        o.keep_old = self.keep_old;
        o.dry_run = self.dry_run;
        o.pull = self.pull;
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
