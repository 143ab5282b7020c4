//! cl-maint: safe, boring maintenance of Chainlink nodes on Docker.
//!
//! The binary is a thin wrapper over [`run`]; tests call the library in
//! process. Commands follow observe (read-only) → plan (pure) → execute (the
//! only place that changes the engine's state); see `docs/`.

#![warn(missing_docs)]

pub mod cli;
pub mod color;
pub mod commands;
pub mod compose;
pub mod config;
pub mod engine;
pub mod events;
pub mod exit;
pub mod handoff;
pub mod interrupt;
pub mod members;
pub mod names;
pub mod node;
pub mod pair;
pub mod probe;
pub mod probe_agent;
pub mod progress;
pub mod recover;
pub mod redact;
pub mod reference;
pub mod render;
pub mod report;
pub mod runlock;
pub mod spec;
pub mod time;
pub mod upgrade;
pub mod verbose;

use clap::{CommandFactory, FromArgMatches};

/// Parses `args` (including the program name), runs the command, and returns
/// the process exit code. Never calls `exit` itself.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    // cl-maint's own probe in a helper container (see `probe_agent`).
    if args.get(1).is_some_and(|a| a == "__probe") {
        let rest: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return probe_agent::main(&rest);
    }
    let parsed = cli::Cli::command()
        .try_get_matches_from(args)
        .and_then(|m| cli::Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    config::apply::mark_named(&mut cli, &matches);
    cli.host_from_env();
    match &cli.command {
        cli::Command::Completions { shell } => return write_out(&cli::completions(*shell)),
        cli::Command::Man => {
            return match cli::man_page() {
                Ok(page) => write_out(&page),
                Err(e) => {
                    eprintln!("cl-maint: cannot render the manual page: {e}");
                    exit::FAILURE
                }
            };
        }
        _ => {}
    }
    // The config file (flags beat it, it beats the defaults): read and
    // checked before anything talks to the engine.
    let prepared = match config::apply::prepare(&cli, &matches) {
        Ok(prepared) => prepared,
        Err(e) => return commands::config_error(&cli, &e),
    };
    if let cli::Command::Config { .. } = cli.command {
        return commands::config_check(&cli, prepared);
    }
    if let Err(e) = cli.validate() {
        let label = color::Paint::Red.apply("error:", cli.color.stderr());
        eprintln!("cl-maint: {label} {e}");
        return exit::USAGE;
    }
    let all = matches!(&cli.command, cli::Command::Upgrade(a) if a.all);
    if !all && let Some(node) = prepared.nodes.first() {
        config::apply::apply(&mut cli, node);
    }
    init_diagnostics();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cl-maint: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    let log_settings = config::apply::log_settings(&cli);
    // On a thread of its own with a generous stack, and on the heap: the
    // commands' state machines are large, and debug builds overflowed the
    // main thread's stack.
    let work = || {
        runtime.block_on(Box::pin(node::logs::with_settings(log_settings, async {
            match &cli.command {
                cli::Command::Upgrade(args) if all => commands::upgrade_all(&cli, args, &prepared.nodes).await,
                cli::Command::Upgrade(args) => commands::upgrade(&cli, args).await,
                cli::Command::Failover(args) => commands::failover(&cli, args).await,
                cli::Command::Status(args) => commands::status(&cli, &args.pair).await,
                cli::Command::Health(args) => commands::health(&cli, args).await,
                cli::Command::Recover(args) => commands::recover(&cli, args).await,
                cli::Command::Completions { .. } | cli::Command::Man | cli::Command::Config { .. } => exit::OK,
            }
        })))
    };
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("cl-maint".into())
            .stack_size(COMMAND_STACK)
            .spawn_scoped(scope, work)
        {
            // A panic goes on as the process's own (exit 101), as before.
            Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => {
                eprintln!("cl-maint: cannot start the command's thread: {e}");
                exit::FAILURE
            }
        }
    })
}

/// The stack of the thread that runs a command (virtual memory; only what
/// is touched is used).
const COMMAND_STACK: usize = 64 << 20;

/// Writes generated text to stdout.
fn write_out(bytes: &[u8]) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("cl-maint: cannot write to stdout: {e}");
            exit::FAILURE
        }
    }
}

/// `RUST_LOG` diagnostics on stderr (off unless asked for), never below info
/// for the HTTP layers that would print secrets.
fn init_diagnostics() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    // The HTTP client and bollard log whole engine responses (container env,
    // with DATABASE_URL and passwords) below info: never show those.
    for quiet in ["bollard=info", "hyper=info", "hyper_util=info"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
