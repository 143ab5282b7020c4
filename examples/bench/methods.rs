//! One measured upgrade of a fresh node (1.0.0 → 1.1.0) by each method:
//! cl-maint, the documented manual procedure scripted with the `docker` CLI,
//! and stop-then-recreate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;

use cl_maint::node::health::status_means_serving;
use cl_maint::node::logs::{Event, classify};

use crate::common::free_port;
use crate::images::{self, Images};
use crate::proc::{self, docker};
use crate::stats::{Kind, Method, Sample};
use crate::{Bench, Gen, journal};

/// How often the scripted procedures poll a node's HTTP port (cl-maint's
/// own interval).
const HTTP_POLL: Duration = Duration::from_millis(20);
/// How often the scripted manual procedure runs `docker logs` to look for
/// the waiting line.
pub const LOGS_POLL: Duration = Duration::from_millis(100);
/// How long any single wait of a scripted procedure may take.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// One run's sandbox: a fresh volume directory and a primary on the old
/// version, serving on its own port.
pub struct Sandbox {
    /// The primary's container name.
    pub primary: String,
    /// The volume directory, mounted at `/chainlink`.
    pub dir: PathBuf,
    /// `127.0.0.1:PORT` of the primary (what 6688 is in the guide).
    pub primary_addr: String,
    /// The primary's host port.
    pub primary_port: u16,
    /// The standby's host port (what 6687 is in the guide).
    pub standby_port: u16,
    /// The lock generation.
    pub generation: Gen,
    /// What the sandbox is for.
    pub kind: Kind,
    /// The label value every container of this run carries.
    pub run_label: String,
    /// Lease era: the URL of the run's own database.
    pub database_url: Option<String>,
}

/// The node's environment, as the operator's `.env` has it. A failover
/// pair's members take turns waiting, so in the bolt era the env file has
/// `DATABASE_TIMEOUT=0` (wait indefinitely) from the start.
pub fn node_env(sandbox: &Sandbox) -> Vec<String> {
    let (generation, kind) = (sandbox.generation, sandbox.kind);
    let mut env = vec!["ROOT=/chainlink".into(), format!("CL_DOUBLE_LOCK={}", generation.env())];
    if let Some(url) = &sandbox.database_url {
        env.push(format!("DATABASE_URL={url}"));
    }
    if generation == Gen::Bolt && kind == Kind::Switchover {
        env.push("DATABASE_TIMEOUT=0".into());
    }
    env
}

impl Sandbox {
    /// The network a lease-era node joins (its database's).
    fn network(&self, bench: &Bench) -> Option<String> {
        (self.generation == Gen::Lease)
            .then(|| bench.database.as_ref().map(|d| d.network.clone()))
            .flatten()
    }

    /// The create request of the node on `reference`, published on `port`.
    fn body(&self, bench: &Bench, reference: &str, port: u16) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(reference.to_string()),
            env: Some(node_env(self)),
            labels: Some(bench.labels(&self.run_label)),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{}:/chainlink", self.dir.display())]),
                port_bindings: Some(HashMap::from([(
                    "6688/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(port.to_string()),
                    }]),
                )])),
                network_mode: self.network(bench),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Makes a sandbox: a fresh directory, the primary on the old version,
/// serving; for an upgrade, the new version removed from the engine so that
/// every method pulls it for real.
pub async fn sandbox(
    bench: &Bench,
    generation: Gen,
    kind: Kind,
    run: usize,
    method: Method,
) -> Result<Sandbox, String> {
    let run_label = format!("{}-{run}", std::process::id());
    let primary = format!("clbench-{run_label}-{}-{}", generation.env(), method.slug());
    let dir = std::env::temp_dir().join(&primary);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(|e| e.to_string())?;
    let primary_port = free_port();
    // Each run its own database, as each has its own volume.
    let database_url = match (&bench.database, generation) {
        (Some(db), Gen::Lease) => Some(db.fresh(&primary.replace('-', "_")).await),
        _ => None,
    };
    let sandbox = Sandbox {
        primary,
        dir,
        primary_addr: format!("127.0.0.1:{primary_port}"),
        primary_port,
        standby_port: free_port(),
        generation,
        kind,
        run_label,
        database_url,
    };
    let reference = bench.images.reference(images::OLD);
    let body = sandbox.body(bench, &reference, primary_port);
    let options = CreateContainerOptionsBuilder::new().name(&sandbox.primary).build();
    let created = bench
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("creating {}: {e}", sandbox.primary))?;
    bench
        .docker
        .start_container(&created.id, None)
        .await
        .map_err(|e| format!("starting {}: {e}", sandbox.primary))?;
    wait_serving(&sandbox.primary_addr, WAIT_LIMIT).await?;
    if kind == Kind::Switchover {
        return Ok(sandbox);
    }
    crate::images::untag(&bench.docker, &bench.images, &bench.new_tag).await;
    Ok(sandbox)
}

/// Removes every container of the run and its directory.
pub async fn clean(docker: &Docker, sandbox: &Sandbox) {
    crate::remove_labelled(docker, &format!("{}={}", crate::RUN_LABEL, sandbox.run_label)).await;
    let _ = std::fs::remove_dir_all(&sandbox.dir);
}

/// Polls `addr` until the node's real server answers; returns when.
pub async fn wait_serving(addr: &str, within: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(a) = cl_maint::probe::get(addr, "/health", None, Duration::from_secs(2)).await
            && status_means_serving(a.status)
        {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing served on {addr} within {within:?}"));
        }
        tokio::time::sleep(HTTP_POLL).await;
    }
}

/// The version the node on `addr` reports in `/metrics`.
pub async fn version_on(addr: &str) -> Option<String> {
    let a = cl_maint::probe::get(addr, "/metrics", None, Duration::from_secs(2))
        .await
        .ok()?;
    let line = a.body.lines().find(|l| l.starts_with("version{"))?.to_string();
    Some(line.split("version=\"").nth(1)?.split('"').next()?.to_string())
}

/// Runs one upgrade by `method` on a fresh sandbox and measures it.
pub async fn upgrade(bench: &Bench, generation: Gen, run: usize, method: Method) -> Sample {
    let mut sample = Sample::new(method, generation, Kind::Upgrade);
    let sandbox = match sandbox(bench, generation, Kind::Upgrade, run, method).await {
        Ok(s) => s,
        Err(e) => {
            sample.error = Some(format!("setup: {e}"));
            return sample;
        }
    };
    let started = SystemTime::now();
    let result = match method {
        Method::ClMaint => cl_maint_upgrade(bench, &sandbox, &mut sample).await,
        Method::Manual => manual_upgrade(bench, &sandbox, &mut sample).await,
        Method::Recreate => recreate_upgrade(bench, &sandbox, &mut sample).await,
    };
    finish(bench, &sandbox, &mut sample, result, started).await;
    sample
}

/// Reads the journal, checks the end state, and cleans up.
pub async fn finish(
    bench: &Bench,
    sandbox: &Sandbox,
    sample: &mut Sample,
    result: Result<(), String>,
    started: SystemTime,
) {
    if let Err(e) = result {
        sample.error = Some(e);
    } else {
        let expected = match sandbox.kind {
            Kind::Upgrade => images::NEW,
            Kind::Switchover => images::OLD,
        };
        if version_on(&sandbox.primary_addr).await.as_deref() != Some(expected) {
            sample.error = Some(format!(
                "{} does not serve {expected} on {} afterwards",
                sandbox.primary, sandbox.primary_addr
            ));
        }
    }
    let figures = journal::read(&sandbox.dir);
    sample.gaps_ms = figures.handoffs.iter().map(|h| h.gap_ms).collect();
    sample.overlaps = figures.overlaps.len();
    if bench.timeline {
        let title = format!(
            "{} {} {}",
            sample.kind.label(),
            sandbox.generation.env(),
            sample.method.label(sample.kind)
        );
        crate::timeline::print(&bench.docker, &sandbox.run_label, started, &sandbox.dir, &title).await;
    }
    clean(&bench.docker, sandbox).await;
}

/// Runs the cl-maint binary with `args` (plus `--json`), measured; adds its
/// wall time, CPU time and peak RSS to the sample and returns its report.
pub async fn cl_maint(bench: &Bench, args: &[&str], sample: &mut Sample) -> Result<serde_json::Value, String> {
    let mut command = Command::new(&bench.cl_maint);
    command.args(args).arg("--json");
    if let Some(probe) = &bench.probe {
        command.args(["--probe", probe]);
    }
    let measured = tokio::task::spawn_blocking(move || proc::run_measured(&mut command))
        .await
        .map_err(|e| e.to_string())??;
    sample.total += measured.wall;
    sample.cpu = Some(sample.cpu.unwrap_or_default() + measured.cpu);
    sample.max_rss_kib = Some(sample.max_rss_kib.unwrap_or_default().max(measured.max_rss_kib));
    let report: serde_json::Value = serde_json::from_str(&measured.stdout).unwrap_or_default();
    if measured.code != 0 {
        return Err(format!(
            "`cl-maint {}` exited {} ({}): {}",
            args.join(" "),
            measured.code,
            report["outcome"],
            report["error"].as_str().unwrap_or(measured.stderr.trim())
        ));
    }
    Ok(report)
}

async fn cl_maint_upgrade(bench: &Bench, sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    // A name no container has: this is the single-node upgrade (with a
    // failover pair, cl-maint upgrades both members instead).
    let no_secondary = format!("{}-no-secondary", sandbox.primary);
    let standby_port = sandbox.standby_port.to_string();
    let args = [
        "upgrade",
        "--container",
        &sandbox.primary,
        "--secondary",
        &no_secondary,
        "--tag",
        &bench.new_tag,
        "--standby-port",
        &standby_port,
        "--pull",
        "always",
        "--yes",
    ];
    let report = cl_maint(bench, &args, sample).await?;
    for phase in report["phases"].as_array().into_iter().flatten() {
        let name = phase["name"].as_str().unwrap_or_default().to_string();
        let ms = phase["duration_ms"].as_u64().unwrap_or_default();
        if name == "pull" {
            sample.pull = Duration::from_millis(ms);
        }
        if name == "lock-retry" {
            sample.lock_waits += Duration::from_millis(ms);
        }
        sample.phases.push((name, ms));
    }
    if report["outcome"] != "upgraded" {
        return Err(format!("cl-maint reported {}", report["outcome"]));
    }
    Ok(())
}

/// Polls `docker logs NAME` until the node says it waits for the lock.
pub fn poll_logs_for_waiting(name: &str) -> Result<(), String> {
    poll_logs_since(name, None)
}

/// Like [`poll_logs_for_waiting`], reading only what was logged since
/// `since` (`docker logs --since`), for a container started again.
pub fn poll_logs_since(name: &str, since: Option<&str>) -> Result<(), String> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let logs = match since {
            Some(t) => docker(&["logs", "--since", t, name])?,
            None => docker(&["logs", name])?,
        };
        if logs.lines().any(|l| matches!(classify(l), Some(Event::Waiting(_)))) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{name} logged no waiting line within {WAIT_LIMIT:?}:\n{logs}"));
        }
        std::thread::sleep(LOGS_POLL);
    }
}

/// Runs blocking work (the `docker` CLI) on this worker thread.
pub fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Chainlink's "Performing System Maintenance", scripted with the `docker`
/// CLI: pull; `docker run` the new image on the standby port with the same
/// volume and `--env-file`; poll `docker logs` for the waiting line; `docker
/// kill` the primary; wait until the standby serves; `docker run` the
/// primary again on its port; poll its log; `docker kill` the standby; wait.
/// The killed containers are removed (`docker rm`) so the run ends as
/// cl-maint's does: one container, under the node's name.
async fn manual_upgrade(bench: &Bench, sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    // The bolt-era guide adds DATABASE_TIMEOUT to .env so that the second
    // instance waits for the lock (0: indefinitely); the lease era needs nothing.
    let mut env = node_env(sandbox);
    if sandbox.generation == Gen::Bolt {
        env.push("DATABASE_TIMEOUT=0".into());
    }
    let env_file = sandbox.dir.join(".env");
    std::fs::write(&env_file, env.join("\n") + "\n").map_err(|e| e.to_string())?;
    let env_file = format!("--env-file={}", env_file.display());
    let volume = format!("{}:/chainlink", sandbox.dir.display());
    let label = format!("{}={}", crate::RUN_LABEL, sandbox.run_label);
    let pid_label = format!("{}={}", crate::PID_LABEL, std::process::id());
    let new = bench.images.reference(&bench.new_tag);
    let secondary = format!("{}-secondary", sandbox.primary);
    let standby_addr = format!("127.0.0.1:{}", sandbox.standby_port);
    let network = format!(
        "--network={}",
        sandbox.network(bench).unwrap_or_else(|| "bridge".into())
    );
    let run = |name: &str, port: u16| {
        let publish = format!("127.0.0.1:{port}:6688");
        docker(&[
            "run", "-d", "--name", name, "-p", &publish, "-v", &volume, &env_file, &network, "--label", &label,
            "--label", &pid_label, &new,
        ])
    };
    let cpu_before = proc::children_cpu();
    let started = Instant::now();
    let mut steps = Steps::new(sample);
    block(|| docker(&["pull", &new]))?;
    steps.done("pull");
    block(|| run(&secondary, sandbox.standby_port))?;
    steps.done("run-secondary");
    block(|| poll_logs_for_waiting(&secondary))?;
    steps.done("logs-secondary");
    block(|| docker(&["kill", &sandbox.primary]))?;
    steps.done("kill-primary");
    wait_serving(&standby_addr, WAIT_LIMIT).await?;
    steps.done("takeover");
    block(|| docker(&["rm", &sandbox.primary]))?;
    steps.done("rm-primary");
    block(|| run(&sandbox.primary, sandbox.primary_port))?;
    steps.done("run-primary");
    block(|| poll_logs_for_waiting(&sandbox.primary))?;
    steps.done("logs-primary");
    block(|| docker(&["kill", &secondary]))?;
    steps.done("kill-secondary");
    wait_serving(&sandbox.primary_addr, WAIT_LIMIT).await?;
    steps.done("hand-back");
    block(|| docker(&["rm", &secondary]))?;
    steps.done("rm-secondary");
    sample.total = started.elapsed();
    sample.pull = Duration::from_millis(sample.phases[0].1);
    sample.cpu = Some(proc::children_cpu().saturating_sub(cpu_before));
    Ok(())
}

/// Stop-then-recreate, as watchtower-style updaters do it through the
/// Engine API: pull, stop the primary (graceful, 10 s grace), remove it,
/// create and start it on the new image, wait until it answers.
async fn recreate_upgrade(bench: &Bench, sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    let docker = &bench.docker;
    let new = bench.images.reference(&bench.new_tag);
    let started = Instant::now();
    let mut steps = Steps::new(sample);
    pull(docker, &bench.images, &bench.new_tag).await?;
    steps.done("pull");
    let stop = StopContainerOptionsBuilder::new().t(10).build();
    docker
        .stop_container(&sandbox.primary, Some(stop))
        .await
        .map_err(|e| format!("stopping {}: {e}", sandbox.primary))?;
    steps.done("stop");
    docker
        .remove_container(&sandbox.primary, Some(RemoveContainerOptionsBuilder::new().build()))
        .await
        .map_err(|e| format!("removing {}: {e}", sandbox.primary))?;
    steps.done("remove");
    let body = sandbox.body(bench, &new, sandbox.primary_port);
    let options = CreateContainerOptionsBuilder::new().name(&sandbox.primary).build();
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("creating {}: {e}", sandbox.primary))?;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(|e| format!("starting {}: {e}", sandbox.primary))?;
    steps.done("create-start");
    wait_serving(&sandbox.primary_addr, WAIT_LIMIT).await?;
    steps.done("wait-serving");
    sample.pull = Duration::from_millis(sample.phases[0].1);
    sample.total = started.elapsed();
    Ok(())
}

/// Records the duration of each step of a scripted procedure as a phase.
pub struct Steps<'a> {
    sample: &'a mut Sample,
    since: Instant,
}

impl<'a> Steps<'a> {
    /// Starts timing the first step.
    pub fn new(sample: &'a mut Sample) -> Self {
        Steps {
            sample,
            since: Instant::now(),
        }
    }

    /// Ends the current step under `name`.
    pub fn done(&mut self, name: &str) {
        let now = Instant::now();
        let ms = (now - self.since).as_millis() as u64;
        self.sample.phases.push((name.to_string(), ms));
        self.since = now;
    }
}

/// Pulls `tag` of the double through the Engine API.
pub async fn pull(docker: &Docker, images: &Images, tag: &str) -> Result<(), String> {
    let options = CreateImageOptionsBuilder::new()
        .from_image(&images.repo)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("pulling {}: {e}", images.reference(tag)))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("pulling {}: {:?}", images.reference(tag), detail.message));
        }
    }
    Ok(())
}

/// The directory this run's sandbox would use (for cleanup on interrupt).
pub fn dirs_of_this_process() -> Vec<PathBuf> {
    let prefix = format!("clbench-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}
