//! cl-maint: safe, boring maintenance of Chainlink nodes on Docker.
//!
//! The binary is a thin wrapper over [`run`]; tests call the library in
//! process. See `docs/` for the design and the operator's guide.

pub mod cli;
pub mod exit;
pub mod node;
pub mod probe;

use clap::Parser;

/// Parses `args` (including the program name) and runs the command, returning
/// the process exit code. Never calls `exit` itself.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match cli::Cli::try_parse_from(args) {
        Ok(_cli) => {
            // No subcommand does its job yet: say so instead of pretending.
            eprintln!("cl-maint: no command given; see `cl-maint --help`");
            exit::USAGE
        }
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            code
        }
    }
}
