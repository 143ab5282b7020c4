//! The result of a run: one document, printed as a human summary or as JSON
//! (`--json`) on stdout by `render::report`. Progress goes to stderr (see
//! `progress.rs`). Every outcome and verdict is mapped to its exit code
//! here (the codes themselves are `exit.rs`).

use serde::Serialize;

use crate::engine::EngineError;
use crate::exit;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The node runs the new version on its main port.
    Upgraded,
    /// The pulled image is what the node already runs; nothing changed.
    UpToDate,
    /// `--dry-run`: the plan was printed; nothing changed.
    DryRun,
    /// A preflight check failed; nothing changed.
    Refused,
    /// The new image could not be pulled; nothing changed.
    PullFailed,
    /// Something failed and everything was put back as it was.
    RolledBack,
    /// `failover up`: the secondary waits for the lock beside the primary.
    PairReady,
    /// The lock moved to the other member of the pair.
    SwitchedOver,
    /// The pair already was as asked; nothing changed.
    NothingToDo,
    /// No member holds the lock: the node is down; nothing was changed.
    NoHolder,
    /// More than one member answers as the holder; nothing was changed.
    SeveralHolders,
    /// Something failed in a state that needs a human (see `next_steps`).
    NeedsHuman,
    /// The Docker Engine did not answer; nothing was changed.
    Unreachable,
    /// The engine refused a read before anything changed.
    Failed,
    /// Interrupted; the report says how it was left.
    Interrupted,
    /// Another cl-maint run on the node holds the run lock; nothing changed.
    RunLocked,
    /// `recover`: what an interrupted run left was brought back to one node
    /// holding the lock (the report says on which version).
    Recovered,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Upgraded
            | Outcome::UpToDate
            | Outcome::DryRun
            | Outcome::PairReady
            | Outcome::SwitchedOver
            | Outcome::NothingToDo
            | Outcome::Recovered => exit::OK,
            Outcome::RunLocked => exit::RUN_LOCKED,
            Outcome::NoHolder => exit::NO_HOLDER,
            Outcome::SeveralHolders => exit::SEVERAL_HOLDERS,
            Outcome::Refused => exit::REFUSED,
            Outcome::PullFailed => exit::PULL_FAILED,
            Outcome::RolledBack => exit::ROLLED_BACK,
            Outcome::NeedsHuman => exit::NEEDS_HUMAN,
            Outcome::Unreachable => exit::ENGINE_UNREACHABLE,
            Outcome::Failed => exit::FAILURE,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }
}

// The verdicts of `status` and `health`, and their exit codes: with
// `Outcome::exit_code` above, every exit code is mapped here.

/// What the lock looks like across the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Exactly one container answers as the lock holder.
    OneHolder,
    /// None does: the node is down.
    NoHolder,
    /// More than one answers as the holder: two nodes may be active.
    SeveralHolders,
    /// The engine could not be reached.
    Unreachable,
    /// The engine answered a read with an error (shown as `unreachable`).
    #[serde(rename = "unreachable")]
    EngineFailed,
}

impl Verdict {
    /// The exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::OneHolder => exit::OK,
            Verdict::NoHolder => exit::NO_HOLDER,
            Verdict::SeveralHolders => exit::SEVERAL_HOLDERS,
            Verdict::Unreachable => exit::ENGINE_UNREACHABLE,
            Verdict::EngineFailed => exit::FAILURE,
        }
    }

    /// Reads the verdict off the members.
    pub fn of(members: &[crate::members::Member]) -> Verdict {
        match members
            .iter()
            .filter(|m| m.lock == crate::members::LockRole::Holding)
            .count()
        {
            0 => Verdict::NoHolder,
            1 => Verdict::OneHolder,
            _ => Verdict::SeveralHolders,
        }
    }
}

/// What `health` found, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthVerdict {
    /// The holder's checks all pass (or it is still migrating).
    Passing,
    /// The holder answers, but a check fails.
    Failing,
    /// No member holds the lock.
    NoHolder,
    /// More than one member answers as the holder.
    SeveralHolders,
    /// The holder stopped answering `/health`.
    NoAnswer,
    /// `/health` answered something that is not the checks document.
    Unreadable,
    /// The checks pass, but `/metrics` refused the token.
    MetricsRefused,
    /// The engine could not be reached.
    Unreachable,
    /// The engine answered a read with an error (shown as `unreachable`).
    #[serde(rename = "unreachable")]
    EngineFailed,
}

impl HealthVerdict {
    /// The exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            HealthVerdict::Passing => exit::OK,
            HealthVerdict::Failing => exit::CHECK_FAILING,
            HealthVerdict::NoHolder | HealthVerdict::NoAnswer => exit::NO_HOLDER,
            HealthVerdict::SeveralHolders => exit::SEVERAL_HOLDERS,
            HealthVerdict::Unreadable | HealthVerdict::MetricsRefused | HealthVerdict::EngineFailed => exit::FAILURE,
            HealthVerdict::Unreachable => exit::ENGINE_UNREACHABLE,
        }
    }

    /// The health verdict when the lock itself is not in order (or the
    /// engine could not be read).
    pub fn of_status(v: Verdict) -> HealthVerdict {
        match v {
            Verdict::OneHolder => HealthVerdict::Passing,
            Verdict::NoHolder => HealthVerdict::NoHolder,
            Verdict::SeveralHolders => HealthVerdict::SeveralHolders,
            Verdict::Unreachable => HealthVerdict::Unreachable,
            Verdict::EngineFailed => HealthVerdict::EngineFailed,
        }
    }
}

/// A Compose-managed node's project, as an upgrade left it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ComposeRun {
    /// `com.docker.compose.project`.
    pub project: String,
    /// `com.docker.compose.service`.
    pub service: String,
    /// The edit that makes the project name the new image, in words (also
    /// the edit to make by hand when it was not written).
    pub edit: String,
    /// Whether the project named the new image already (no edit needed).
    pub already: bool,
    /// Whether cl-maint wrote it.
    pub written: bool,
    /// Whether the recreated container got the labels Compose gives the
    /// edited service (so `up -d` leaves it as it is).
    pub labels_updated: bool,
    /// `--compose ignore`: the project was left as it is.
    pub ignored: bool,
}

/// One hook's run, as the report keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookRun {
    /// `before-upgrade` or `after-upgrade`.
    pub hook: String,
    /// The command, redacted.
    pub command: String,
    /// Its exit code (`null` when it could not start or was killed).
    pub exit_code: Option<i32>,
    /// What it printed (stdout, then stderr), redacted.
    pub output: Vec<String>,
}

impl HookRun {
    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// What happened, in words.
    pub fn outcome(&self) -> String {
        match self.exit_code {
            Some(0) => format!("{} succeeded", self.hook),
            Some(code) => format!("{} `{}` failed (exit {code})", self.hook, self.command),
            None => format!("{} `{}` did not finish", self.hook, self.command),
        }
    }
}

/// An image as the report names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The reference (`smartcontract/chainlink:2.10.0`).
    pub reference: String,
    /// The image id (`sha256:…`).
    pub id: String,
    /// The registry digest (`repo@sha256:…`), when the image came from one.
    pub digest: Option<String>,
    /// The node version, when known.
    pub version: Option<String>,
    /// Where the version came from: `image metadata`, `chainlink --version`,
    /// `tag` or `start line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_source: Option<String>,
}

/// One phase of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    /// Its name (`pull`, `start-standby`, …).
    pub name: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// One move of the lock from a container to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Handoff {
    /// The container that held the lock.
    pub from: String,
    /// The container that took it.
    pub to: String,
    /// From signalling the old holder to the new holder answering HTTP.
    pub gap_ms: u64,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command (`upgrade`).
    pub command: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The process exit code.
    pub exit_code: i32,
    /// The node's container name.
    pub container: String,
    /// The image the node ran before.
    pub from: Option<ImageInfo>,
    /// The image asked for (resolved after the pull).
    pub to: Option<ImageInfo>,
    /// Each phase with its duration.
    pub phases: Vec<Phase>,
    /// Each handoff with its measured gap.
    pub handoffs: Vec<Handoff>,
    /// What happened, when something went wrong.
    pub error: Option<String>,
    /// The node's state now, in one sentence.
    pub state: String,
    /// What the operator should do next (empty when nothing).
    pub next_steps: Vec<String>,
    /// Containers cl-maint left in place on purpose.
    pub left: Vec<String>,
    /// The last log lines of the container that failed, redacted.
    pub log_tail: Vec<String>,
    /// The warnings the run gave on its way, redacted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The operator's hooks that ran (`--before-upgrade`, `--after-upgrade`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRun>,
    /// How the nodes' HTTP ports were asked (`--probe`), in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
    /// What the run did to the Compose project the node belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeRun>,
    /// The members of the failover pair as the run left them (pair commands).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<crate::members::Member>,
    /// The plan (with `--dry-run`), redacted.
    pub plan: Option<serde_json::Value>,
    /// The plan for people (with `--dry-run`), redacted; not in the JSON.
    #[serde(skip)]
    pub plan_text: Option<String>,
}

impl Report {
    /// A report with the given outcome and nothing else yet.
    pub fn new(command: &str, container: &str, outcome: Outcome) -> Report {
        Report {
            command: command.to_string(),
            outcome,
            exit_code: outcome.exit_code(),
            container: container.to_string(),
            from: None,
            to: None,
            phases: Vec::new(),
            handoffs: Vec::new(),
            error: None,
            state: String::new(),
            next_steps: Vec::new(),
            left: Vec::new(),
            log_tail: Vec::new(),
            warnings: Vec::new(),
            hooks: Vec::new(),
            compose: None,
            probes: Vec::new(),
            members: Vec::new(),
            plan: None,
            plan_text: None,
        }
    }

    /// Sets the outcome (and with it the exit code).
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        self.exit_code = outcome.exit_code();
    }
}

/// The report for a run that could not talk to the engine: nothing changed.
pub fn engine_failed(mut report: Report, e: EngineError) -> Report {
    let outcome = if e.unreachable() {
        Outcome::Unreachable
    } else {
        Outcome::Failed
    };
    report.set_outcome(outcome);
    report.next_steps = e.next_steps();
    report.error = Some(e.to_string());
    report.state = "nothing was changed".into();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome and verdict maps to a documented code (`exit::TABLE`).
    #[test]
    fn every_exit_code_is_in_the_table() {
        let documented = |code: i32| exit::TABLE.iter().any(|(c, _)| *c == code);
        let outcomes = [
            Outcome::Upgraded,
            Outcome::UpToDate,
            Outcome::DryRun,
            Outcome::Refused,
            Outcome::PullFailed,
            Outcome::RolledBack,
            Outcome::PairReady,
            Outcome::SwitchedOver,
            Outcome::NothingToDo,
            Outcome::NoHolder,
            Outcome::SeveralHolders,
            Outcome::NeedsHuman,
            Outcome::Unreachable,
            Outcome::Failed,
            Outcome::Interrupted,
            Outcome::RunLocked,
            Outcome::Recovered,
        ];
        let verdicts = [
            Verdict::OneHolder,
            Verdict::NoHolder,
            Verdict::SeveralHolders,
            Verdict::Unreachable,
            Verdict::EngineFailed,
        ];
        let health = [
            HealthVerdict::Passing,
            HealthVerdict::Failing,
            HealthVerdict::NoHolder,
            HealthVerdict::SeveralHolders,
            HealthVerdict::NoAnswer,
            HealthVerdict::Unreadable,
            HealthVerdict::MetricsRefused,
            HealthVerdict::Unreachable,
            HealthVerdict::EngineFailed,
        ];
        let codes = outcomes
            .iter()
            .map(|o| o.exit_code())
            .chain(verdicts.iter().map(|v| v.exit_code()))
            .chain(health.iter().map(|h| h.exit_code()));
        for code in codes {
            assert!(documented(code), "exit code {code} is not in exit::TABLE");
        }
        // Health follows the lock's verdict where there is no holder to ask.
        for v in verdicts {
            assert_eq!(HealthVerdict::of_status(v).exit_code(), v.exit_code(), "{v:?}");
        }
        assert_eq!(serde_json::to_value(Verdict::EngineFailed).unwrap(), "unreachable");
        assert_eq!(
            serde_json::to_value(HealthVerdict::MetricsRefused).unwrap(),
            "metrics-refused"
        );
    }
}
