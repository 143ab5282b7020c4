//! A plan in words: its steps, the settings that change, and the equivalent
//! `docker` commands (secrets redacted later). Pure.

use crate::spec::CloneSpec;

use super::options::{PullPolicy, UpgradeOptions};
use super::shown::run_commands;

/// Steps, changes and docker commands.
pub type Words = (Vec<String>, Vec<String>, Vec<String>);

/// A bolt-era `DATABASE_TIMEOUT` raised so that the nodes can wait their
/// turn: to what, and from what the operator set (`None`: unset).
pub struct Raised {
    /// The value set.
    pub to: String,
    /// The operator's value.
    pub from: Option<String>,
}

/// What a plan's words are made of.
pub struct Sketch<'a> {
    /// The node's container name.
    pub container: &'a str,
    /// The name the old container gets while it is the rollback point.
    pub old_name: &'a str,
    /// The image the node runs.
    pub from: &'a str,
    /// The image it is upgraded to.
    pub target: &'a str,
    /// Where the node answers.
    pub primary_addr: &'a str,
    /// Where the standby answers.
    pub standby_addr: &'a str,
    /// The standby.
    pub standby: &'a CloneSpec,
    /// The new node.
    pub replacement: &'a CloneSpec,
    /// Whether the engine removes the old container on its stop (`--rm`).
    pub auto_remove: bool,
    /// Whether the node runs now.
    pub was_running: bool,
    /// Whether the engine has the target image already.
    pub present: bool,
    /// Where the standby listens, in words (`on host port 6687`).
    pub seat: String,
}

/// How the old container is stopped, in words and as a command.
fn stop(p: &Sketch<'_>, opts: &UpgradeOptions) -> (String, String) {
    let name = p.container;
    if opts.kill {
        (
            format!("kill {name} (SIGKILL, as the documented procedure does)"),
            format!("docker kill {name}"),
        )
    } else {
        let secs = opts.stop_timeout.as_secs();
        (
            format!("stop {name} gracefully (SIGTERM, up to {secs}s)"),
            format!("docker stop -t {secs} {name}"),
        )
    }
}

/// What happens to the old container once it stopped.
fn set_aside(p: &Sketch<'_>) -> String {
    let (name, old) = (p.container, p.old_name);
    if p.auto_remove {
        format!(
            "rename {name} to {old} (kept stopped as the rollback point); the engine removes it on its stop (--rm), so cl-maint keeps its settings to create it again for a rollback"
        )
    } else {
        format!("rename {name} to {old} (kept stopped as the rollback point)")
    }
}

/// Chainlink's procedure: standby, handoff, recreate, hand back.
pub fn handoff(p: &Sketch<'_>, opts: &UpgradeOptions, raised: Option<&Raised>) -> Words {
    let (name, old) = (p.container, p.old_name);
    let (stop, stop_command) = stop(p, opts);
    let (pull_step, pulls) = pull_step(opts.pull, p.target, p.present);
    let steps = vec![
        pull_step,
        format!(
            "create and start the standby {} {} with the new image",
            p.standby.name, p.seat
        ),
        format!(
            "wait (up to {}s) until the standby logs that it is waiting for the lock",
            opts.wait_timeout.as_secs()
        ),
        format!("{stop}; the standby takes the lock"),
        format!(
            "confirm the standby answers HTTP on {} (up to {}s)",
            p.standby_addr,
            opts.takeover_timeout.as_secs()
        ),
        set_aside(p),
        format!(
            "create and start the new {name} on {} with the new image; wait for its lock-wait line",
            p.primary_addr
        ),
        format!(
            "stop the standby gracefully; confirm {name} answers HTTP on {}",
            p.primary_addr
        ),
        if opts.keep_old {
            format!("remove the standby; keep {old}")
        } else {
            format!("remove the standby and {old}")
        },
    ];
    let mut changes = vec![format!("image: {} -> {}", p.from, p.target)];
    if let Some(r) = raised {
        let was = r
            .from
            .as_deref()
            .map_or("unset: 500ms".to_string(), |v| format!("was {v}"));
        changes.push(format!(
            "DATABASE_TIMEOUT={} ({was}) on the standby and the new {name}: a bolt-era node waits only that long for the lock, and each must wait while the other holds it, up to the run's deadlines (wait + takeover + stop)",
            r.to
        ));
    }
    changes.push(format!("the standby listens {}", p.seat));
    if p.auto_remove {
        changes.push("the standby is not started with --rm: cl-maint removes it itself".into());
    }
    let mut commands = Vec::new();
    if pulls {
        commands.push(format!("docker pull {}", p.target));
    }
    commands.extend(run_commands(p.standby));
    commands.push(format!(
        "docker logs -f {}   # until it says it is waiting for the lock",
        p.standby.name
    ));
    commands.push(stop_command);
    if !p.auto_remove {
        commands.push(format!("docker rename {name} {old}"));
    }
    commands.extend(run_commands(p.replacement));
    commands.push(format!(
        "docker stop -t {} {}",
        opts.stop_timeout.as_secs(),
        p.standby.name
    ));
    commands.push(format!("docker rm {}", p.standby.name));
    if !opts.keep_old && !p.auto_remove {
        commands.push(format!("docker rm {old}"));
    }
    (steps, changes, commands)
}

/// `--force` on a node that is down: recreate it in place and confirm it
/// takes the lock and serves.
pub fn recreate(p: &Sketch<'_>, opts: &UpgradeOptions) -> Words {
    let (name, old) = (p.container, p.old_name);
    let (stop, stop_command) = stop(p, opts);
    let (pull_step, pulls) = pull_step(opts.pull, p.target, p.present);
    let mut steps = vec![pull_step];
    if p.was_running {
        steps.push(format!("{stop} (it holds no lock and serves nothing)"));
    }
    steps.extend([
        set_aside(p),
        format!("create and start the new {name} on {} with the new image", p.primary_addr),
        format!(
            "confirm it takes the lock and answers HTTP on {} (up to {}s); otherwise remove it and put {name} back as it was",
            p.primary_addr,
            opts.takeover_timeout.as_secs()
        ),
        if opts.keep_old {
            format!("keep {old}")
        } else {
            format!("remove {old}")
        },
    ]);
    let changes = vec![
        format!("image: {} -> {}", p.from, p.target),
        format!("{name} is recreated in place, with no standby: the node is down already (--force)"),
    ];
    let mut commands = Vec::new();
    if pulls {
        commands.push(format!("docker pull {}", p.target));
    }
    if p.was_running {
        commands.push(stop_command);
    }
    if !p.auto_remove {
        commands.push(format!("docker rename {name} {old}"));
    }
    commands.extend(run_commands(p.replacement));
    if !opts.keep_old && !p.auto_remove {
        commands.push(format!("docker rm {old}"));
    }
    (steps, changes, commands)
}

/// The first step of an upgrade to `target` under the pull policy, in words,
/// and whether it pulls (`present`: the engine has the image already).
pub fn pull_step(policy: PullPolicy, target: &str, present: bool) -> (String, bool) {
    let step = match policy {
        PullPolicy::Always => format!("pull {target}"),
        PullPolicy::Missing if present => format!("use {target} (on the engine already; --pull missing)"),
        PullPolicy::Missing => format!("pull {target} (not on the engine)"),
        PullPolicy::Never => format!("use {target} from the engine (--pull never)"),
    };
    let pulls = policy == PullPolicy::Always || (policy == PullPolicy::Missing && !present);
    (step, pulls)
}
