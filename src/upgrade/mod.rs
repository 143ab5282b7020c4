//! `cl-maint upgrade`: Chainlink's documented maintenance procedure as one
//! safe command. Observe (read-only) → plan (pure) → pull → execute.

pub mod execute;
pub mod observe;
pub mod options;
pub mod plan;
pub mod waits;

use tokio::time::timeout;

use crate::engine::{Engine, EngineError};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::report::{ImageInfo, Outcome, Report};

pub use options::UpgradeOptions;
pub use plan::Plan;

/// Label naming the primary a cl-maint container belongs to.
pub const LABEL_PRIMARY: &str = "io.cl-maint.primary";
/// Label naming a cl-maint container's role (`standby`).
pub const LABEL_ROLE: &str = "io.cl-maint.role";

/// The temporary standby's name.
pub fn standby_name(primary: &str) -> String {
    format!("{primary}-cl-maint-standby")
}

/// The old primary's name while it is the rollback point.
pub fn old_name(primary: &str) -> String {
    format!("{primary}-cl-maint-old")
}

/// Runs an upgrade. `confirm` is asked once the plan is known (it answers
/// true without asking when no one can be asked).
pub async fn upgrade<E: Engine>(
    engine: &E,
    opts: &UpgradeOptions,
    progress: &Progress,
    interrupt: &Interrupt,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Report {
    let mut report = Report::new("upgrade", &opts.container, Outcome::Refused);
    progress.step(&format!("checking {} on {}", opts.container, engine.endpoint()));
    let observed = match observe::observe(engine, opts).await {
        Ok(o) => o,
        Err(e) => return engine_failed(report, e),
    };
    let plan = match plan::plan(&observed, opts) {
        Ok(p) => p,
        Err(refusal) => {
            report.error = Some(refusal.reason);
            report.next_steps = refusal.fix;
            report.state = "nothing was changed".into();
            return report;
        }
    };
    let redactor = Redactor::from_env(&plan.secret_env);
    report.from = Some(plan.from.clone());
    report.to = Some(ImageInfo {
        reference: plan.target.clone(),
        ..ImageInfo::default()
    });
    if opts.dry_run {
        report.set_outcome(Outcome::DryRun);
        report.plan = Some(plan.to_json());
        report.plan_text = Some(redactor.text(&plan.to_human()));
        report.state = format!(
            "nothing was changed or pulled; {} runs {}",
            opts.container, plan.from.reference
        );
        return report;
    }
    if !confirm(&plan) {
        report.error = Some("not confirmed".into());
        report.state = "nothing was changed".into();
        return report;
    }

    let started = tokio::time::Instant::now();
    // Observe already looked for the target image on the engine.
    let missing = observed.target_image.is_none();
    let pull = match opts.pull {
        options::PullPolicy::Always => true,
        options::PullPolicy::Missing => missing,
        options::PullPolicy::Never => false,
    };
    if !pull && missing {
        report.set_outcome(Outcome::PullFailed);
        report.error = Some(format!(
            "{} is not on the engine and --pull never forbids pulling it",
            plan.target
        ));
        report.state = format!("nothing was changed; {} runs {}", opts.container, plan.from.reference);
        report.next_steps = vec![format!(
            "load the image (`docker load`) or pull it, or use --pull missing"
        )];
        return report;
    }
    if pull {
        progress.step(&format!("pulling {}", plan.target));
    } else {
        let policy = if opts.pull == options::PullPolicy::Never {
            "never"
        } else {
            "missing"
        };
        progress.step(&format!("using {} from the engine (--pull {policy})", plan.target));
    }
    let show = |p: crate::engine::PullProgress| progress.pull(&p);
    let pulling = async {
        if pull {
            engine.pull(&plan.target, &show).await
        } else {
            Ok(())
        }
    };
    let pulled = tokio::select! {
        r = timeout(opts.pull_timeout, pulling) => r,
        _ = interrupt.wait() => {
            progress.pull_done();
            report.set_outcome(Outcome::Interrupted);
            report.error = Some("interrupted during the pull".into());
            report.state = "nothing was changed".into();
            return report;
        }
    };
    progress.pull_done();
    let failure = match pulled {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(redactor.text(&e.to_string())),
        Err(_) => Some(format!(
            "the pull did not finish within {}s",
            opts.pull_timeout.as_secs()
        )),
    };
    if let Some(what) = failure {
        report.set_outcome(Outcome::PullFailed);
        report.error = Some(what);
        report.state = format!("nothing was changed; {} runs {}", opts.container, plan.from.reference);
        report.next_steps = vec![
            format!("check that the tag exists: {}", plan.target),
            format!(
                "check the registry is reachable and your credentials: `docker login {}`",
                crate::reference::registry(&plan.target)
            ),
        ];
        return report;
    }
    report.phases.push(crate::report::Phase {
        name: "pull".into(),
        duration_ms: started.elapsed().as_millis() as u64,
    });
    let new_image = engine.inspect_image(&plan.target).await.ok().flatten();
    let to = ImageInfo {
        reference: plan.target.clone(),
        id: new_image.as_ref().and_then(|i| i.id.clone()).unwrap_or_default(),
        digest: new_image.as_ref().and_then(|i| plan::digest_for(i, &plan.target)),
        version: plan::version_of_image(new_image.as_ref()).or_else(|| version_from_tag(&opts.tag)),
    };
    progress.note(&format!(
        "{} is {}{}",
        plan.target,
        to.digest.clone().unwrap_or_else(|| to.id.clone()),
        to.version
            .as_ref()
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default()
    ));
    report.to = Some(to.clone());
    if to.id == plan.from.id && !opts.force {
        report.set_outcome(Outcome::UpToDate);
        report.state = format!(
            "{} already runs {}; nothing was changed (use --force to recreate it anyway)",
            opts.container, plan.target
        );
        return report;
    }
    execute::Executor::new(engine, &plan, opts, progress, interrupt, report)
        .run()
        .await
}

fn version_from_tag(tag: &str) -> Option<String> {
    crate::node::version::Version::parse(tag).map(|_| tag.trim_start_matches('v').to_string())
}

/// The report for a run that could not talk to the engine: nothing changed.
pub fn engine_failed(mut report: Report, e: EngineError) -> Report {
    let outcome = if matches!(e, EngineError::Unreachable { .. }) {
        Outcome::Unreachable
    } else {
        Outcome::Failed
    };
    report.set_outcome(outcome);
    report.error = Some(e.to_string());
    report.state = "nothing was changed".into();
    if outcome == Outcome::Unreachable {
        report.next_steps = vec![
            "check that the Docker Engine runs (`docker version`)".into(),
            "point cl-maint at it with --host or DOCKER_HOST (unix:///var/run/docker.sock, tcp://host:2375)".into(),
        ];
    }
    report
}
