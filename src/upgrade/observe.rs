//! Observe: everything the plan needs, read from the engine. Read-only.

use bollard::models::{ContainerInspectResponse, ImageInspect};
use futures::StreamExt;

use crate::engine::{Engine, EngineResult, name_of, summary_name};
use crate::members::member::{self, LockRole, Member};
use crate::members::port::{self, NodePort};
use crate::members::sharing::holders_beside;
use crate::members::{Leftover, leftovers};
use crate::node::logs::{self, Event, Generation};

use super::image_version::{self, Source};
use super::options::UpgradeOptions;

/// How many lines of the primary's log to read, at most, to learn its lock
/// generation (the relevant lines come at startup).
const STARTUP_LINES: usize = 5000;

/// What the engine says, before anything changes.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The engine's endpoint, for messages.
    pub endpoint: String,
    /// How nodes on the engine are reached.
    pub reach: crate::probe::Reach,
    /// The primary, if it exists.
    pub primary: Option<ContainerInspectResponse>,
    /// The image the primary runs (by id), if the engine has it.
    pub primary_image: Option<ImageInspect>,
    /// The target image, if the engine already has it (informational).
    pub target_image: Option<ImageInspect>,
    /// The target reference.
    pub target: String,
    /// The primary's HTTP port inside its container, as its configuration
    /// says (6688 when nothing does, or there is no primary).
    pub node_port: NodePort,
    /// Containers left by an interrupted run.
    pub leftovers: Vec<Leftover>,
    /// Running containers publishing the standby port.
    pub standby_port_users: Vec<String>,
    /// Whether the standby port can be bound on this machine (`None` when the
    /// engine is not local, so this machine's ports say nothing).
    pub standby_port_free_here: Option<bool>,
    /// The lock generation the primary's log shows, if any.
    pub generation: Option<Generation>,
    /// The version the primary runs and where cl-maint learnt it: its
    /// start line (`Starting Chainlink Node X`), else its image.
    pub running_version: Option<(String, Source)>,
    /// What the primary does with the lock, as the node itself shows it,
    /// when it does not answer as the holder (`None`: it does, or there is
    /// no primary).
    pub primary_now: Option<Member>,
    /// The primary's last log lines, when it does not hold the lock.
    pub primary_tail: Vec<String>,
    /// When the primary does not hold the lock: the running containers
    /// sharing its database that do.
    pub holders: Vec<Member>,
}

/// Reads what the plan needs.
pub async fn observe<E: Engine>(engine: &E, opts: &UpgradeOptions) -> EngineResult<Observed> {
    let primary = engine.inspect_container(&opts.container).await?;
    let current_reference = primary
        .as_ref()
        .and_then(|p| p.config.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let repository = opts
        .image
        .clone()
        .unwrap_or_else(|| crate::reference::repository(&current_reference).to_string());
    let target = format!("{repository}:{}", opts.tag);
    let primary_image = match primary.as_ref().and_then(|p| p.image.clone()) {
        Some(id) => engine.inspect_image(&id).await?,
        None => None,
    };
    // Without a primary (and no --image) there is no repository to look at;
    // the plan refuses anyway.
    let target_image = if repository.is_empty() {
        None
    } else {
        engine.inspect_image(&target).await?
    };

    let leftovers = leftovers(engine, &opts.container).await?;
    let node_port = match &primary {
        Some(p) => port::node_port(engine, p).await,
        None => NodePort::default_port(),
    };

    let standby_port_users = port_users(engine, opts.standby_port).await?;
    let standby_port_free_here = port_free_here(engine, opts.standby_port);

    let (generation, logged_version) = match &primary {
        Some(p) => startup_facts(engine, p).await,
        None => (None, None),
    };
    let running_version = match (logged_version, &primary) {
        (Some(v), _) => Some((v, Source::StartLine)),
        (None, Some(p)) => {
            let tag = crate::reference::pull_parts(&current_reference).1;
            let owner = (!opts.dry_run).then(|| name_of(p));
            image_version::learn(
                engine,
                &current_reference,
                primary_image.as_ref(),
                tag,
                owner.as_deref(),
            )
            .await
        }
        (None, None) => None,
    };
    // A primary answering as the holder needs no more look; one that does
    // not is described (its log read) to say what it does, and who holds.
    let (mut primary_now, mut primary_tail, mut holders) = (None, Vec::new(), Vec::new());
    if let Some(p) = &primary
        && !answers_as_holder(engine, p, node_port.port).await
    {
        let now = member::describe(engine, "primary", p.clone()).await?;
        if now.lock != LockRole::Holding {
            primary_tail = crate::handoff::waits::last_lines(engine, &now.id).await;
            holders = holders_beside(engine, &now).await?;
            primary_now = Some(now);
        }
    }
    Ok(Observed {
        endpoint: engine.endpoint(),
        reach: engine.reach(),
        primary,
        primary_image,
        target_image,
        target,
        node_port,
        leftovers,
        standby_port_users,
        standby_port_free_here,
        generation,
        running_version,
        primary_now,
        primary_tail,
        holders,
    })
}

/// Whether the container answers `/health` as the lock holder where it
/// publishes the node's port.
async fn answers_as_holder<E: Engine>(engine: &E, c: &ContainerInspectResponse, node_port: u16) -> bool {
    let Ok(addr) = crate::members::port::node_addr(engine, c, node_port) else {
        return false;
    };
    crate::handoff::waits::answers(engine, &addr).await
}

/// The containers (running or not) that publish host port `port`.
pub async fn port_users<E: Engine>(engine: &E, port: u16) -> EngineResult<Vec<String>> {
    Ok(engine
        .list_all_containers()
        .await?
        .iter()
        .filter(|c| c.ports.iter().flatten().any(|p| p.public_port == Some(port)))
        .map(summary_name)
        .collect())
}

/// Whether `port` can be bound on this machine: `None` when the engine is
/// not local, so this machine's ports say nothing about it.
pub fn port_free_here<E: Engine>(engine: &E, port: u16) -> Option<bool> {
    engine
        .endpoint()
        .starts_with("unix://")
        .then(|| std::net::TcpListener::bind(("0.0.0.0", port)).is_ok())
}

/// The lock generation and version the primary's startup log shows.
pub async fn startup_facts<E: Engine>(
    engine: &E,
    primary: &ContainerInspectResponse,
) -> (Option<Generation>, Option<String>) {
    let id = primary.id.clone().unwrap_or_else(|| name_of(primary));
    let mut lines = engine.log_lines(&id, false).take(STARTUP_LINES);
    let (mut generation, mut version) = (None, None);
    while let Some(Ok(line)) = lines.next().await {
        if generation.is_none()
            && let Some(Event::Waiting(g)) = logs::classify(&line)
        {
            generation = Some(g);
        }
        if version.is_none() {
            version = crate::node::version::started_version(&line);
        }
        if generation.is_some() && version.is_some() {
            break;
        }
    }
    // The operator's `lock` setting replaces what the log shows.
    (logs::generation_override().or(generation), version)
}
