//! `cl-maint failover up`: create (or start) the secondary, a faithful
//! clone of the primary that waits for the lock as long as it takes, and
//! confirm it waits. Running it again when the pair is in place changes
//! nothing.

use crate::engine::{Engine, EngineResult};
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::report::{Outcome, Report};
use crate::spec;

use super::member::Member;
use super::up_plan::{self, Action, Observed};
use super::{Hosts, PairOptions};
use crate::handoff::Failure;
use crate::handoff::steps;

/// `cl-maint failover up`.
pub async fn up<E: Engine>(hosts: Hosts<'_, E>, opts: &PairOptions, events: &Events, interrupt: &Interrupt) -> Report {
    let names = &opts.names;
    let mut report = Report::new("failover up", &names.primary, Outcome::Refused);
    events.step(&format!("checking {} and {}", names.primary, names.secondary));
    let observed = match observe(hosts, opts).await {
        Ok(o) => o,
        Err(e) => return crate::report::engine_failed(report, e),
    };
    if let Some(primary) = &observed.view.primary {
        events.secrets(&primary.env());
    }
    let plan = match up_plan::plan(&observed, opts) {
        Ok(plan) => plan,
        Err(refusal) => {
            report.error = Some(refusal.what);
            report.state = refusal.state;
            report.next_steps = refusal.next_steps;
            if observed.view.primary.is_some() {
                report.members = super::final_members(hosts, names).await;
            }
            return report;
        }
    };
    let primary = &plan.primary;
    let result = match plan.action {
        Action::AlreadyThere { state, next_steps } => {
            report.set_outcome(Outcome::NothingToDo);
            report.state = state;
            report.next_steps = next_steps;
            Ok(())
        }
        _ if opts.dry_run => super::dry::up(hosts, opts, &plan, events, &mut report).await,
        Action::Start(secondary) => start(hosts, opts, primary, &secondary, events, interrupt, &mut report).await,
        Action::Create => create(hosts, opts, primary, events, interrupt, &mut report).await,
    };
    if let Err(f) = result {
        report.error = Some(f.what);
        report.log_tail = f.tail;
        if f.interrupted {
            report.set_outcome(Outcome::Interrupted);
        }
    }
    report.members = super::final_members(hosts, names).await;
    report
}

/// Reads the pair and, when there is no secondary yet, who uses its port
/// (read-only).
async fn observe<E: Engine>(hosts: Hosts<'_, E>, opts: &PairOptions) -> EngineResult<Observed> {
    let view = super::view(hosts, &opts.names).await?;
    let port = opts.secondary_port;
    let (port_users, port_free_here) = if view.secondary.is_none() {
        (
            // Its failure is a refusal, in its turn among the plan's checks.
            crate::upgrade::observe::port_users(hosts.secondary, port)
                .await
                .map_err(|e| e.to_string()),
            crate::upgrade::observe::port_free_here(hosts.secondary, port),
        )
    } else {
        (Ok(Vec::new()), None)
    };
    Ok(Observed {
        view,
        split: hosts.split(),
        endpoints: (hosts.primary.endpoint(), hosts.secondary.endpoint()),
        port_users,
        port_free_here,
    })
}

/// The secondary exists but is stopped: start it and confirm it waits.
async fn start<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    primary: &Member,
    secondary: &Member,
    events: &Events,
    interrupt: &Interrupt,
    report: &mut Report,
) -> Result<(), Failure> {
    let (p, s) = (&primary.name, &secondary.name);
    events.step(&format!("starting {s}; it should wait for the lock"));
    let shared = super::share_lock_file(hosts, primary, secondary);
    let started = async {
        let line = steps::start_waiting(hosts.secondary, secondary, opts.wait_timeout, interrupt, shared).await?;
        steps::stays_waiting(hosts.secondary, &secondary.id, s, interrupt)
            .await
            .map(|()| line)
    };
    match started.await {
        Ok(line) => {
            report.set_outcome(Outcome::PairReady);
            report.state = format!(
                "{p} holds the lock; {s} was started and waits for it ({})",
                line.generation
            );
            Ok(())
        }
        Err(f) => {
            let _ = hosts.secondary.stop(&secondary.id, opts.stop_timeout).await;
            report.set_outcome(Outcome::RolledBack);
            report.state = format!("{p} holds the lock; {s} is stopped again, as it was");
            report.next_steps = vec![format!("look at its log: `docker logs --tail 50 {s}`")];
            Err(f)
        }
    }
}

/// No secondary yet: create it as a clone of the primary.
async fn create<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    primary: &Member,
    events: &Events,
    interrupt: &Interrupt,
    report: &mut Report,
) -> Result<(), Failure> {
    let (p, s) = (&primary.name, &opts.names.secondary);
    report.state = "nothing was changed".into();
    let image = match image_for_secondary(hosts, primary, events).await {
        Ok(i) => i,
        Err(why) => {
            report.set_outcome(Outcome::PullFailed);
            report.next_steps = vec![format!(
                "make {} available on {}",
                primary.image,
                hosts.secondary.endpoint()
            )];
            return Err(Failure::new(why));
        }
    };
    let (spec, addr) = super::secondary::spec(hosts, opts, primary, image, events).await?;
    let engine = hosts.secondary;
    // A clone keeps the primary's mounts: on one engine it shares the lock file.
    let shared = !hosts.split() && spec::data_dir_on_host(&primary.inspect).is_some();
    events.step(&format!(
        "creating {s} on {} (host port {}), a clone of {p}",
        engine.endpoint(),
        opts.secondary_port
    ));
    let id = engine
        .create(&spec)
        .await
        .map_err(|e| Failure::new(format!("creating {s} failed: {e}")))?;
    report.set_outcome(Outcome::RolledBack);
    report.state = format!("{p} holds the lock; {s} was removed again");
    let started = async {
        engine
            .start(&id)
            .await
            .map_err(|e| Failure::new(format!("starting {s} failed: {e}")))?;
        let waiter = steps::Waiter {
            id: &id,
            who: s,
            addr: &addr,
            holder: p,
            shared_file: shared,
        };
        let line = steps::confirm_waiting(engine, &waiter, 0, opts.wait_timeout, interrupt).await?;
        steps::stays_waiting(engine, &id, s, interrupt).await.map(|()| line)
    };
    match started.await {
        Ok(line) => {
            let generation = line.generation;
            report.set_outcome(Outcome::PairReady);
            report.state = format!(
                "{p} holds the lock; {s} waits for it ({generation}) on host port {}{}",
                opts.secondary_port,
                if hosts.split() {
                    format!(" on {}", engine.endpoint())
                } else {
                    String::new()
                }
            );
            events.note(&report.state);
            Ok(())
        }
        Err(mut f) => {
            if !f.interrupted {
                f.tail = crate::handoff::waits::last_lines(engine, &id).await;
            }
            let _ = engine.remove(&id).await;
            if f.interrupted {
                report.state = format!("{p} holds the lock; {s} was removed again; nothing else changed");
            }
            report.next_steps = vec![
                "read its last log lines above, fix the cause, then run `cl-maint failover up` again".into(),
                format!(
                    "{s} is a clone of {p}: it must share {p}'s database (the same volume or bind mount, the same DATABASE_URL)"
                ),
            ];
            Err(f)
        }
    }
}

/// The image reference the secondary runs: the primary's exact image, pulled
/// on the secondary's engine when it lacks it.
async fn image_for_secondary<E: Engine>(
    hosts: Hosts<'_, E>,
    primary: &Member,
    events: &Events,
) -> Result<String, String> {
    let engine = hosts.secondary;
    let same = |i: &Option<bollard::models::ImageInspect>| {
        i.as_ref().and_then(|i| i.id.as_deref()) == Some(primary.image_id.as_str())
    };
    if same(&engine.inspect_image(&primary.image).await.map_err(|e| e.to_string())?) {
        return Ok(primary.image.clone());
    }
    if same(
        &engine
            .inspect_image(&primary.image_id)
            .await
            .map_err(|e| e.to_string())?,
    ) {
        // The tag has moved on since the primary was created: run its image.
        return Ok(primary.image_id.clone());
    }
    let digest = hosts
        .primary
        .inspect_image(&primary.image_id)
        .await
        .ok()
        .flatten()
        .and_then(|i| crate::node::image::digest_for(&i, &primary.image));
    let reference = digest.unwrap_or_else(|| primary.image.clone());
    events.step(&format!("pulling {reference} on {}", engine.endpoint()));
    let show = |p: crate::engine::PullProgress| events.pull(&p);
    let pulled = engine.pull(&reference, &show).await;
    events.pull_done();
    pulled.map_err(|e| format!("pulling {reference} on {} failed: {e}", engine.endpoint()))?;
    if same(&engine.inspect_image(&reference).await.map_err(|e| e.to_string())?) {
        Ok(reference)
    } else {
        Err(format!(
            "{reference} on {} is not the image {} runs ({})",
            engine.endpoint(),
            primary.name,
            primary.image_id
        ))
    }
}
