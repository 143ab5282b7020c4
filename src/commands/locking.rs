//! Running a command under the node's run lock, and the report of a run
//! that did not get it.

use std::future::Future;

use crate::engine::Engine;
use crate::report::{Outcome, Report, engine_failed};
use crate::runlock::{self, Owner, Refused};

/// Runs `run` holding the run lock of `primary`, and releases it whatever
/// the outcome. `run` is given the owner of a stale lock this run took over
/// (an interrupted run). A refusal is a report with the outcome `run-locked`.
pub async fn locked<E: Engine, F: Future<Output = Report>>(
    engine: &E,
    primary: &str,
    command: &str,
    break_lock: bool,
    run: impl FnOnce(Option<Owner>) -> F,
) -> Report {
    let lock = match runlock::acquire(engine, primary, &runlock::command_line(), break_lock).await {
        Ok(lock) => lock,
        Err(refused) => return refused_report(command, primary, refused),
    };
    let took_over = lock.as_ref().and_then(|l| l.took_over.clone());
    if let Some(old) = &took_over {
        tracing::info!(owner = %old.describe(), "took over the run lock of an interrupted run");
    }
    let mut report = run(took_over).await;
    if let Some(lock) = lock {
        let name = lock.name.clone();
        if let Err(e) = lock.release(engine).await {
            report
                .next_steps
                .push(format!("release the run lock by hand: `docker rm {name}` ({e})"));
        }
    }
    report
}

/// The report for a run that did not get the lock.
pub fn refused_report(command: &str, primary: &str, refused: Refused) -> Report {
    match refused {
        Refused::Engine(e) => engine_failed(Report::new(command, primary, Outcome::Failed), e),
        Refused::Held { owner, elsewhere } => {
            let mut report = Report::new(command, primary, Outcome::RunLocked);
            report.error = Some(format!(
                "another cl-maint run on {primary} is in progress: {}",
                owner.describe()
            ));
            report.state = "nothing was changed".into();
            let name = crate::names::lock_name(primary);
            report.next_steps = vec![format!(
                "wait for it to finish, then run this again (`cl-maint status --container {primary}` shows it)"
            )];
            if elsewhere {
                report.next_steps.push(format!(
                    "if that run on {} is surely gone (the machine died, the job was killed), take over: `cl-maint recover --container {primary} --break-lock`",
                    owner.host
                ));
            } else {
                report.next_steps.push(format!(
                    "it runs on this machine: stop it with Ctrl-C or `kill {}` (it then leaves the node consistent), not `kill -9`",
                    owner.pid
                ));
            }
            report.left = vec![name];
            report
        }
    }
}

/// The refusal for a read-only run (`--dry-run`) while another run holds
/// the lock: its plan would describe a node in the middle of a change.
pub async fn busy<E: Engine>(engine: &E, command: &str, primary: &str) -> Option<Report> {
    let owner = runlock::holder(engine, primary).await?;
    let elsewhere = owner.host != runlock::hostname();
    Some(refused_report(command, primary, Refused::Held { owner, elsewhere }))
}
