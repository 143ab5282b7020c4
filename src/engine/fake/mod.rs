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
//!
//! Here: the behaviours and the test-facing API; `world` holds the state
//! machine, `verbs` implements the engine trait on it.

mod verbs;
mod world;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use world::{Container, Fault, Phase, World};

/// The lock-wait line of the lease era (v1.1+ and all of v2).
pub const LEASE_WAITING: &str = "[INFO]  Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire... pg/lease_lock.go:183 tryCount=0";
/// The bolt era's line, printed before every lock attempt (even a successful one).
pub const BOLT_WAITING: &str = "[INFO]  Waiting indefinitely for lock on db file /chainlink/db.bolt store/store.go:58";
/// What a node that exits at once logs.
pub const FATAL_CONFIG: &str = "[FATAL] invalid configuration: fake failure at startup";
/// What a node that crashes after taking the lock logs.
pub const CRASHED: &str = "[FATAL] panic: fake crash after taking the lock";

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

/// Locks the world, even after a test panicked while holding it.
fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A create request for a node `name` on `image` that publishes the node's
/// port 6688 on host `port` (the fake answers HTTP there).
pub fn node_spec(name: &str, image: &str, port: u16) -> crate::engine::CloneSpec {
    use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
    let binding = PortBinding {
        host_ip: Some(String::new()),
        host_port: Some(port.to_string()),
    };
    crate::engine::CloneSpec {
        name: name.to_string(),
        body: ContainerCreateBody {
            image: Some(image.to_string()),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([("6688/tcp".to_string(), Some(vec![binding]))])),
                ..Default::default()
            }),
            ..Default::default()
        },
        extra_networks: Vec::new(),
        changes: Vec::new(),
    }
}

impl FakeEngine {
    /// An engine with no images and no containers; a gracefully released
    /// lock passes at once.
    pub fn new() -> FakeEngine {
        let world = World::new(Instant::now());
        FakeEngine {
            world: Arc::new(Mutex::new(world)),
        }
    }

    /// The world, with every timed event due by now applied.
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
            env: Vec::new(),
            host_config: None,
            addr: Some(addr.to_string()),
            behaviour,
            phase,
            exit_code: None,
            log,
            log_at: Vec::new(),
            started: Some(now),
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
}
