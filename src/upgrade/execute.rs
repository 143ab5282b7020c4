//! Execute: the only place that changes the engine's state. Steps run in
//! order; a failure undoes what was done, in reverse, as far as it is still
//! safe.
//!
//! The point of no return: once a container of the **new** version has held
//! the lock, the database may be migrated and the old version would refuse
//! it. Before that point a failure rolls back to the untouched original;
//! after it, the way out is forward (keep the new version running) and the
//! report says exactly what state the node is in.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Engine;
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::report::{Handoff, Outcome, Phase, Report};

use super::options::UpgradeOptions;
use super::plan::Plan;
use super::waits::{self, Release, WaitFailure};

/// Runs the plan (after the pull) and fills in the report.
pub struct Executor<'a, E: Engine> {
    engine: &'a E,
    plan: &'a Plan,
    opts: &'a UpgradeOptions,
    progress: &'a Progress,
    interrupt: &'a Interrupt,
    redactor: Redactor,
    report: Report,
    phase_started: Instant,
}

/// How a step failed, for the report.
struct Failure {
    what: String,
    tail: Vec<String>,
}

impl Failure {
    fn new(what: impl Into<String>, wait: Option<&WaitFailure>) -> Failure {
        Failure {
            what: what.into(),
            tail: wait.map(|w| w.tail().to_vec()).unwrap_or_default(),
        }
    }
}

/// How long a container restarted to recover may take to hold the lock:
/// at least the takeover deadline, and at least long enough for a lease left
/// by a killed holder to expire (10 s by default) plus a boot.
fn recovery_timeout(opts: &UpgradeOptions) -> Duration {
    opts.takeover_timeout.max(Duration::from_secs(60))
}

fn describe(who: &str, wait: &WaitFailure, deadline: Duration) -> String {
    match wait {
        WaitFailure::Exited { code, .. } => {
            format!(
                "{who} exited (code {})",
                code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into())
            )
        }
        WaitFailure::Timeout { .. } => format!("{who} did not get there within {}s", deadline.as_secs()),
        WaitFailure::Interrupted => "interrupted".to_string(),
        WaitFailure::Engine(e) => format!("the engine failed while watching {who}: {e}"),
    }
}

impl<'a, E: Engine> Executor<'a, E> {
    /// An executor continuing `report`.
    pub fn new(
        engine: &'a E,
        plan: &'a Plan,
        opts: &'a UpgradeOptions,
        progress: &'a Progress,
        interrupt: &'a Interrupt,
        report: Report,
    ) -> Self {
        let redactor = Redactor::from_env(&plan.secret_env);
        Executor {
            engine,
            plan,
            opts,
            progress,
            interrupt,
            redactor,
            report,
            phase_started: Instant::now(),
        }
    }

    fn begin(&mut self, text: &str) {
        self.progress.step(text);
        self.phase_started = Instant::now();
    }

    fn end(&mut self, name: &str) {
        self.report.phases.push(Phase {
            name: name.to_string(),
            duration_ms: self.phase_started.elapsed().as_millis() as u64,
        });
    }

    fn finish(mut self, outcome: Outcome, state: String, failure: Option<Failure>, next: Vec<String>) -> Report {
        self.report.set_outcome(outcome);
        self.report.state = self.redactor.text(&state);
        if let Some(f) = failure {
            self.report.error = Some(self.redactor.text(&f.what));
            self.report.log_tail = f.tail.iter().map(|l| self.redactor.text(l)).collect();
        }
        self.report.next_steps = next.iter().map(|n| self.redactor.text(n)).collect();
        self.report
    }

    /// Runs every step after the pull.
    pub async fn run(mut self) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let standby_name = p.standby.name.clone();

        // 1. The standby, on the new image, on the standby port.
        self.begin(&format!("starting the standby {standby_name} on {}", p.standby_addr));
        let standby = match self.engine.create(&p.standby).await {
            Ok(id) => id,
            Err(e) => {
                return self
                    .roll_back_early(None, Failure::new(format!("creating the standby failed: {e}"), None))
                    .await;
            }
        };
        if let Err(e) = self.engine.start(&standby).await {
            return self
                .roll_back_early(
                    Some(&standby),
                    Failure::new(format!("starting the standby failed: {e}"), None),
                )
                .await;
        }
        match waits::lock_wait_line(self.engine, &standby, self.opts.wait_timeout, self.interrupt).await {
            Ok(generation) if generation.line_precedes_attempt() => {
                // The line comes before the lock attempt: it proves nothing
                // yet. A standby that got a lock of its own (a database it
                // does not share) goes on to boot: watch for that.
                if let Err(seen) = waits::settle(self.engine, &standby, &p.standby_addr, waits::SETTLE).await {
                    let _ = self.engine.kill(&standby, "SIGKILL").await;
                    let what = format!(
                        "the standby did not keep waiting for the lock ({seen}): it does not share {name}'s database; it was stopped at once"
                    );
                    return self.roll_back_early(Some(&standby), Failure::new(what, None)).await;
                }
                self.progress
                    .note(&format!("the standby is waiting for the lock ({generation})"))
            }
            Ok(generation) => self
                .progress
                .note(&format!("the standby is waiting for the lock ({generation})")),
            Err(WaitFailure::Interrupted) => return self.interrupted_early(&standby).await,
            Err(w) => {
                let what = describe(
                    "the standby never logged that it waits for the lock:",
                    &w,
                    self.opts.wait_timeout,
                );
                return self.roll_back_early(Some(&standby), Failure::new(what, Some(&w))).await;
            }
        }
        self.learn_new_version(&standby).await;
        if waits::answers(self.engine, &p.standby_addr).await {
            let what = format!(
                "the standby answered HTTP while {name} still runs: the two do not share a lock, so two nodes were active; the standby was stopped at once"
            );
            let _ = self.engine.kill(&standby, "SIGKILL").await;
            return self.roll_back_early(Some(&standby), Failure::new(what, None)).await;
        }
        self.end("start-standby");
        if self.interrupt.is_set() {
            return self.interrupted_early(&standby).await;
        }

        // 2. The handoff to the standby.
        let release = if self.opts.kill {
            Release::Kill
        } else {
            Release::Stop(self.opts.stop_timeout)
        };
        self.begin(&format!("stopping {name}; the standby takes over"));
        let took = waits::takeover(
            self.engine,
            &p.primary_id,
            release,
            &standby,
            &p.standby_addr,
            self.opts.takeover_timeout,
            self.interrupt,
        )
        .await;
        match took.gap {
            Ok(gap) => self.handoff(&name, &standby_name, gap),
            Err(w) if took.held && !matches!(w, WaitFailure::Exited { .. }) => {
                return self
                    .held_but_not_serving(&standby_name, &p.standby_addr, w, Some(&name))
                    .await;
            }
            Err(w) => return self.roll_back_after_stop(&standby, w, took.stop_error, took.held).await,
        }
        self.end("takeover");

        // Past the point of no return: the new version has held the lock.
        if self.interrupt.is_set() {
            self.progress.warn("interrupt received after the new version took the lock: finishing the upgrade, the only way back to the main port");
        }
        self.forward(&standby).await
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
        if let Some(version) = lines.iter().find_map(|l| super::observe::started_version(l)) {
            self.progress.note(&format!("the new image runs Chainlink {version}"));
            to.version = Some(version);
        }
    }

    fn handoff(&mut self, from: &str, to: &str, gap: Duration) {
        self.progress.note(&format!(
            "{to} holds the lock; {} ms without a node serving",
            gap.as_millis()
        ));
        self.report.handoffs.push(Handoff {
            from: from.to_string(),
            to: to.to_string(),
            gap_ms: gap.as_millis() as u64,
        });
    }

    /// After the standby took over: recreate the primary and hand back.
    async fn forward(mut self, standby: &str) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let standby_name = p.standby.name.clone();
        let on_standby = format!("the node runs the new version in {standby_name} on {}", p.standby_addr);

        self.begin(&format!("recreating {name} on the new image"));
        if let Err(e) = self.engine.rename(&p.primary_id, &p.old_name).await {
            let failure = Failure::new(format!("renaming the old {name} to {} failed: {e}", p.old_name), None);
            let next = vec![format!(
                "the old {name} is stopped; rename it (`docker rename {name} {}`) and run `cl-maint upgrade` again, or keep the node on {standby_name}",
                p.old_name
            )];
            return self.needs_human(on_standby, failure, next, vec![standby_name]);
        }
        let replacement = match self.engine.create(&p.replacement).await {
            Ok(id) => id,
            Err(e) => {
                return self
                    .replacement_failed(None, Failure::new(format!("creating the new {name} failed: {e}"), None))
                    .await;
            }
        };
        if let Err(e) = self.engine.start(&replacement).await {
            let failure = Failure::new(format!("starting the new {name} failed: {e}"), None);
            return self.replacement_failed(Some(&replacement), failure).await;
        }
        match waits::lock_wait_line(self.engine, &replacement, self.opts.wait_timeout, &Interrupt::new()).await {
            Ok(_) => self.progress.note(&format!("the new {name} is waiting for the lock")),
            Err(w) => {
                let what = describe(
                    &format!("the new {name} never logged that it waits for the lock:"),
                    &w,
                    self.opts.wait_timeout,
                );
                return self
                    .replacement_failed(Some(&replacement), Failure::new(what, Some(&w)))
                    .await;
            }
        }
        self.end("recreate-primary");

        self.begin(&format!("handing the lock back to {name}"));
        let took = waits::takeover(
            self.engine,
            standby,
            Release::Stop(self.opts.stop_timeout),
            &replacement,
            &p.primary_addr,
            self.opts.takeover_timeout,
            self.interrupt,
        )
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
            self.progress.warn(&format!("could not remove {standby_name}: {e}"));
            left.push(standby_name.clone());
        }
        if self.opts.keep_old {
            left.push(p.old_name.clone());
        } else if let Err(e) = self.engine.remove(&p.primary_id).await {
            self.progress.warn(&format!("could not remove {}: {e}", p.old_name));
            left.push(p.old_name.clone());
        }
        self.end("cleanup");
        let mut next = Vec::new();
        for l in &left {
            next.push(format!("remove {l} when you no longer need it: `docker rm {l}`"));
        }
        self.report.left = left;
        let state = format!("{name} runs {} and holds the lock on {}", p.target, p.primary_addr);
        self.finish(Outcome::Upgraded, state, None, next)
    }

    /// Before the primary was signalled: check the original still holds the
    /// lock before saying so, and never remove a standby that holds it.
    async fn roll_back_early(self, standby: Option<&str>, failure: Failure) -> Report {
        self.progress
            .warn(&format!("{}; rolling back", self.redactor.text(&failure.what)));
        self.back_to_original(standby, failure, Outcome::RolledBack).await
    }

    async fn interrupted_early(self, standby: &str) -> Report {
        self.progress.warn("interrupted before the handoff: rolling back");
        let failure = Failure::new("interrupted before the handoff", None);
        self.back_to_original(Some(standby), failure, Outcome::Interrupted)
            .await
    }

    async fn back_to_original(mut self, standby: Option<&str>, failure: Failure, outcome: Outcome) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let standby = standby.unwrap_or(&p.standby.name).to_string();
        if waits::answers(self.engine, &p.primary_addr).await {
            self.remove_quietly(&standby).await;
            let state = format!(
                "{name} was not touched: it runs {} and holds the lock",
                p.from.reference
            );
            let next = match outcome {
                Outcome::Interrupted => Vec::new(),
                _ => vec!["read the standby's last log lines, fix the cause, and run the upgrade again".to_string()],
            };
            return self.finish(outcome, state, Some(failure), next);
        }
        // The original stopped answering on its own while the standby started.
        let what = format!(
            "{}; meanwhile {name} stopped answering on {}",
            failure.what, p.primary_addr
        );
        let failure = Failure {
            what,
            tail: failure.tail,
        };
        if waits::answers(self.engine, &p.standby_addr).await {
            let state = format!(
                "{} holds the lock with the new version on {}; the original {name} does not answer",
                p.standby.name, p.standby_addr
            );
            let next = vec![
                format!(
                    "keep {} running: it is the node now; read `docker logs {name}` to see why the original stopped",
                    p.standby.name
                ),
                "do not start the old version: the database may be migrated".to_string(),
            ];
            return self.needs_human(state, failure, next, vec![p.standby.name.clone(), name]);
        }
        self.begin(&format!("{name} does not answer: starting it again"));
        self.roll_back_after_stop(
            &standby,
            WaitFailure::Engine("the original stopped answering".into()),
            None,
            false,
        )
        .await
    }

    async fn remove_quietly(&self, id: &str) {
        if let Err(e) = self.engine.remove(id).await {
            self.progress.warn(&format!("could not remove {id}: {e}"));
        }
    }

    /// The primary was signalled but the standby never answered.
    async fn roll_back_after_stop(
        mut self,
        standby: &str,
        wait: WaitFailure,
        stop_error: Option<String>,
        new_version_held: bool,
    ) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let mut what = describe("the standby did not take over:", &wait, self.opts.takeover_timeout);
        if let Some(e) = stop_error {
            what.push_str(&format!("; stopping {name} failed: {e}"));
        }
        let failure = Failure::new(what, Some(&wait));
        self.progress
            .warn(&format!("{}; rolling back", self.redactor.text(&failure.what)));
        if waits::answers(self.engine, &p.primary_addr).await {
            // The primary never let go: it still holds the lock.
            self.remove_quietly(standby).await;
            let state = format!("{name} kept the lock and runs {} as before", p.from.reference);
            return self.finish(Outcome::RolledBack, state, Some(failure), Vec::new());
        }
        // Stop the standby first, so the restarted primary is the only candidate.
        let _ = self.engine.stop(standby, self.opts.stop_timeout).await;
        self.begin(&format!("starting the original {name} again"));
        let restarted = match self.engine.start(&p.primary_id).await {
            Ok(()) => {
                waits::serving(
                    self.engine,
                    &p.primary_id,
                    &p.primary_addr,
                    recovery_timeout(self.opts),
                    self.interrupt,
                    true,
                )
                .await
                .result
            }
            Err(e) => Err(WaitFailure::Engine(e.to_string())),
        };
        match restarted {
            Ok(_) if new_version_held => {
                // Not a silent way back: the new version had held the lock.
                self.end("recover");
                self.remove_quietly(standby).await;
                let state = format!(
                    "the original {name} runs {} and holds the lock again, but the new version had held the lock first and may have migrated the database",
                    p.from.reference
                );
                let next = vec![
                    format!(
                        "check {name}'s log for database errors; restore the snapshot taken before the upgrade if the old version misbehaves"
                    ),
                    "read the standby's last log lines, fix the cause, and run the upgrade again".to_string(),
                ];
                self.needs_human(state, failure, next, Vec::new())
            }
            Ok(_) => {
                self.end("roll-back");
                self.remove_quietly(standby).await;
                let state = format!("the original {name} runs {} and holds the lock again", p.from.reference);
                self.finish(
                    Outcome::RolledBack,
                    state,
                    Some(failure),
                    vec!["read the standby's last log lines, fix the cause, and run the upgrade again".into()],
                )
            }
            Err(back) => self.old_cannot_run(standby, failure, back).await,
        }
    }

    /// Rolling back failed: the old version cannot hold the lock again.
    async fn old_cannot_run(self, standby: &str, failure: Failure, back: WaitFailure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let migrated = matches!(
            back,
            WaitFailure::Exited {
                downgrade_refused: true,
                ..
            }
        );
        let _ = self.engine.stop(&p.primary_id, self.opts.stop_timeout).await;
        // Keep the node up on whichever container works: the new version.
        let standby_runs = self.restart_standby(standby).await;
        let why = if migrated {
            "the database was migrated by the new version, and the old version refuses it".to_string()
        } else {
            describe(
                &format!("the original {name} could not take the lock again:"),
                &back,
                self.opts.takeover_timeout,
            )
        };
        let what = format!("{}; then {why}", failure.what);
        let failure = Failure {
            what,
            tail: failure.tail,
        };
        if standby_runs {
            let state = format!(
                "the node runs the new version in {} on {}; {name} is stopped",
                p.standby.name, p.standby_addr
            );
            let next = vec![
                format!(
                    "point clients at {} for now, or find why the standby did not answer in time and hand back with `docker stop {}` once {name} can run",
                    p.standby_addr, p.standby.name
                ),
                "restore the database snapshot taken before the upgrade if the new version must not run".to_string(),
            ];
            self.needs_human(state, failure, next, vec![p.standby.name.clone()])
        } else {
            let state =
                "NO node holds the lock: the old version cannot run and the new version did not start".to_string();
            let next = vec![
                format!(
                    "start a node now: `docker start {name}` (old version) or `docker start {}` (new version) and read its log",
                    p.standby.name
                ),
                "restore the database snapshot taken before the upgrade if neither version can run".to_string(),
            ];
            self.needs_human(state, failure, next, vec![p.standby.name.clone(), name])
        }
    }

    /// The new primary could not be created or never waited for the lock.
    async fn replacement_failed(self, replacement: Option<&str>, failure: Failure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        if let Some(id) = replacement {
            self.remove_quietly(id).await;
        }
        let renamed_back = self.engine.rename(&p.primary_id, &name).await.is_ok();
        let state = format!(
            "the node runs the new version in {} on {} (it holds the lock)",
            p.standby.name, p.standby_addr
        );
        let old = if renamed_back {
            format!("the old {name} (stopped, old version)")
        } else {
            p.old_name.clone()
        };
        let next = vec![
            format!(
                "the node works on {}; fix what stopped the new {name} (see its last log lines)",
                p.standby_addr
            ),
            format!(
                "then recreate {name} on the new image and stop {} to hand back, or run `cl-maint upgrade` again after removing {}",
                p.standby.name, p.standby.name
            ),
            format!("{old} was kept"),
        ];
        self.needs_human(state, failure, next, vec![p.standby.name.clone()])
    }

    /// The standby was stopped but the new primary never answered.
    async fn hand_back_failed(self, standby: &str, replacement: &str, wait: WaitFailure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let failure = Failure::new(
            describe(
                &format!("the new {name} did not take over:"),
                &wait,
                self.opts.takeover_timeout,
            ),
            Some(&wait),
        );
        // Only one candidate at a time: stop the replacement, then restart the standby.
        if !waits::answers(self.engine, &p.primary_addr).await {
            let _ = self.engine.stop(replacement, self.opts.stop_timeout).await;
        }
        let standby_holds = self.restart_standby(standby).await;
        let state = if standby_holds {
            format!(
                "the node runs the new version in {} on {}; the new {name} is stopped",
                p.standby.name, p.standby_addr
            )
        } else {
            format!(
                "NO node answers: {} and the new {name} are both stopped",
                p.standby.name
            )
        };
        let next = vec![
            format!("read the new {name}'s log (`docker logs {name}`), fix the cause"),
            format!(
                "then hand back: `docker start {name}`, wait for its lock-wait line, `docker stop {}`",
                p.standby.name
            ),
        ];
        self.needs_human(state, failure, next, vec![p.standby.name.clone(), p.old_name.clone()])
    }

    /// Starts the (stopped) standby again and waits until it serves: the way
    /// to keep the node up once the new version has held the lock.
    async fn restart_standby(&self, standby: &str) -> bool {
        let addr = &self.plan.standby_addr;
        self.engine.start(standby).await.is_ok()
            && waits::serving(
                self.engine,
                standby,
                addr,
                recovery_timeout(self.opts),
                self.interrupt,
                true,
            )
            .await
            .result
            .is_ok()
    }

    /// A new holder took the lock but its real server did not come up in
    /// time: past the point of no return. It is left running (it may be
    /// migrating); nothing else is started, so it stays the only holder.
    async fn held_but_not_serving(self, holder: &str, addr: &str, wait: WaitFailure, stopped: Option<&str>) -> Report {
        let what = describe(
            &format!("{holder} took the lock but did not start serving:"),
            &wait,
            self.opts.takeover_timeout,
        );
        let failure = Failure::new(what, Some(&wait));
        let mut state = format!(
            "{holder} holds the lock with the new version but does not serve on {addr} yet (migrations may still run)"
        );
        if let Some(old) = stopped {
            state.push_str(&format!("; {old} is stopped"));
        }
        let next = vec![
            format!("follow its log: `docker logs -f {holder}`; it should answer on {addr} once its migrations finish"),
            "do not start the old version: the database may be migrated".to_string(),
            format!(
                "once it serves, finish by hand: `docker rename`, recreate the node on the new image, then `docker stop {holder}`"
            ),
        ];
        let left = match stopped {
            Some(old) => vec![holder.to_string(), old.to_string()],
            None => vec![
                holder.to_string(),
                self.plan.standby.name.clone(),
                self.plan.old_name.clone(),
            ],
        };
        self.needs_human(state, failure, next, left)
    }

    fn needs_human(mut self, state: String, failure: Failure, next: Vec<String>, left: Vec<String>) -> Report {
        self.report.left = left;
        self.progress.warn(&self.redactor.text(&failure.what));
        self.finish(Outcome::NeedsHuman, state, Some(failure), next)
    }
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
