//! The demo: a real upgrade of a sandbox Chainlink node, end to end.
//!
//! `cargo run --example demo` builds the node double (a stand-in for the
//! Chainlink node, see docs/node-double.md) into images of two versions,
//! starts a sandbox node on the old one, runs `cl-maint upgrade` to the new
//! one, prints cl-maint's report and what the node's own journal measured,
//! and removes the sandbox. With Debian's `docker-registry` installed the
//! images are served by a registry on 127.0.0.1 and pulled for real;
//! without it they are built on the engine and the upgrade uses `--pull never`.
//! With Debian's `postgresql` installed the node is a lease-era node whose
//! lock lives in a PostgreSQL server of the sandbox's own (built from those
//! binaries); without it the node keeps the bolt era's file lock.

#[allow(dead_code)]
#[path = "../tests/it/rig/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../tests/it/rig/journal.rs"]
mod journal;
#[allow(dead_code)]
#[path = "../tests/it/rig/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "../tests/it/rig/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};

const NAME: &str = "cl-maint-demo";
const LABEL: &str = "io.cl-maint.demo";
/// Used by the shared PostgreSQL code (its stale-network sweep).
const PID_LABEL: &str = "io.cl-maint.demo-pid";

/// Used by the shared PostgreSQL code: where the rig keeps its files.
fn rig_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("cl-maint-rig");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Used by the shared image code.
async fn connect() -> Result<Docker, String> {
    let docker = Docker::connect_with_defaults().map_err(|e| format!("no Docker Engine: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("the Docker Engine did not answer: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("the Docker Engine did not answer: {e}"))?;
    Ok(docker)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(16688)
}

struct Sandbox {
    dir: PathBuf,
    port: u16,
    pull: &'static str,
    images: images::Images,
}

async fn setup() -> Result<Sandbox, String> {
    let docker = connect().await?;
    let rig_dir = rig_dir();
    println!("demo: building the node double and its images (1.0.0 and 1.1.0)...");
    let (images, pull) = match images::prepare(&rig_dir).await {
        Ok(images) => (images, "always"),
        Err(why) => {
            println!("demo: no registry ({why}); building the images on the engine and upgrading with --pull never");
            (images::build_local(&rig_dir, "cl-maint-demo/chainlink").await?, "never")
        }
    };
    remove_sandbox(&docker).await;
    let dir = std::env::temp_dir().join(format!("{NAME}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(|e| e.to_string())?;
    let old = images.reference(images::OLD);
    if pull == "always" {
        use futures::StreamExt;
        let options = bollard::query_parameters::CreateImageOptionsBuilder::new()
            .from_image(&images.repo)
            .tag(images::OLD)
            .build();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| format!("pulling {old}: {e}"))?;
        }
    }
    let port = free_port();
    let mut env = vec!["ROOT=/chainlink".to_string()];
    let mut network = None;
    if Path::new("/usr/lib/postgresql").exists() {
        println!("demo: starting the sandbox's PostgreSQL server (the node keeps its lease there)...");
        let labels = HashMap::from([(LABEL.to_string(), "1".to_string())]);
        let pg = postgres::Postgres::launch_named(docker.clone(), NAME, labels.clone(), labels, None).await;
        env.extend(["CL_DOUBLE_LOCK=lease".to_string(), format!("DATABASE_URL={}", pg.url())]);
        network = Some(pg.network.clone());
    } else {
        println!("demo: no PostgreSQL binaries (apt-get install postgresql); the node keeps the bolt era's file lock");
        env.extend(["CL_DOUBLE_LOCK=bolt".to_string(), "DATABASE_TIMEOUT=0".to_string()]);
    }
    let body = ContainerCreateBody {
        image: Some(old.clone()),
        env: Some(env),
        labels: Some(HashMap::from([(LABEL.to_string(), "1".to_string())])),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/chainlink", dir.display())]),
            port_bindings: Some(HashMap::from([(
                "6688/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            network_mode: network,
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(NAME).build()), body)
        .await
        .map_err(|e| format!("creating the sandbox node: {e}"))?;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(|e| format!("starting the sandbox node: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = cl_maint::probe::get(&format!("127.0.0.1:{port}"), "/health", None, Duration::from_secs(1)).await;
        if matches!(answer, Ok(ref a) if a.status == 200) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the sandbox node did not come up within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "demo: sandbox node {NAME} runs {old} on 127.0.0.1:{port}, volume {}",
        dir.display()
    );
    Ok(Sandbox {
        dir,
        port,
        pull,
        images,
    })
}

async fn remove_sandbox(docker: &Docker) {
    for name in [
        NAME.to_string(),
        format!("{NAME}-cl-maint-standby"),
        format!("{NAME}-cl-maint-old"),
        format!("pg-{NAME}"),
    ] {
        if let Ok(c) = docker.inspect_container(&name, None).await
            && c.config.and_then(|c| c.labels).is_some_and(|l| l.contains_key(LABEL))
        {
            let _ = docker
                .remove_container(&name, Some(RemoveContainerOptionsBuilder::new().force(true).build()))
                .await;
        }
    }
    if let Ok(n) = docker.inspect_network(&format!("{NAME}-db"), None).await
        && n.labels.is_some_and(|l| l.contains_key(LABEL))
    {
        let _ = docker.remove_network(&format!("{NAME}-db")).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let sandbox = match runtime.block_on(setup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(1);
        }
    };
    let standby_port = free_port().to_string();
    let args = [
        "cl-maint",
        "upgrade",
        "--container",
        NAME,
        "--tag",
        images::NEW,
        "--standby-port",
        &standby_port,
        "--pull",
        sandbox.pull,
        "--yes",
    ];
    println!("demo: running `{}`\n", args.join(" "));
    let code = cl_maint::run(args);
    let figures = journal::read(&sandbox.dir);
    println!("\ndemo: what the node's own journal measured:");
    println!(
        "  lock holders, in order: {}",
        figures
            .tenures
            .iter()
            .map(|t| t.version.as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    println!("  times two nodes held the lock at once: {}", figures.overlaps.len());
    for h in &figures.handoffs {
        println!(
            "  handoff {} -> {}: {:.0} ms with no node serving",
            h.from_version, h.to_version, h.gap_ms
        );
    }
    println!(
        "  the node on 127.0.0.1:{} now reports version {}",
        sandbox.port,
        current_version(&runtime, sandbox.port)
    );
    runtime.block_on(async {
        if let Ok(docker) = connect().await {
            remove_sandbox(&docker).await;
        }
    });
    let _ = std::fs::remove_dir_all(&sandbox.dir);
    let _ = &sandbox.images;
    println!("demo: sandbox removed; cl-maint exited {code}");
    std::process::exit(code);
}

fn current_version(runtime: &tokio::runtime::Runtime, port: u16) -> String {
    runtime.block_on(async {
        let answer = cl_maint::probe::get(&format!("127.0.0.1:{port}"), "/metrics", None, Duration::from_secs(2)).await;
        answer
            .ok()
            .and_then(|a| a.body.lines().find(|l| l.starts_with("version{")).map(str::to_string))
            .and_then(|l| {
                l.split("version=\"")
                    .nth(1)
                    .map(|v| v.split('"').next().unwrap_or_default().to_string())
            })
            .unwrap_or_else(|| "unknown (still starting)".into())
    })
}
