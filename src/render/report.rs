//! A run's report for people (the human summary) and for programs (JSON).

use crate::render::table::member_table;
use crate::report::{ImageInfo, Outcome, Report};

impl Report {
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
            match (&i.version, &i.version_source) {
                (Some(v), Some(source)) => s.push_str(&format!(" (version {v}, from its {source})")),
                (Some(v), None) => s.push_str(&format!(" (version {v})")),
                _ => {}
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
            for line in member_table(&self.members).lines() {
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
        for hook in &self.hooks {
            out.push_str(&format!("  {}:\n", hook.outcome()));
            // The end of what it printed: where a failure says why.
            for l in &hook.output[hook.output.len().saturating_sub(20)..] {
                out.push_str(&format!("    | {l}\n"));
            }
        }
        if !self.probes.is_empty() {
            out.push_str(&format!("  probes: {}\n", self.probes.join("; ")));
        }
        if let Some(c) = &self.compose {
            let done = if c.ignored {
                "left as it is (--compose ignore)"
            } else if c.written {
                "written"
            } else if c.already && c.labels_updated {
                "the project named the new image already; labels updated"
            } else if c.already {
                "the project names the new image already"
            } else if self.outcome == Outcome::DryRun {
                "would be made once the node runs the new image"
            } else {
                "not written: make it yourself if the node runs the new image"
            };
            out.push_str(&format!(
                "  compose ({}/{}): {}: {done}\n",
                c.project, c.service, c.edit
            ));
        }
        if !self.warnings.is_empty() {
            out.push_str("  warnings:\n");
            for w in &self.warnings {
                out.push_str(&format!("    ! {w}\n"));
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
