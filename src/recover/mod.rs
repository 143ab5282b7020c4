//! `cl-maint recover`: finds what an interrupted run left (a SIGKILLed
//! `upgrade` or `failover`, a machine that died mid-run) and converges to
//! exactly one node holding the lock, on the old or the new version, and
//! says which.
//!
//! It follows the upgrade's rules: it never starts a container while
//! another holds the lock unless that container waits for it; before the
//! new version has held the lock it prefers the untouched original; once
//! the new version has held it (the database may be migrated), the way is
//! forward. It first lets a stop the interrupted run asked for finish (the
//! engine carries it out without cl-maint), then decides on what it sees.

pub mod dry;
pub mod pair;
pub mod pair_plan;
pub mod single;
pub mod survey;

use std::time::Duration;

use crate::engine::Engine;
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::pair::{Hosts, PairNames};
use crate::report::{Outcome, Report};
use crate::runlock::Owner;

/// Settings of `cl-maint recover`.
#[derive(Clone, Debug)]
pub struct RecoverOptions {
    /// The node's (primary's) container name.
    pub container: String,
    /// The failover pair's secondary, when there is one.
    pub secondary: String,
    /// How long a started container may take to log that it waits.
    pub wait_timeout: Duration,
    /// How long a takeover (and the settling of a stop in flight) may take.
    pub takeover_timeout: Duration,
    /// Grace period of a graceful stop.
    pub stop_timeout: Duration,
    /// Keep the renamed original (`NAME-cl-maint-old`) instead of removing it.
    pub keep_old: bool,
    /// `--dry-run`: say what would be done, change nothing.
    pub dry_run: bool,
}

impl RecoverOptions {
    /// Defaults for the node `container`.
    pub fn new(container: &str, secondary: &str) -> RecoverOptions {
        RecoverOptions {
            container: container.to_string(),
            secondary: secondary.to_string(),
            wait_timeout: crate::handoff::Deadlines::DEFAULT.wait,
            takeover_timeout: crate::handoff::Deadlines::DEFAULT.takeover,
            stop_timeout: crate::handoff::Deadlines::DEFAULT.stop,
            keep_old: false,
            dry_run: false,
        }
    }

    /// How long a container started to recover may take to hold the lock:
    /// at least long enough for a lease a killed holder left to expire.
    pub fn recovery_timeout(&self) -> Duration {
        self.takeover_timeout.max(Duration::from_secs(60))
    }

    fn names(&self) -> PairNames {
        PairNames {
            primary: self.container.clone(),
            secondary: self.secondary.clone(),
        }
    }
}

/// Runs recover. `interrupted_run` is the owner of the stale run lock this
/// run took over, when there was one (its command line says what was
/// interrupted).
pub async fn recover<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &RecoverOptions,
    interrupted_run: Option<&Owner>,
    events: &Events,
    interrupt: &Interrupt,
) -> Report {
    let mut report = Report::new("recover", &opts.container, Outcome::NothingToDo);
    if let Some(owner) = interrupted_run {
        events.note(&format!("the interrupted run was {}", owner.describe()));
    }
    events.step(&format!("looking at what is left of {}", opts.container));
    let is_pair = match pair::find(hosts, &opts.names()).await {
        Ok(found) => found,
        Err(e) => return crate::report::engine_failed(report, e),
    };
    let standby_left = hosts
        .primary
        .inspect_container(&crate::names::standby_name(&opts.container))
        .await
        .ok()
        .flatten()
        .is_some();
    let result = if is_pair && !standby_left {
        let hold = interrupted_run.is_some_and(|o| o.command.split_whitespace().any(|w| w == "--hold"));
        pair::recover(hosts, opts, hold, events, interrupt, &mut report).await
    } else {
        single::recover(hosts.primary, opts, events, interrupt, &mut report).await
    };
    if let Err(what) = result {
        report.error = Some(what);
        if matches!(report.outcome, Outcome::NothingToDo | Outcome::Recovered) {
            report.set_outcome(Outcome::NeedsHuman);
        }
    }
    report.members = crate::pair::final_members(hosts, &opts.names()).await;
    let env: Vec<String> = report.members.iter().flat_map(crate::members::Member::env).collect();
    events.secrets(&env);
    report
}

/// `the new version 1.1.0` / `the old version (img:tag)`.
fn version_words(m: &crate::pair::Member, new: bool) -> String {
    let which = if new { "new" } else { "old" };
    match &m.version {
        Some(v) => format!("the {which} version {v} ({})", m.image),
        None => format!("the {which} version ({})", m.image),
    }
}
