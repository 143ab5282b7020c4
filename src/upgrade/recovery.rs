//! The executor's ways back: what it does when a step fails, by how far the
//! run got. Before the new version held the lock: back to the untouched
//! original. After: keep the node up on whichever container works, and say
//! what is left for a human.

use crate::engine::Engine;
use crate::report::{Outcome, Report};

use super::{Executor, Failure, describe, recovery_timeout};
use crate::handoff::steps;
use crate::handoff::waits::{self, WaitFailure};

/// How long to wait before starting again a node whose database did not
/// answer.
const DATABASE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl<E: Engine> Executor<'_, E> {
    /// Before the primary was signalled: check the original still holds the
    /// lock before saying so, and never remove a standby that holds it.
    pub(super) async fn roll_back_early(self, standby: Option<&str>, failure: Failure) -> Report {
        self.events.warn(&format!("{}; rolling back", failure.what));
        self.back_to_original(standby, failure, Outcome::RolledBack).await
    }

    pub(super) async fn interrupted_early(self, standby: &str) -> Report {
        self.events.warn("interrupted before the handoff: rolling back");
        let failure = Failure::new("interrupted before the handoff");
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
        let failure = Failure { what, ..failure };
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

    pub(super) async fn remove_quietly(&self, id: &str) {
        if let Err(e) = self.engine.remove(id).await {
            self.events.warn(&format!("could not remove {id}: {e}"));
        }
    }

    /// The primary was signalled but the standby never answered.
    pub(super) async fn roll_back_after_stop(
        mut self,
        standby: &str,
        wait: WaitFailure,
        stop_error: Option<String>,
        new_version_held: bool,
    ) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let mut what = describe("the standby did not take over", &wait, self.opts.takeover_timeout);
        if let Some(e) = stop_error {
            what.push_str(&format!("; stopping {name} failed: {e}"));
        }
        let failure = Failure::new(what).tail_of(&wait);
        self.events.warn(&format!("{}; rolling back", failure.what));
        if waits::answers(self.engine, &p.primary_addr).await {
            // The primary never let go: it still holds the lock.
            self.remove_quietly(standby).await;
            let state = format!("{name} kept the lock and runs {} as before", p.from.reference);
            return self.finish(Outcome::RolledBack, state, Some(failure), Vec::new());
        }
        // Stop the standby first, so the restarted primary is the only candidate.
        let _ = self.engine.stop(standby, self.opts.stop_timeout).await;
        self.begin(&format!("starting the original {name} again"));
        let restarted = match self.restore_original(true).await {
            Ok(id) => self.serving_again(&id).await,
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
            Err(back) => self.old_cannot_run(standby, failure, back, new_version_held).await,
        }
    }

    /// Waits for the restarted original `id` to serve. A database that
    /// does not answer yet (a restart, a network blip) stops a starting node
    /// at once; the original is started again, every
    /// [`DATABASE_RETRY`], until the recovery deadline.
    async fn serving_again(&self, id: &str) -> Result<tokio::time::Instant, WaitFailure> {
        let deadline = tokio::time::Instant::now() + recovery_timeout(self.opts);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = waits::serving(self.engine, id, &self.plan.primary_addr, left, self.interrupt, true)
                .await
                .result;
            match &result {
                Err(WaitFailure::Exited { tail, .. })
                    if crate::node::logs::database_unreachable(tail)
                        && tokio::time::Instant::now() + DATABASE_RETRY < deadline
                        && !self.interrupt.is_set() =>
                {
                    self.events.note(&format!(
                        "{} could not reach its database; starting it again in {}s",
                        self.plan.container,
                        DATABASE_RETRY.as_secs()
                    ));
                    tokio::time::sleep(DATABASE_RETRY).await;
                    if let Err(e) = self.engine.start(id).await {
                        return Err(WaitFailure::Engine(e.to_string()));
                    }
                }
                _ => return result,
            }
        }
    }

    /// Rolling back failed: the old version cannot hold the lock again.
    /// A migration is claimed only when the new version was seen holding
    /// the lock (`new_version_held`); otherwise the report says what the
    /// old version's log showed.
    async fn old_cannot_run(
        self,
        standby: &str,
        failure: Failure,
        back: WaitFailure,
        new_version_held: bool,
    ) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let migrated = matches!(
            back,
            WaitFailure::Exited {
                downgrade_refused: true,
                ..
            }
        );
        let _ = self.engine.stop(&self.original_id, self.opts.stop_timeout).await;
        // Keep the node up on whichever container works: the new version.
        let standby_runs = self.restart_standby(standby).await;
        let why = if migrated && new_version_held {
            format!(
                "the database was migrated by the new version (it held the lock), and the original {name} now refuses it as too new"
            )
        } else if migrated {
            format!(
                "the original {name}, which held the lock before the upgrade, now refuses the database as too new (its log says a newer version migrated it); cl-maint did not see the new version answer as the holder"
            )
        } else {
            describe(
                &format!("the original {name} could not take the lock again"),
                &back,
                self.opts.takeover_timeout,
            )
        };
        let what = format!("{}; then {why}", failure.what);
        let failure = Failure { what, ..failure };
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
    pub(super) async fn replacement_failed(mut self, replacement: Option<&str>, failure: Failure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        if let Some(id) = replacement {
            self.remove_quietly(id).await;
        }
        let renamed_back = self.restore_original(false).await.is_ok();
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
    pub(super) async fn hand_back_failed(self, standby: &str, replacement: &str, wait: WaitFailure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let failure = steps::takeover_failure(&format!("the new {name}"), &wait, self.opts.takeover_timeout);
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
        let serves = self.engine.start(standby).await.is_ok()
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
            .is_ok();
        if !serves {
            // Left to its restart policy it would crash again and again.
            let _ = self.engine.stop(standby, self.opts.stop_timeout).await;
        }
        serves
    }

    /// A new holder took the lock but its real server did not come up in
    /// time: past the point of no return. It is left running (it may be
    /// migrating); nothing else is started, so it stays the only holder.
    pub(super) async fn held_but_not_serving(
        self,
        holder: &str,
        addr: &str,
        wait: WaitFailure,
        stopped: Option<&str>,
    ) -> Report {
        let failure = Failure::waited(
            &format!("{holder} took the lock but did not start serving"),
            &wait,
            self.opts.takeover_timeout,
        );
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

    pub(super) fn needs_human(
        mut self,
        state: String,
        failure: Failure,
        next: Vec<String>,
        left: Vec<String>,
    ) -> Report {
        self.report.left = left;
        self.events.warn(&failure.what);
        self.finish(Outcome::NeedsHuman, state, Some(failure), next)
    }
}
