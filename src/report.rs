//! The result of a run: one document, printed as a human summary or as JSON
//! (`--json`) on stdout. Progress goes to stderr (see `progress.rs`).

use serde::Serialize;

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
    /// The members of the failover pair as the run left them (pair commands).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<crate::pair::Member>,
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

    /// Adds the phase `name`, which took `took`.
    pub fn add_phase(&mut self, name: &str, took: std::time::Duration) {
        self.phases.push(Phase {
            name: name.to_string(),
            duration_ms: took.as_millis() as u64,
        });
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"))
    }

    /// The human summary.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let headline = match self.outcome {
            Outcome::Upgraded => format!("{}: upgraded", self.container),
            Outcome::UpToDate => format!("{}: already up to date", self.container),
            Outcome::DryRun => format!("{}: dry run, nothing changed", self.container),
            Outcome::Refused => format!("{}: refused, nothing changed", self.container),
            Outcome::PullFailed => format!("{}: could not pull the new image, nothing changed", self.container),
            Outcome::RolledBack => format!("{}: failed, rolled back", self.container),
            Outcome::NeedsHuman => format!("{}: FAILED, needs a human", self.container),
            Outcome::PairReady => format!("{}: the failover pair is in place", self.container),
            Outcome::SwitchedOver => format!("{}: the lock moved", self.container),
            Outcome::NothingToDo => format!("{}: nothing to do", self.container),
            Outcome::NoHolder => format!("{}: NO member holds the lock, nothing changed", self.container),
            Outcome::SeveralHolders => format!(
                "{}: MORE THAN ONE member answers as the lock holder, nothing changed",
                self.container
            ),
            Outcome::Unreachable => format!("{}: the Docker Engine did not answer, nothing changed", self.container),
            Outcome::Failed => format!("{}: failed before any change", self.container),
            Outcome::Interrupted => format!("{}: interrupted", self.container),
            Outcome::RunLocked => format!(
                "{}: refused, another cl-maint run is in progress; nothing changed",
                self.container
            ),
            Outcome::Recovered => format!("{}: recovered", self.container),
        };
        out.push_str(&headline);
        out.push('\n');
        if let Some(plan) = &self.plan_text {
            out.push_str(plan);
        }
        let image = |i: &ImageInfo| {
            let mut s = i.reference.clone();
            if let Some(v) = &i.version {
                s.push_str(&format!(" (version {v})"));
            }
            if let Some(d) = &i.digest {
                s.push_str(&format!("\n      digest {d}"));
            } else if !i.id.is_empty() {
                s.push_str(&format!("\n      id {}", i.id));
            }
            s
        };
        if let Some(from) = &self.from {
            out.push_str(&format!("  from: {}\n", image(from)));
        }
        if let Some(to) = &self.to {
            out.push_str(&format!("  to:   {}\n", image(to)));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("  what happened: {error}\n"));
        }
        if !self.state.is_empty() {
            out.push_str(&format!("  state now: {}\n", self.state));
        }
        if !self.phases.is_empty() {
            out.push_str("  phases:\n");
            for p in &self.phases {
                out.push_str(&format!("    {:<18} {:>8.2}s\n", p.name, p.duration_ms as f64 / 1000.0));
            }
        }
        for h in &self.handoffs {
            out.push_str(&format!(
                "  handoff {} -> {}: {} ms without a node serving\n",
                h.from, h.to, h.gap_ms
            ));
        }
        if !self.members.is_empty() {
            for line in crate::pair::status::member_table(&self.members).lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if !self.left.is_empty() {
            out.push_str(&format!("  left in place: {}\n", self.left.join(", ")));
        }
        if !self.log_tail.is_empty() {
            out.push_str("  last log lines:\n");
            for l in &self.log_tail {
                out.push_str(&format!("    | {l}\n"));
            }
        }
        if !self.next_steps.is_empty() {
            out.push_str("  next:\n");
            for s in &self.next_steps {
                out.push_str(&format!("    - {s}\n"));
            }
        }
        out
    }
}
