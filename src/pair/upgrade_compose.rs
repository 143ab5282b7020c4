//! A pair upgrade brings the Compose project of a member Compose runs
//! along (see `upgrade::compose`).

use crate::engine::Engine;
use crate::handoff::Failure;
use crate::members::Member;
use crate::report::{ComposeRun, Outcome};
use crate::upgrade::compose::{self, Along};

use crate::pair::Which;
use crate::pair::upgrade::PairUpgrade;

/// A member Compose runs: its engine, its project's side of the upgrade,
/// and the labels its replacement gets.
pub(super) type ComposeMember = (Which, Along, Vec<(String, String)>);

/// What the report says of the Compose project: the primary's, or else the
/// other member's.
pub(super) fn compose_run(compose: &[ComposeMember], primary: &str) -> Option<ComposeRun> {
    compose
        .iter()
        .find(|(_, a, _)| a.node == primary)
        .or(compose.first())
        .map(|(_, a, _)| a.run.clone())
}

impl<E: Engine> PairUpgrade<'_, E> {
    /// Prepares each Compose-run member's side before anything changes;
    /// refuses when a project cannot be brought along.
    pub(super) fn prepare_compose(&mut self, members: [(&Member, Which); 2], target: &str) -> Result<(), Failure> {
        for (m, which) in members {
            let local = self.hosts.of(which).reach().local;
            match compose::prepare(&m.inspect, &m.name, (&m.image, target), self.opts.compose, local) {
                Ok(Some(along)) => {
                    if let Some(warning) = along.ignored_warning() {
                        self.events.warn(&warning);
                        self.report.warnings.push(warning);
                    }
                    self.compose.push((which, along, Vec::new()));
                }
                Ok(None) => {}
                Err(r) => return self.refuse(Outcome::Refused, r.reason, r.fix),
            }
        }
        self.report.compose = compose_run(&self.compose, &self.report.container);
        Ok(())
    }

    /// Asks Compose for the labels each Compose-run member's replacement
    /// gets (the new image is on the engines now).
    pub(super) async fn compose_labels(&mut self) -> Result<(), Failure> {
        let to = self.report.to.clone().unwrap_or_default();
        for i in 0..self.compose.len() {
            let engine = self.hosts.of(self.compose[i].0);
            match self.compose[i].1.labels(engine, &to).await {
                Ok(labels) => self.compose[i].2 = labels,
                Err(e) => {
                    self.report.state = format!("nothing was changed ({} was pulled)", to.reference);
                    let (what, next) = compose::labels_failed(&self.compose[i].1.node, &e);
                    return self.refuse(Outcome::Refused, what, next);
                }
            }
        }
        self.report.compose = compose_run(&self.compose, &self.report.container);
        Ok(())
    }
}
