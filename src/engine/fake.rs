//! A stateful fake engine for unit tests of step ordering, rollback and fault
//! injection.
//!
//! It models what the executor relies on: Chainlink nodes sharing ONE database
//! lock. A starting node takes the lock when it is free (and answers HTTP once
//! it has migrated and booted); otherwise it logs a lock-wait line and waits.
//! When the holder stops gracefully the lock passes to the earliest waiter
//! after [`FakeEngine::set_handover`]; after a kill or a crash nothing is
//! released and the lease expires after 10 s. The database keeps the newest
//! version that held the lock: an older node that takes it later logs the
//! downgrade refusal and exits 1.
//!
//! Time is tokio's (paused in tests). Timed events (a node's lock attempt after
//! its startup, a lock passing, a crash) are applied lazily and in order each
//! time the fake is touched, so no background task runs and every run is
//! deterministic. Every mutating call is recorded ([`FakeEngine::calls`]),
//! faults can be injected ([`FakeEngine::fail_on`], [`FakeEngine::fail_nth`]),
//! and after every state change the fake records any moment when two nodes
//! were active at once ([`FakeEngine::two_holders`], [`FakeEngine::two_active`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerSummary, HostConfig, ImageInspect};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::json;
use tokio::time::Instant;

use super::{Engine, EngineError, EngineResult, PullProgress};
use crate::node::HTTP_PORT;
use crate::node::version::Version;
use crate::probe::{Answer, NoAnswer};
use crate::spec::CloneSpec;

/// The lock-wait line of the lease era (v1.1+ and all of v2).
pub const LEASE_WAITING: &str = "[INFO]  Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire... pg/lease_lock.go:183 tryCount=0";
/// The bolt era's line, printed before every lock attempt (even a successful one).
pub const BOLT_WAITING: &str = "[INFO]  Waiting indefinitely for lock on db file /chainlink/db.bolt store/store.go:58";
/// What a node that exits at once logs.
pub const FATAL_CONFIG: &str = "[FATAL] invalid configuration: fake failure at startup";
/// What a node that crashes after taking the lock logs.
pub const CRASHED: &str = "[FATAL] panic: fake crash after taking the lock";
const SHUTTING_DOWN: &str = "[INFO]  Shutting down due to terminated signal received...";
const STOPPED_WAITING: &str = "[ERROR] opening db: failed to take initial lease on database: stopped";
/// How long a killed or crashed holder's lease keeps the lock taken.
const LEASE: Duration = Duration::from_secs(10);
/// How often a followed log is polled for new lines.
const POLL: Duration = Duration::from_millis(10);

/// Which database lock a node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockUse {
    /// The shared lock (a correctly cloned node).
    Shared,
    /// A database of its own: it takes its own lock at once, so it is a
    /// second active node beside the holder of the shared lock.
    Own,
    /// Waits for the shared lock and never takes it (a stuck node).
    Never,
}

/// How a node on one image (or one container name) behaves.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Its version (`2.10.0`), compared with the database's.
    pub version: String,
    /// The lock it uses.
    pub lock: LockUse,
    /// Exits with this code right after starting, touching nothing.
    pub exits_at_once: Option<i64>,
    /// Its lock-wait line; `None`: it waits silently.
    pub wait_line: Option<String>,
    /// Prints the wait line before every lock attempt, even one that succeeds
    /// (the bolt era does).
    pub wait_line_first: bool,
    /// From start to its first lock attempt.
    pub startup: Duration,
    /// How long it migrates after taking the lock, when its version is newer
    /// than the database's.
    pub migration: Duration,
    /// Answers `/health` with 204 while it migrates (v2.15+); otherwise
    /// nothing listens until it has booted.
    pub answers_204_while_migrating: bool,
    /// From the end of its migrations to its real server answering.
    pub boot: Duration,
    /// The `/health` status its real server answers with.
    pub health: u16,
    /// Crashes (exit 1, lock not released) this long after taking the lock.
    pub crash_after_lock: Option<Duration>,
    /// How long a graceful stop takes; a stop with a shorter grace kills it.
    pub shutdown: Duration,
}

impl Behaviour {
    /// A well-behaved lease-era node of `version`: instant startup and boot.
    pub fn node(version: &str) -> Behaviour {
        Behaviour {
            version: version.to_string(),
            lock: LockUse::Shared,
            exits_at_once: None,
            wait_line: Some(LEASE_WAITING.to_string()),
            wait_line_first: false,
            startup: Duration::ZERO,
            migration: Duration::ZERO,
            answers_204_while_migrating: false,
            boot: Duration::ZERO,
            health: 200,
            crash_after_lock: None,
            shutdown: Duration::ZERO,
        }
    }

    /// A well-behaved bolt-era node of `version`.
    pub fn bolt(version: &str) -> Behaviour {
        Behaviour {
            wait_line: Some(BOLT_WAITING.to_string()),
            wait_line_first: true,
            ..Behaviour::node(version)
        }
    }
}

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Created,
    Starting {
        attempt_at: Instant,
    },
    Waiting {
        since: Instant,
    },
    Holding {
        migrated_at: Instant,
        answers_at: Instant,
        crash_at: Option<Instant>,
    },
    OwnDb {
        answers_at: Instant,
    },
    Exited,
}

#[derive(Clone, Debug)]
struct Container {
    id: String,
    name: String,
    image: String,
    labels: HashMap<String, String>,
    host_config: Option<HostConfig>,
    addr: Option<String>,
    behaviour: Behaviour,
    phase: Phase,
    exit_code: Option<i64>,
    log: Vec<String>,
}

impl Container {
    fn running(&self) -> bool {
        !matches!(self.phase, Phase::Created | Phase::Exited)
    }

    fn holds(&self) -> bool {
        matches!(self.phase, Phase::Holding { .. })
    }

    fn active(&self) -> bool {
        matches!(self.phase, Phase::Holding { .. } | Phase::OwnDb { .. })
    }

    fn queued(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. }) && self.behaviour.lock == LockUse::Shared
    }

    fn status(&self) -> &'static str {
        match self.phase {
            Phase::Created => "created",
            Phase::Exited => "exited",
            _ => "running",
        }
    }
}

/// A container as a test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    /// Its id.
    pub id: String,
    /// Its name now.
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    /// Whether it runs.
    pub running: bool,
    /// Whether it holds the shared lock.
    pub holds_lock: bool,
    /// The exit code of its last run.
    pub exit_code: Option<i64>,
    /// Everything it logged.
    pub log: Vec<String>,
}

#[derive(Clone, Debug)]
struct Fault {
    verb: String,
    name: Option<String>,
    nth: Option<usize>,
}

enum Event {
    Attempt,
    Grant,
    Crash,
}

#[derive(Debug)]
struct World {
    t0: Instant,
    containers: Vec<Container>,
    next_id: u64,
    images: HashMap<String, Behaviour>,
    by_name: HashMap<String, Behaviour>,
    free_at: Instant,
    handover: Duration,
    db_version: Option<String>,
    calls: Vec<String>,
    counts: HashMap<String, usize>,
    faults: Vec<Fault>,
    two_holders: Vec<String>,
    two_active: Vec<String>,
    last_active: Vec<String>,
}

fn api(action: String, status: u16, message: String) -> EngineError {
    EngineError::Api {
        action,
        status: Some(status),
        message,
    }
}

fn image_id(reference: &str) -> String {
    format!("sha256:fake-{reference}")
}

fn older(version: &str, than: &str) -> bool {
    matches!((Version::parse(version), Version::parse(than)), (Some(v), Some(t)) if v < t)
}

/// An engine document from JSON (the fake's documents always deserialise).
fn doc<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> EngineResult<T> {
    serde_json::from_value(value).map_err(|e| api("build a fake document".into(), 500, e.to_string()))
}

impl World {
    fn find(&self, reference: &str) -> Option<usize> {
        let all = || self.containers.iter();
        all()
            .position(|c| c.id == reference)
            .or_else(|| all().position(|c| c.name == reference))
    }

    /// Records a call of `verb` on `name` (`text` in the call log unless
    /// empty) and fails it when an injected fault matches.
    fn call(&mut self, verb: &str, name: &str, text: String) -> EngineResult<()> {
        let n = {
            let count = self.counts.entry(verb.to_string()).or_default();
            *count += 1;
            *count
        };
        let logged = !text.is_empty();
        if logged {
            self.calls.push(text);
        }
        let hit = self
            .faults
            .iter()
            .any(|f| f.verb == verb && f.name.as_deref().is_none_or(|x| x == name) && f.nth.is_none_or(|x| x == n));
        let (action, message) = (format!("{verb} container {name}"), "injected fault".to_string());
        match (hit, logged) {
            (false, _) => Ok(()),
            (true, true) => Err(self.failed(action, 500, message)),
            (true, false) => Err(api(action, 500, message)),
        }
    }

    /// Records a call of `verb` on the container `reference` (named by its
    /// current name in the call log, through `text`); `None` when there is no
    /// such container.
    fn target(
        &mut self,
        verb: &str,
        reference: &str,
        text: impl FnOnce(&str) -> String,
    ) -> EngineResult<Option<usize>> {
        let found = self.find(reference);
        let name = found.map_or(reference.to_string(), |i| self.containers[i].name.clone());
        self.call(verb, &name, text(&name))?;
        Ok(found)
    }

    /// Marks the last recorded call as failed and returns its error.
    fn failed(&mut self, action: String, status: u16, message: String) -> EngineError {
        if let Some(last) = self.calls.last_mut() {
            last.push_str(" (failed)");
        }
        api(action, status, message)
    }

    fn not_found(&mut self, verb: &str, reference: &str) -> EngineError {
        let message = format!("No such container: {reference}");
        self.failed(format!("{verb} container {reference}"), 404, message)
    }

    /// Applies every timed event due by `now`, in time order.
    fn settle(&mut self, now: Instant) {
        while let Some((at, i, event)) = self.next_event()
            && at <= now
        {
            match event {
                Event::Attempt => self.attempt(i, at),
                Event::Grant => self.grant(i, at),
                Event::Crash => {
                    self.containers[i].log.push(CRASHED.to_string());
                    self.exit(i, 1);
                    self.free_at = at + LEASE;
                }
            }
            self.check(at);
        }
    }

    fn next_event(&self) -> Option<(Instant, usize, Event)> {
        let held = self.containers.iter().any(Container::holds);
        let mut best: Option<(Instant, usize, Event)> = None;
        for (i, c) in self.containers.iter().enumerate() {
            let due = match c.phase {
                Phase::Starting { attempt_at } => Some((attempt_at, Event::Attempt)),
                Phase::Holding { crash_at: Some(at), .. } => Some((at, Event::Crash)),
                Phase::Waiting { since } if !held && c.queued() => Some((since.max(self.free_at), Event::Grant)),
                _ => None,
            };
            if let Some((at, event)) = due
                && best.as_ref().is_none_or(|b| at < b.0)
            {
                best = Some((at, i, event));
            }
        }
        best
    }

    fn attempt(&mut self, i: usize, at: Instant) {
        let b = self.containers[i].behaviour.clone();
        let line = b.wait_line.clone().into_iter();
        if b.wait_line_first {
            self.containers[i].log.extend(line.clone());
        }
        let free = !self.containers.iter().any(|c| c.holds() || c.queued()) && self.free_at <= at;
        match b.lock {
            LockUse::Own => {
                self.containers[i].phase = Phase::OwnDb {
                    answers_at: at + b.boot,
                }
            }
            LockUse::Shared if free => self.grant(i, at),
            _ => {
                if !b.wait_line_first {
                    self.containers[i].log.extend(line);
                }
                self.containers[i].phase = Phase::Waiting { since: at };
            }
        }
    }

    fn grant(&mut self, i: usize, at: Instant) {
        let b = self.containers[i].behaviour.clone();
        if let Some(db) = self.db_version.clone()
            && older(&b.version, &db)
        {
            self.containers[i].log.push(format!(
                "[FATAL] Application version ({}) is lower than database version ({db}). Only Chainlink {db} or higher can be run on this database",
                b.version
            ));
            self.exit(i, 1);
            self.free_at = at + self.handover;
            return;
        }
        let migrates = self.db_version.as_deref().is_none_or(|db| older(db, &b.version));
        if migrates {
            self.db_version = Some(b.version.clone());
        }
        let migrated_at = at + if migrates { b.migration } else { Duration::ZERO };
        self.containers[i].phase = Phase::Holding {
            migrated_at,
            answers_at: migrated_at + b.boot,
            crash_at: b.crash_after_lock.map(|d| at + d),
        };
    }

    fn exit(&mut self, i: usize, code: i64) {
        self.containers[i].phase = Phase::Exited;
        self.containers[i].exit_code = Some(code);
    }

    /// Ends container `i`'s run: gracefully (SIGTERM, the lock is released)
    /// or not (SIGKILL, the lease runs out).
    fn halt(&mut self, i: usize, at: Instant, graceful: bool) {
        let c = &mut self.containers[i];
        let code = match (c.phase, graceful) {
            (Phase::Created | Phase::Exited, _) => return,
            (_, false) => 137,
            (Phase::Waiting { .. }, true) => {
                c.log.push(STOPPED_WAITING.to_string());
                1
            }
            (_, true) => {
                c.log.push(SHUTTING_DOWN.to_string());
                0
            }
        };
        if c.holds() {
            self.free_at = at + if graceful { self.handover } else { LEASE };
        }
        self.exit(i, code);
        self.check(at);
    }

    /// Records any moment at which two nodes were active at once.
    fn check(&mut self, at: Instant) {
        let names = |f: fn(&Container) -> bool| -> Vec<String> {
            self.containers
                .iter()
                .filter(|c| f(c))
                .map(|c| c.name.clone())
                .collect()
        };
        let (holders, active) = (names(Container::holds), names(Container::active));
        let when = format!("{:.3}s", (at - self.t0).as_secs_f64());
        if holders.len() > 1 {
            self.two_holders.push(format!("{when}: {}", holders.join(", ")));
        }
        if active.len() > 1 && active != self.last_active {
            self.two_active.push(format!("{when}: {}", active.join(", ")));
        }
        self.last_active = active;
    }
}

/// The fake engine (cheap to share: the state is behind an `Arc`).
#[derive(Clone, Debug)]
pub struct FakeEngine {
    world: Arc<Mutex<World>>,
}

impl Default for FakeEngine {
    fn default() -> Self {
        FakeEngine::new()
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeEngine {
    /// An engine with no images and no containers; a gracefully released
    /// lock passes at once.
    pub fn new() -> FakeEngine {
        let now = Instant::now();
        let world = World {
            t0: now,
            containers: Vec::new(),
            next_id: 1,
            images: HashMap::new(),
            by_name: HashMap::new(),
            free_at: now,
            handover: Duration::ZERO,
            db_version: None,
            calls: Vec::new(),
            counts: HashMap::new(),
            faults: Vec::new(),
            two_holders: Vec::new(),
            two_active: Vec::new(),
            last_active: Vec::new(),
        };
        FakeEngine {
            world: Arc::new(Mutex::new(world)),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        let mut w = lock(&self.world);
        w.settle(Instant::now());
        w
    }

    /// Makes `reference` known (pullable, creatable) with this behaviour.
    pub fn image(&self, reference: &str, behaviour: Behaviour) {
        self.world().images.insert(reference.to_string(), behaviour);
    }

    /// Containers created under `name` from now on behave so, whatever their image.
    pub fn behave_named(&self, name: &str, behaviour: Behaviour) {
        self.world().by_name.insert(name.to_string(), behaviour);
    }

    /// How long after a graceful release a waiting node takes the lock (a
    /// lease-era node's retry interval).
    pub fn set_handover(&self, delay: Duration) {
        self.world().handover = delay;
    }

    /// Adds a running node `name` (id `id`) on the known image `image`,
    /// holding the lock and answering HTTP at `addr` (crashing as its
    /// behaviour says); the database gets its version.
    pub fn seed_holder(&self, name: &str, id: &str, image: &str, addr: &str) {
        let now = Instant::now();
        let mut w = self.world();
        let behaviour = w.images.get(image).cloned().unwrap_or_else(|| Behaviour::node("0.0.0"));
        w.db_version = Some(behaviour.version.clone());
        let phase = Phase::Holding {
            migrated_at: now,
            answers_at: now,
            crash_at: behaviour.crash_after_lock.map(|d| now + d),
        };
        let log = vec![format!(
            "[INFO]  Starting Chainlink Node {} at commit fake",
            behaviour.version
        )];
        w.containers.push(Container {
            id: id.to_string(),
            name: name.to_string(),
            image: image.to_string(),
            labels: HashMap::new(),
            host_config: None,
            addr: Some(addr.to_string()),
            behaviour,
            phase,
            exit_code: None,
            log,
        });
        w.check(now);
    }

    /// Fails every call of `verb` (`create`, `start`, `stop`, `kill`,
    /// `rename`, `remove`, `pull`, `inspect`) on the container named `name`.
    pub fn fail_on(&self, verb: &str, name: &str) {
        let (verb, name) = (verb.to_string(), Some(name.to_string()));
        self.world().faults.push(Fault { verb, name, nth: None });
    }

    /// Fails the `nth` call (counting from 1) of `verb`, whatever its target.
    pub fn fail_nth(&self, verb: &str, nth: usize) {
        let verb = verb.to_string();
        self.world().faults.push(Fault {
            verb,
            name: None,
            nth: Some(nth),
        });
    }

    /// Every mutating call so far, in order (`stop chainlink`, `rename a b`,
    /// `kill a SIGKILL`); a failed call ends in ` (failed)`.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    /// Each moment two containers held the shared lock at once (never, in a
    /// consistent fake).
    pub fn two_holders(&self) -> Vec<String> {
        self.world().two_holders.clone()
    }

    /// Each moment two nodes were active at once, counting a node on a
    /// database of its own.
    pub fn two_active(&self) -> Vec<String> {
        self.world().two_active.clone()
    }

    /// The newest version that held the lock.
    pub fn db_version(&self) -> Option<String> {
        self.world().db_version.clone()
    }

    /// Every container now, in creation order.
    pub fn containers(&self) -> Vec<ContainerView> {
        let view = |c: &Container| ContainerView {
            id: c.id.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            running: c.running(),
            holds_lock: c.holds(),
            exit_code: c.exit_code,
            log: c.log.clone(),
        };
        self.world().containers.iter().map(view).collect()
    }

    /// The container with this id or name now.
    pub fn container(&self, reference: &str) -> Option<ContainerView> {
        let all = self.containers();
        let i = all
            .iter()
            .position(|c| c.id == reference)
            .or_else(|| all.iter().position(|c| c.name == reference))?;
        all.into_iter().nth(i)
    }

    /// The name of the container holding the shared lock now.
    pub fn holder(&self) -> Option<String> {
        self.containers().into_iter().find(|c| c.holds_lock).map(|c| c.name)
    }

    /// Summaries of the containers carrying `label` (`key` or `key=value`), or all.
    fn summaries(&self, label: Option<&str>) -> EngineResult<Vec<ContainerSummary>> {
        let w = self.world();
        let wanted = |c: &&Container| match label.map(|l| l.split_once('=').unwrap_or((l, ""))) {
            None => true,
            Some((k, "")) => c.labels.contains_key(k),
            Some((k, v)) => c.labels.get(k).is_some_and(|x| x == v),
        };
        w.containers
            .iter()
            .filter(wanted)
            .map(|c| {
                let port = c.addr.as_ref().and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok());
                let ports: Vec<_> = port
                    .filter(|_| c.running())
                    .map(|p| json!({"PrivatePort": HTTP_PORT, "PublicPort": p, "Type": "tcp"}))
                    .into_iter()
                    .collect();
                doc(json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                    "Labels": c.labels, "State": c.status(), "Ports": ports}))
            })
            .collect()
    }
}

/// The address a spec publishes the node's HTTP port on, as the plan computes it.
fn published_addr(host: Option<&HostConfig>) -> Option<String> {
    let bindings = host?.port_bindings.as_ref()?.get(&format!("{HTTP_PORT}/tcp"))?;
    let b = bindings.as_ref()?.first()?;
    let ip = b.host_ip.as_deref().filter(|ip| !["", "0.0.0.0", "::"].contains(ip));
    Some(format!("{}:{}", ip.unwrap_or("127.0.0.1"), b.host_port.as_deref()?))
}

impl Engine for FakeEngine {
    fn endpoint(&self) -> String {
        "fake://engine".to_string()
    }

    fn published_host(&self) -> String {
        "127.0.0.1".to_string()
    }

    async fn inspect_container(&self, name: &str) -> EngineResult<Option<ContainerInspectResponse>> {
        let mut w = self.world();
        let Some(c) = w.target("inspect", name, |_| String::new())?.map(|i| &w.containers[i]) else {
            return Ok(None);
        };
        doc(json!({
            "Id": c.id, "Name": format!("/{}", c.name), "Image": image_id(&c.image),
            "Config": {"Image": c.image, "Labels": c.labels},
            "HostConfig": c.host_config,
            "State": {"Status": c.status(), "Running": c.running(), "ExitCode": c.exit_code.unwrap_or(0)},
        }))
    }

    async fn inspect_image(&self, reference: &str) -> EngineResult<Option<ImageInspect>> {
        let w = self.world();
        let found = w
            .images
            .iter()
            .find(|(r, _)| *r == reference || image_id(r) == reference);
        let Some((r, b)) = found else {
            return Ok(None);
        };
        doc(json!({"Id": image_id(r), "RepoTags": [r],
            "Config": {"Labels": {"org.opencontainers.image.version": b.version}}}))
    }

    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        self.summaries(Some(label))
    }

    async fn list_all_containers(&self) -> EngineResult<Vec<ContainerSummary>> {
        self.summaries(None)
    }

    async fn pull(&self, reference: &str, progress: &(dyn Fn(PullProgress) + Send + Sync)) -> EngineResult<()> {
        {
            let mut w = self.world();
            w.call("pull", reference, format!("pull {reference}"))?;
            if !w.images.contains_key(reference) {
                let message = format!("manifest for {reference} not found");
                return Err(w.failed(format!("pull {reference}"), 404, message));
            }
        }
        progress(PullProgress {
            status: "Pull complete".to_string(),
            ..PullProgress::default()
        });
        Ok(())
    }

    async fn create(&self, spec: &CloneSpec) -> EngineResult<String> {
        let mut w = self.world();
        let name = spec.name.clone();
        w.call("create", &name, format!("create {name}"))?;
        let action = format!("create container {name}");
        if w.find(&name).is_some() {
            return Err(w.failed(action, 409, format!("the name {name} is already in use")));
        }
        let image = spec.body.image.clone().unwrap_or_default();
        let Some(behaviour) = w.by_name.get(&name).or_else(|| w.images.get(&image)).cloned() else {
            return Err(w.failed(action, 404, format!("No such image: {image}")));
        };
        let id = format!("fake-{:04}", w.next_id);
        w.next_id += 1;
        let host_config = spec.body.host_config.clone();
        w.containers.push(Container {
            id: id.clone(),
            name,
            image,
            labels: spec.body.labels.clone().unwrap_or_default(),
            addr: published_addr(host_config.as_ref()),
            host_config,
            behaviour,
            phase: Phase::Created,
            exit_code: None,
            log: Vec::new(),
        });
        Ok(id)
    }

    async fn start(&self, id: &str) -> EngineResult<()> {
        let now = Instant::now();
        let mut w = self.world();
        let Some(i) = w.target("start", id, |n| format!("start {n}"))? else {
            return Err(w.not_found("start", id));
        };
        if w.containers[i].running() {
            return Ok(());
        }
        let (name, addr) = (w.containers[i].name.clone(), w.containers[i].addr.clone());
        if addr.is_some() && w.containers.iter().any(|c| c.running() && c.addr == addr) {
            let message = format!(
                "Bind for {} failed: port is already allocated",
                addr.unwrap_or_default()
            );
            return Err(w.failed(format!("start container {name}"), 500, message));
        }
        let b = w.containers[i].behaviour.clone();
        let c = &mut w.containers[i];
        c.log
            .push(format!("[INFO]  Starting Chainlink Node {} at commit fake", b.version));
        c.exit_code = None;
        c.phase = Phase::Starting {
            attempt_at: now + b.startup,
        };
        if let Some(code) = b.exits_at_once {
            c.log.push(FATAL_CONFIG.to_string());
            w.exit(i, code);
        }
        w.settle(now);
        Ok(())
    }

    async fn stop(&self, id: &str, grace: Duration) -> EngineResult<()> {
        let (target, delay, graceful) = {
            let mut w = self.world();
            let Some(i) = w.target("stop", id, |n| format!("stop {n}"))? else {
                return Err(w.not_found("stop", id));
            };
            let c = &w.containers[i];
            if !c.running() {
                return Ok(());
            }
            let shutdown = c.behaviour.shutdown;
            (c.id.clone(), shutdown.min(grace), shutdown <= grace)
        };
        // The node shuts down (still holding the lock), or is killed at the grace's end.
        tokio::time::sleep(delay).await;
        let mut w = self.world();
        if let Some(i) = w.find(&target) {
            w.halt(i, Instant::now(), graceful);
        }
        Ok(())
    }

    async fn kill(&self, id: &str, signal: &str) -> EngineResult<()> {
        let mut w = self.world();
        let Some(i) = w.target("kill", id, |n| format!("kill {n} {signal}"))? else {
            return Err(w.not_found("kill", id));
        };
        if !w.containers[i].running() {
            let name = w.containers[i].name.clone();
            return Err(w.failed(
                format!("kill container {name}"),
                409,
                format!("container {name} is not running"),
            ));
        }
        w.halt(i, Instant::now(), false);
        Ok(())
    }

    async fn rename(&self, id: &str, new_name: &str) -> EngineResult<()> {
        let mut w = self.world();
        let Some(i) = w.target("rename", id, |n| format!("rename {n} {new_name}"))? else {
            return Err(w.not_found("rename", id));
        };
        if w.find(new_name).is_some_and(|j| j != i) {
            let message = format!("the name {new_name} is already in use");
            return Err(w.failed(format!("rename container {id}"), 409, message));
        }
        w.containers[i].name = new_name.to_string();
        Ok(())
    }

    async fn remove(&self, id: &str) -> EngineResult<()> {
        let mut w = self.world();
        // Like the real adapter: removing what is not there succeeds.
        let Some(i) = w.target("remove", id, |n| format!("remove {n}"))? else {
            return Ok(());
        };
        w.halt(i, Instant::now(), false);
        w.containers.remove(i);
        w.check(Instant::now());
        Ok(())
    }

    fn log_lines(&self, id: &str, follow: bool) -> BoxStream<'static, EngineResult<String>> {
        let found = {
            let w = self.world();
            w.find(id).map(|i| w.containers[i].id.clone())
        };
        let Some(target) = found else {
            let e = api(format!("read the log of {id}"), 404, format!("No such container: {id}"));
            return stream::iter([Err(e)]).boxed();
        };
        let world = Arc::clone(&self.world);
        stream::unfold((world, target, 0usize), move |(world, target, next)| async move {
            loop {
                let line = {
                    let mut w = lock(&world);
                    w.settle(Instant::now());
                    let c = w.containers.iter().find(|c| c.id == target)?;
                    match c.log.get(next) {
                        Some(line) => Some(line.clone()),
                        None if !follow || !c.running() => return None,
                        None => None,
                    }
                };
                match line {
                    Some(line) => return Some((Ok(line), (world, target, next + 1))),
                    None => tokio::time::sleep(POLL).await,
                }
            }
        })
        .boxed()
    }

    async fn http_get(&self, addr: &str, _path: &str, _timeout: Duration) -> Result<Answer, NoAnswer> {
        let now = Instant::now();
        let w = self.world();
        let Some(c) = w
            .containers
            .iter()
            .find(|c| c.running() && c.addr.as_deref() == Some(addr))
        else {
            let source = std::io::ErrorKind::ConnectionRefused.into();
            return Err(NoAnswer::Connect {
                addr: addr.to_string(),
                source,
            });
        };
        let status = match c.phase {
            Phase::Holding { answers_at: at, .. } | Phase::OwnDb { answers_at: at } if at <= now => {
                Some(c.behaviour.health)
            }
            Phase::Holding { migrated_at, .. } if now < migrated_at && c.behaviour.answers_204_while_migrating => {
                Some(204)
            }
            _ => None,
        };
        match status {
            Some(status) => Ok(Answer {
                status,
                body: r#"{"data":[]}"#.to_string(),
            }),
            // The engine's port proxy accepts, then closes: nothing listens.
            None => Err(NoAnswer::NoResponse {
                addr: addr.to_string(),
                reason: "connection closed before a response".to_string(),
            }),
        }
    }
}
