//! The test rig every integration test uses: a real Docker Engine, the node
//! double's images in a real registry, and per-test isolation (unique names,
//! labels, ports and volume directories) with cleanup that runs even when the
//! test panics.

pub mod auth_registry;
mod cleanup;
pub mod images;
pub mod journal;
pub mod lease_nodes;
pub mod postgres;
pub mod registry;
pub mod second;
pub mod ssh;
pub mod tcp_proxy;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;

use cl_maint::probe::{self, Answer, NoAnswer};
pub use images::{
    CRASH, CRASH_AFTER_LOCK, Images, LABELLED_NEW, LABELLED_OLD, NEVER_PULLED, NEW, OLD, SILENT, V2_NEW, V2_OLD,
    V2_STABLE,
};
pub use second::{Engine, second_engine};

/// The label every container a test creates carries; its value is the test's id.
pub const TEST_LABEL: &str = "io.cl-maint.test";
/// The label holding the PID of the test process (stale containers of dead
/// processes are swept at start).
pub const PID_LABEL: &str = "io.cl-maint.test-pid";

/// Connects to the engine (honouring `DOCKER_HOST`), failing with a message
/// that says what to do when none answers.
pub async fn connect() -> Result<Docker, String> {
    let hint = "cl-maint's tests need a running Docker Engine: start dockerd, or run `bash .ci/run`, which installs and starts one";
    let docker = Docker::connect_with_defaults().map_err(|e| format!("{hint} ({e})"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("{hint} (no answer: {e})"))?;
    docker.ping().await.map_err(|e| format!("{hint} (ping failed: {e})"))?;
    Ok(docker)
}

/// `target/cl-maint-rig`: the rig's own files (registry data, double build).
pub fn rig_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("cl-maint-rig");
    std::fs::create_dir_all(&dir).expect("create target/cl-maint-rig");
    dir
}

/// The double's images, prepared once per test process.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    let result = IMAGES.get_or_init(|| {
        // On a thread of its own with its own runtime: callers are async tests
        // on runtimes that may end before others do.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                if let Ok(docker) = connect().await {
                    cleanup::sweep_stale(&docker).await;
                }
                second::sweep_if_running().await;
                images::prepare(&rig_dir()).await
            })
        })
        .join()
        .unwrap_or_else(|_| Err("image preparation panicked".to_string()))
    });
    match result {
        Ok(images) => images,
        Err(e) => panic!("test rig setup failed: {e}"),
    }
}

/// A free TCP port on 127.0.0.1, never handed out twice in this process.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// The lock generation a double runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gen {
    /// flock on `db.bolt`.
    Bolt,
    /// The lease table.
    Lease,
}

impl Gen {
    /// The value of `CL_DOUBLE_LOCK`.
    pub fn env(self) -> &'static str {
        match self {
            Gen::Bolt => "bolt",
            Gen::Lease => "lease",
        }
    }

    /// How long a waiting node may take to notice the lock is free: bbolt's
    /// 50 ms retry, or the lease refresh interval plus its 10 % jitter.
    pub fn retry(self) -> Duration {
        match self {
            Gen::Bolt => Duration::from_millis(50),
            Gen::Lease => Duration::from_millis(1100),
        }
    }

    /// The double's boot time after taking the lock (its defaults: 250 ms boot,
    /// plus a 300 ms migration window in the lease era).
    pub fn boot(self) -> Duration {
        match self {
            Gen::Bolt => Duration::from_millis(250),
            Gen::Lease => Duration::from_millis(550),
        }
    }

    /// The longest a handoff may leave no node serving: the retry interval,
    /// a boot, and `margin` for a busy machine.
    pub fn handoff_bound(self, margin: Duration) -> Duration {
        self.retry() + self.boot() + margin
    }
}

/// What to start.
pub struct NodeSpec<'a> {
    /// Appended to the test's id to name the container.
    pub suffix: &'a str,
    /// The image tag.
    pub tag: &'a str,
    /// The lock generation.
    pub generation: Gen,
    /// Extra environment (`NAME=value`).
    pub env: Vec<String>,
}

/// A started node container.
#[derive(Clone, Debug)]
pub struct Node {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// `127.0.0.1:PORT` where its 6688 is published.
    pub addr: String,
}

/// What a `cl-maint` run returned.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// The report (stdout parsed as JSON; `Null` when it was not JSON).
    pub report: serde_json::Value,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl Run {
    /// Reads a finished process's output.
    pub fn from_output(out: std::process::Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code().unwrap_or(-1),
            report: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// One test's slice of the world. Dropping it removes everything it made.
pub struct Rig {
    /// The engine.
    pub docker: Docker,
    /// The test's unique id (container names start with it).
    pub id: String,
    /// The volume directory mounted at `/chainlink` in every node.
    pub dir: PathBuf,
    /// The double's images.
    pub images: &'static Images,
    /// What the test did on the second engine (see [`second`]).
    second: second::OnSecond,
}

impl Rig {
    /// Sets up a rig for the test `name`; panics with a clear message when no
    /// Docker Engine answers.
    pub async fn new(name: &str) -> Rig {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let docker = connect().await.unwrap_or_else(|e| panic!("{e}"));
        let images = images();
        let id = format!(
            "clm-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&dir).expect("create the test's volume directory");
        // The node runs as uid 14933, like the real image.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod volume directory");
        Rig {
            docker,
            id,
            dir,
            images,
            second: Default::default(),
        }
    }

    /// Pulls `tag` of the double from the registry.
    pub async fn pull(&self, tag: &str) {
        self.pull_into(&self.docker, tag).await
    }

    async fn pull_into(&self, docker: &Docker, tag: &str) {
        let reference = self.images.reference(tag);
        let options = CreateImageOptionsBuilder::new()
            .from_image(&self.images.repo)
            .tag(tag)
            .build();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) if info.error_detail.is_some() => {
                    panic!("pulling {reference}: {:?}", info.error_detail)
                }
                Ok(_) => {}
                Err(e) => panic!("pulling {reference}: {e}"),
            }
        }
    }

    /// Creates and starts a node on the test's volume, published on a fresh
    /// 127.0.0.1 port.
    pub async fn start_node(&self, spec: NodeSpec<'_>) -> Node {
        self.pull(spec.tag).await;
        let reference = self.images.reference(spec.tag);
        self.start_node_from(spec, &reference).await
    }

    /// Like [`Rig::start_node`], from an image reference already on the engine.
    pub async fn start_node_from(&self, spec: NodeSpec<'_>, reference: &str) -> Node {
        self.create_node(&self.docker, spec, reference).await
    }

    /// Like [`Rig::start_node`], with the host settings changed by `tweak`
    /// (a restart policy, `--rm`).
    pub async fn start_node_with(&self, spec: NodeSpec<'_>, tweak: impl FnOnce(&mut HostConfig)) -> Node {
        self.start_node_with_body(spec, |body| {
            if let Some(host) = body.host_config.as_mut() {
                tweak(host)
            }
        })
        .await
    }

    /// Like [`Rig::start_node`], with the create request changed by `tweak`
    /// (a command line of its own, say).
    pub async fn start_node_with_body(&self, spec: NodeSpec<'_>, tweak: impl FnOnce(&mut ContainerCreateBody)) -> Node {
        self.pull(spec.tag).await;
        let reference = self.images.reference(spec.tag);
        self.create_node_with(&self.docker, spec, &reference, tweak).await
    }

    async fn create_node(&self, docker: &Docker, spec: NodeSpec<'_>, reference: &str) -> Node {
        self.create_node_with(docker, spec, reference, |_| {}).await
    }

    async fn create_node_with(
        &self,
        docker: &Docker,
        spec: NodeSpec<'_>,
        reference: &str,
        tweak: impl FnOnce(&mut ContainerCreateBody),
    ) -> Node {
        let name = format!("{}-{}", self.id, spec.suffix);
        let port = free_port();
        let v2 = images::is_v2(spec.tag);
        let mut env = vec![format!("CL_DOUBLE_LOCK={}", spec.generation.env())];
        if !v2 {
            // v1 is configured by its environment; 2.x refuses ROOT.
            env.push("ROOT=/chainlink".to_string());
        }
        // Lease era: the test's own PostgreSQL server, on its network.
        let (db, cmd) = if spec.generation == Gen::Lease {
            let db = self.database().await;
            // Nodes of a test that uses both engines all reach the server
            // where the second engine's can: one URL for every member.
            let on_second = !std::ptr::eq(docker, &self.docker) || self.uses_second();
            let cmd = if v2 {
                self.write_v2_config(&db.url_for(on_second));
                Some(
                    lease_nodes::V2_COMMAND
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>(),
                )
            } else {
                None
            };
            let mut given = spec.env;
            if !v2 {
                lease_nodes::point_at(&db, &mut given, on_second).await;
            }
            env.extend(given);
            (Some((db, on_second)), cmd)
        } else {
            env.extend(spec.env);
            (None, None)
        };
        let labels = HashMap::from([
            (TEST_LABEL.to_string(), self.id.clone()),
            (PID_LABEL.to_string(), std::process::id().to_string()),
        ]);
        let bindings = HashMap::from([(
            "6688/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(port.to_string()),
            }]),
        )]);
        let body = ContainerCreateBody {
            image: Some(reference.to_string()),
            env: Some(env),
            cmd,
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{}:/chainlink", self.dir.display())]),
                port_bindings: Some(bindings),
                // On the first engine a lease-era node joins its database's
                // network; on the second it reaches the server's published port.
                network_mode: db
                    .as_ref()
                    .filter(|(_, on_second)| !on_second)
                    .map(|(db, _)| db.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut body = body;
        tweak(&mut body);
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        docker
            .start_container(&created.id, None)
            .await
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Node {
            id: created.id,
            name,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// `docker stop -t grace`: SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, node: &Node, grace_secs: i32) {
        self.docker_of(node)
            .stop_container(&node.id, Some(StopContainerOptionsBuilder::new().t(grace_secs).build()))
            .await
            .unwrap_or_else(|e| panic!("stopping {}: {e}", node.name));
    }

    /// `docker kill --signal SIGNAL`.
    pub async fn kill(&self, node: &Node, signal: &str) {
        self.docker_of(node)
            .kill_container(
                &node.id,
                Some(KillContainerOptionsBuilder::new().signal(signal).build()),
            )
            .await
            .unwrap_or_else(|e| panic!("killing {} with {signal}: {e}", node.name));
    }

    /// Waits (on the engine's wait endpoint) for the container to exit, and
    /// returns its exit code.
    pub async fn wait_exit(&self, node: &Node, within: Duration) -> i64 {
        let mut stream = self.docker_of(node).wait_container(&node.id, None);
        let waited = tokio::time::timeout(within, stream.next())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {within:?}", node.name));
        match waited {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => panic!("waiting for {}: {e}", node.name),
            None => panic!("wait stream for {} ended without a status", node.name),
        }
    }

    /// Everything the container has logged so far (stdout and stderr).
    pub async fn logs(&self, node: &Node) -> String {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut stream = self.docker_of(node).logs(&node.id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }

    /// Follows the container's log until a line satisfies `wanted`, and
    /// returns that line; panics with the log so far at the deadline.
    pub async fn wait_for_line(&self, node: &Node, within: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(true).build();
        let mut stream = self.docker_of(node).logs(&node.id, Some(options));
        let mut buffer = String::new();
        let found = tokio::time::timeout(within, async {
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(newline) = buffer.find('\n') {
                    let line: String = buffer.drain(..=newline).collect();
                    if wanted(line.trim_end()) {
                        return Some(line.trim_end().to_string());
                    }
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "{} logged no expected line within {within:?}; its log:\n{}",
                node.name,
                self.logs(node).await
            ),
        }
    }

    /// One GET to the node's published port.
    pub async fn http(&self, node: &Node, path: &str) -> Result<Answer, NoAnswer> {
        probe::get(&node.addr, path, None, Duration::from_secs(2)).await
    }

    /// Polls the node's `/health` until it answers HTTP at all (the 204 of
    /// the migration window counts); panics at the deadline.
    pub async fn wait_http(&self, node: &Node, within: Duration) -> Answer {
        self.wait_health(node, within, |_| true).await
    }

    /// Polls the node's `/health` until its real server answers (200 or 207,
    /// not the migration window's 204); panics at the deadline.
    pub async fn wait_serving(&self, node: &Node, within: Duration) -> Answer {
        self.wait_health(node, within, |status| status == 200 || status == 207)
            .await
    }

    async fn wait_health(&self, node: &Node, within: Duration, accept: impl Fn(u16) -> bool) -> Answer {
        let deadline = Instant::now() + within;
        loop {
            match self.http(node, "/health").await {
                Ok(answer) if accept(answer.status) => return answer,
                Ok(answer) if Instant::now() >= deadline => {
                    panic!(
                        "{} still answers {} after {within:?}; its log:\n{}",
                        node.name,
                        answer.status,
                        self.logs(node).await
                    )
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "{} did not answer HTTP within {within:?} ({e}); its log:\n{}",
                        node.name,
                        self.logs(node).await
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The labels every object of this test carries.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (TEST_LABEL.to_string(), self.id.clone()),
            (PID_LABEL.to_string(), std::process::id().to_string()),
        ])
    }

    /// Runs the `cl-maint` binary with `args` (plus `--json`), and returns
    /// its exit code, stdout parsed as JSON, and stderr.
    pub async fn cl_maint(&self, args: &[&str]) -> Run {
        self.cl_maint_env(args, &[]).await
    }

    /// [`Rig::cl_maint`] with `env` (`NAME`, `value`) set for it.
    pub async fn cl_maint_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
            .args(args)
            .envs(env.iter().copied())
            .arg("--json")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .expect("run cl-maint");
        Run::from_output(child)
    }

    /// The journal's figures so far.
    pub fn journal(&self) -> journal::Figures {
        journal::read(&self.dir)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let id = self.id.clone();
        let on_second = second::in_use();
        // The test's runtime may be unwinding: clean up on a thread and a
        // runtime of our own, and wait for it.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(docker) = connect().await {
                    cleanup::remove_labelled(&docker, &id).await;
                }
                if on_second {
                    second::clean(&id).await;
                }
            });
        });
        let _ = cleanup.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
