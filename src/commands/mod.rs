//! Glue from parsed arguments to the library's commands: connecting, signals,
//! confirmation, and printing the report.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{Cli, FailoverAction, FailoverArgs, HealthArgs, PairArgs, RecoverArgs, UpgradeArgs};
use crate::engine::EngineError;
use crate::engine::docker::DockerEngine;
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::pair::{self, Hosts};
use crate::progress::Progress;
use crate::report::{Outcome, Report, engine_failed};
use crate::upgrade;
use crate::verbose::Traced;

mod locking;

/// The progress display the global flags ask for (`-q`, `-v`, `--color`).
pub fn progress(cli: &Cli) -> Progress {
    Progress::new(cli.quiet).styled(cli.color.stderr(), cli.verbose)
}

/// The pair's engines as a command sees them (reporting their calls with
/// `-v`).
pub type Engines<'h> = Hosts<'h, Traced<'h, DockerEngine>>;

/// What every command sets up before it talks to the engine: the progress
/// display the global flags ask for and the interrupt (Ctrl-C, SIGTERM).
pub struct Setup {
    /// Where the command's events go: the progress display and the report
    /// builder.
    pub events: Events,
    /// Set by Ctrl-C or SIGTERM.
    pub interrupt: Interrupt,
}

impl Setup {
    /// For a command that changes the engine's state: the progress display
    /// and the interrupt, listening for signals (Ctrl-C and SIGTERM then
    /// leave the node consistent instead of ending the process).
    pub fn new(cli: &Cli) -> Setup {
        let setup = Setup::read_only(cli);
        setup.interrupt.listen_for_signals();
        setup
    }

    /// For a read-only command: Ctrl-C and SIGTERM end it as usual.
    pub fn read_only(cli: &Cli) -> Setup {
        Setup {
            events: Events::new(progress(cli)),
            interrupt: Interrupt::new(),
        }
    }

    /// Connects to the pair's engines (the primary's, `cli`'s `--host`, and
    /// the secondary's when it is another one), each reporting its calls
    /// with `-v`, and runs `work` on them.
    pub async fn on_pair<R>(
        &self,
        cli: &Cli,
        pair: &PairArgs,
        work: impl AsyncFnOnce(Engines<'_>) -> R,
    ) -> Result<R, EngineError> {
        let probe = cli.probe.unwrap_or_default();
        let primary = Traced::new(
            DockerEngine::connect(cli.host.as_deref()).await?.with_probe(probe),
            self.events.display(),
        );
        let secondary = match pair.secondary_host.as_deref() {
            Some(host) => Some(Traced::new(
                DockerEngine::connect(Some(host)).await?.with_probe(probe),
                self.events.display(),
            )),
            None => None,
        };
        Ok(work(Hosts::new(&primary, secondary.as_ref())).await)
    }

    /// Runs a state-changing `command` on the pair under the node's run lock
    /// (see `locking::locked`); the report says why when it could not.
    pub async fn locked(
        &self,
        cli: &Cli,
        command: &str,
        pair: &PairArgs,
        break_lock: bool,
        work: impl AsyncFnOnce(Engines<'_>, Option<crate::runlock::Owner>) -> Report,
    ) -> Report {
        self.locked_unless(cli, command, pair, break_lock, false, work).await
    }

    /// [`Setup::locked`], but a `dry_run` takes no run lock (it changes
    /// nothing); it says so when a run is in progress.
    pub async fn locked_unless(
        &self,
        cli: &Cli,
        command: &str,
        pair: &PairArgs,
        break_lock: bool,
        dry_run: bool,
        work: impl AsyncFnOnce(Engines<'_>, Option<crate::runlock::Owner>) -> Report,
    ) -> Report {
        let container = pair.container.clone();
        let run = self
            .on_pair(cli, pair, async |hosts| {
                if dry_run {
                    if let Some(busy) = locking::busy(hosts.primary, command, &container).await {
                        return busy;
                    }
                    return with_probes(work(hosts, None).await, hosts);
                }
                let report = locking::locked(hosts.primary, &container, command, break_lock, |stale| {
                    work(hosts, stale)
                })
                .await;
                with_probes(report, hosts)
            })
            .await;
        run.unwrap_or_else(|e| engine_failed(Report::new(command, &container, Outcome::Unreachable), e))
    }
}

/// `report` with the probes the run used on the pair's engines.
fn with_probes(mut report: Report, hosts: Engines<'_>) -> Report {
    use crate::engine::Engine as _;
    report.probes = hosts.primary.probes_used();
    if hosts.split() {
        report.probes.extend(hosts.secondary.probes_used());
        report.probes.sort();
        report.probes.dedup();
    }
    report
}

/// `cl-maint upgrade`.
pub async fn upgrade(cli: &Cli, args: &UpgradeArgs) -> i32 {
    let setup = Setup::new(cli);
    let report = upgrade_report(&setup, cli, args).await;
    print(cli, &setup.events.report(report))
}

/// `cl-maint upgrade --all`: each node of the config file in turn (its
/// settings and log settings in force), stopping at the first failure.
pub async fn upgrade_all(cli: &Cli, args: &UpgradeArgs, nodes: &[crate::config::Effective]) -> i32 {
    let names: Vec<(String, String)> = nodes
        .iter()
        .map(|e| (e.node.clone().unwrap_or_default(), e.container.value.clone()))
        .collect();
    let mut all = crate::config::all::AllReport::new(&names);
    let setup = Setup::new(cli);
    for (i, node) in nodes.iter().enumerate() {
        let mut cli = cli.clone();
        crate::config::apply::apply(&mut cli, node);
        let mut args = args.clone();
        if let crate::cli::Command::Upgrade(applied) = &cli.command {
            args = applied.clone();
        }
        setup.events.step(&format!("node {} ({})", names[i].0, names[i].1));
        let settings = crate::config::apply::log_settings(&cli);
        let report = Box::pin(crate::node::logs::with_settings(
            settings,
            upgrade_report(&setup, &cli, &args),
        ))
        .await;
        if !all.record(i, setup.events.report(report)) || setup.interrupt.is_set() {
            break;
        }
    }
    let text = if cli.json { all.to_json() } else { all.to_human() };
    emit_result(cli, &text, all.exit_code);
    all.exit_code
}

/// One node's upgrade, as a report.
async fn upgrade_report(setup: &Setup, cli: &Cli, args: &UpgradeArgs) -> Report {
    let (events, interrupt) = (&setup.events, &setup.interrupt);
    let opts = args.options();
    let names = args.pair.names();
    let work = async |hosts: Engines<'_>| {
        let engine = hosts.primary;
        if let Some(port) = cli.port
            && let Some(report) = port_mismatch(engine, "upgrade", &opts.container, port).await
        {
            return report;
        }
        let ask = !args.yes && !args.dry_run && std::io::stdin().is_terminal();
        let upgrade = async {
            match pair::upgrade::find_pair(hosts, &names, args.pair.secondary_named).await {
                pair::upgrade::Found::Pair(view) => {
                    let hand_back = !args.no_hand_back;
                    let confirm = |text: &str| confirm(events, text);
                    let confirm = ask.then_some(&confirm as &crate::events::Confirm<'_>);
                    return pair::upgrade::upgrade_pair(
                        hosts, &names, *view, &opts, hand_back, events, interrupt, confirm,
                    )
                    .await;
                }
                pair::upgrade::Found::Unproven(what, next) => return unproven("upgrade", &names, what, next),
                pair::upgrade::Found::Alone => {}
            }
            upgrade::upgrade(engine, &opts, events, interrupt, |plan| {
                !ask || confirm(events, &plan.to_human())
            })
            .await
        };
        // A dry run changes nothing: it takes no run lock (but says when a
        // run is in events).
        let report = if opts.dry_run {
            if let Some(busy) = locking::busy(engine, "upgrade", &opts.container).await {
                return busy;
            }
            upgrade.await
        } else {
            locking::locked(engine, &opts.container, "upgrade", false, |_| upgrade).await
        };
        with_probes(report, hosts)
    };
    setup
        .on_pair(cli, &args.pair, work)
        .await
        .unwrap_or_else(|e| engine_failed(Report::new("upgrade", &opts.container, Outcome::Unreachable), e))
}

/// Asks on the terminal whether to carry out the plan `text` (shown
/// through the events' redactor, which knows the node's secrets by then).
fn confirm(events: &Events, text: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "{}Proceed? [y/N] ", events.redact(text));
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// A refusal when the node's container publishes its HTTP port on another
/// host port than `--port` (or the config's `port`) says: probably the wrong
/// container. `None` when it matches, or when there is no such container
/// (the upgrade says so itself).
async fn port_mismatch<E: crate::engine::Engine>(
    engine: &E,
    command: &str,
    container: &str,
    port: u16,
) -> Option<Report> {
    let (what, next) = port_differs(engine, container, port).await?;
    let mut report = Report::new(command, container, Outcome::Refused);
    report.error = Some(what);
    report.state = "unchanged".to_string();
    report.next_steps = vec![next];
    Some(report)
}

/// A read-only command's notes: with `--port` (or the config's `port`),
/// that the node's container publishes its HTTP port on another host port;
/// for a node Compose runs, that its project names another image than the
/// container runs.
async fn note_port<E: crate::engine::Engine>(
    cli: &Cli,
    engine: &E,
    container: &str,
    summary: &mut String,
    next_steps: &mut Vec<String>,
) {
    if let Some(port) = cli.port
        && let Some((what, next)) = port_differs(engine, container, port).await
    {
        *summary = format!("{summary}; {what}");
        next_steps.push(next);
    }
    let c = engine.inspect_container(container).await.ok().flatten();
    let local = engine.reach().local;
    if let Some((what, next)) = c.and_then(|c| crate::upgrade::compose::drift(&c, container, local)) {
        *summary = format!("{summary}; {what}");
        next_steps.push(next);
    }
}

/// When the node's container publishes its HTTP port on another host port
/// than the operator set: what differs, and what to check.
async fn port_differs<E: crate::engine::Engine>(engine: &E, container: &str, port: u16) -> Option<(String, String)> {
    let c = engine.inspect_container(container).await.ok().flatten()?;
    let node_port = crate::members::port::node_port(engine, &c).await.port;
    let published = crate::spec::published_port(&c, node_port).map(|(_, p)| p);
    if published == Some(port) {
        return None;
    }
    let now = published.map_or_else(|| "does not publish it".to_string(), |p| format!("publishes it on {p}"));
    Some((
        format!("the node's port is set to {port} (--port or the config's `port`), but {container} {now}"),
        format!("check that {container} is the node you mean (--container / --node), or correct the port"),
    ))
}

/// Prints the report on stdout (JSON or human) and returns its exit code.
pub fn print(cli: &Cli, report: &Report) -> i32 {
    let text = if cli.json { report.to_json() } else { report.to_human() };
    emit_result(cli, &text, report.exit_code);
    report.exit_code
}

/// Prints a result on stdout, its outcome line coloured when asked (never JSON).
fn emit_result(cli: &Cli, text: &str, exit_code: i32) {
    let on = !cli.json && cli.color.stdout();
    emit(&crate::color::result(text, exit_code, on));
}

/// A bad config file: the message on stderr (and a JSON document on stdout
/// with `--json`); exit 2. Nothing has talked to the engine.
pub fn config_error(cli: &Cli, e: &crate::config::ConfigError) -> i32 {
    let label = crate::color::Paint::Red.apply("error:", cli.color.stderr());
    eprintln!("cl-maint: {label} {e}");
    if cli.json {
        emit(&e.to_json());
    }
    crate::exit::USAGE
}

/// `cl-maint config check`.
pub fn config_check(cli: &Cli, prepared: crate::config::apply::Prepared) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let looked_in = crate::config::file::candidate_dirs(&cwd, xdg.as_deref(), home.as_deref())
        .into_iter()
        .map(|(dir, _)| dir.join(crate::config::file::FILE_NAME))
        .collect();
    let report = crate::config::check::CheckReport {
        file: prepared.file.map(|f| f.path),
        origin: prepared.origin,
        looked_in,
        nodes: prepared.nodes,
    };
    let text = if cli.json { report.to_json() } else { report.to_human() };
    emit_result(cli, &text, crate::exit::OK);
    crate::exit::OK
}

/// `cl-maint failover [up|back]`.
pub async fn failover(cli: &Cli, args: &FailoverArgs) -> i32 {
    let opts = args.options();
    let setup = Setup::new(cli);
    let (events, interrupt) = (&setup.events, &setup.interrupt);
    let command = match args.action {
        None => "failover",
        Some(FailoverAction::Up) => "failover up",
        Some(FailoverAction::Back { .. }) => "failover back",
    };
    let names = args.pair.names();
    let work = async |hosts: Engines<'_>, _: Option<crate::runlock::Owner>| {
        if let Some(port) = cli.port
            && let Some(report) = port_mismatch(hosts.primary, command, &names.primary, port).await
        {
            return report;
        }
        let ask =
            !args.yes && !args.dry_run && args.action != Some(FailoverAction::Up) && std::io::stdin().is_terminal();
        let confirm = |text: &str| confirm(events, text);
        let confirm = ask.then_some(&confirm as &crate::events::Confirm<'_>);
        failover_work(hosts, args, &opts, events, interrupt, confirm).await
    };
    let report = setup
        .locked_unless(cli, command, &args.pair, false, args.dry_run, work)
        .await;
    print(cli, &setup.events.report(report))
}

/// The failover command itself, once the pair is known to be one.
async fn failover_work(
    hosts: Engines<'_>,
    args: &FailoverArgs,
    opts: &crate::pair::PairOptions,
    events: &Events,
    interrupt: &crate::interrupt::Interrupt,
    confirm: Option<&crate::events::Confirm<'_>>,
) -> Report {
    let opts = opts.clone();
    match args.action {
        Some(FailoverAction::Up) => pair::up::up(hosts, &opts, events, interrupt).await,
        Some(FailoverAction::Back { hold }) => {
            let back = pair::switch::Direction::Back;
            let hold = hold || args.hold;
            pair::switch::switch(hosts, &opts, back, hold, events, interrupt, confirm).await
        }
        None => {
            let other = pair::switch::Direction::Other;
            pair::switch::switch(hosts, &opts, other, args.hold, events, interrupt, confirm).await
        }
    }
}

/// The refusal of a command on a pair whose secondary is not proven a member.
fn unproven(command: &str, names: &crate::pair::PairNames, what: String, next: Vec<String>) -> Report {
    let mut report = Report::new(command, &names.primary, Outcome::Refused);
    report.error = Some(what);
    report.next_steps = next;
    report.state = "nothing was changed".into();
    report
}

/// `cl-maint recover`.
pub async fn recover(cli: &Cli, args: &RecoverArgs) -> i32 {
    let opts = args.options();
    let setup = Setup::new(cli);
    let (events, interrupt) = (&setup.events, &setup.interrupt);
    let work = async |hosts: Engines<'_>, stale: Option<crate::runlock::Owner>| {
        crate::recover::recover(hosts, &opts, stale.as_ref(), events, interrupt).await
    };
    let report = setup
        .locked_unless(cli, "recover", &args.pair, args.break_lock, args.dry_run, work)
        .await;
    print(cli, &setup.events.report(report))
}

/// `cl-maint status`.
pub async fn status(cli: &Cli, args: &PairArgs) -> i32 {
    let names = args.names();
    let setup = Setup::read_only(cli);
    let status = setup
        .on_pair(cli, args, async |hosts: Engines<'_>| {
            let mut status = pair::status::status(hosts, &names).await;
            note_port(
                cli,
                hosts.primary,
                &names.primary,
                &mut status.summary,
                &mut status.next_steps,
            )
            .await;
            status
        })
        .await
        .unwrap_or_else(pair::status::unreachable);
    let text = if cli.json { status.to_json() } else { status.to_human() };
    emit_result(cli, &text, status.exit_code);
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
    let setup = Setup::read_only(cli);
    let report = setup
        .on_pair(cli, &args.pair, async |hosts: Engines<'_>| {
            let mut report = pair::health::health(hosts, &names, &opts).await;
            note_port(
                cli,
                hosts.primary,
                &names.primary,
                &mut report.summary,
                &mut report.next_steps,
            )
            .await;
            report
        })
        .await
        .unwrap_or_else(|e| pair::health::HealthReport::unreachable(pair::status::unreachable(e)));
    let mut text = if cli.json { report.to_json() } else { report.to_human() };
    if let Some(token) = &opts.token {
        text = text.replace(token.as_str(), "<redacted>");
    }
    emit_result(cli, &text, report.exit_code);
    report.exit_code
}

fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}
