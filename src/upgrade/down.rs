//! The original container as the rollback point, and the recreation of a
//! node that is down.
//!
//! The rollback point must not depend on the old container surviving its
//! stop: a container started with `--rm` is removed by the engine when it
//! stops. Its settings were read before anything changed (the plan's
//! `original`), and a way back creates it again from them.
//!
//! `upgrade --force` on a primary that holds no lock and serves nothing
//! (preflight saw no container sharing its database holding it) replaces
//! it in place: stop it, set it aside, create the new one, and confirm that
//! it takes the lock and serves. If it does not, and never held the lock,
//! the original is put back as it was.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::{Engine, EngineResult};
use crate::handoff::Failure;
use crate::handoff::steps;
use crate::handoff::waits::{self, WaitFailure};
use crate::report::{Outcome, Report};

use super::Executor;

/// How long the engine may take to remove a `--rm` container after its stop.
const REMOVAL: Duration = Duration::from_secs(10);
/// How often to look.
const POLL: Duration = Duration::from_millis(100);

impl<E: Engine> Executor<'_, E> {
    /// Sets the stopped original aside under its rollback name; a `--rm`
    /// original the engine removed is remembered as gone instead (its
    /// settings are the rollback point).
    pub(super) async fn set_aside(&self) -> Result<(), Failure> {
        let (p, name) = (self.plan, &self.plan.container);
        if p.auto_remove && self.removed_by_engine().await {
            self.original_gone.store(true, Ordering::SeqCst);
            self.events.note(&format!(
                "the engine removed {name} on its stop (--rm); its settings are kept to create it again for a rollback"
            ));
            return Ok(());
        }
        self.engine
            .rename(&p.primary_id, &p.old_name)
            .await
            .map_err(|e| Failure::new(format!("renaming the old {name} to {} failed: {e}", p.old_name)))
    }

    /// Whether the engine removed the original (it may take a moment after
    /// the stop returned).
    async fn removed_by_engine(&self) -> bool {
        self.gone(&self.plan.primary_id).await
    }

    /// Whether the container `id` is gone, or goes within [`REMOVAL`] (the
    /// engine removes a `--rm` container a moment after its stop, and its
    /// name is taken until then).
    async fn gone(&self, id: &str) -> bool {
        let deadline = Instant::now() + REMOVAL;
        loop {
            match self.engine.inspect_container(id).await {
                Ok(None) => return true,
                Ok(Some(_)) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                _ => return false,
            }
        }
    }

    /// Puts the original back under its name and starts it when `start`:
    /// the container itself, or a new one from its settings when the engine
    /// removed it (`--rm`). Returns its id.
    pub(super) async fn restore_original(&mut self, start: bool) -> EngineResult<String> {
        let p = self.plan;
        let id = if self.original_gone.load(Ordering::SeqCst) {
            self.events.step(&format!(
                "creating {} again from its settings (the engine removed it on its stop)",
                p.container
            ));
            let id = self.engine.create(&p.original).await?;
            self.original_gone.store(false, Ordering::SeqCst);
            self.original_id = id.clone();
            id
        } else {
            let id = self.original_id.clone();
            if let Some(c) = self.engine.inspect_container(&id).await?
                && crate::engine::name_of(&c) != p.container
            {
                self.engine.rename(&id, &p.container).await?;
            }
            id
        };
        if start {
            self.engine.start(&id).await?;
        }
        Ok(id)
    }

    /// `--force` on a node that is down: recreate it on the new image in
    /// place, and confirm the new container takes the lock and serves.
    pub async fn recreate_down(mut self) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        if p.was_running {
            self.begin(&format!("stopping {name} (it holds no lock and serves nothing)"));
            let stopped = if self.opts.kill {
                self.engine.kill(&p.primary_id, "SIGKILL").await
            } else {
                self.engine.stop(&p.primary_id, self.opts.stop_timeout).await
            };
            if let Err(e) = stopped {
                let failure = Failure::new(format!("stopping {name} failed: {e}"));
                let state = format!("{name} is as it was, or stopped: the node was down before and still is");
                let next = vec![format!("check {name} with `docker ps -a` and its log, then run again")];
                return self.needs_human(state, failure, next, Vec::new());
            }
            self.end("stop-old");
        }
        if let Err(failure) = self.set_aside().await {
            let state = format!("{name} is stopped under its own name; the node was down before and still is");
            let next = vec![format!(
                "start it again with `docker start {name}`, or remove what holds its rollback name {} and run again",
                p.old_name
            )];
            return self.needs_human(state, failure, next, Vec::new());
        }
        self.begin(&format!("creating {name} on the new image"));
        let id = match self.create_and_start(&p.replacement, &format!("the new {name}")).await {
            Ok(id) => id,
            Err((id, failure)) => return self.down_back(id.as_deref(), failure).await,
        };
        self.end("recreate-primary");
        self.begin(&format!(
            "waiting for the new {name} to take the lock and serve on {}",
            p.primary_addr
        ));
        let watch = waits::serving(
            self.engine,
            &id,
            &p.primary_addr,
            self.opts.takeover_timeout,
            self.interrupt,
            false,
        )
        .await;
        match (watch.result, watch.held_at) {
            (Ok(_), _) => {
                self.end("takeover");
                self.down_done().await
            }
            (Err(w), Some(_)) => self.down_held_then_failed(&id, w).await,
            (Err(w), None) => {
                let failure = steps::takeover_failure(&format!("the new {name}"), &w, self.opts.takeover_timeout);
                self.down_back(Some(&id), failure).await
            }
        }
    }

    async fn down_done(self) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let left = self.remove_old().await.into_iter().collect();
        let state = format!(
            "{name} runs {} and holds the lock on {} (it was down before the upgrade)",
            p.target, p.primary_addr
        );
        self.upgraded(left, state)
    }

    /// The new container held the lock (the database may now be migrated)
    /// and then failed: no way back to the old version is safe.
    async fn down_held_then_failed(self, id: &str, w: WaitFailure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let failure = steps::takeover_failure(&format!("the new {name}"), &w, self.opts.takeover_timeout);
        let _ = self.engine.stop(id, self.opts.stop_timeout).await;
        let state = format!(
            "the node is down, as it was before: the new {name} held the lock (it may have migrated the database to {}) and then failed; it is stopped",
            p.target
        );
        let mut next = vec![format!("read its log: `docker logs --tail 100 {name}`")];
        let mut left = vec![name.clone()];
        if !self.original_gone.load(Ordering::SeqCst) {
            next.push(format!(
                "the old container is kept as {}; the old version may refuse a migrated database: restore the snapshot taken before the upgrade first",
                p.old_name
            ));
            left.push(p.old_name.clone());
        }
        self.needs_human(state, failure, next, left)
    }

    /// The new container never held the lock: remove it and put the
    /// original back as it was (started again only if it was running).
    async fn down_back(mut self, new: Option<&str>, failure: Failure) -> Report {
        let (p, name) = (self.plan, self.plan.container.clone());
        let outcome = if failure.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::RolledBack
        };
        self.events
            .warn(&format!("{}; putting {name} back as it was", failure.what));
        if let Some(id) = new {
            let _ = self.engine.stop(id, self.opts.stop_timeout).await;
            self.remove_quietly(id).await;
            // Its name must be free before the original takes it back.
            self.gone(id).await;
        }
        match self.restore_original(p.was_running).await {
            Ok(_) => {
                let how = if p.was_running { "running again" } else { "stopped" };
                let state = format!(
                    "{name} is back on {} ({how}), as before the upgrade: the node is still down",
                    p.from.reference
                );
                let next = vec![
                    "read the new container's last log lines above, and the old one's: `docker logs --tail 50 "
                        .to_string()
                        + &name
                        + "`",
                ];
                self.finish(outcome, state, Some(failure), next)
            }
            Err(e) => {
                let what = format!("{}; putting {name} back failed: {e}", failure.what);
                let failure = Failure { what, ..failure };
                let state = format!("the node is down, as it was before; {name} could not be put back");
                let next = vec![format!(
                    "recreate {name} on {} by hand (`docker ps -a` shows what is left)",
                    p.from.reference
                )];
                self.needs_human(state, failure, next, Vec::new())
            }
        }
    }
}
