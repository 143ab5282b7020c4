//! Execute: the only place that changes the engine's state. Steps run in
//! order; a failure undoes what was done, in reverse, as far as it is still
//! safe.
//!
//! The point of no return: once a container of the **new** version has held
//! the lock, the database may be migrated and the old version would refuse
//! it. Before that point a failure rolls back to the untouched original;
//! after it, the way out is forward (keep the new version running) and the
//! report says exactly what state the node is in.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Engine;
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::node::logs::Generation;
use crate::report::{Outcome, Report};
use crate::spec::CloneSpec;

use super::options::UpgradeOptions;
use super::plan::Plan;
use crate::handoff::steps::{self, Waiter};
use crate::handoff::transfer::{self, Transfer};
use crate::handoff::waits::{self, Release, WaitFailure};
use crate::handoff::{Failure, describe};
use overlap::{Early, RecreateError};

/// Runs the plan (after the pull) and fills in the report.
pub struct Executor<'a, E: Engine> {
    engine: &'a E,
    plan: &'a Plan,
    opts: &'a UpgradeOptions,
    events: &'a Events,
    interrupt: &'a Interrupt,
    report: Report,
    phase_started: Instant,
    /// The original's container id now (a way back may create it again).
    original_id: String,
    /// The engine removed the original on its stop (`--rm`).
    original_gone: AtomicBool,
}

/// How long a container restarted to recover may take to hold the lock:
/// at least the takeover deadline, and at least long enough for a lease left
/// by a killed holder to expire (10 s by default) plus a boot.
fn recovery_timeout(opts: &UpgradeOptions) -> Duration {
    opts.takeover_timeout.max(Duration::from_secs(60))
}

/// The step that times a stop to the successor's next lock try (see
/// `waits::release_at`); its phase is `lock-retry`.
const RETRY_ALIGN: &str = "timing the stop to the successor's next lock try";

/// The warning for an interrupt past the point of no return.
const FINISHING: &str =
    "interrupt received after the new version took the lock: finishing the upgrade, the only way back to the main port";

impl<'a, E: Engine> Executor<'a, E> {
    /// An executor continuing `report`.
    pub fn new(
        engine: &'a E,
        plan: &'a Plan,
        opts: &'a UpgradeOptions,
        events: &'a Events,
        interrupt: &'a Interrupt,
        report: Report,
    ) -> Self {
        Executor {
            engine,
            plan,
            opts,
            events,
            interrupt,
            report,
            phase_started: Instant::now(),
            original_id: plan.primary_id.clone(),
            original_gone: AtomicBool::new(false),
        }
    }

    fn begin(&mut self, text: &str) {
        self.events.step(text);
        self.phase_started = Instant::now();
    }

    fn end(&mut self, name: &str) {
        self.events.phase(name, self.phase_started.elapsed());
    }

    fn finish(mut self, outcome: Outcome, state: String, failure: Option<Failure>, next: Vec<String>) -> Report {
        self.report.set_outcome(outcome);
        self.report.state = state;
        if let Some(f) = failure {
            self.report.error = Some(f.what);
            self.report.log_tail = f.tail;
        }
        self.report.next_steps = next;
        self.report
    }

    /// Runs every step after the pull.
    pub async fn run(mut self) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let standby_name = p.standby.name.clone();

        // 1. The standby, on the new image, on the standby port.
        self.begin(&format!("starting the standby {standby_name} on {}", p.standby_addr));
        let standby = match self.create_and_start(&p.standby, "the standby").await {
            Ok(id) => id,
            Err((id, failure)) => return self.roll_back_early(id.as_deref(), failure).await,
        };
        let waiter = Waiter {
            id: &standby,
            who: "the standby",
            addr: &p.standby_addr,
            holder: &name,
            shared_file: p.lock_file_shared,
        };
        let line = match steps::confirm_waiting(self.engine, &waiter, 0, self.opts.wait_timeout, self.interrupt).await {
            Ok(line) => line,
            Err(f) if f.interrupted => return self.interrupted_early(&standby).await,
            Err(f) => return self.roll_back_early(Some(&standby), f).await,
        };
        let generation = line.generation;
        self.events
            .note(&format!("the standby is waiting for the lock ({generation})"));
        self.learn_new_version(&standby).await;
        self.end("start-standby");
        if self.interrupt.is_set() {
            return self.interrupted_early(&standby).await;
        }

        // 2. The handoff to the standby; the node is recreated on the new
        // image beside the takeover, as soon as the new version provably
        // holds the lock (see `overlap`).
        let transfer = Transfer {
            from_engine: self.engine,
            from: &p.primary_id,
            release: if self.opts.kill {
                Release::Kill
            } else {
                Release::Stop(self.opts.stop_timeout)
            },
            to_engine: self.engine,
            to: &standby,
            to_addr: &p.standby_addr,
            within: self.opts.takeover_timeout,
            bolt_shared: generation == Generation::Bolt && p.lock_file_shared,
        };
        if let Some(at) = transfer::release_at(Some(&line)) {
            self.begin(RETRY_ALIGN);
            match transfer::align(at, Some(self.interrupt)).await {
                Ok(_) => self.end("lock-retry"),
                Err(_) => return self.interrupted_early(&standby).await,
            }
        }
        if transfer.successor_runs().await.is_err() {
            return self.standby_died(&standby).await;
        }
        self.begin(&format!("stopping {name}; the standby takes over"));
        let (took, early) = transfer.run(self.interrupt, Some(|| self.recreate_beside())).await;
        match took.gap {
            Ok(gap) => self.handoff(&name, &standby_name, gap),
            Err(w) => {
                let this = match self.undo_early(early, &standby).await {
                    Ok(this) => this,
                    Err(finished) => return finished,
                };
                if took.held && !matches!(w, WaitFailure::Exited { .. }) {
                    return this
                        .held_but_not_serving(&standby_name, &p.standby_addr, w, Some(&name))
                        .await;
                }
                return this.roll_back_after_stop(&standby, w, took.stop_error, took.held).await;
            }
        }
        self.end("takeover");

        // Past the point of no return: the new version has held the lock.
        let warned = self.interrupt.is_set();
        if warned {
            self.events.warn(FINISHING);
        }
        self.forward(&standby, warned, early).await
    }

    /// The standby stopped after its waiting line, before the node was
    /// touched.
    async fn standby_died(self, standby: &str) -> Report {
        let w = waits::exited(self.engine, standby, Vec::new()).await;
        let failure = Failure::waited(
            "the standby stopped after it logged that it waits for the lock",
            &w,
            self.opts.wait_timeout,
        );
        self.roll_back_early(Some(standby), failure).await
    }

    /// When the image does not declare its version (the real Chainlink image
    /// does not), the new node's own start line tells it: `latest` is
    /// reported as the concrete version it resolved to.
    async fn learn_new_version(&mut self, standby: &str) {
        let Some(to) = self.report.to.as_mut() else { return };
        if to.version.is_some() {
            return;
        }
        let lines = waits::last_lines(self.engine, standby).await;
        if let Some(version) = lines.iter().find_map(|l| crate::node::version::started_version(l)) {
            self.events.note(&format!("the new image runs Chainlink {version}"));
            to.version = Some(version);
        }
    }

    fn handoff(&mut self, from: &str, to: &str, gap: Duration) {
        self.events.handoff(from, to, gap);
    }

    /// After the standby took over: recreate the primary (unless `early`
    /// did already, beside the takeover) and hand back.
    async fn forward(mut self, standby: &str, warned: bool, early: Option<Early>) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let standby_name = p.standby.name.clone();
        let recreated = match early {
            Some(early) => {
                self.events.phase("recreate-primary", early.took);
                early.result
            }
            None => {
                self.begin(&format!("recreating {name} on the new image"));
                let recreated = self.recreate().await;
                if recreated.is_ok() {
                    self.end("recreate-primary");
                }
                recreated
            }
        };
        let ready = match recreated {
            Ok(ready) => ready,
            Err(RecreateError::Rename(failure)) => {
                let on_standby = format!("the node runs the new version in {standby_name} on {}", p.standby_addr);
                let next = vec![format!(
                    "the old {name} is stopped; rename it (`docker rename {name} {}`) and run `cl-maint upgrade` again, or keep the node on {standby_name}",
                    p.old_name
                )];
                return self.needs_human(on_standby, failure, next, vec![standby_name]);
            }
            Err(RecreateError::Replacement(id, failure)) => {
                return self.replacement_failed(id.as_deref(), failure).await;
            }
        };
        let replacement = ready.id;
        if let Some(at) = transfer::release_at(Some(&ready.line)) {
            self.begin(RETRY_ALIGN);
            if let Ok(took) = transfer::align(at, None).await {
                self.events.phase("lock-retry", took);
            }
        }

        self.begin(&format!("handing the lock back to {name}"));
        let took = Transfer {
            from_engine: self.engine,
            from: standby,
            release: Release::Stop(self.opts.stop_timeout),
            to_engine: self.engine,
            to: &replacement,
            to_addr: &p.primary_addr,
            within: self.opts.takeover_timeout,
            bolt_shared: false,
        }
        .plain(self.interrupt)
        .await;
        match took.gap {
            Ok(gap) => self.handoff(&standby_name, &name, gap),
            Err(w) if took.held && !matches!(w, WaitFailure::Exited { .. }) => {
                return self.held_but_not_serving(&name, &p.primary_addr, w, None).await;
            }
            Err(w) => return self.hand_back_failed(standby, &replacement, w).await,
        }
        self.end("hand-back");

        self.begin("cleaning up");
        let mut left = Vec::new();
        if let Err(e) = self.engine.remove(standby).await {
            self.events.warn(&format!("could not remove {standby_name}: {e}"));
            left.push(standby_name.clone());
        }
        left.extend(self.remove_old().await);
        self.end("cleanup");
        if self.interrupt.is_set() && !warned {
            self.events.warn(FINISHING);
        }
        let state = format!("{name} runs {} and holds the lock on {}", p.target, p.primary_addr);
        self.upgraded(left, state)
    }

    /// Creates and starts `spec` (`who`, in messages): its id, or why it
    /// does not run with the id it got when it was created.
    async fn create_and_start(&self, spec: &CloneSpec, who: &str) -> Result<String, (Option<String>, Failure)> {
        let id = self
            .engine
            .create(spec)
            .await
            .map_err(|e| (None, Failure::new(format!("creating {who} failed: {e}"))))?;
        match self.engine.start(&id).await {
            Ok(()) => Ok(id),
            Err(e) => Err((Some(id), Failure::new(format!("starting {who} failed: {e}")))),
        }
    }

    /// Removes the old container (unless `--keep-old`, or the engine
    /// removed it already); returns its name when it is left in place.
    async fn remove_old(&self) -> Option<String> {
        let p = self.plan;
        if self.original_gone.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if self.opts.keep_old {
            return Some(p.old_name.clone());
        }
        match self.engine.remove(&p.primary_id).await {
            Ok(()) => None,
            Err(e) => {
                self.events.warn(&format!("could not remove {}: {e}", p.old_name));
                Some(p.old_name.clone())
            }
        }
    }

    /// Ends a successful upgrade, with the containers `left` in place.
    fn upgraded(mut self, left: Vec<String>, state: String) -> Report {
        let next = left
            .iter()
            .map(|l| format!("remove {l} when you no longer need it: `docker rm {l}`"))
            .collect();
        self.report.left = left;
        self.finish(Outcome::Upgraded, state, None, next)
    }
}

#[path = "down.rs"]
mod down;
#[path = "overlap.rs"]
mod overlap;
#[path = "recovery.rs"]
mod recovery;

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
