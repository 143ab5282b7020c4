//! The result of a run: one document, printed as a human summary or as JSON
//! (`--json`) on stdout by `render::report`. Progress goes to stderr (see
//! `progress.rs`).

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
