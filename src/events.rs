//! Events: what a running command tells its listeners. Steps emit them (a
//! step started, a note, a warning, a phase done, a handoff measured); the
//! progress display shows them as they come, and the report builder records
//! the phases, handoffs and warnings for the report. The outcome is decided
//! where a command ends (it is the value it returns, its `Report`); the
//! report builder emits it as the last event, so the display ends with it. Both see text only through one
//! redactor, which learns the node's secret values as soon as a command has
//! read them: redaction happens here, once, for the display and the report.

use std::sync::Mutex;
use std::time::Duration;

use crate::engine::PullProgress;
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::report::{Handoff, Phase, Report};

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A step started.
    Step(String),
    /// Something worth knowing.
    Note(String),
    /// Something that went wrong but did not end the run.
    Warning(String),
    /// A phase ended.
    Phase(Phase),
    /// A handoff was measured.
    Handoff(Handoff),
    /// The run ended (emitted by the report builder).
    Outcome(crate::report::Outcome),
}

/// Asks the operator to confirm what a run will do (the text says it);
/// true to go on. Commands are given one only when someone can be asked.
pub type Confirm<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// Where a command's events go: the progress display and the report
/// builder.
pub struct Events {
    display: Progress,
    redactor: Mutex<Redactor>,
    recorded: Mutex<Vec<Event>>,
}

impl Events {
    /// Events shown on `display`.
    pub fn new(display: Progress) -> Events {
        Events {
            display,
            redactor: Mutex::new(Redactor::default()),
            recorded: Mutex::new(Vec::new()),
        }
    }

    /// The progress display (for engine call traces and pull bars).
    pub fn display(&self) -> &Progress {
        &self.display
    }

    /// Learns the secret values in these `NAME=value` entries (a node's
    /// environment): from now on, no event and no report shows them.
    pub fn secrets(&self, env: &[String]) {
        let learned = Redactor::from_env(env);
        let mut redactor = self.redactor.lock().unwrap_or_else(|e| e.into_inner());
        redactor.merge(&learned);
    }

    /// `text` with every secret known so far masked.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.lock().unwrap_or_else(|e| e.into_inner()).text(text)
    }

    /// Tells the listeners.
    pub fn emit(&self, event: Event) {
        match &event {
            Event::Step(text) => self.display.step(&self.redact(text)),
            Event::Note(text) => self.display.note(&self.redact(text)),
            Event::Warning(text) => self.display.warn(&self.redact(text)),
            Event::Phase(_) => {}
            Event::Handoff(h) => self.display.note(&format!(
                "{} holds the lock; {} ms without a node serving",
                h.to, h.gap_ms
            )),
            Event::Outcome(o) => self.display.step(&format!(
                "done: {} (exit {})",
                serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                o.exit_code()
            )),
        }
        if matches!(event, Event::Phase(_) | Event::Handoff(_) | Event::Warning(_)) {
            self.recorded.lock().unwrap_or_else(|e| e.into_inner()).push(event);
        }
    }

    /// A step started.
    pub fn step(&self, text: &str) {
        self.emit(Event::Step(text.to_string()));
    }

    /// A note.
    pub fn note(&self, text: &str) {
        self.emit(Event::Note(text.to_string()));
    }

    /// A warning.
    pub fn warn(&self, text: &str) {
        self.emit(Event::Warning(text.to_string()));
    }

    /// The phase `name` ended; it took `took`.
    pub fn phase(&self, name: &str, took: Duration) {
        self.emit(Event::Phase(Phase {
            name: name.to_string(),
            duration_ms: took.as_millis() as u64,
        }));
    }

    /// The lock moved from `from` to `to`, with `gap` without a node serving.
    pub fn handoff(&self, from: &str, to: &str, gap: Duration) {
        self.emit(Event::Handoff(Handoff {
            from: from.to_string(),
            to: to.to_string(),
            gap_ms: gap.as_millis() as u64,
        }));
    }

    /// A pull's progress (shown, not recorded).
    pub fn pull(&self, p: &PullProgress) {
        self.display.pull(p);
    }

    /// The pull is over.
    pub fn pull_done(&self) {
        self.display.pull_done();
    }

    /// The report builder: `report` with the phases, handoffs and warnings recorded
    /// since the last report (in the order they happened, after any the
    /// report has), and every text redacted.
    pub fn report(&self, mut report: Report) -> Report {
        for event in std::mem::take(&mut *self.recorded.lock().unwrap_or_else(|e| e.into_inner())) {
            match event {
                Event::Phase(p) => report.phases.push(p),
                Event::Handoff(h) => report.handoffs.push(h),
                Event::Warning(w) => report.warnings.push(w),
                _ => {}
            }
        }
        let r = self.redactor.lock().unwrap_or_else(|e| e.into_inner()).clone();
        report.error = report.error.as_deref().map(|e| r.text(e));
        report.state = r.text(&report.state);
        report.next_steps = report.next_steps.iter().map(|n| r.text(n)).collect();
        report.log_tail = report.log_tail.iter().map(|l| r.text(l)).collect();
        report.warnings = report.warnings.iter().map(|w| r.text(w)).collect();
        report.plan_text = report.plan_text.as_deref().map(|p| r.text(p));
        self.emit(Event::Outcome(report.outcome));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Mode;
    use crate::report::Outcome;

    #[test]
    fn the_report_builder_records_phases_and_handoffs_and_redacts_once() {
        let events = Events::new(Progress::with_mode(Mode::Quiet));
        events.phase("pull", Duration::from_millis(120));
        events.secrets(&["DATABASE_URL=postgres://u:hunter22@db/cl".into()]);
        events.handoff("chainlink", "chainlink-cl-maint-standby", Duration::from_millis(700));
        events.note("not recorded");
        let mut report = Report::new("upgrade", "chainlink", Outcome::NeedsHuman);
        report.error = Some("the node said hunter22".into());
        let report = events.report(report);
        assert_eq!(report.phases.len(), 1);
        assert_eq!(report.phases[0].duration_ms, 120);
        assert_eq!(report.handoffs[0].gap_ms, 700);
        assert!(
            !report.error.as_deref().unwrap().contains("hunter22"),
            "{:?}",
            report.error
        );
        assert_eq!(
            events.redact("x hunter22 y"),
            "x *** y".replace("***", crate::redact::MASK)
        );
        // Drained: the next report starts afresh.
        let next = events.report(Report::new("upgrade", "b", Outcome::Upgraded));
        assert!(next.phases.is_empty() && next.handoffs.is_empty());
    }
}
