//! The command line, parsed before anything does I/O.

use clap::Parser;

/// cl-maint: safe, boring maintenance of Chainlink nodes on Docker.
///
/// Upgrades, failover and status for a Chainlink node running in Docker, done
/// through the Docker Engine API with the node's own database lock as the
/// guarantee that two nodes never run at once.
#[derive(Debug, Parser)]
#[command(name = "cl-maint", version, about, long_about = None, after_help = exit_code_help())]
pub struct Cli {}

fn exit_code_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in crate::exit::TABLE {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text
}
