//! Recovering a failover pair after an interrupted `failover` (a
//! switchover whose old holder was stopped but not started again) or an
//! interrupted pair `upgrade` (members renamed `NAME-cl-maint-old`, new
//! ones under the names). The member holding the lock keeps it: recover
//! makes no handoff that was not already in flight, restores the names, and
//! makes the other member wait again.

use crate::engine::{Engine, EngineError};
use crate::events::Events;
use crate::handoff::steps;
use crate::handoff::waits;
use crate::interrupt::Interrupt;
use crate::names::old_name;
use crate::node::health::status_means_serving;
use crate::node::lock::{WAIT_FOREVER, is_bolt};
use crate::pair::{Hosts, PairNames, Which};
use crate::report::{Outcome, Report};
use crate::spec::{self, CloneRequest};

use super::RecoverOptions;
use super::pair_plan::{self, Look, Restore, Stop};
use super::survey::{self, Seen};

/// Whether the node has a secondary (so what is left is a pair's).
pub async fn find<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Result<bool, EngineError> {
    let primary = match crate::pair::member::observe(hosts.primary, "primary", &names.primary).await? {
        Some(p) => Some(p),
        None => crate::pair::member::observe(hosts.primary, "primary", &old_name(&names.primary)).await?,
    };
    let secondary = crate::pair::member::observe(hosts.secondary, "secondary", &names.secondary).await?;
    Ok(match (primary, secondary) {
        (Some(p), Some(s)) => crate::pair::upgrade::is_secondary_of(&s, &p, hosts.split()),
        (None, Some(s)) => s
            .inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .is_some_and(|l| l.get(crate::names::LABEL_PRIMARY) == Some(&names.primary)),
        _ => false,
    })
}

const BOTH: [Which; 2] = [Which::Primary, Which::Secondary];

async fn look<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Result<Look, String> {
    let mut l = Look::default();
    for (i, w) in BOTH.into_iter().enumerate() {
        let engine = hosts.of(w);
        let name = names.of(w);
        l.members[i] = survey::look(engine, w.word(), name).await.map_err(|e| e.to_string())?;
        l.olds[i] = survey::look(engine, "old", &old_name(name))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(l)
}

/// Looks at the pair until it is at rest (no stop or takeover in flight),
/// up to the takeover deadline.
async fn settled<E: Engine>(
    hosts: Hosts<'_, E>,
    names: &PairNames,
    opts: &RecoverOptions,
    interrupt: &Interrupt,
) -> Result<(Look, bool), String> {
    survey::settle(opts.takeover_timeout, interrupt, || async {
        let l = look(hosts, names).await?;
        let rest = survey::at_rest(&l.all());
        Ok((l, rest))
    })
    .await
}

/// Recovers the pair; fills in the report. With `hold` (the interrupted
/// run was `failover --hold`), the member that let go stays stopped.
pub async fn recover<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &RecoverOptions,
    hold: bool,
    events: &Events,
    interrupt: &Interrupt,
    report: &mut Report,
) -> Result<(), String> {
    let names = opts.names();
    let (seen, rest) = settled(hosts, &names, opts, interrupt).await?;
    report.state = "nothing was changed".into();
    let plan = match pair_plan::decide(&seen, rest) {
        Ok(plan) => plan,
        Err(Stop::SeveralHolders) => {
            report.set_outcome(Outcome::SeveralHolders);
            report.next_steps =
                vec!["stop every holder but one at once (`docker stop NAME`); see `cl-maint status`".into()];
            return Err("more than one container answers as the lock holder: two nodes may be active".into());
        }
        Err(Stop::NoHolder) => {
            report.set_outcome(Outcome::NeedsHuman);
            report.left = seen.all().iter().map(|s| s.m.name.clone()).collect();
            report.next_steps = vec![
                "see `cl-maint status`; start the member of the newest version by hand (`docker start NAME`) and run `cl-maint recover` again".into(),
            ];
            return Err(
                "no member of the pair holds the lock (or one is still starting or stopping), and which version may run is not known"
                    .into(),
            );
        }
        Err(Stop::OldHolds(i)) => {
            // A renamed original holds: give it its name back.
            let old = seen.olds[i].as_ref().map(|o| o.m.name.clone()).unwrap_or_default();
            report.set_outcome(Outcome::NeedsHuman);
            return Err(format!(
                "{old} (a renamed original) holds the lock; rename it back by hand: `docker rename {old} {}`",
                names.of(BOTH[i])
            ));
        }
    };
    if opts.dry_run {
        super::dry::pair([&names.primary, &names.secondary], &seen, &plan, hold, report);
        return Ok(());
    }
    let holder = seen
        .all()
        .into_iter()
        .find(|s| s.m.id == plan.holder_id)
        .cloned()
        .ok_or_else(|| "the holder was not seen".to_string())?;
    let mut changed = false;
    // The names: each member under its own name, on the holder's version
    // when the new version holds, or its untouched original otherwise.
    for (i, w) in BOTH.into_iter().enumerate() {
        let engine = hosts.of(w);
        let (Some(restore), Some(old)) = (plan.restore[i].clone(), seen.olds[i].clone()) else {
            continue;
        };
        changed = true;
        match restore {
            Restore::OriginalBack => {
                events.step(&format!(
                    "putting the original {} back (the new version never held the lock)",
                    names.of(w)
                ));
                if let Some(c) = &seen.members[i] {
                    let _ = engine.remove(&c.m.id).await;
                }
                engine.rename(&old.m.id, names.of(w)).await.map_err(|e| e.to_string())?;
            }
            Restore::DropOriginal => {
                if opts.keep_old {
                    report.left.push(old.m.name.clone());
                } else {
                    let _ = engine.remove(&old.m.id).await;
                }
            }
            Restore::RenameBack => {
                events.step(&format!("renaming {} back to {}", old.m.name, names.of(w)));
                engine.rename(&old.m.id, names.of(w)).await.map_err(|e| e.to_string())?;
            }
            Restore::Recreate => {
                events.step(&format!("recreating {} on {}", names.of(w), holder.m.image));
                recreate(engine, &old, names.of(w), &holder.m.image).await?;
                if !opts.keep_old {
                    let _ = engine.remove(&old.m.id).await;
                } else {
                    report.left.push(old.m.name.clone());
                }
            }
        }
    }
    // The other member waits again (unless it was held back on purpose).
    let mut now = look(hosts, &names).await?;
    if !now.all().iter().any(|s| s.holds()) {
        // The holder let go meanwhile: a stop the killed run had asked for
        // finished only now. The other member takes over; wait for that.
        now = settled(hosts, &names, opts, interrupt).await?.0;
    }
    let holder_which = BOTH
        .into_iter()
        .enumerate()
        .find(|(i, _)| now.members[*i].as_ref().is_some_and(|m| m.holds()))
        .map(|(_, w)| w)
        .ok_or_else(|| "the holder stopped answering while recovering".to_string())?;
    let other = holder_which.other();
    let idx = if other == Which::Primary { 0 } else { 1 };
    let holder_name = names.of(holder_which).to_string();
    match now.members[idx].clone() {
        Some(o) if !o.m.running && !hold => {
            events.step(&format!("starting {}; it should wait for the lock", o.m.name));
            changed = true;
            let (engine, none) = (hosts.of(other), Interrupt::new());
            let waited = match steps::start_waiting(engine, &o.m, opts.wait_timeout, &none, false).await {
                Ok(_) => steps::stays_waiting(engine, &o.m.id, &o.m.name, &none).await,
                Err(f) => Err(f),
            };
            if let Err(f) = waited {
                let _ = hosts.of(other).stop(&o.m.id, opts.stop_timeout).await;
                report.set_outcome(Outcome::NeedsHuman);
                report.log_tail = f.tail.clone();
                report.state = format!(
                    "{holder_name} holds the lock; {} did not come back as the standby",
                    o.m.name
                );
                report.next_steps = vec![format!("read its log: `docker logs --tail 50 {}`", o.m.name)];
                return Err(f.what);
            }
        }
        Some(o) if !o.m.running => {
            report.next_steps.push(format!(
                "{} was stopped by `failover --hold`; start it as the standby when ready: `cl-maint failover up`",
                o.m.name
            ));
        }
        Some(_) => {}
        None => report
            .next_steps
            .push("recreate the other member: `cl-maint failover up`".into()),
    }
    // A holder may still be migrating (its 204) or booting: done when it serves.
    if let Some(h) = now.members[1 - idx]
        .as_ref()
        .filter(|h| !h.m.http_status.is_some_and(status_means_serving))
    {
        let addr = h.m.addr.clone().unwrap_or_default();
        let watch = waits::serving(
            hosts.of(holder_which),
            &h.m.id,
            &addr,
            opts.takeover_timeout,
            interrupt,
            true,
        )
        .await;
        if let Err(w) = watch.result {
            report.set_outcome(Outcome::NeedsHuman);
            report.state = format!("{holder_name} holds the lock but does not serve");
            report.next_steps = vec![format!("read its log: `docker logs --tail 50 {holder_name}`")];
            return Err(format!("{holder_name} held the lock but did not start serving: {w}"));
        }
    }
    if changed {
        report.set_outcome(Outcome::Recovered);
    }
    let waits = now.members[idx].as_ref().map(|o| o.m.name.clone()).unwrap_or_default();
    report.state = format!(
        "{holder_name} holds the lock and runs {}; {waits} waits for it",
        holder.m.image
    );
    if holder_which == Which::Secondary {
        report
            .next_steps
            .push("return the lock to the primary when convenient: `cl-maint failover back`".into());
    }
    Ok(())
}

/// Creates `name` again as a clone of its renamed original on `image`, and
/// starts it (it waits: another member holds the lock).
async fn recreate<E: Engine>(engine: &E, old: &Seen, name: &str, image: &str) -> Result<String, String> {
    let config = engine
        .inspect_image(&old.m.image_id)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.config)
        .ok_or_else(|| format!("the image {} ran is not on its engine any more", old.m.name))?;
    let request = CloneRequest {
        name: name.to_string(),
        image: image.to_string(),
        http_host_port: None,
        set_env: if is_bolt(old.m.generation, old.m.version.as_deref()) {
            vec![("DATABASE_TIMEOUT".into(), WAIT_FOREVER.into())]
        } else {
            Vec::new()
        },
        labels: Vec::new(),
        beside: false,
    };
    let spec = spec::clone_spec(&old.m.inspect, &config, &request).map_err(|e| e.to_string())?;
    engine.create(&spec).await.map_err(|e| e.to_string())
}
