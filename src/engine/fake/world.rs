//! The fake engine's world: its containers, the one shared database lock and
//! the timed events (lock attempts, grants, crashes) that move them along.
//!
//! Everything here is driven by [`World::settle`], which the fake calls with
//! tokio's current time whenever it is touched.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::HostConfig;
use tokio::time::Instant;

use super::{Behaviour, CRASHED, LockUse};
use crate::engine::{EngineError, EngineResult};
use crate::node::version::Version;

const SHUTTING_DOWN: &str = "[INFO]  Shutting down due to terminated signal received...";
const STOPPED_WAITING: &str = "[ERROR] opening db: failed to take initial lease on database: stopped";
/// How long a killed or crashed holder's lease keeps the lock taken.
const LEASE: Duration = Duration::from_secs(10);

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
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

/// A container the fake holds.
#[derive(Clone, Debug)]
pub(super) struct Container {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) image: String,
    pub(super) labels: HashMap<String, String>,
    /// Its environment (`KEY=value`), as created.
    pub(super) env: Vec<String>,
    pub(super) host_config: Option<HostConfig>,
    pub(super) addr: Option<String>,
    pub(super) behaviour: Behaviour,
    pub(super) phase: Phase,
    pub(super) exit_code: Option<i64>,
    pub(super) log: Vec<String>,
    /// When each line of `log` was written (see [`World::date_logs`]).
    pub(super) log_at: Vec<Instant>,
    /// When it last started.
    pub(super) started: Option<Instant>,
}

impl Container {
    /// Whether it runs (started and not exited).
    pub(super) fn running(&self) -> bool {
        !matches!(self.phase, Phase::Created | Phase::Exited)
    }

    /// Whether it holds the shared lock.
    pub(super) fn holds(&self) -> bool {
        matches!(self.phase, Phase::Holding { .. })
    }

    /// Whether it is an active node: holding the shared lock or one of its own.
    fn active(&self) -> bool {
        matches!(self.phase, Phase::Holding { .. } | Phase::OwnDb { .. })
    }

    /// Whether it waits in line for the shared lock.
    fn queued(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. }) && self.behaviour.lock == LockUse::Shared
    }

    /// Its engine status (`created`, `running`, `exited`).
    pub(super) fn status(&self) -> &'static str {
        match self.phase {
            Phase::Created => "created",
            Phase::Exited => "exited",
            _ => "running",
        }
    }
}

/// An injected fault: calls of `verb` (on `name`, or the `nth` one) fail.
#[derive(Clone, Debug)]
pub(super) struct Fault {
    pub(super) verb: String,
    pub(super) name: Option<String>,
    pub(super) nth: Option<usize>,
}

/// A timed event of [`World::settle`].
enum Event {
    Attempt,
    Grant,
    Crash,
}

/// Everything the fake engine knows.
#[derive(Debug)]
pub(super) struct World {
    t0: Instant,
    pub(super) containers: Vec<Container>,
    pub(super) next_id: u64,
    pub(super) images: HashMap<String, Behaviour>,
    pub(super) by_name: HashMap<String, Behaviour>,
    free_at: Instant,
    pub(super) handover: Duration,
    pub(super) db_version: Option<String>,
    pub(super) calls: Vec<String>,
    counts: HashMap<String, usize>,
    pub(super) faults: Vec<Fault>,
    pub(super) two_holders: Vec<String>,
    pub(super) two_active: Vec<String>,
    last_active: Vec<String>,
}

/// An engine API error.
pub(super) fn api(action: String, status: u16, message: String) -> EngineError {
    EngineError::Api {
        action,
        status: Some(status),
        message,
    }
}

/// Whether `version` is older than `than` (false when either does not parse).
fn older(version: &str, than: &str) -> bool {
    matches!((Version::parse(version), Version::parse(than)), (Some(v), Some(t)) if v < t)
}

impl World {
    /// An empty world at `now`: no images, no containers, a free lock that a
    /// graceful release passes at once.
    pub(super) fn new(now: Instant) -> World {
        World {
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
        }
    }

    /// The index of the container with this id or name.
    pub(super) fn find(&self, reference: &str) -> Option<usize> {
        let all = || self.containers.iter();
        all()
            .position(|c| c.id == reference)
            .or_else(|| all().position(|c| c.name == reference))
    }

    /// Records a call of `verb` on `name` (`text` in the call log unless
    /// empty) and fails it when an injected fault matches.
    pub(super) fn call(&mut self, verb: &str, name: &str, text: String) -> EngineResult<()> {
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
    pub(super) fn target(
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
    pub(super) fn failed(&mut self, action: String, status: u16, message: String) -> EngineError {
        if let Some(last) = self.calls.last_mut() {
            last.push_str(" (failed)");
        }
        api(action, status, message)
    }

    /// Marks the last recorded call as failed for want of the container `reference`.
    pub(super) fn not_found(&mut self, verb: &str, reference: &str) -> EngineError {
        let message = format!("No such container: {reference}");
        self.failed(format!("{verb} container {reference}"), 404, message)
    }

    /// Applies every timed event due by `now`, in time order.
    pub(super) fn settle(&mut self, now: Instant) {
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
        self.date_logs(now);
    }

    /// Dates the lines logged since the last call at `at`: lines are logged
    /// by the events settled up to `at` and by the verbs called at `at`.
    fn date_logs(&mut self, at: Instant) {
        for c in &mut self.containers {
            let undated = c.log.len().saturating_sub(c.log_at.len());
            c.log_at.extend(std::iter::repeat_n(at, undated));
        }
    }

    /// The earliest timed event pending, if any.
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

    /// Container `i` tries to take the lock at `at` (or waits, or takes its own).
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

    /// Container `i` takes the shared lock at `at` (or refuses a newer database).
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

    /// Container `i` exits with `code`.
    pub(super) fn exit(&mut self, i: usize, code: i64) {
        self.containers[i].phase = Phase::Exited;
        self.containers[i].exit_code = Some(code);
    }

    /// Ends container `i`'s run: gracefully (SIGTERM, the lock is released)
    /// or not (SIGKILL, the lease runs out).
    pub(super) fn halt(&mut self, i: usize, at: Instant, graceful: bool) {
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
    pub(super) fn check(&mut self, at: Instant) {
        self.date_logs(at);
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
