//! Glue from parsed arguments to the library's commands: connecting, signals,
//! confirmation, and printing the report.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{Cli, FailoverAction, FailoverArgs, HealthArgs, PairArgs, UpgradeArgs};
use crate::engine::docker::DockerEngine;
use crate::interrupt::Interrupt;
use crate::pair::{self, Hosts};
use crate::progress::Progress;
use crate::report::{Outcome, Report};
use crate::upgrade;

/// `cl-maint upgrade`.
pub async fn upgrade(cli: &Cli, args: &UpgradeArgs) -> i32 {
    let opts = args.options();
    let progress = Progress::new(cli.quiet);
    let interrupt = Interrupt::new();
    interrupt.listen_for_signals();
    let pair_args = PairArgs {
        container: args.container.clone(),
        secondary: args.secondary.clone(),
        secondary_host: args.secondary_host.clone(),
    };
    let (engine, secondary) = match connect_pair(cli, &pair_args).await {
        Ok(e) => e,
        Err(e) => {
            let report = Report::new("upgrade", &opts.container, Outcome::Unreachable);
            return print(cli, &upgrade::engine_failed(report, e));
        }
    };
    let hosts = Hosts::new(&engine, secondary.as_ref());
    let names = pair_args.names();
    if let Some(view) = pair::upgrade::find_pair(hosts, &names).await {
        let hand_back = !args.no_hand_back;
        let report = pair::upgrade::upgrade_pair(hosts, &names, view, &opts, hand_back, &progress, &interrupt).await;
        return print(cli, &report);
    }
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
    emit(&if cli.json { report.to_json() } else { report.to_human() });
    report.exit_code
}

/// The engines of a pair: the primary's, and the secondary's when it is
/// another one.
async fn connect_pair(
    cli: &Cli,
    pair: &PairArgs,
) -> Result<(DockerEngine, Option<DockerEngine>), crate::engine::EngineError> {
    let primary = DockerEngine::connect(cli.host.as_deref()).await?;
    let secondary = match pair.secondary_host.as_deref() {
        Some(host) => Some(DockerEngine::connect(Some(host)).await?),
        None => None,
    };
    Ok((primary, secondary))
}

/// `cl-maint failover [up|back]`.
pub async fn failover(cli: &Cli, args: &FailoverArgs) -> i32 {
    let opts = args.options();
    let progress = Progress::new(cli.quiet);
    let interrupt = Interrupt::new();
    interrupt.listen_for_signals();
    let command = match args.action {
        None => "failover",
        Some(FailoverAction::Up) => "failover up",
        Some(FailoverAction::Back) => "failover back",
    };
    let (primary, secondary) = match connect_pair(cli, &args.pair).await {
        Ok(e) => e,
        Err(e) => {
            let report = Report::new(command, &opts.names.primary, Outcome::Unreachable);
            return print(cli, &upgrade::engine_failed(report, e));
        }
    };
    let hosts = Hosts::new(&primary, secondary.as_ref());
    let report = match args.action {
        Some(FailoverAction::Up) => pair::up::up(hosts, &opts, &progress, &interrupt).await,
        Some(FailoverAction::Back) => {
            let back = pair::switch::Direction::Back;
            pair::switch::switch(hosts, &opts, back, args.hold, &progress, &interrupt).await
        }
        None => {
            let other = pair::switch::Direction::Other;
            pair::switch::switch(hosts, &opts, other, args.hold, &progress, &interrupt).await
        }
    };
    print(cli, &report)
}

/// `cl-maint status`.
pub async fn status(cli: &Cli, args: &PairArgs) -> i32 {
    let names = args.names();
    let status = match connect_pair(cli, args).await {
        Ok((primary, secondary)) => {
            let hosts = Hosts::new(&primary, secondary.as_ref());
            pair::status::status(hosts, &names).await
        }
        Err(e) => pair::status::unreachable(e),
    };
    let text = if cli.json { status.to_json() } else { status.to_human() };
    emit(&text);
    status.exit_code
}

/// `cl-maint health`.
pub async fn health(cli: &Cli, args: &HealthArgs) -> i32 {
    let names = args.pair.names();
    let opts = pair::health::HealthOptions {
        metrics: args.metrics || !args.metric.is_empty(),
        names: args.metric.clone(),
        token: args.metrics_token.clone(),
    };
    let report = match connect_pair(cli, &args.pair).await {
        Ok((primary, secondary)) => {
            let hosts = Hosts::new(&primary, secondary.as_ref());
            pair::health::health(hosts, &names, &opts).await
        }
        Err(e) => pair::health::HealthReport::unreachable(pair::status::unreachable(e)),
    };
    let mut text = if cli.json { report.to_json() } else { report.to_human() };
    if let Some(token) = &opts.token {
        text = text.replace(token.as_str(), "<redacted>");
    }
    emit(&text);
    report.exit_code
}

fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}
