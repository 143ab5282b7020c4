//! Plan: `Observed` + options → the steps, or a refusal. Pure.

use crate::engine::state_of;
use crate::node::image::{digest_for, reference_of};
use crate::node::lock::{database_timeout, is_bolt, wait_timeout_for};
use crate::node::logs::Generation;
use crate::report::ImageInfo;
use crate::spec::{self, CloneRequest, CloneSpec};

use super::observe::Observed;
use super::options::UpgradeOptions;
pub use super::preflight::Refusal;
use super::preflight::{Mode, lock_check};
use super::shown::Shown;
use super::words;
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, old_name, standby_name};

/// The upgrade, step by step.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The primary's name.
    pub container: String,
    /// The primary's id.
    pub primary_id: String,
    /// Where the primary's HTTP port answers (`host:port`).
    pub primary_addr: String,
    /// Where the standby's HTTP port will answer.
    pub standby_addr: String,
    /// The image the primary runs.
    pub from: ImageInfo,
    /// The reference to pull.
    pub target: String,
    /// The temporary standby.
    pub standby: CloneSpec,
    /// The new primary (created after the old one is renamed).
    pub replacement: CloneSpec,
    /// The name the old primary gets while it is the rollback point.
    pub old_name: String,
    /// How the node is replaced.
    pub mode: Mode,
    /// The primary as it is, to create it again when the engine removed it
    /// on its stop (`docker run --rm`): the rollback point then.
    pub original: CloneSpec,
    /// Whether the engine removes the primary when it stops (`--rm`).
    pub auto_remove: bool,
    /// Whether the primary runs now (a node that is down is left down by a
    /// rollback).
    pub was_running: bool,
    /// What the operator should know before the run (shown in the plan,
    /// warned at the start of the run and kept in the report).
    pub warnings: Vec<String>,
    /// The lock generation, when known.
    pub generation: Option<Generation>,
    /// Whether the node's data directory (`ROOT`, where the bolt era's
    /// `db.bolt` lives) is on a volume or bind mount the clones share on the
    /// same engine: a bolt-era clone's `flock` then provably contends with
    /// the primary's, so its waiting line needs no watch (see `waits::settle`).
    pub lock_file_shared: bool,
    /// The steps, in words.
    pub steps: Vec<String>,
    /// Settings that differ from the primary's, in words (no secrets).
    pub changes: Vec<String>,
    /// Equivalent `docker` commands (secrets redacted).
    pub docker_commands: Vec<String>,
    /// The primary's environment, to scrub its secrets from output.
    pub secret_env: Vec<String>,
}

fn refuse(reason: String, fix: &[&str]) -> Refusal {
    Refusal {
        reason,
        fix: fix.iter().map(|f| f.to_string()).collect(),
        tail: Vec::new(),
    }
}

/// Decides what to do.
pub fn plan(observed: &Observed, opts: &UpgradeOptions) -> Result<Plan, Refusal> {
    let name = &opts.container;
    // First: what an interrupted run left (the node itself may then be
    // stopped, renamed or missing).
    if let Some(l) = observed.leftovers.first() {
        let list: Vec<String> = observed
            .leftovers
            .iter()
            .map(|l| format!("{} ({}, {})", l.name, l.role, l.state))
            .collect();
        return Err(refuse(
            format!(
                "an earlier cl-maint run on {name} was interrupted and left {}",
                list.join(", ")
            ),
            &[
                &format!(
                    "run `cl-maint recover --container {name}`: it brings the node back to one container holding the lock (finishing or undoing the interrupted run), then run the upgrade again"
                ),
                &format!(
                    "by hand: check which container holds the lock (`docker ps --filter label={LABEL_PRIMARY}={name}`, `docker logs`); if {name} runs and answers on its port, remove the leftover: `docker rm -f {}`",
                    l.name
                ),
            ],
        ));
    }
    let Some(primary) = &observed.primary else {
        return Err(refuse(
            format!("there is no container named {name} on {}", observed.endpoint),
            &["check the name with `docker ps -a`", "pass it with --container NAME"],
        ));
    };
    let node_port = &observed.node_port;
    let published = crate::members::port::published(primary, node_port.port);
    let host_network = crate::members::port::host_network(primary);
    let route = |who: &str, published: Option<(&str, u16)>, port: u16| {
        crate::probe::route(&observed.reach, who, published, port, host_network)
    };
    let primary_addr = route(name, published.as_ref().map(|(ip, port)| (ip.as_str(), *port)), node_port.port).map_err(|why| {
        refuse(
            format!("{why} (--probe direct), so cl-maint cannot confirm a handoff by its HTTP port"),
            &[
                "run without --probe direct: cl-maint then asks the node inside its container, through the Docker Engine",
                &format!(
                    "or publish the port where cl-maint can reach it (`-p 127.0.0.1:6688:{}`) and run cl-maint on that host",
                    node_port.port
                ),
            ],
        )
    })?;
    // The port the node holds on the host, which the standby must not take.
    let main_port = match (&published, host_network) {
        (Some((_, port)), _) => Some(*port),
        (None, true) => Some(node_port.port),
        (None, false) => None,
    };
    let mode = lock_check(observed, opts)?;
    let state = state_of(primary);
    if mode == Mode::Handoff && !state.running {
        return Err(refuse(
            format!("{name} is not running (state: {})", state.status),
            &[&format!(
                "start it first (`docker start {name}`) and check it holds the lock, then run the upgrade again"
            )],
        ));
    }
    if mode == Mode::Handoff {
        handoff_checks(observed, opts, primary, main_port, published.is_some() || host_network)?;
    }
    let Some(old_image) = observed.primary_image.as_ref().and_then(|i| i.config.clone()) else {
        return Err(refuse(
            format!("the image {name} runs is not on the engine any more, so its defaults cannot be told apart"),
            &[&format!(
                "pull the image {name} runs (`docker pull {}`) and run again",
                reference_of(primary)
            )],
        ));
    };

    let env = primary.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
    let data_dir = crate::spec::data_dir_on_host(primary);
    if mode == Mode::Handoff
        && observed.generation == Some(Generation::Bolt)
        && let Some(root) = env.iter().find_map(|e| e.strip_prefix("ROOT="))
        && data_dir.is_none()
    {
        return Err(refuse(
            format!(
                "{name}'s data directory ROOT={root} is not on a volume or bind mount: a clone would get a database of its own, and two nodes would run at once"
            ),
            &[
                "mount it from the host, as Chainlink's docs do (`-v ~/.chainlink:/chainlink` with ROOT=/chainlink), then run the upgrade again",
            ],
        ));
    }
    // The operator's settings are kept. Only a bolt-era handoff may need
    // one changed: each node must wait for the lock while the other holds
    // it, as long as the run's deadlines allow, not give up; the operator's
    // DATABASE_TIMEOUT is kept when it already lets it (0, or long enough).
    let (running_version, running_source) = match &observed.running_version {
        Some((v, source)) => (Some(v.clone()), Some(source.as_str().to_string())),
        None => (None, None),
    };
    let needed = opts.wait_timeout + opts.takeover_timeout + opts.stop_timeout;
    let raised = (mode == Mode::Handoff && is_bolt(observed.generation, running_version.as_deref()))
        .then(|| wait_timeout_for(&env, needed))
        .flatten();
    let set_env: Vec<(String, String)> = raised
        .iter()
        .map(|v| ("DATABASE_TIMEOUT".to_string(), v.clone()))
        .collect();
    let labels = |role: &str| {
        vec![
            (LABEL_PRIMARY.to_string(), name.clone()),
            (LABEL_ROLE.to_string(), role.to_string()),
        ]
    };
    // Where the standby listens and is asked (on the host's network, by
    // the node's own setting: the one change the handoff needs there).
    // The setting the standby reads is the target version's.
    let standby_version = super::version_from_tag(&opts.tag).or_else(|| running_version.clone());
    let seat = match crate::members::port::seat(
        &observed.reach,
        primary,
        &standby_name(name),
        node_port.port,
        opts.standby_port,
        standby_version.as_deref(),
    ) {
        Ok(seat) => seat,
        // A node that is down is recreated without a standby.
        Err(_) if mode == Mode::Recreate => crate::members::port::Seat::default(),
        Err(why) => {
            return Err(refuse(
                why,
                &[
                    "on the host's network: upgrade to a tag that names the version (`--tag 2.10.0`), or start the node so that its log shows its version, then run again",
                    "with --probe direct: run without it, so that cl-maint asks the standby through the engine",
                ],
            ));
        }
    };
    let mut standby_env = set_env.clone();
    standby_env.extend(seat.env.clone());
    let standby_addr = seat.addr.clone();
    let standby_req = CloneRequest {
        name: standby_name(name),
        image: observed.target.clone(),
        http_host_port: seat.publish,
        set_env: standby_env,
        labels: labels("standby"),
        beside: true,
    };
    let replacement_req = CloneRequest {
        name: name.clone(),
        image: observed.target.clone(),
        http_host_port: None,
        set_env,
        labels: Vec::new(),
        beside: false,
    };
    let original_req = CloneRequest {
        name: name.clone(),
        image: original_image(observed, primary),
        http_host_port: None,
        set_env: Vec::new(),
        labels: Vec::new(),
        beside: false,
    };
    let spec_error = |e: spec::SpecError| refuse(e.to_string(), &["report this as a bug in cl-maint"]);
    let mut standby = spec::clone_spec(primary, &old_image, &standby_req).map_err(spec_error)?;
    let replacement = spec::clone_spec(primary, &old_image, &replacement_req).map_err(spec_error)?;
    let original = spec::clone_spec(primary, &old_image, &original_req).map_err(spec_error)?;
    let auto_remove = primary
        .host_config
        .as_ref()
        .and_then(|h| h.auto_remove)
        .unwrap_or(false);
    let mut warnings = Vec::new();
    if auto_remove {
        // cl-maint's own temporary container must outlive its stop: a way
        // back may start it again.
        if let Some(host) = standby.body.host_config.as_mut() {
            host.auto_remove = Some(false);
        }
        standby
            .changes
            .push("not removed by the engine when it stops (--rm dropped): cl-maint removes it".into());
        warnings.push(format!(
            "{name} was started with --rm: when a supervisor (a systemd unit, a script) runs it as `docker run --rm`, it may start the OLD image again under the name {name} once the old container stops; change the image in the unit to {} before the upgrade (or stop the unit's restarts), or the node may end up on the old version",
            observed.target
        ));
    }

    let from = ImageInfo {
        reference: reference_of(primary),
        id: primary.image.clone().unwrap_or_default(),
        digest: observed
            .primary_image
            .as_ref()
            .and_then(|i| digest_for(i, &reference_of(primary))),
        version: running_version,
        version_source: running_source,
    };
    // The target's version from the tag here; from the image after the pull.
    if let Some(target) = super::version_from_tag(&opts.tag)
        && let Some(refusal) = version_refusal(name, from.version.as_deref(), &env, &target, opts.force)
    {
        return Err(refusal);
    }
    let old = old_name(name);
    let mut plan = Plan {
        container: name.clone(),
        primary_id: primary.id.clone().unwrap_or_default(),
        primary_addr,
        standby_addr,
        from,
        target: observed.target.clone(),
        standby,
        replacement,
        old_name: old,
        mode,
        original,
        auto_remove,
        was_running: state.running,
        warnings,
        generation: observed.generation,
        lock_file_shared: data_dir.is_some(),
        steps: Vec::new(),
        changes: Vec::new(),
        docker_commands: Vec::new(),
        secret_env: env,
    };
    let sketch = words::Sketch {
        container: &plan.container,
        old_name: &plan.old_name,
        from: &plan.from.reference,
        target: &plan.target,
        primary_addr: &plan.primary_addr,
        standby_addr: &plan.standby_addr,
        standby: &plan.standby,
        replacement: &plan.replacement,
        auto_remove,
        was_running: plan.was_running,
        present: observed.target_image.is_some(),
        seat: seat_words(&seat, opts.standby_port),
    };
    let raised = raised.map(|to| words::Raised {
        to,
        from: database_timeout(&plan.secret_env).map(str::to_string),
    });
    let words = match mode {
        Mode::Handoff => words::handoff(&sketch, opts, raised.as_ref()),
        Mode::Recreate => words::recreate(&sketch, opts),
    };
    (plan.steps, plan.changes, plan.docker_commands) = words;
    Ok(plan)
}

/// Where the standby listens, in words.
fn seat_words(seat: &crate::members::port::Seat, port: u16) -> String {
    match (&seat.publish, &seat.env) {
        (Some(_), _) => format!("on host port {port} (it publishes only the node's port)"),
        (None, Some((var, _))) => format!(
            "on port {port} of the host's network, which it shares with the node: {var} set on the standby only, the node's own setting for its port (two nodes cannot listen on one port); the node keeps its own"
        ),
        (None, None) => "on the node's networks with the node's aliases, publishing nothing as the node does (cl-maint asks it inside its container)".to_string(),
    }
}

/// Why the node (running version `running`, environment `env`) is not
/// moved to version `target`, before anything changes: a step back to an
/// older version, or a move to 2.x of a node configured by v1's
/// environment variables.
pub fn version_refusal(
    name: &str,
    running: Option<&str>,
    env: &[String],
    target: &str,
    force: bool,
) -> Option<Refusal> {
    let down = running.and_then(|running| crate::node::version::downgrade_refusal(running, target, force));
    let (reason, fix) = down.or_else(|| {
        crate::node::config::v2_refusal(env, target).map(|(reason, fix)| (format!("{name}: {reason}"), fix))
    })?;
    Some(Refusal {
        reason,
        fix,
        tail: Vec::new(),
    })
}

/// The reference to create the original from again: its own, while that
/// still names the image it runs (a moved tag would not).
fn original_image(observed: &Observed, primary: &bollard::models::ContainerInspectResponse) -> String {
    let reference = reference_of(primary);
    let id = primary.image.clone().unwrap_or_default();
    let tagged = observed
        .primary_image
        .as_ref()
        .and_then(|i| i.repo_tags.as_ref())
        .is_some_and(|tags| tags.contains(&reference));
    if tagged || id.is_empty() { reference } else { id }
}

/// The checks only a handoff needs: a free standby port on another port
/// than the node's (when the standby takes one on the host:
/// `standby_binds`), and a log the lock-wait line can be read from.
fn handoff_checks(
    observed: &Observed,
    opts: &UpgradeOptions,
    primary: &bollard::models::ContainerInspectResponse,
    main_port: Option<u16>,
    standby_binds: bool,
) -> Result<(), Refusal> {
    let name = &opts.container;
    if main_port == Some(opts.standby_port) {
        return Err(refuse(
            format!(
                "--standby-port {} is the port {name} itself publishes",
                opts.standby_port
            ),
            &["choose another port, for example --standby-port 6687"],
        ));
    }
    if let Some(user) = observed.standby_port_users.first().filter(|_| standby_binds) {
        return Err(refuse(
            format!("the standby port {} is taken by container {user}", opts.standby_port),
            &["choose a free port with --standby-port PORT"],
        ));
    }
    if standby_binds && observed.standby_port_free_here == Some(false) {
        return Err(refuse(
            format!("the standby port {} is in use on this host", opts.standby_port),
            &[
                "choose a free port with --standby-port PORT",
                &format!("see what holds it: `ss -ltnp 'sport = :{}'`", opts.standby_port),
            ],
        ));
    }
    let log_driver = primary
        .host_config
        .as_ref()
        .and_then(|h| h.log_config.as_ref())
        .and_then(|l| l.typ.clone());
    if log_driver.as_deref() == Some("none") {
        return Err(refuse(
            format!("{name} uses the log driver \"none\": cl-maint cannot see the lock-wait line of the new container"),
            &["use a log driver that `docker logs` can read (json-file, local, journald)"],
        ));
    }
    Ok(())
}

impl Plan {
    /// What the plan shows: its steps, the containers it would create, the
    /// settings that change and the equivalent commands.
    pub fn shown(&self) -> Shown<'_> {
        Shown {
            title: format!(
                "Plan for {} ({} -> {})",
                self.container, self.from.reference, self.target
            ),
            steps: &self.steps,
            containers: match self.mode {
                Mode::Handoff => vec![(&self.standby, "standby"), (&self.replacement, "new primary")],
                Mode::Recreate => vec![(&self.replacement, "new primary")],
            },
            changes: &self.changes,
            docker_commands: &self.docker_commands,
            generation: self.generation,
            warnings: &self.warnings,
        }
    }

    /// The plan as a JSON value (for `--dry-run --json`), without secret values.
    pub fn to_json(&self) -> serde_json::Value {
        self.shown().to_json()
    }

    /// The plan for people.
    pub fn to_human(&self) -> String {
        self.shown().to_human()
    }
}
