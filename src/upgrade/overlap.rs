//! Recreating the node on the new image: after the standby has taken over,
//! or, to save the standby's boot from the job's time, while it boots.
//!
//! The original is renamed aside (and the main port reused) only once the
//! new version holds the lock, which is also what `cl-maint recover` reads
//! from the rename. Evidence of that, before the standby serves:
//!
//! - the standby answers as the holder (the `/health` 204 that v2.15+
//!   answers while migrating), in any generation;
//! - bolt era with the lock file provably shared (one engine, `ROOT` on the
//!   same mount): the original has exited, so its `flock` is free, and one
//!   of the standby's 50 ms retry intervals later the standby, the only
//!   node trying for it, still runs. A new node started after that tries
//!   for the lock only after its own start (about 200 ms more), and waits.
//!
//! It also waits until the original's stop has returned: only then has the
//! engine released its name and the main port, which under load can come
//! after the standby's 204. Without such evidence (two hosts, a generation
//! that answers nothing before it serves), the node is recreated after the
//! standby serves.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Engine;
use crate::handoff::Failure;
use crate::handoff::steps;
use crate::handoff::waits::{self, WaitLine};
use crate::interrupt::Interrupt;
use crate::report::Report;

use super::Executor;

/// The new primary, started on the main port and waiting for the lock.
pub(super) struct Ready {
    /// Its container id.
    pub id: String,
    /// Its line saying that it waits for the lock.
    pub line: WaitLine,
}

/// Why the new primary is not waiting for the lock.
pub(super) enum RecreateError {
    /// The original could not be renamed aside (nothing else was done).
    Rename(Failure),
    /// The new primary could not be created (`None`), or started, or never
    /// waited for the lock.
    Replacement(Option<String>, Failure),
}

/// A recreation that ran beside the takeover, and how long it took.
pub(super) struct Early {
    pub result: Result<Ready, RecreateError>,
    pub took: Duration,
}

impl<E: Engine> Executor<'_, E> {
    /// Renames the original aside and starts the new primary on the main
    /// port, until it logs that it waits for the lock.
    pub(super) async fn recreate(&self) -> Result<Ready, RecreateError> {
        let (p, name) = (self.plan, &self.plan.container);
        self.set_aside().await.map_err(RecreateError::Rename)?;
        let who = format!("the new {name}");
        let id = self
            .create_and_start(&p.replacement, &who)
            .await
            .map_err(|(id, failure)| RecreateError::Replacement(id, failure))?;
        // Finished even when interrupted: the hand-back is the way home. The
        // line alone (see `steps::logs_waiting`): a clone of the confirmed
        // standby, on its engine and mounts; if it answers later, the
        // standby has let go and it holds the one lock (the upgrade then
        // finishes on it).
        match steps::logs_waiting(self.engine, &id, &who, 0, self.opts.wait_timeout, &Interrupt::new()).await {
            Ok(line) => {
                self.events.note(&format!("the new {name} is waiting for the lock"));
                Ok(Ready { id, line })
            }
            Err(f) => Err(RecreateError::Replacement(Some(id), f)),
        }
    }

    /// Runs beside the takeover, once the new version provably holds the
    /// lock (see the module's notes): recreates the node.
    pub(super) async fn recreate_beside(&self) -> Early {
        let name = &self.plan.container;
        self.events.step(&format!(
            "recreating {name} on the new image while {} boots",
            self.plan.standby.name
        ));
        let started = Instant::now();
        let result = self.recreate().await;
        Early {
            result,
            took: started.elapsed(),
        }
    }

    /// The takeover failed after the new primary was started beside it:
    /// remove it and put the original back under its name, so the ways back
    /// find things as they were. When the new primary turned out to take the
    /// lock itself, the upgrade is finished on it instead (the report).
    pub(super) async fn undo_early(mut self, early: Option<Early>, standby: &str) -> Result<Self, Report> {
        let Some(early) = early else { return Ok(self) };
        let (p, name) = (self.plan, self.plan.container.clone());
        let (replacement, renamed) = match early.result {
            Ok(ready) => (Some(ready.id), true),
            Err(RecreateError::Replacement(id, _)) => (id, true),
            Err(RecreateError::Rename(_)) => (None, false),
        };
        if let Some(id) = &replacement {
            if waits::answers(self.engine, &p.primary_addr).await {
                return Err(self.replacement_took_over(standby).await);
            }
            let _ = self.engine.stop(id, self.opts.stop_timeout).await;
            self.remove_quietly(id).await;
        }
        if renamed && let Err(e) = self.restore_original(false).await {
            self.events
                .warn(&format!("could not put the old {name} back under its name: {e}"));
        }
        Ok(self)
    }

    /// The new primary took the lock before the standby did (a standby that
    /// did not take a free lock for a few hundred ms): the node already runs
    /// the new version on its main port; the standby is removed.
    async fn replacement_took_over(self, standby: &str) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        self.events.warn(&format!(
            "the new {name} took the lock before {} did; finishing on it",
            p.standby.name
        ));
        let _ = self.engine.stop(standby, self.opts.stop_timeout).await;
        let mut left = Vec::new();
        if self.engine.remove(standby).await.is_err() {
            left.push(p.standby.name.clone());
        }
        left.extend(self.remove_old().await);
        let state = format!("{name} runs {} and holds the lock on {}", p.target, p.primary_addr);
        self.upgraded(left, state)
    }
}
