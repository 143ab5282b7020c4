//! Recovering a single node after an interrupted `upgrade`: the node's
//! container, the temporary standby `NAME-cl-maint-standby` and the renamed
//! original `NAME-cl-maint-old`.

use crate::engine::Engine;
use crate::events::Events;
use crate::handoff::steps;
use crate::handoff::transfer::Transfer;
use crate::handoff::waits::{self, Release, WaitFailure};
use crate::interrupt::Interrupt;
use crate::names::{old_name, standby_name};
use crate::node::lock::{is_bolt, wait_timeout_for};
use crate::report::{Outcome, Report};
use crate::spec::{self, CloneRequest};

use super::survey::{self, Decision, Seen, Single};
use super::{RecoverOptions, version_words};

/// Looks at the three containers once.
async fn look<E: Engine>(engine: &E, name: &str) -> Result<Single, String> {
    let err = |e: crate::engine::EngineError| e.to_string();
    Ok(Single {
        primary: survey::look(engine, "primary", name).await.map_err(err)?,
        standby: survey::look(engine, "standby", &standby_name(name))
            .await
            .map_err(err)?,
        old: survey::look(engine, "old", &old_name(name)).await.map_err(err)?,
    })
}

/// Recovers the single node; fills in the report.
pub async fn recover<E: Engine>(
    engine: &E,
    opts: &RecoverOptions,
    events: &Events,
    interrupt: &Interrupt,
    report: &mut Report,
) -> Result<(), String> {
    let name = &opts.container;
    let (seen, rest) = survey::settle(opts.takeover_timeout, interrupt, || async {
        let s = look(engine, name).await?;
        let rest = survey::at_rest(&s.all());
        Ok((s, rest))
    })
    .await?;
    if interrupt.is_set() && !rest {
        report.set_outcome(Outcome::Interrupted);
        report.state = "nothing was changed".into();
        return Ok(());
    }
    if seen.all().is_empty() {
        report.set_outcome(Outcome::Refused);
        report.state = "nothing was changed".into();
        report.next_steps = vec!["check the name with `docker ps -a`; pass it with --container NAME".into()];
        return Err(format!(
            "there is no container named {name} (nor one an interrupted run left)"
        ));
    }
    let decision = survey::decide(&seen, rest);
    if opts.dry_run && super::dry::single(name, &seen, &decision, opts.stop_timeout, report) {
        return Ok(());
    }
    let mut r = Run {
        engine,
        opts,
        events,
        report,
    };
    match decision {
        Decision::NothingToDo => {
            let p = seen.primary.as_ref().map(|p| &p.m);
            r.report.state = format!(
                "{name} holds the lock{}; nothing was left to recover",
                p.and_then(|p| p.addr.as_ref())
                    .map(|a| format!(" on {a}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Decision::CleanUp { on_new } => r.clean_up(&seen, on_new).await,
        Decision::Forward => r.forward(seen).await,
        Decision::StartOriginal => {
            let p = seen.primary.clone().expect("decided on a primary");
            r.start_serving(&p, "the untouched original").await?;
            r.clean_up(&look(engine, name).await?, false).await
        }
        Decision::StartStandby => {
            let s = seen.standby.clone().expect("decided on a standby");
            r.start_serving(&s, "the standby (the new version had held the lock)")
                .await?;
            r.forward(look(engine, name).await?).await
        }
        Decision::StartNew => {
            let p = seen.primary.clone().expect("decided on a primary");
            r.start_serving(&p, "the new node").await?;
            r.clean_up(&look(engine, name).await?, true).await
        }
        Decision::SeveralHolders => {
            r.report.set_outcome(Outcome::SeveralHolders);
            r.report.state = "nothing was changed".into();
            r.report.next_steps = vec!["stop every holder but one at once (`docker stop NAME`), then check the database; see `cl-maint status`".into()];
            Err("more than one container answers as the lock holder: two nodes may be active".into())
        }
        Decision::Human(why) => {
            r.report.set_outcome(Outcome::NeedsHuman);
            r.report.state = "nothing was changed".into();
            r.report.left = seen.all().iter().map(|s| s.m.name.clone()).collect();
            r.report.next_steps = vec![
                format!("see who holds the lock: `cl-maint status --container {name}`"),
                "read the logs of the containers listed, then run `cl-maint recover` again".into(),
            ];
            Err(why)
        }
    }
}

struct Run<'a, E: Engine> {
    engine: &'a E,
    opts: &'a RecoverOptions,
    events: &'a Events,
    report: &'a mut Report,
}

impl<E: Engine> Run<'_, E> {
    /// Starts a stopped container nothing else competes with and waits
    /// until it serves.
    async fn start_serving(&mut self, c: &Seen, what: &str) -> Result<(), String> {
        self.events
            .step(&format!("no container holds the lock: starting {what}, {}", c.m.name));
        let addr = c.m.addr.clone().unwrap_or_default();
        let started = match self.engine.start(&c.m.id).await {
            Ok(()) => {
                waits::serving(
                    self.engine,
                    &c.m.id,
                    &addr,
                    self.opts.recovery_timeout(),
                    &Interrupt::new(),
                    true,
                )
                .await
                .result
            }
            Err(e) => Err(WaitFailure::Engine(e.to_string())),
        };
        if let Err(w) = started {
            self.report.set_outcome(Outcome::NeedsHuman);
            self.report.log_tail = w.tail().to_vec();
            self.report.state = format!("NO node holds the lock: {} did not start serving", c.m.name);
            self.report.next_steps = vec![format!("read its log: `docker logs --tail 50 {}`", c.m.name)];
            return Err(format!("{} did not serve after a start: {w}", c.m.name));
        }
        Ok(())
    }

    /// The container under the node's name holds the lock: remove the
    /// standby, and the renamed original when the node runs the new version.
    async fn clean_up(&mut self, seen: &Single, on_new: bool) -> Result<(), String> {
        let name = &self.opts.container;
        let Some(p) = seen.primary.as_ref() else {
            return Err(format!("{name} disappeared while recovering"));
        };
        self.events.step(&format!(
            "{name} holds the lock: removing what the interrupted run left"
        ));
        if let Some(s) = &seen.standby {
            self.remove(&s.m.id, &s.m.name).await;
        }
        if let Some(o) = &seen.old {
            if on_new && !self.opts.keep_old {
                self.remove(&o.m.id, &o.m.name).await;
            } else {
                self.report.left.push(o.m.name.clone());
                self.report.next_steps.push(format!(
                    "remove {} when you no longer need it: `docker rm {}`",
                    o.m.name, o.m.name
                ));
            }
        }
        self.report.set_outcome(Outcome::Recovered);
        let addr = p.m.addr.clone().unwrap_or_default();
        self.report.state = format!(
            "{name} holds the lock on {addr} and runs {}",
            version_words(&p.m, on_new)
        );
        if !on_new && seen.standby.as_ref().is_some_and(|s| s.booted) {
            self.report.set_outcome(Outcome::NeedsHuman);
            self.report.next_steps.push(format!(
                "the new version had held the lock before {name} took it back: check {name}'s log for database errors; restore the snapshot taken before the upgrade if it misbehaves"
            ));
        }
        Ok(())
    }

    async fn remove(&mut self, id: &str, name: &str) {
        if let Err(e) = self.engine.remove(id).await {
            self.events.warn(&format!("could not remove {name}: {e}"));
            self.report.left.push(name.to_string());
        }
    }

    /// The standby holds the lock with the new version: what the upgrade
    /// would have done next.
    async fn forward(&mut self, seen: Single) -> Result<(), String> {
        let (engine, name) = (self.engine, self.opts.container.clone());
        let Some(standby) = seen.standby.clone() else {
            return Err("the standby disappeared while recovering".into());
        };
        let on_standby = format!(
            "the node runs the new version in {} on {}",
            standby.m.name,
            standby.m.addr.clone().unwrap_or_default()
        );
        // 1. The original out of the way, as the rollback point.
        let mut old = seen.old.clone();
        let mut replacement = None;
        match (&seen.primary, &old) {
            (Some(p), None) => {
                self.events
                    .step(&format!("renaming the original {name} to {}", old_name(&name)));
                if p.m.running {
                    let _ = engine.stop(&p.m.id, self.opts.stop_timeout).await;
                }
                engine
                    .rename(&p.m.id, &old_name(&name))
                    .await
                    .map_err(|e| self.stuck(&on_standby, format!("renaming {name} failed: {e}")))?;
                old = Some(p.clone());
            }
            (Some(p), Some(_)) => replacement = Some(p.m.id.clone()),
            _ => {}
        }
        let old =
            old.ok_or_else(|| self.stuck(&on_standby, format!("neither {name} nor its renamed original exists")))?;
        // 2. The new node under its name, on the main port.
        let replacement = match replacement {
            Some(id) => id,
            None => {
                self.events.step(&format!("recreating {name} on {}", standby.m.image));
                let spec = self
                    .replacement_spec(&old, &standby)
                    .await
                    .map_err(|e| self.stuck(&on_standby, e))?;
                engine
                    .create(&spec)
                    .await
                    .map_err(|e| self.stuck(&on_standby, format!("creating the new {name} failed: {e}")))?
            }
        };
        let new = survey::look(engine, "primary", &name)
            .await
            .ok()
            .flatten()
            .filter(|n| n.m.id == replacement)
            .ok_or_else(|| self.stuck(&on_standby, format!("the new {name} disappeared")))?;
        let skip = if new.m.running {
            0
        } else {
            let skip = waits::log_length(engine, &replacement).await;
            engine
                .start(&replacement)
                .await
                .map_err(|e| self.stuck(&on_standby, format!("starting the new {name} failed: {e}")))?;
            skip
        };
        let addr = new.m.addr.clone().unwrap_or_default();
        // The line alone (see `steps::logs_waiting`): a clone of the node
        // that holds the lock now, on its engine.
        let who = format!("the new {name}");
        let none = Interrupt::new();
        let waited = steps::logs_waiting(engine, &replacement, &who, skip, self.opts.wait_timeout, &none);
        let line = match waited.await {
            Ok(line) => line,
            Err(f) => {
                let _ = engine.stop(&replacement, self.opts.stop_timeout).await;
                self.report.log_tail = f.tail;
                return Err(self.stuck(&on_standby, f.what));
            }
        };
        self.events.note(&format!("the new {name} waits for the lock"));
        // 3. The hand-back, timed to the new node's next lock try.
        self.events.step(&format!("handing the lock back to {name}"));
        let transfer = Transfer {
            from_engine: engine,
            from: &standby.m.id,
            release: Release::Stop(self.opts.stop_timeout),
            to_engine: engine,
            to: &replacement,
            to_addr: &addr,
            within: self.opts.takeover_timeout,
            bolt_shared: false,
        };
        if transfer.prepare(Some(&line)).await.is_err() {
            return Err(self.stuck(
                &on_standby,
                format!("the new {name} stopped after it logged that it waits for the lock"),
            ));
        }
        let took = transfer.plain(&Interrupt::new()).await;
        match took.gap {
            Ok(gap) => self.events.handoff(&standby.m.name, &name, gap),
            Err(w) if took.held => {
                self.report.set_outcome(Outcome::NeedsHuman);
                self.report.log_tail = w.tail().to_vec();
                self.report.left = vec![standby.m.name.clone(), old.m.name.clone()];
                self.report.state = format!(
                    "the new {name} holds the lock but does not serve on {addr} yet (migrations may still run); {} is stopped",
                    standby.m.name
                );
                self.report.next_steps = vec![
                    format!("follow its log: `docker logs -f {name}`"),
                    "then run `cl-maint recover` again to remove what is left".into(),
                ];
                return Err(format!("the new {name} took the lock but did not start serving"));
            }
            Err(w) => {
                // One candidate at a time: the new node stops, the standby serves again.
                let _ = engine.stop(&replacement, self.opts.stop_timeout).await;
                let back = engine.start(&standby.m.id).await.is_ok()
                    && waits::serving(
                        engine,
                        &standby.m.id,
                        &standby.m.addr.clone().unwrap_or_default(),
                        self.opts.recovery_timeout(),
                        &Interrupt::new(),
                        true,
                    )
                    .await
                    .result
                    .is_ok();
                self.report.log_tail = w.tail().to_vec();
                let state = if back {
                    on_standby.clone()
                } else {
                    format!(
                        "NO node answers: {} and the new {name} are both stopped",
                        standby.m.name
                    )
                };
                return Err(self.stuck(&state, format!("the new {name} did not take over ({w})")));
            }
        }
        // 4. Clean up.
        let after = look(engine, &name).await?;
        self.clean_up(&after, true).await
    }

    /// The clone of the original the upgrade would have created: the
    /// standby's image, the original's settings and ports.
    async fn replacement_spec(&self, old: &Seen, standby: &Seen) -> Result<spec::CloneSpec, String> {
        let config = self
            .engine
            .inspect_image(&old.m.image_id)
            .await
            .ok()
            .flatten()
            .and_then(|i| i.config)
            .ok_or_else(|| format!("the image {} ran is not on the engine any more", old.m.name))?;
        let env = old.m.env();
        let generation = standby.m.generation.or(old.m.generation);
        let version = old.m.version.as_deref();
        // The recreated node waits while the standby holds the lock: the
        // operator's DATABASE_TIMEOUT is kept when it lets it wait that long.
        let needed = self.opts.wait_timeout + self.opts.takeover_timeout + self.opts.stop_timeout;
        let set_env = match is_bolt(generation, version)
            .then(|| wait_timeout_for(&env, needed))
            .flatten()
        {
            Some(value) => vec![("DATABASE_TIMEOUT".into(), value)],
            None => Vec::new(),
        };
        let request = CloneRequest {
            name: self.opts.container.clone(),
            image: standby.m.image.clone(),
            http_host_port: None,
            set_env,
            labels: Vec::new(),
            beside: false,
        };
        spec::clone_spec(&old.m.inspect, &config, &request).map_err(|e| e.to_string())
    }

    /// A failure past the point of no return: say where the node runs.
    fn stuck(&mut self, state: &str, what: String) -> String {
        let name = &self.opts.container;
        self.report.set_outcome(Outcome::NeedsHuman);
        self.report.state = state.to_string();
        self.report.left = vec![standby_name(name), old_name(name)];
        self.report.next_steps = vec![
            format!(
                "the node works on the standby for now; fix what is said above, then run `cl-maint recover --container {name}` again"
            ),
            "do not start the old version: the new version has held the lock and the database may be migrated".into(),
        ];
        what
    }
}
