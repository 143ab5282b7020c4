//! The operator's own commands around an upgrade (`--before-upgrade`,
//! `--after-upgrade`): a database snapshot before the new version may
//! migrate it, a notification after. They run on the machine cl-maint runs
//! on, through `sh -c`, with what they need to know in their environment:
//!
//! | variable | value |
//! |---|---|
//! | `CL_MAINT_NODE` | the node's container name |
//! | `CL_MAINT_OLD_IMAGE`, `CL_MAINT_NEW_IMAGE` | the image references |
//! | `CL_MAINT_OLD_VERSION`, `CL_MAINT_NEW_VERSION` | the versions (empty when unknown) |
//! | `CL_MAINT_ENGINE`, `DOCKER_HOST` | the node's Docker Engine, so that `docker …` in the hook reaches it |
//!
//! `before-upgrade` runs once the new image is pulled and every check has
//! passed, before anything changes: when it fails, the upgrade is refused
//! (exit 3) and nothing changed. `after-upgrade` runs once the node runs
//! the new version; when it fails, the upgrade stays done and the report
//! warns. What both print goes into the report, redacted.

use std::process::Stdio;

use crate::events::Events;
use crate::interrupt::Interrupt;
pub use crate::report::HookRun;

/// The two hooks; `None` where the operator set none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Runs before any change.
    pub before: Option<String>,
    /// Runs after a successful upgrade.
    pub after: Option<String>,
}

/// What the hooks are told.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The node's container name.
    pub node: String,
    /// The image the node runs now, and its version.
    pub old: (String, Option<String>),
    /// The image it is upgraded to, and its version.
    pub new: (String, Option<String>),
    /// The node's Docker Engine (`unix://…`, `tcp://…`, `ssh://…`).
    pub engine: String,
}

impl Context {
    /// What the hooks of the upgrade `report` describes are told: its node
    /// and images, on the engine at `engine`.
    pub fn of(report: &crate::report::Report, engine: String) -> Context {
        let image = |i: Option<&crate::report::ImageInfo>| {
            i.map(|i| (i.reference.clone(), i.version.clone())).unwrap_or_default()
        };
        Context {
            node: report.container.clone(),
            old: image(report.from.as_ref()),
            new: image(report.to.as_ref()),
            engine,
        }
    }
}

/// What to do when the before-upgrade hook failed.
pub const FIX_BEFORE: &str =
    "read the hook's output in the report, fix it (or the snapshot it takes), and run the upgrade again";

/// Runs the before-upgrade hook into `report`: `Err` with what failed when
/// it did not succeed (the upgrade is then refused, nothing changed).
pub async fn before_upgrade(
    command: &str,
    ctx: &Context,
    report: &mut crate::report::Report,
    events: &Events,
    interrupt: &Interrupt,
) -> Result<(), String> {
    let run = run("before-upgrade", command, ctx, events, interrupt).await;
    let result = if run.succeeded() { Ok(()) } else { Err(run.outcome()) };
    report.hooks.push(run);
    result
}

/// The environment a hook gets.
pub fn environment(ctx: &Context) -> Vec<(&'static str, String)> {
    // An endpoint named after a context reads `HOST (context "x")`.
    let engine = ctx.engine.split(" (").next().unwrap_or_default().to_string();
    vec![
        ("CL_MAINT_NODE", ctx.node.clone()),
        ("CL_MAINT_OLD_IMAGE", ctx.old.0.clone()),
        ("CL_MAINT_NEW_IMAGE", ctx.new.0.clone()),
        ("CL_MAINT_OLD_VERSION", ctx.old.1.clone().unwrap_or_default()),
        ("CL_MAINT_NEW_VERSION", ctx.new.1.clone().unwrap_or_default()),
        ("CL_MAINT_ENGINE", engine.clone()),
        ("DOCKER_HOST", engine),
    ]
}

/// Runs hook `hook` (`command` through `sh -c`) to its end, or until an
/// interrupt (which kills it).
async fn run(hook: &str, command: &str, ctx: &Context, events: &Events, interrupt: &Interrupt) -> HookRun {
    let shown = events.redact(command);
    events.note(&format!("running {hook}: {shown}"));
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(environment(ctx))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let (exit_code, text) = match child {
        Err(e) => (None, format!("could not start `sh -c`: {e}")),
        Ok(child) => {
            tokio::select! {
                out = child.wait_with_output() => match out {
                    Ok(out) => (
                        out.status.code(),
                        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
                    ),
                    Err(e) => (None, format!("waiting for it failed: {e}")),
                },
                () = interrupt.wait() => (None, "interrupted: cl-maint stopped it".to_string()),
            }
        }
    };
    let run = HookRun {
        hook: hook.to_string(),
        command: shown,
        exit_code,
        output: events.redact(&text).lines().map(str::to_string).collect(),
    };
    events.note(&run.outcome());
    run
}

/// Runs the after-upgrade hook of an upgrade that succeeded: its run goes
/// into `report`, and a failure is a warning (the upgrade stays done).
pub async fn after_upgrade(
    command: &str,
    ctx: &Context,
    report: &mut crate::report::Report,
    events: &Events,
    interrupt: &Interrupt,
) {
    let run = run("after-upgrade", command, ctx, events, interrupt).await;
    if !run.succeeded() {
        let warning = format!("{}; the upgrade itself is done", run.outcome());
        events.warn(&warning);
        report.warnings.push(warning);
    }
    report.hooks.push(run);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            node: "chainlink".into(),
            old: ("repo:2.9.0".into(), Some("2.9.0".into())),
            new: ("repo:stable".into(), None),
            engine: "unix:///var/run/docker.sock (context \"default\")".into(),
        }
    }

    #[test]
    fn a_hook_is_told_the_node_the_images_and_the_engine() {
        let env = environment(&ctx());
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CL_MAINT_NODE"), Some("chainlink"));
        assert_eq!(get("CL_MAINT_NEW_VERSION"), Some(""), "unknown is empty");
        assert_eq!(get("DOCKER_HOST"), Some("unix:///var/run/docker.sock"));
    }

    #[tokio::test]
    async fn output_and_exit_code_are_kept_and_secrets_redacted() {
        let events = Events::new(crate::progress::Progress::new(true));
        events.secrets(&["DATABASE_URL=postgresql://u:hunter2@db/x".to_string()]);
        let run = run(
            "before-upgrade",
            "echo \"old=$CL_MAINT_OLD_VERSION\"; echo postgresql://u:hunter2@db/x >&2; exit 3",
            &ctx(),
            &events,
            &Interrupt::new(),
        )
        .await;
        assert_eq!(run.exit_code, Some(3));
        assert!(!run.succeeded());
        assert_eq!(run.output[0], "old=2.9.0");
        assert!(!run.output.join("\n").contains("hunter2"), "{run:?}");
        assert!(run.outcome().contains("failed (exit 3)"));
    }
}
