//! What a generation's soak ran, and the table printed at the end.

use std::fmt::Write as _;
use std::time::Duration;

use crate::stats::percentile;
use crate::{Args, Gen};

/// A kind of cl-maint command the soak runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `failover up`: makes the pair (once, before the cycles).
    PairUp,
    /// `upgrade` of the single node.
    Upgrade,
    /// `failover`: primary → secondary.
    Failover,
    /// `failover back`: secondary → primary.
    FailoverBack,
    /// `upgrade` of the pair (both members).
    PairUpgrade,
}

impl Step {
    /// Every step, in table order.
    pub const ALL: [Step; 5] = [
        Step::PairUp,
        Step::Upgrade,
        Step::Failover,
        Step::FailoverBack,
        Step::PairUpgrade,
    ];

    /// The name in lines and tables.
    pub fn label(self) -> &'static str {
        match self {
            Step::PairUp => "failover up (pair setup)",
            Step::Upgrade => "upgrade (single node)",
            Step::Failover => "failover",
            Step::FailoverBack => "failover back",
            Step::PairUpgrade => "upgrade (pair)",
        }
    }

    /// The short name in the per-cycle line.
    pub fn short(self) -> &'static str {
        match self {
            Step::PairUp => "up",
            Step::Upgrade => "upgrade",
            Step::Failover => "failover",
            Step::FailoverBack => "back",
            Step::PairUpgrade => "pair-upgrade",
        }
    }
}

/// One cl-maint command and what came of it.
#[derive(Clone, Debug)]
pub struct Ran {
    /// The cycle (0: setup).
    pub cycle: usize,
    /// What ran.
    pub step: Step,
    /// The image tag an upgrade went to.
    pub target: Option<&'static str>,
    /// cl-maint's exit code (-1: it could not be run).
    pub code: i32,
    /// The outcome in cl-maint's report.
    pub outcome: String,
    /// Why this counts as a failure: a non-zero exit, or an end state other
    /// than the one cl-maint reported.
    pub failure: Option<String>,
    /// Overlaps the journal gained during the command.
    pub overlaps: usize,
    /// The handoffs the journal gained during the command.
    pub gaps_ms: Vec<f64>,
    /// cl-maint's wall time.
    pub wall: Duration,
}

impl Ran {
    /// The command's part of the per-cycle line.
    pub fn short(&self) -> String {
        let target = self.target.map(|t| format!("→{t}")).unwrap_or_default();
        let gaps: Vec<String> = self.gaps_ms.iter().map(|g| format!("{g:.0}")).collect();
        let mut s = format!(
            "{}{target} {} {:.2}s [{}]",
            self.step.short(),
            self.code,
            self.wall.as_secs_f64(),
            gaps.join(" ")
        );
        if self.failure.is_some() {
            s.push_str(" FAILED");
        }
        if self.overlaps > 0 {
            let _ = write!(s, " OVERLAP×{}", self.overlaps);
        }
        s
    }
}

/// One generation's soak.
#[derive(Debug)]
pub struct Soaked {
    /// The lock generation.
    pub generation: Gen,
    /// Cycles completed.
    pub cycles: usize,
    /// Every command run.
    pub ran: Vec<Ran>,
    /// Overlaps in the two journals at the end (must be 0).
    pub overlaps: usize,
    /// Why the sandboxes could not be made.
    pub setup_error: Option<String>,
    /// Why the soak stopped with no node serving.
    pub lost: Option<String>,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// From the first sandbox to the cleanup.
    pub wall: Duration,
}

impl Soaked {
    /// What makes the soak exit 1: failures, overlaps, a lost node, a
    /// failed setup.
    pub fn bad(&self) -> usize {
        self.ran.iter().filter(|r| r.failure.is_some()).count()
            + self.overlaps
            + usize::from(self.lost.is_some())
            + usize::from(self.setup_error.is_some())
    }
}

fn millis(v: f64) -> String {
    if v.is_nan() { "–".into() } else { format!("{v:.0} ms") }
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// `12 min 03 s` or `45.2 s`.
pub fn wall(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn row(out: &mut String, name: &str, ran: &[&Ran]) {
    if ran.is_empty() {
        return;
    }
    let gaps: Vec<f64> = ran.iter().flat_map(|r| r.gaps_ms.iter().copied()).collect();
    let times: Vec<f64> = ran.iter().map(|r| r.wall.as_secs_f64() * 1000.0).collect();
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {} | {} | {} | {:.2} s | {:.2} s |",
        ran.len(),
        ran.iter().filter(|r| r.failure.is_some()).count(),
        gaps.len(),
        millis(percentile(&gaps, 50.0)),
        millis(percentile(&gaps, 95.0)),
        millis(max(&gaps)),
        percentile(&times, 50.0) / 1000.0,
        max(&times) / 1000.0,
    );
}

/// The markdown report of one generation.
pub fn table(s: &Soaked, args: &Args) -> String {
    let mut out = String::new();
    let g = s.generation;
    let _ = writeln!(
        out,
        "### {} era: {} of {} cycles, {}\n",
        g.env(),
        s.cycles,
        args.cycles,
        wall(s.wall)
    );
    out.push_str("| command | runs | failures | handoffs | gap p50 | gap p95 | gap max | time p50 | time max |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for step in Step::ALL {
        let ran: Vec<&Ran> = s.ran.iter().filter(|r| r.step == step).collect();
        row(&mut out, &format!("`{}`", step.label()), &ran);
    }
    let all: Vec<&Ran> = s.ran.iter().collect();
    row(&mut out, "all", &all);
    let gaps: Vec<f64> = s.ran.iter().flat_map(|r| r.gaps_ms.iter().copied()).collect();
    let bound = g.retry_and_boot().as_secs_f64() * 1000.0 + 250.0;
    let slow = gaps.iter().filter(|&&v| v > bound).count();
    let failures: Vec<&Ran> = s.ran.iter().filter(|r| r.failure.is_some()).collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "- cycles run: {} of {}", s.cycles, args.cycles);
    let _ = writeln!(out, "- commands run: {}", s.ran.len());
    let _ = writeln!(out, "- failures: {}", failures.len());
    let _ = writeln!(
        out,
        "- overlaps in the journals: {} ({})",
        s.overlaps,
        if s.overlaps == 0 {
            "must be 0: met"
        } else {
            "must be 0: MISSED"
        }
    );
    let _ = writeln!(
        out,
        "- handoffs: {}, gap p50 {} / p95 {} / max {}; above the node's retry + boot + 250 ms ({bound:.0} ms): {slow}",
        gaps.len(),
        millis(percentile(&gaps, 50.0)),
        millis(percentile(&gaps, 95.0)),
        millis(max(&gaps)),
    );
    let _ = writeln!(out, "- wall time: {}", wall(s.wall));
    if let Some(e) = &s.setup_error {
        let _ = writeln!(out, "- SETUP FAILED: {e}");
    }
    if s.interrupted {
        let _ = writeln!(out, "- interrupted (Ctrl-C) after {} cycle(s)", s.cycles);
    }
    if let Some(lost) = &s.lost {
        let _ = writeln!(out, "- **NODE LOST**: {lost}");
    }
    // Identical failures once, with the cycles they happened in.
    let mut groups: Vec<(Step, &str, Vec<usize>)> = Vec::new();
    for r in failures {
        let message = r.failure.as_deref().unwrap_or_default();
        match groups.iter_mut().find(|(st, m, _)| *st == r.step && *m == message) {
            Some((_, _, cycles)) => cycles.push(r.cycle),
            None => groups.push((r.step, message, vec![r.cycle])),
        }
    }
    for (step, message, cycles) in groups {
        let cycles: Vec<String> = cycles.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "- `{}` failed in cycle(s) {}: {message}",
            step.label(),
            cycles.join(", ")
        );
    }
    out.push('\n');
    out
}
