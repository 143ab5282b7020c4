//! What the benchmark and the soak share at their crate roots: the lock
//! generations, the context the benchmark's `methods` module works in, the
//! engine connection, the release build of cl-maint and the variants of the
//! new version's image. Each root defines `RUN_LABEL` and `PID_LABEL` and
//! re-exports this module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;

use crate::images::{self, Images};

/// The lock generation a double runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gen {
    /// flock on `db.bolt`, retried every 50 ms.
    Bolt,
    /// The lease row, retried every 1 s ± 10 %.
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

    /// The node's lock retry interval (the lease's upper bound with jitter).
    pub fn retry(self) -> Duration {
        match self {
            Gen::Bolt => Duration::from_millis(50),
            Gen::Lease => Duration::from_millis(1100),
        }
    }

    /// The double's boot after taking the lock (250 ms; plus a 300 ms
    /// migration window in the lease era).
    pub fn boot(self) -> Duration {
        match self {
            Gen::Bolt => Duration::from_millis(250),
            Gen::Lease => Duration::from_millis(550),
        }
    }

    /// The node's own share of a handoff: its retry interval plus its boot.
    pub fn retry_and_boot(self) -> Duration {
        self.retry() + self.boot()
    }
}

/// What every run shares.
pub struct Bench {
    /// The engine.
    pub docker: Docker,
    /// The double's images in the registry.
    pub images: crate::images::Images,
    /// The release binary of cl-maint.
    pub cl_maint: PathBuf,
    /// The tag of the new version (1.1.0) that upgrades go to and that each
    /// upgrade's sandbox removes from the engine first. The benchmark's is a
    /// variant of its own ([`push_variant`]), so that removing it never
    /// takes an image from under a test or another benchmark running beside
    /// it; the soak's is `1.1.0` itself.
    pub new_tag: String,
    /// Print each run's timeline (engine events and journal) on stderr.
    pub timeline: bool,
    /// The PostgreSQL server lease-era nodes keep their lease in.
    pub database: Option<Database>,
    /// `--probe` for every cl-maint run (`None`: cl-maint's default).
    pub probe: Option<String>,
}

/// Where lease-era nodes reach their database.
#[derive(Clone, Debug)]
pub struct Database {
    /// The server.
    pub server: std::sync::Arc<crate::postgres::Postgres>,
    /// The server's network, which lease-era nodes join.
    pub network: String,
}

impl Database {
    /// Creates a database of its own for one run (its lease and version
    /// tables), and returns the URL its nodes use.
    pub async fn fresh(&self, name: &str) -> String {
        self.server
            .psql(&format!("CREATE DATABASE \"{name}\" OWNER chainlink"))
            .await;
        self.server.url().replace("/chainlink?", &format!("/{name}?"))
    }
}

/// Starts the run's PostgreSQL server (Debian's `postgresql` binaries in an
/// image of their own, as the tests' rig builds it), labelled with this
/// process's id so the usual cleanup removes it; `None` without those
/// binaries (lease-era runs then fail at the node's boot, saying why).
pub async fn start_database(docker: &Docker, name: &str) -> Option<Database> {
    if !std::path::Path::new("/usr/lib/postgresql").exists() {
        eprintln!("no PostgreSQL binaries (apt-get install postgresql): lease-era nodes have no database");
        return None;
    }
    let labels = HashMap::from([(crate::PID_LABEL.to_string(), std::process::id().to_string())]);
    let pg = crate::postgres::Postgres::launch_named(docker.clone(), name, labels.clone(), labels, None).await;
    Some(Database {
        network: pg.network.clone(),
        server: std::sync::Arc::new(pg),
    })
}

/// A free TCP port on 127.0.0.1 (for the shared PostgreSQL code too).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The test rig's directory, whose registry and images the benchmark and
/// the soak share.
pub fn rig_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("cl-maint-rig")
}

/// Removes the networks of this process's runs (after their containers).
pub async fn remove_networks(docker: &Docker) {
    let label = format!("{}={}", crate::PID_LABEL, std::process::id());
    let filters = HashMap::from([("label".to_string(), vec![label])]);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::new()
        .filters(&filters)
        .build();
    for n in docker.list_networks(Some(options)).await.unwrap_or_default() {
        if let Some(id) = n.id {
            let _ = docker.remove_network(&id).await;
        }
    }
}

impl Bench {
    /// The labels of a run's containers.
    pub fn labels(&self, run: &str) -> HashMap<String, String> {
        HashMap::from([
            (crate::RUN_LABEL.to_string(), run.to_string()),
            (crate::PID_LABEL.to_string(), std::process::id().to_string()),
        ])
    }
}

/// Connects to the engine (honouring `DOCKER_HOST`); used by the shared
/// image code too.
pub async fn connect() -> Result<Docker, String> {
    let hint = "start dockerd (or `bash .ci/run`, which installs and starts one), or point DOCKER_HOST at one";
    let docker = Docker::connect_with_defaults().map_err(|e| format!("no Docker Engine ({e}): {hint}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("the Docker Engine did not answer ({e}): {hint}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("the Docker Engine did not answer ({e}): {hint}"))?;
    Ok(docker)
}

/// `cargo build --release --bin cl-maint`, next to this example's binary.
pub fn build_cl_maint() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "--quiet", "--bin", "cl-maint"])
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err("`cargo build --release --bin cl-maint` failed; nothing was started".into());
    }
    // target/release/examples/<example> -> target/release/cl-maint
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("cl-maint"))
        .ok_or("cannot locate target/release")?;
    if !bin.exists() {
        return Err(format!("{} is missing after the build", bin.display()));
    }
    Ok(bin)
}

/// Whether the process `pid` (a label's value) is gone.
pub fn pid_is_dead(pid: &str) -> bool {
    !pid.is_empty() && !Path::new("/proc").join(pid).exists()
}

/// Force-removes every container carrying `label` (`key=value`); given the
/// bare `PID_LABEL`, only those of runs that are no longer running.
pub async fn remove_labelled(docker: &Docker, label: &str) {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(options)).await.unwrap_or_default() {
        let pid = c
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::PID_LABEL))
            .cloned()
            .unwrap_or_default();
        if label != crate::PID_LABEL || pid_is_dead(&pid) {
            let _ = docker
                .remove_container(
                    c.id.as_deref().unwrap_or_default(),
                    Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()),
                )
                .await;
        }
    }
}

/// Builds `FROM <repo>:1.1.0` plus one label as `<repo>:<tag>` and pushes it
/// to the registry: the same version under another tag and digest. For
/// cl-maint it is a new image; removing its one tag deletes it from the
/// engine, so the next pull of it is a real one.
pub async fn push_variant(docker: &Docker, images: &Images, tag: &str) -> Result<(), String> {
    crate::methods::pull(docker, images, images::NEW).await?;
    let reference = images.reference(tag);
    let dockerfile = format!(
        "FROM {}\nLABEL io.cl-maint.variant=\"{tag}\"\n",
        images.reference(images::NEW)
    );
    let context = {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .and_then(|()| tar.into_inner())
            .map_err(|e| format!("cannot make the build context of {reference}: {e}"))?
    };
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("building {reference}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("building {reference}: {}", detail.message.unwrap_or_default()));
        }
    }
    images::push_image(docker, &images.repo, tag).await
}
