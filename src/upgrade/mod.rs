//! `cl-maint upgrade`: Chainlink's documented maintenance procedure as one
//! safe command. Observe (read-only) → plan (pure) → pull → execute.

pub mod compose;
pub mod execute;
pub mod hooks;
pub mod image_version;
pub mod observe;
pub mod options;
pub mod plan;
pub mod preflight;
pub mod pull;
pub mod shown;
pub mod words;

use crate::engine::Engine;
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::report::{ImageInfo, Outcome, Report, engine_failed};

pub use options::UpgradeOptions;
pub use plan::Plan;

/// Runs an upgrade. `confirm` is asked once the plan is known (it answers
/// true without asking when no one can be asked).
pub async fn upgrade<E: Engine>(
    engine: &E,
    opts: &UpgradeOptions,
    events: &Events,
    interrupt: &Interrupt,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Report {
    let mut report = Report::new("upgrade", &opts.container, Outcome::Refused);
    events.step(&format!("checking {} on {}", opts.container, engine.endpoint()));
    let observed = match observe::observe(engine, opts).await {
        Ok(o) => o,
        Err(e) => return engine_failed(report, e),
    };
    // The node's secrets are known before anything of it is shown (a
    // refusal shows its last log lines).
    if let Some(env) = observed
        .primary
        .as_ref()
        .and_then(|p| p.config.as_ref())
        .and_then(|c| c.env.as_ref())
    {
        events.secrets(env);
    }
    let planned = plan::plan(&observed, opts).and_then(|plan| {
        let primary = observed.primary.as_ref().expect("a plan has a primary");
        let images = (plan.from.reference.as_str(), plan.target.as_str());
        let along = compose::prepare(primary, &opts.container, images, opts.compose, observed.reach.local)?;
        Ok((plan, along))
    });
    let (mut plan, mut along) = match planned {
        Ok(p) => p,
        Err(refusal) => {
            report.error = Some(refusal.reason);
            report.next_steps = refusal.fix;
            report.log_tail = refusal.tail;
            report.state = "nothing was changed".into();
            return report;
        }
    };
    if let Some(a) = &along {
        report.compose = Some(a.run.clone());
        plan.warnings.extend(a.ignored_warning());
    }
    report.from = Some(plan.from.clone());
    report.to = Some(ImageInfo {
        reference: plan.target.clone(),
        ..ImageInfo::default()
    });
    if opts.dry_run {
        report.set_outcome(Outcome::DryRun);
        report.plan = Some(plan.to_json());
        report.plan_text = Some(plan.to_human());
        report.state = format!(
            "nothing was changed or pulled; {} runs {}",
            opts.container, plan.from.reference
        );
        return report;
    }
    for w in &plan.warnings {
        events.warn(w);
    }
    if !confirm(&plan) {
        report.error = Some("not confirmed".into());
        report.state = "nothing was changed".into();
        return report;
    }

    let started = tokio::time::Instant::now();
    // Observe already looked for the target image on the engine.
    let have = observed.target_image.is_some();
    if let Err(f) = pull::ensure_image(engine, &plan.target, have, opts, events, interrupt).await {
        report.set_outcome(f.outcome);
        report.error = Some(f.what);
        report.state = if f.outcome == Outcome::Interrupted {
            "nothing was changed".to_string()
        } else {
            format!("nothing was changed; {} runs {}", opts.container, plan.from.reference)
        };
        report.next_steps = f.next_steps;
        return report;
    }
    events.phase("pull", started.elapsed());
    let new_image = engine.inspect_image(&plan.target).await.ok().flatten();
    let to = ImageInfo {
        reference: plan.target.clone(),
        id: new_image.as_ref().and_then(|i| i.id.clone()).unwrap_or_default(),
        digest: new_image
            .as_ref()
            .and_then(|i| crate::node::image::digest_for(i, &plan.target)),
        version: None,
        version_source: None,
    };
    let mut to = to;
    if let Some((version, source)) = image_version::learn(
        engine,
        &plan.target,
        new_image.as_ref(),
        &opts.tag,
        Some(&opts.container),
    )
    .await
    {
        to.version = Some(version);
        to.version_source = Some(source.as_str().to_string());
    }
    events.note(&format!(
        "{} is {}{}",
        plan.target,
        to.digest.clone().unwrap_or_else(|| to.id.clone()),
        to.version
            .as_ref()
            .map(|v| format!(
                " (version {v}, from its {})",
                to.version_source.as_deref().unwrap_or("tag")
            ))
            .unwrap_or_default()
    ));
    report.to = Some(to.clone());
    // A tag that names no version (`latest`): the image's own says.
    let refusal = to.version.as_deref().and_then(|target| {
        plan::version_refusal(
            &opts.container,
            plan.from.version.as_deref(),
            &plan.secret_env,
            target,
            opts.force,
        )
    });
    if let Some(refusal) = refusal {
        report.error = Some(refusal.reason);
        report.next_steps = refusal.fix;
        report.state = format!(
            "nothing was changed ({} was pulled); {} runs {}",
            plan.target, opts.container, plan.from.reference
        );
        return report;
    }
    if to.id == plan.from.id && !opts.force {
        report.set_outcome(Outcome::UpToDate);
        report.state = format!(
            "{} already runs {}; nothing was changed (use --force to recreate it anyway)",
            opts.container, plan.target
        );
        return report;
    }
    if let Some(a) = &mut along {
        match a.labels(engine, &to).await {
            Ok(labels) => {
                compose::relabel(&mut plan.replacement.body, &labels);
                report.compose = Some(a.run.clone());
            }
            Err(e) => {
                let (what, next) = compose::labels_failed(&opts.container, &e);
                report.error = Some(what);
                report.state = format!(
                    "nothing was changed ({} was pulled); {} runs {}",
                    plan.target, opts.container, plan.from.reference
                );
                report.next_steps = next;
                return report;
            }
        }
    }
    let hook_ctx = hooks::Context::of(&report, engine.docker_host());
    if let Some(command) = &opts.hooks.before
        && let Err(what) = hooks::before_upgrade(command, &hook_ctx, &mut report, events, interrupt).await
    {
        report.error = Some(what);
        report.state = format!(
            "nothing was changed ({} was pulled); {} runs {}",
            plan.target, opts.container, plan.from.reference
        );
        report.next_steps = vec![hooks::FIX_BEFORE.into()];
        return report;
    }
    // On the heap: the executor's state is large (see `handoff::transfer`).
    let executor = execute::Executor::new(engine, &plan, opts, events, interrupt, report);
    let mut report = match plan.mode {
        preflight::Mode::Handoff => Box::pin(executor.run()).await,
        preflight::Mode::Recreate => Box::pin(executor.recreate_down()).await,
    };
    if let Some(a) = &mut along {
        if let Some(warning) = a.settle(engine, report.outcome == Outcome::Upgraded).await {
            events.warn(&warning);
            report.warnings.push(warning);
        } else if a.run.written {
            events.note(&format!("updated the Compose project: {}", a.run.edit));
        }
        report.compose = Some(a.run.clone());
    }
    if let Some(command) = &opts.hooks.after
        && report.outcome == Outcome::Upgraded
    {
        hooks::after_upgrade(command, &hook_ctx, &mut report, events, interrupt).await;
    }
    report
}

/// The version a tag names (`2.10.0`, `v2.10.0`), if it names one.
pub fn version_from_tag(tag: &str) -> Option<String> {
    crate::node::version::Version::parse(tag).map(|_| tag.trim_start_matches('v').to_string())
}
