//! A second Docker Engine on this machine, so that tests can run a node on
//! "another host" that shares the first node's data directory (a bind-mounted
//! host path), as two hosts share a network file system or a database.
//!
//! The rig uses a second `dockerd` that already answers on this checkout's
//! socket; otherwise it starts one, detached in its own session so later test
//! processes share it, and records its PID in `target/cl-maint-rig/dockerd2.pid`
//! so that `.ci/run` can stop exactly it. It has its own everything:
//!
//! - socket and exec root (where it runs its own containerd) under
//!   `/run/cl-maint-<key>/`, short because a unix socket path has at most
//!   107 bytes; `<key>` is a hash of this checkout's path;
//! - data root (storage driver `vfs`: the double's images are tiny), config,
//!   pidfile and log under `target/cl-maint-rig/dockerd2/`;
//! - a Linux bridge `clm2-<key>` on `10.N.0.1/24` (a `/16` no route on this
//!   machine overlaps), made once and left for later runs;
//! - no iptables rules (`iptables: false`): it must not rewrite the first
//!   engine's chains. Published ports still answer on 127.0.0.1 through
//!   Docker's userland proxy, and the engine pulls from the rig's loopback
//!   registry like the first one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;

use super::{Node, NodeSpec, Rig};

/// Which of the rig's two engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The machine's engine (`DOCKER_HOST` or the default socket): `rig.docker`.
    First,
    /// The rig's second `dockerd`: [`second_engine`].
    Second,
}

/// The second engine, as the tests reach it.
#[derive(Clone, Debug)]
pub struct SecondEngine {
    /// Its API socket.
    pub socket: PathBuf,
}

impl SecondEngine {
    /// The endpoint to hand to the CLI (`--host`): `unix:///run/cl-maint-<key>/docker.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A client for it, with the API version negotiated.
    pub async fn connect(&self) -> Result<Docker, String> {
        connect_to(&self.socket, 120).await
    }
}

/// The second engine of this process, once made sure of.
static SECOND: OnceLock<Result<SecondEngine, String>> = OnceLock::new();

/// The second engine, made sure of once per test process (started when none
/// answers); panics with what went wrong, including its log, when it cannot.
pub fn second_engine() -> &'static SecondEngine {
    let result = SECOND.get_or_init(|| {
        // On a thread and runtime of its own, like the images (see `images()`).
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let engine = ensure(&super::rig_dir()).await?;
                if let Ok(docker) = engine.connect().await {
                    super::cleanup::sweep_stale(&docker).await;
                }
                Ok(engine)
            })
        })
        .join()
        .unwrap_or_else(|_| Err("starting the second engine panicked".to_string()))
    });
    match result {
        Ok(engine) => engine,
        Err(e) => panic!("test rig: the second Docker Engine is not available: {e}"),
    }
}

/// Sweeps stale test containers from the second engine when it is running
/// (it is not started for that).
pub(super) async fn sweep_if_running() {
    if let Ok(docker) = connect_to(&Layout::of(&super::rig_dir()).socket, 5).await {
        super::cleanup::sweep_stale(&docker).await;
    }
}

/// What a [`Rig`] did on the second engine: its client (connected on first
/// use) and the ids of the containers it started there.
#[derive(Default)]
pub struct OnSecond {
    docker: OnceLock<Docker>,
    nodes: Mutex<HashSet<String>>,
}

impl Rig {
    /// Whether the test has used the second engine (its lease-era nodes then
    /// reach the database on the second engine's bridge, from either engine).
    pub fn uses_second(&self) -> bool {
        self.second.docker.get().is_some()
    }

    /// A client for `engine`; connects to (and, once per process, starts) the
    /// second engine on first use.
    pub async fn docker_on(&self, engine: Engine) -> &Docker {
        match engine {
            Engine::First => &self.docker,
            Engine::Second => {
                if let Some(docker) = self.second.docker.get() {
                    return docker;
                }
                let docker = second_engine()
                    .connect()
                    .await
                    .unwrap_or_else(|e| panic!("test rig: {e}"));
                self.second.docker.get_or_init(|| docker)
            }
        }
    }

    /// The client of the engine that runs `node`.
    pub fn docker_of(&self, node: &Node) -> &Docker {
        match self.second.docker.get() {
            Some(docker) if self.second.nodes.lock().unwrap().contains(&node.id) => docker,
            _ => &self.docker,
        }
    }

    /// Which engine runs `node`.
    pub fn engine_of(&self, node: &Node) -> Engine {
        if self.second.nodes.lock().unwrap().contains(&node.id) {
            Engine::Second
        } else {
            Engine::First
        }
    }

    /// [`Rig::start_node`] on `engine`: pulls the tag there, and starts the
    /// node with the same name, labels, volume directory and port conventions.
    /// The other `Rig` methods taking a [`Node`] then act on that engine.
    pub async fn start_node_on(&self, engine: Engine, spec: NodeSpec<'_>) -> Node {
        let docker = self.docker_on(engine).await;
        self.pull_into(docker, spec.tag).await;
        let reference = self.images.reference(spec.tag);
        let node = self.create_node(docker, spec, &reference).await;
        if engine == Engine::Second {
            self.second.nodes.lock().unwrap().insert(node.id.clone());
        }
        node
    }
}

/// The second engine's bridge address (`10.N.0.1`), where its containers
/// reach this machine; `None` while the bridge does not exist.
pub fn gateway() -> Option<String> {
    let layout = Layout::of(&super::rig_dir());
    let shown = ip(&["-4", "-o", "addr", "show", "dev", &layout.bridge]).ok()?;
    let inet = shown.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    inet.split('/').next().map(str::to_string)
}

/// Whether this process uses the second engine (a `Rig`'s `Drop` then
/// cleans the test's containers there too, whoever created them).
pub(super) fn in_use() -> bool {
    matches!(SECOND.get(), Some(Ok(_)))
}

/// Removes the test's containers from the second engine (for `Drop for Rig`).
pub(super) async fn clean(id: &str) {
    if let Some(Ok(engine)) = SECOND.get()
        && let Ok(docker) = engine.connect().await
    {
        super::cleanup::remove_labelled(&docker, id).await;
    }
}

/// Where the second engine's files live.
struct Layout {
    /// `target/cl-maint-rig/dockerd2`: data root, config, pidfile, log.
    dir: PathBuf,
    /// `/run/cl-maint-<key>`: socket and exec root.
    run: PathBuf,
    socket: PathBuf,
    bridge: String,
    key: u32,
}

impl Layout {
    fn of(rig_dir: &Path) -> Layout {
        let key = fnv1a(env!("CARGO_MANIFEST_DIR").as_bytes());
        let run = PathBuf::from(format!("/run/cl-maint-{key:08x}"));
        Layout {
            dir: rig_dir.join("dockerd2"),
            socket: run.join("docker.sock"),
            run,
            bridge: format!("clm2-{key:08x}"),
            key,
        }
    }
}

/// A hash that stays the same across Rust releases (the socket path must).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

async fn connect_to(socket: &Path, timeout_secs: u64) -> Result<Docker, String> {
    let path = socket.to_str().ok_or("the socket path is not UTF-8")?;
    let docker = Docker::connect_with_unix(path, timeout_secs, bollard::API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot reach the second engine at unix://{path}: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("the second engine at unix://{path} does not answer: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("the second engine at unix://{path} does not answer ping: {e}"))?;
    Ok(docker)
}

/// Makes sure the second engine answers, starting it when needed. Test
/// processes serialise on `target/cl-maint-rig/dockerd2.lock`.
pub async fn ensure(rig_dir: &Path) -> Result<SecondEngine, String> {
    let layout = Layout::of(rig_dir);
    let engine = SecondEngine {
        socket: layout.socket.clone(),
    };
    let lock_path = rig_dir.join("dockerd2.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if connect_to(&layout.socket, 5).await.is_ok() {
        return Ok(engine);
    }
    let pid_file = rig_dir.join("dockerd2.pid");
    let mut child = None;
    let pid = match recorded_dockerd(&pid_file, &layout) {
        // Started by a test process that ended before it answered: wait for it.
        Some(pid) => pid,
        None => {
            let spawned = start(&layout)?;
            let pid = spawned.id();
            std::fs::write(&pid_file, pid.to_string())
                .map_err(|e| format!("cannot write {}: {e}", pid_file.display()))?;
            child = Some(spawned);
            pid
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if connect_to(&layout.socket, 5).await.is_ok() {
            return Ok(engine);
        }
        let exited = match child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
            None => (!Path::new("/proc").join(pid.to_string()).exists()).then(|| "it exited".to_string()),
        };
        if exited.is_some() || Instant::now() >= deadline {
            let why = exited.map_or("did not answer within 60 s".to_string(), |s| format!("exited ({s})"));
            return Err(format!(
                "the second dockerd (pid {pid}, socket {}) {why}; the last lines of {}:\n{}",
                layout.socket.display(),
                layout.dir.join("dockerd.log").display(),
                log_tail(&layout.dir.join("dockerd.log"), 40)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PID in `dockerd2.pid` when it is still a live dockerd on our config.
fn recorded_dockerd(pid_file: &Path, layout: &Layout) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let config = layout.dir.join("daemon.json");
    String::from_utf8_lossy(&cmdline)
        .contains(&*config.to_string_lossy())
        .then_some(pid)
}

/// Writes the config, makes the bridge, and starts `dockerd` in its own session.
fn start(layout: &Layout) -> Result<std::process::Child, String> {
    let binary = ["/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("dockerd is not installed: run `apt-get install docker.io` (or `bash .ci/run`, which installs it)")?;
    for dir in [layout.dir.join("data"), layout.run.clone()] {
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create {} ({e}); starting a second dockerd needs root",
                dir.display()
            )
        })?;
    }
    bridge(layout)?;
    // No `default-address-pools`: with it, dockerd 20.10 deletes the link
    // named `docker0` (the first engine's bridge!) when it restarts on a data
    // root that has a default network, whatever `bridge` says. User-defined
    // networks come from the default pools, minus what host routes already use.
    let config = serde_json::json!({
        "hosts": [format!("unix://{}", layout.socket.display())],
        "data-root": layout.dir.join("data"),
        "exec-root": layout.run.join("exec"),
        "pidfile": layout.dir.join("dockerd.pid"),
        "bridge": layout.bridge,
        "iptables": false,
        "ip-masq": false,
        "ip-forward": false,
        "storage-driver": "vfs",
        "containerd-namespace": "cl-maint-2",
        "containerd-plugins-namespace": "cl-maint-2-plugins",
    });
    let config_path = layout.dir.join("daemon.json");
    std::fs::write(&config_path, config.to_string())
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let log_path = layout.dir.join("dockerd.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut command = Command::new(binary);
    command
        .arg("--config-file")
        .arg(&config_path)
        .env_remove("DOCKER_HOST")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command.spawn().map_err(|e| format!("cannot start {binary}: {e}"))
}

/// Makes sure the bridge exists, is up and has its `10.N.0.1/24` address.
fn bridge(layout: &Layout) -> Result<(), String> {
    let name = layout.bridge.as_str();
    let exists = Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?
        .success();
    if !exists {
        ip(&["link", "add", name, "type", "bridge"])?;
    }
    let shown = ip(&["-4", "-o", "addr", "show", "dev", name])?;
    if !shown.contains(" inet ") {
        let n = free_slash16(layout.key)?;
        ip(&["addr", "add", &format!("10.{n}.0.1/24"), "dev", name])?;
    }
    ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// An `N` in 200..=254 (starting from the key) whose `10.N.0.0/16` overlaps
/// no route of this machine.
fn free_slash16(key: u32) -> Result<u8, String> {
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let taken: Vec<(u32, u32)> = routes.lines().filter_map(route_net).collect();
    (0..55u32)
        .map(|i| 200 + ((key + i) % 55) as u8)
        .find(|n| {
            let net = (10u32 << 24) | (u32::from(*n) << 16);
            taken.iter().all(|(addr, mask)| {
                let both = *mask & 0xffff_0000;
                addr & both != net & both
            })
        })
        .ok_or_else(|| "every 10.N.0.0/16 with N in 200..=254 overlaps a route on this machine".to_string())
}

/// A route line's destination as (address, mask); `None` for `default`.
fn route_net(line: &str) -> Option<(u32, u32)> {
    const TYPES: [&str; 9] = [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "throw",
        "unreachable",
        "prohibit",
        "blackhole",
        "nat",
    ];
    let mut words = line.split_whitespace();
    let mut dest = words.next()?;
    if TYPES.contains(&dest) {
        dest = words.next()?;
    }
    let (addr, len) = dest.split_once('/').unwrap_or((dest, "32"));
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
    Some((u32::from(addr) & mask, mask))
}

/// Runs `ip ARGS`, returning stdout or an error with stderr.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed: {} (setting up the second engine's bridge needs root)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
