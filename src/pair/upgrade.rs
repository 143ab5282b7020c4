//! `cl-maint upgrade` when a secondary exists: both members move to the new
//! image with no temporary container. The waiting member is recreated on
//! the new image, takes the lock, the other is recreated, and (unless asked
//! not to) the lock is handed back so the roles end as they began.
//!
//! The point of no return is the same as for a single node: once a member of
//! the new version has held the lock, the database may be migrated, and the
//! way out is forward.

use std::time::Duration;

use crate::engine::Engine;
use crate::events::Events;
use crate::handoff::transfer::Transfer;
use crate::handoff::waits::{self, Release, WaitLine};
use crate::interrupt::Interrupt;
use crate::members::sharing::{looks_like_member, membership, unproven};
use crate::names::old_name;
use crate::node::image::digest_for;
use crate::report::{ImageInfo, Outcome, Report};
use crate::upgrade::compose;
use crate::upgrade::hooks;
use crate::upgrade::options::UpgradeOptions;

use super::member::Member;
use super::{Hosts, PairNames, PairView, Which, upgrade_checks, upgrade_plan};
use crate::handoff::Failure;
use crate::handoff::steps;

/// Runs the pair upgrade on the pair as [`find_pair`] saw it, and fills in
/// the report.
#[allow(clippy::too_many_arguments)]
pub async fn upgrade_pair<E: Engine>(
    hosts: Hosts<'_, E>,
    names: &PairNames,
    view: PairView,
    opts: &UpgradeOptions,
    hand_back: bool,
    events: &Events,
    interrupt: &Interrupt,
    confirm: Option<&crate::events::Confirm<'_>>,
) -> Report {
    let mut report = Report::new("upgrade", &names.primary, Outcome::Refused);
    report.state = "nothing was changed".into();
    let (Some(p), Some(s)) = (view.primary.clone(), view.secondary.clone()) else {
        report.error = Some("the pair is not complete".into());
        return report;
    };
    events.secrets(&p.env());
    events.secrets(&s.env());
    let mut run = PairUpgrade {
        shared: super::share_lock_file(hosts, &p, &s),
        hosts,
        opts,
        events,
        interrupt,
        report,
        kept: Vec::new(),
        confirm,
        compose: Vec::new(),
    };
    if let Err(f) = run.run(&view, p, s, hand_back).await {
        run.report.error = Some(f.what);
        run.report.log_tail = f.tail;
    }
    let mut report = run.report;
    for (which, along, _) in &mut run.compose {
        let engine = hosts.of(*which);
        if let Some(warning) = along.settle(engine, report.outcome == Outcome::Upgraded).await {
            events.warn(&warning);
            report.warnings.push(warning);
        }
    }
    report.compose = compose_run(&run.compose, &names.primary);
    if let Some(command) = &opts.hooks.after
        && report.outcome == Outcome::Upgraded
    {
        let ctx = hooks::Context::of(&report, hosts.primary.docker_host());
        hooks::after_upgrade(command, &ctx, &mut report, events, interrupt).await;
    }
    report.members = super::final_members(hosts, names).await;
    report
}

struct PairUpgrade<'a, E: Engine> {
    hosts: Hosts<'a, E>,
    opts: &'a UpgradeOptions,
    events: &'a Events,
    interrupt: &'a Interrupt,
    report: Report,
    /// Old containers (renamed) to remove at the end: (engine, id).
    kept: Vec<(Which, String, String)>,
    /// Whether the members (and so their replacements, which keep their
    /// mounts) share the bolt-era lock file.
    shared: bool,
    /// Asks the operator to confirm the plan (on a terminal).
    confirm: Option<&'a crate::events::Confirm<'a>>,
    /// The members Compose runs: where, their project's side of the
    /// upgrade, and the labels their replacements get.
    compose: Vec<compose_side::ComposeMember>,
}

#[path = "upgrade_compose.rs"]
mod compose_side;
use compose_side::compose_run;

impl<E: Engine> PairUpgrade<'_, E> {
    fn refuse(&mut self, outcome: Outcome, what: String, next: Vec<String>) -> Result<(), Failure> {
        self.report.set_outcome(outcome);
        self.report.next_steps = next;
        Err(Failure::new(what))
    }

    fn refused(&mut self, r: upgrade_checks::Refusal) -> Result<(), Failure> {
        self.refuse(r.outcome, r.what, r.next)
    }

    async fn run(&mut self, view: &super::PairView, p: Member, s: Member, hand_back: bool) -> Result<(), Failure> {
        // Observe, then decide (`upgrade_checks`, pure).
        let mut leftovers = Vec::new();
        for engine in [self.hosts.primary, self.hosts.secondary] {
            let left = crate::members::leftovers(engine, &self.report.container)
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
            leftovers.extend(left);
        }
        let tag_version = crate::upgrade::version_from_tag(&self.opts.tag);
        let container = self.report.container.clone();
        let holder = match upgrade_checks::check(view, &container, &leftovers, tag_version.as_deref(), self.opts.force)
        {
            Ok(holder) => holder,
            Err(r) => return self.refused(r),
        };
        let (h, w) = match holder {
            Which::Primary => (p, s),
            Which::Secondary => (s, p),
        };
        let (hw, ww) = (holder, holder.other());
        let repository = self
            .opts
            .image
            .clone()
            .unwrap_or_else(|| crate::reference::repository(&h.image).to_string());
        let target = format!("{repository}:{}", self.opts.tag);
        self.report.from = Some(ImageInfo {
            reference: h.image.clone(),
            id: h.image_id.clone(),
            digest: None,
            version: h.version.clone(),
            version_source: h.version_source.map(|s| s.as_str().to_string()),
        });
        self.prepare_compose([(&h, hw), (&w, ww)], &target)?;
        if self.opts.dry_run || self.confirm.is_some() {
            let roles = upgrade_plan::Roles {
                holder: (&h, hw),
                waiting: (&w, ww),
            };
            let seen = upgrade_plan::observe(self.hosts, &roles, &target).await?;
            let plan = upgrade_plan::plan(&seen, &roles, &target, self.opts, hand_back)?;
            if !self.opts.dry_run {
                if let Some(ask) = self.confirm
                    && !ask(&plan.text)
                {
                    return Err(Failure::new("not confirmed"));
                }
            } else {
                self.report.set_outcome(Outcome::DryRun);
                self.report.plan = Some(plan.json);
                self.report.plan_text = Some(plan.text);
                self.report.state = "nothing was changed or pulled".into();
                return Ok(());
            }
        }

        // Pull on each engine.
        let started = tokio::time::Instant::now();
        let mut engines = vec![self.hosts.primary];
        if self.hosts.split() {
            engines.push(self.hosts.secondary);
        }
        for engine in engines {
            self.pull(engine, &target).await?;
        }
        self.events.phase("pull", started.elapsed());
        let image = self.hosts.primary.inspect_image(&target).await.ok().flatten();
        let new_id = image.as_ref().and_then(|i| i.id.clone()).unwrap_or_default();
        self.report.to = Some(ImageInfo {
            reference: target.clone(),
            id: new_id.clone(),
            digest: image.as_ref().and_then(|i| digest_for(i, &target)),
            version: None,
            version_source: None,
        });
        if let Some((version, source)) = crate::upgrade::image_version::learn(
            self.hosts.primary,
            &target,
            image.as_ref(),
            &self.opts.tag,
            Some(&h.name),
        )
        .await
            && let Some(to) = self.report.to.as_mut()
        {
            to.version = Some(version);
            to.version_source = Some(source.as_str().to_string());
        }
        if let Some(target_version) = self.report.to.as_ref().and_then(|t| t.version.clone())
            && let Err(r) = upgrade_checks::downgrade(&h, &w, &target_version, self.opts.force)
        {
            return self.refused(r);
        }
        if h.image_id == new_id && w.image_id == new_id && !self.opts.force {
            self.report.set_outcome(Outcome::UpToDate);
            self.report.state = format!("{} and {} already run {target}; nothing was changed", h.name, w.name);
            return Ok(());
        }
        self.compose_labels().await?;
        if let Some(command) = &self.opts.hooks.before {
            let ctx = hooks::Context::of(&self.report, self.hosts.primary.docker_host());
            if let Err(what) = hooks::before_upgrade(command, &ctx, &mut self.report, self.events, self.interrupt).await
            {
                self.report.state = format!("nothing was changed ({target} was pulled)");
                return self.refuse(Outcome::Refused, what, vec![hooks::FIX_BEFORE.into()]);
            }
        }

        // 1. The waiting member on the new image.
        self.events
            .step(&format!("recreating {} (waiting) on {target}", w.name));
        let w_engine = self.hosts.of(ww);
        let _ = w_engine.stop(&w.id, self.opts.stop_timeout).await;
        let (w_new, w_line) = match self.recreate(ww, &w, &target).await {
            Ok(recreated) => recreated,
            Err(f) => {
                self.restore_waiting(ww, &w, None).await;
                return Err(f);
            }
        };
        // 2. The handoff to the new version.
        self.events.step(&format!(
            "stopping {} gracefully; {} takes over on the new version",
            h.name, w.name
        ));
        let w_addr = w.addr.clone().unwrap_or_default();
        let transfer = Transfer {
            from_engine: self.hosts.of(hw),
            from: &h.id,
            release: Release::Stop(self.opts.stop_timeout),
            to_engine: w_engine,
            to: &w_new,
            to_addr: &w_addr,
            within: self.opts.takeover_timeout,
            bolt_shared: false,
        };
        if transfer.prepare(Some(&w_line)).await.is_err() {
            // Its exit, with its code and last lines, before it is removed.
            let exit = waits::exited(w_engine, &w_new, Vec::new()).await;
            self.restore_waiting(ww, &w, Some(&w_new)).await;
            return Err(Failure::waited(
                &format!("the new {} stopped after it logged that it waits for the lock", w.name),
                &exit,
                self.opts.wait_timeout,
            ));
        }
        let took = transfer.plain(self.interrupt).await;
        match took.gap {
            Ok(gap) => self.handoff(&h.name, &w.name, gap),
            Err(wait) if !took.held && took.stop_error.is_none() => {
                let _ = w_engine.stop(&w_new, self.opts.stop_timeout).await;
                let back = steps::start_serving(self.hosts.of(hw), &h, self.recovery()).await;
                self.restore_waiting(ww, &w, Some(&w_new)).await;
                match back {
                    Err(f) if f.migrated => {
                        // The old version's log says a newer version migrated
                        // the database: the new one died before answering.
                        self.report.set_outcome(Outcome::NeedsHuman);
                        self.report.state = format!(
                            "NO node holds the lock: {} died on {target} before it answered, and {} ({}), which held the lock before the upgrade, now refuses the database as too new (its log says a newer version migrated it)",
                            w.name, h.name, h.image
                        );
                        self.report.next_steps = vec![
                            format!(
                                "read why the new version died: the log lines below, then `docker logs --tail 100 {}`",
                                w.name
                            ),
                            format!(
                                "then start a release that runs on the migrated database, or restore the database snapshot taken before the upgrade and `docker start {}`",
                                h.name
                            ),
                        ];
                    }
                    Err(_) => {
                        self.report.set_outcome(Outcome::NeedsHuman);
                        self.report.state = format!("NO node serves: {} did not come back", h.name);
                        self.report.next_steps = vec![format!("start it: `docker start {}`", h.name)];
                    }
                    Ok(_) => {}
                }
                return Err(steps::takeover_failure(&w.name, &wait, self.opts.takeover_timeout));
            }
            Err(wait) => {
                self.report.set_outcome(Outcome::NeedsHuman);
                self.report.state = format!(
                    "{} (new version) took the lock and then failed; {} (old version) was left stopped, as the database may be migrated",
                    w.name, h.name
                );
                self.report.next_steps = vec![
                    format!("read its log: `docker logs --tail 100 {}`", w.name),
                    format!(
                        "fix forward (`docker start {}`), or restore the database snapshot and go back to {}",
                        w.name, h.image
                    ),
                ];
                self.report.left = vec![old_name(&w.name)];
                return Err(steps::takeover_failure(&w.name, &wait, self.opts.takeover_timeout));
            }
        }

        // 3. The other member on the new image.
        self.events.step(&format!("recreating {} on {target}", h.name));
        let (h_new, h_line) = match self.recreate(hw, &h, &target).await {
            Ok(recreated) => recreated,
            Err(f) => {
                let why = format!("{} could not be recreated on it", h.name);
                let next = format!(
                    "read the lines below, fix it, then remove {} and run `cl-maint failover up`",
                    old_name(&h.name)
                );
                self.no_standby(&w.name, &h.name, &why, next);
                return Err(f);
            }
        };

        // 4. Hand back, and the pair whole again.
        let mut state = format!("{} holds the lock; {} waits; both run {target}", w.name, h.name);
        if hand_back {
            self.events.step(&format!("handing the lock back to {}", h.name));
            let w_member = Member {
                id: w_new.clone(),
                ..w.clone()
            };
            let h_addr = h.addr.clone().unwrap_or_default();
            let transfer = Transfer {
                from_engine: w_engine,
                from: &w_new,
                release: Release::Stop(self.opts.stop_timeout),
                to_engine: self.hosts.of(hw),
                to: &h_new,
                to_addr: &h_addr,
                within: self.opts.takeover_timeout,
                bolt_shared: false,
            };
            if transfer.prepare(Some(&h_line)).await.is_err() {
                let exit = waits::exited(self.hosts.of(hw), &h_new, Vec::new()).await;
                let why = crate::handoff::describe(
                    &format!("the new {} stopped after it logged that it waits for the lock", h.name),
                    &exit,
                    self.opts.wait_timeout,
                );
                let next = format!(
                    "read its log (`docker logs --tail 50 {}`), fix it, then remove {} and run `cl-maint failover up`",
                    h.name,
                    old_name(&h.name)
                );
                self.no_standby(&w.name, &h.name, &why, next);
                return Err(Failure::new(why));
            }
            let took = transfer.plain(&Interrupt::new()).await;
            match took.gap {
                Ok(gap) => {
                    self.handoff(&w.name, &h.name, gap);
                    if let Err(f) = steps::start_waiting(
                        w_engine,
                        &w_member,
                        self.opts.wait_timeout,
                        &Interrupt::new(),
                        self.shared,
                    )
                    .await
                    {
                        self.report.set_outcome(Outcome::NeedsHuman);
                        self.report.state = format!(
                            "{} serves the new version, but {} did not come back as the standby",
                            h.name, w.name
                        );
                        self.report.next_steps = vec!["make the pair whole: `cl-maint failover up`".into()];
                        return Err(f);
                    }
                    state = format!("{} holds the lock; {} waits; both run {target}", h.name, w.name);
                }
                Err(wait) => {
                    let _ = self.hosts.of(hw).stop(&h_new, self.opts.stop_timeout).await;
                    let back = steps::start_serving(w_engine, &w_member, self.recovery()).await;
                    self.report.set_outcome(Outcome::NeedsHuman);
                    self.report.state = match back {
                        Ok(_) => format!(
                            "{} serves the new version; {} failed to take the lock back and is stopped",
                            w.name, h.name
                        ),
                        Err(_) => "NO node serves: the hand-back failed both ways".to_string(),
                    };
                    self.report.next_steps = vec!["see `cl-maint status` and the logs".into()];
                    return Err(steps::takeover_failure(&h.name, &wait, self.opts.takeover_timeout));
                }
            }
        }
        for (which, id, name) in std::mem::take(&mut self.kept) {
            if self.opts.keep_old {
                self.report.left.push(name);
            } else {
                let _ = self.hosts.of(which).remove(&id).await;
            }
        }
        self.report.set_outcome(Outcome::Upgraded);
        self.report.state = state;
        Ok(())
    }

    fn recovery(&self) -> Duration {
        self.opts.takeover_timeout.max(Duration::from_secs(60))
    }

    /// `serving` holds the lock on the new version, but `other` is not its
    /// standby (`why`); both originals are left renamed aside.
    fn no_standby(&mut self, serving: &str, other: &str, why: &str, next: String) {
        self.report.set_outcome(Outcome::NeedsHuman);
        self.report.state = format!("{serving} serves the new version; {why} and nothing would take over");
        self.report.left = vec![old_name(serving), old_name(other)];
        self.report.next_steps = vec![next];
    }

    fn handoff(&mut self, from: &str, to: &str, gap: Duration) {
        self.events.handoff(from, to, gap);
    }

    async fn pull(&mut self, engine: &E, target: &str) -> Result<(), Failure> {
        let have = engine.inspect_image(target).await.ok().flatten().is_some();
        crate::upgrade::pull::ensure_image(engine, target, have, self.opts, self.events, self.interrupt)
            .await
            .map_err(|f| {
                self.report.set_outcome(f.outcome);
                self.report.next_steps = f.next_steps;
                Failure::new(f.what)
            })
    }

    /// Renames a stopped member out of the way, creates it again on `image`
    /// under its name, starts it and confirms it waits. Returns the new id
    /// and its waiting line.
    async fn recreate(&mut self, which: Which, m: &Member, image: &str) -> Result<(String, WaitLine), Failure> {
        let engine = self.hosts.of(which);
        let mut spec = upgrade_plan::clone_of(engine, m, image).await?;
        if let Some((_, _, labels)) = self.compose.iter().find(|(_, a, _)| a.node == m.name) {
            compose::relabel(&mut spec.body, labels);
        }
        let old = old_name(&m.name);
        engine
            .rename(&m.id, &old)
            .await
            .map_err(|e| Failure::new(format!("renaming {} failed: {e}", m.name)))?;
        self.kept.push((which, m.id.clone(), old));
        let id = engine
            .create(&spec)
            .await
            .map_err(|e| Failure::new(format!("creating the new {} failed: {e}", m.name)))?;
        let addr = m.addr.clone().unwrap_or_default();
        let waited = async {
            engine
                .start(&id)
                .await
                .map_err(|e| Failure::new(format!("starting the new {} failed: {e}", m.name)))?;
            let waiter = steps::Waiter {
                id: &id,
                who: &m.name,
                addr: &addr,
                holder: "the lock holder",
                shared_file: self.shared,
            };
            steps::confirm_waiting(engine, &waiter, 0, self.opts.wait_timeout, self.interrupt).await
        };
        match waited.await {
            Ok(line) => Ok((id, line)),
            Err(mut f) => {
                if f.tail.is_empty() {
                    f.tail = waits::last_lines(engine, &id).await;
                }
                let _ = engine.remove(&id).await;
                Err(f)
            }
        }
    }

    /// Puts the original waiting member back: removes its replacement (if
    /// any), renames it back and starts it waiting again.
    async fn restore_waiting(&mut self, which: Which, w: &Member, replacement: Option<&str>) {
        let engine = self.hosts.of(which);
        if let Some(id) = replacement {
            let _ = engine.remove(id).await;
        }
        if let Ok(Some(c)) = engine.inspect_container(&w.name).await
            && c.id.as_deref() != Some(w.id.as_str())
        {
            let _ = engine.remove(c.id.as_deref().unwrap_or_default()).await;
        }
        self.kept.retain(|(_, id, _)| id != &w.id);
        let current = engine.inspect_container(&w.id).await.ok().flatten();
        let renamed = match current {
            Some(c) if crate::engine::name_of(&c) == w.name => Ok(()),
            _ => engine.rename(&w.id, &w.name).await,
        };
        let waiting = match renamed {
            Ok(()) => steps::start_waiting(engine, w, self.opts.wait_timeout, &Interrupt::new(), self.shared).await,
            Err(e) => Err(Failure::new(e.to_string())),
        };
        if self.report.outcome == Outcome::Refused {
            self.report.set_outcome(Outcome::RolledBack);
        }
        self.report.state = match waiting {
            Ok(_) => format!("rolled back: both members run {} as before", w.image),
            Err(f) => {
                self.report.set_outcome(Outcome::NeedsHuman);
                self.report.next_steps = vec!["make the pair whole: `cl-maint failover up`".into()];
                format!(
                    "the node still serves on its old version, but {} did not come back as the standby: {}",
                    w.name, f.what
                )
            }
        };
    }
}

/// What an upgrade of the node works on.
pub enum Found {
    /// A failover pair whose secondary is proven a member.
    Pair(Box<PairView>),
    /// The node alone.
    Alone,
    /// A container looks like the node's secondary, but nothing proves it:
    /// refused (what, next steps).
    Unproven(String, Vec<String>),
}

/// Whether the upgrade is a pair's: the secondary exists and is proven a
/// member ([`crate::members::sharing::membership`]; `named`: the operator
/// named it). One that only looks like a member is refused, never guessed.
pub async fn find_pair<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames, named: bool) -> Found {
    let Ok(view) = super::view(hosts, names).await else {
        return Found::Alone;
    };
    let (Some(p), Some(s)) = (&view.primary, &view.secondary) else {
        return Found::Alone;
    };
    if membership(s, p, named, hosts.split()).is_some() {
        return Found::Pair(Box::new(view));
    }
    if looks_like_member(s, p) {
        let (what, next) = unproven(s, p);
        return Found::Unproven(what, next);
    }
    Found::Alone
}

/// Whether `c` is proven the secondary of `primary` by cl-maint's label or
/// the same database (for `recover`, which has no operator's word on it).
pub fn is_secondary_of(c: &Member, primary: &Member, split: bool) -> bool {
    membership(c, primary, false, split).is_some()
}
