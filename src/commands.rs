//! Glue from parsed arguments to the library's commands: connecting, signals,
//! confirmation, and printing the report.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{Cli, UpgradeArgs};
use crate::engine::docker::DockerEngine;
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::report::{Outcome, Report};
use crate::upgrade;

/// `cl-maint upgrade`.
pub async fn upgrade(cli: &Cli, args: &UpgradeArgs) -> i32 {
    let opts = args.options();
    let progress = Progress::new(cli.quiet);
    let interrupt = Interrupt::new();
    interrupt.listen_for_signals();
    let engine = match DockerEngine::connect(cli.host.as_deref()).await {
        Ok(e) => e,
        Err(e) => {
            let report = Report::new("upgrade", &opts.container, Outcome::Unreachable);
            return print(cli, &upgrade::engine_failed(report, e));
        }
    };
    let ask = !args.yes && !args.dry_run && std::io::stdin().is_terminal();
    let confirm = |plan: &upgrade::Plan| {
        if !ask {
            return true;
        }
        let redactor = crate::redact::Redactor::from_env(&plan.secret_env);
        let mut err = std::io::stderr();
        let _ = write!(err, "{}Proceed? [y/N] ", redactor.text(&plan.to_human()));
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    };
    let report = upgrade::upgrade(&engine, &opts, &progress, &interrupt, confirm).await;
    print(cli, &report)
}

/// Prints the report on stdout (JSON or human) and returns its exit code.
pub fn print(cli: &Cli, report: &Report) -> i32 {
    let text = if cli.json { report.to_json() } else { report.to_human() };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
    report.exit_code
}
