//! The run lock: one state-changing cl-maint run per node at a time, across
//! machines that talk to the same Docker Engine.
//!
//! The lock is a container that is created and never started,
//! `<node>-cl-maint-lock`, on the engine running the node. Creating a
//! container by name is atomic (the engine answers 409 to the second
//! creator), so two runs, even from two machines, cannot both hold it. Its
//! labels say who holds it: host, boot id, pid and the pid's start time, the
//! command line (no secrets) and since when. A lock whose owner ran on this
//! machine and is gone (no such pid, another start time, another boot) is
//! stale: the next run removes it by id and takes it. A lock held by another
//! machine is never taken over automatically: `cl-maint recover
//! --break-lock` does that once the operator knows that run is gone.
//!
//! Read-only commands (`status`, `health`, `--dry-run`) take no lock.

use std::collections::HashMap;

use crate::engine::{Engine, EngineError};
pub use crate::names::lock_name;
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, ROLE_LOCK, old_name, standby_name};
use crate::spec::CloneSpec;

const LABEL_HOST: &str = "io.cl-maint.lock.host";
const LABEL_BOOT: &str = "io.cl-maint.lock.boot-id";
const LABEL_PID: &str = "io.cl-maint.lock.pid";
const LABEL_PID_START: &str = "io.cl-maint.lock.pid-start";
const LABEL_COMMAND: &str = "io.cl-maint.lock.command";
const LABEL_SINCE: &str = "io.cl-maint.lock.since";

/// Who holds a run lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    /// The machine's host name.
    pub host: String,
    /// The machine's boot id (`/proc/sys/kernel/random/boot_id`), when known.
    pub boot_id: Option<String>,
    /// The process id.
    pub pid: u32,
    /// The process's start time (clock ticks since boot, field 22 of
    /// `/proc/PID/stat`), when known: a pid reused by another process has
    /// another start time.
    pub pid_start: Option<u64>,
    /// The command line, secrets left out.
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl Owner {
    /// This process, running `command`.
    pub fn me(command: &str) -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            boot_id: boot_id(),
            pid,
            pid_start: pid_start(pid),
            command: command.to_string(),
            since: now_rfc3339(),
        }
    }

    fn labels(&self, primary: &str) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_PRIMARY.to_string(), primary.to_string()),
            (LABEL_ROLE.to_string(), ROLE_LOCK.to_string()),
            (LABEL_HOST.to_string(), self.host.clone()),
            (LABEL_PID.to_string(), self.pid.to_string()),
            (LABEL_COMMAND.to_string(), self.command.clone()),
            (LABEL_SINCE.to_string(), self.since.clone()),
        ]);
        if let Some(b) = &self.boot_id {
            labels.insert(LABEL_BOOT.to_string(), b.clone());
        }
        if let Some(s) = self.pid_start {
            labels.insert(LABEL_PID_START.to_string(), s.to_string());
        }
        labels
    }

    /// Reads the owner off a lock container's labels.
    pub fn from_labels(labels: &HashMap<String, String>) -> Owner {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Owner {
            host: get(LABEL_HOST),
            boot_id: labels.get(LABEL_BOOT).cloned(),
            pid: get(LABEL_PID).parse().unwrap_or(0),
            pid_start: labels.get(LABEL_PID_START).and_then(|s| s.parse().ok()),
            command: get(LABEL_COMMAND),
            since: get(LABEL_SINCE),
        }
    }

    /// `cl-maint upgrade … (pid 123 on ci-runner-7, since 2026-…)`.
    pub fn describe(&self) -> String {
        format!(
            "`{}` (pid {} on {}, since {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

/// Whether a lock's owner may still run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It runs on this machine.
    Alive,
    /// It ran on this machine and is gone (why, in words).
    Gone(String),
    /// It runs or ran on another machine: cl-maint cannot tell.
    Elsewhere,
}

/// What this machine knows, to judge an owner. `start_of(pid)` is the start
/// time of a process here (`None`: no such process).
pub struct Here<'a> {
    /// This machine's host name.
    pub host: &'a str,
    /// This machine's boot id.
    pub boot_id: Option<&'a str>,
    /// The start time of a pid on this machine.
    pub start_of: &'a dyn Fn(u32) -> Option<u64>,
}

/// Judges an owner. Pure (given `here`).
pub fn liveness(owner: &Owner, here: &Here<'_>) -> Liveness {
    if owner.host != here.host || owner.host.is_empty() {
        return Liveness::Elsewhere;
    }
    if let (Some(theirs), Some(ours)) = (owner.boot_id.as_deref(), here.boot_id)
        && theirs != ours
    {
        return Liveness::Gone("this machine has rebooted since".into());
    }
    if owner.pid == 0 {
        return Liveness::Gone("the lock names no process".into());
    }
    match ((here.start_of)(owner.pid), owner.pid_start) {
        (None, _) => Liveness::Gone(format!("no process {} runs", owner.pid)),
        (Some(now), Some(then)) if now != then => Liveness::Gone(format!(
            "process {} is another program now (it started at another time)",
            owner.pid
        )),
        _ => Liveness::Alive,
    }
}

/// A run lock this process holds.
#[derive(Debug)]
pub struct RunLock {
    /// The lock container's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The owner of a stale lock this run took over (its run was interrupted).
    pub took_over: Option<Owner>,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Another run holds it.
    Held {
        /// Who.
        owner: Owner,
        /// Whether it runs on another machine.
        elsewhere: bool,
    },
    /// The engine failed.
    Engine(EngineError),
}

/// Takes the run lock of `primary` on `engine`. `Ok(None)`: there is no
/// container of the node on this engine to take it for (the command will
/// refuse anyway). `break_lock` takes over a lock held by another machine.
pub async fn acquire<E: Engine>(
    engine: &E,
    primary: &str,
    command: &str,
    break_lock: bool,
) -> Result<Option<RunLock>, Refused> {
    let Some(base) = node_container(engine, primary).await.map_err(Refused::Engine)? else {
        return Ok(None);
    };
    let me = Owner::me(command);
    let spec = lock_spec(primary, &base, &me);
    let mut took_over = None;
    for attempt in 0..2 {
        match engine.create(&spec).await {
            Ok(id) => {
                return Ok(Some(RunLock {
                    id,
                    name: spec.name.clone(),
                    took_over,
                }));
            }
            Err(EngineError::Api { status: Some(409), .. }) => {}
            Err(e) => return Err(Refused::Engine(e)),
        }
        let Some(held) = engine.inspect_container(&spec.name).await.map_err(Refused::Engine)? else {
            continue; // released meanwhile
        };
        let owner = Owner::from_labels(&held.config.and_then(|c| c.labels).unwrap_or_default());
        let (host, boot) = (hostname(), boot_id());
        let here = Here {
            host: &host,
            boot_id: boot.as_deref(),
            start_of: &pid_start,
        };
        let take = match liveness(&owner, &here) {
            Liveness::Gone(why) => {
                tracing::info!(%why, "taking over a stale run lock");
                true
            }
            Liveness::Elsewhere => break_lock,
            Liveness::Alive => false,
        };
        if !take || attempt == 1 {
            let elsewhere = owner.host != host;
            return Err(Refused::Held { owner, elsewhere });
        }
        // By id: a run that replaced the stale lock meanwhile keeps its own.
        engine
            .remove(held.id.as_deref().unwrap_or_default())
            .await
            .map_err(Refused::Engine)?;
        took_over = Some(owner);
    }
    Err(Refused::Held {
        owner: Owner::default(),
        elsewhere: false,
    })
}

impl RunLock {
    /// Releases the lock (removes the container by id).
    pub async fn release<E: Engine>(self, engine: &E) -> Result<(), EngineError> {
        engine.remove(&self.id).await
    }
}

/// The owner of the run lock of `primary`, if a run holds it (for `status`
/// and `--dry-run`); a lock whose owner is gone from this machine is not
/// a run in progress.
pub async fn holder<E: Engine>(engine: &E, primary: &str) -> Option<Owner> {
    let c = engine.inspect_container(&lock_name(primary)).await.ok()??;
    let owner = Owner::from_labels(&c.config?.labels.unwrap_or_default());
    let (host, boot) = (hostname(), boot_id());
    let here = Here {
        host: &host,
        boot_id: boot.as_deref(),
        start_of: &pid_start,
    };
    (!matches!(liveness(&owner, &here), Liveness::Gone(_))).then_some(owner)
}

/// A container of the node to take the image from (the lock is created from
/// an image the engine surely has, and is never started).
async fn node_container<E: Engine>(
    engine: &E,
    primary: &str,
) -> Result<Option<bollard::models::ContainerInspectResponse>, EngineError> {
    for name in [primary.to_string(), old_name(primary), standby_name(primary)] {
        if let Some(c) = engine.inspect_container(&name).await? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The lock container: the node's image, no network, never started. It
/// carries the node's labels in cl-maint's own namespace (`io.cl-maint.*`),
/// so whatever selects the node's containers by them sees the lock too.
fn lock_spec(primary: &str, base: &bollard::models::ContainerInspectResponse, me: &Owner) -> CloneSpec {
    let mut labels: HashMap<String, String> = base
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("io.cl-maint.") && !k.starts_with("io.cl-maint.lock."))
        .collect();
    labels.extend(me.labels(primary));
    crate::spec::isolated(lock_name(primary), base.image.clone(), None, labels)
}

/// This process's command line with the values of secret-looking options
/// and URL passwords left out.
pub fn command_line() -> String {
    sanitize(std::env::args().collect())
}

/// [`command_line`] for given arguments. Pure.
pub fn sanitize(args: Vec<String>) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let shown = if hide_next {
            hide_next = false;
            "<redacted>".to_string()
        } else if let Some((flag, _)) = arg
            .split_once('=')
            .filter(|(f, _)| f.starts_with("--") && secret_flag(f))
        {
            format!("{flag}=<redacted>")
        } else if arg.starts_with("--") && secret_flag(&arg) {
            hide_next = true;
            arg
        } else if i == 0 {
            "cl-maint".to_string()
        } else {
            crate::redact::url_password(&arg)
        };
        out.push(shown);
    }
    out.join(" ")
}

fn secret_flag(flag: &str) -> bool {
    crate::redact::is_secret_name(flag)
}

/// This machine's host name (empty when it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold
/// spaces and parentheses).
pub fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_from_stat(&stat)
}

fn start_from_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so starttime (22) is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn now_rfc3339() -> String {
    crate::time::rfc3339(std::time::SystemTime::now(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(host: &str, pid: u32, start: Option<u64>) -> Owner {
        Owner {
            host: host.into(),
            boot_id: Some("boot-1".into()),
            pid,
            pid_start: start,
            command: "cl-maint upgrade --tag 2.10.0".into(),
            since: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn judge(o: &Owner, boot: &str, running: &[(u32, u64)]) -> Liveness {
        let start_of = |pid: u32| running.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s);
        liveness(
            o,
            &Here {
                host: "ci-7",
                boot_id: Some(boot),
                start_of: &start_of,
            },
        )
    }

    #[test]
    fn a_live_owner_on_this_machine_keeps_its_lock() {
        assert_eq!(
            judge(&owner("ci-7", 42, Some(1000)), "boot-1", &[(42, 1000)]),
            Liveness::Alive
        );
        // No recorded start time: the pid alone decides.
        assert_eq!(judge(&owner("ci-7", 42, None), "boot-1", &[(42, 5)]), Liveness::Alive);
    }

    #[test]
    fn a_gone_owner_on_this_machine_is_stale() {
        let gone = |l: Liveness| matches!(l, Liveness::Gone(_));
        assert!(
            gone(judge(&owner("ci-7", 42, Some(1000)), "boot-1", &[])),
            "no such pid"
        );
        assert!(
            gone(judge(&owner("ci-7", 42, Some(1000)), "boot-1", &[(42, 2000)])),
            "pid reused"
        );
        assert!(
            gone(judge(&owner("ci-7", 42, Some(1000)), "boot-2", &[(42, 1000)])),
            "rebooted"
        );
        assert!(gone(judge(&owner("ci-7", 0, None), "boot-1", &[(0, 1)])), "no pid");
    }

    #[test]
    fn an_owner_on_another_machine_cannot_be_judged() {
        assert_eq!(judge(&owner("laptop", 42, Some(1)), "boot-1", &[]), Liveness::Elsewhere);
        assert_eq!(judge(&owner("", 42, Some(1)), "boot-1", &[]), Liveness::Elsewhere);
    }

    #[test]
    fn labels_round_trip() {
        let o = owner("ci-7", 42, Some(1000));
        let labels = o.labels("chainlink");
        assert_eq!(labels[LABEL_ROLE], ROLE_LOCK);
        assert_eq!(labels[LABEL_PRIMARY], "chainlink");
        assert_eq!(Owner::from_labels(&labels), o);
    }

    #[test]
    fn start_time_from_stat() {
        let stat = "4242 (cl maint) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_from_stat(stat), Some(987_654));
        assert!(pid_start(std::process::id()).is_some());
        assert_eq!(start_from_stat("garbage"), None);
    }

    #[test]
    fn the_command_line_keeps_no_secrets() {
        let line = sanitize(
            [
                "/usr/bin/cl-maint",
                "upgrade",
                "--metrics-token",
                "abc",
                "--api-key=xyz",
                "--host",
                "tcp://u:pw@h:2376",
                "--tag",
                "2.10.0",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert!(
            !line.contains("abc") && !line.contains("xyz") && !line.contains(":pw@"),
            "{line}"
        );
        assert!(line.starts_with("cl-maint upgrade"), "{line}");
        assert!(line.contains("--tag 2.10.0"), "{line}");
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(crate::time::seconds_since(&now).is_some_and(|s| s < 5), "{now}");
    }
}
