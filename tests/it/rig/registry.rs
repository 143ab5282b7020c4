//! A real registry for the tests: Debian's `docker-registry`, listening on
//! 127.0.0.1. The rig uses one that already answers; otherwise it starts one
//! (detached, so later test processes share it) and records its PID in
//! `target/cl-maint-rig/registry.pid` so that `.ci/run` can stop exactly it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cl_maint::probe;

/// The registry address the tests use (`CL_MAINT_TEST_REGISTRY` overrides).
pub fn address() -> String {
    std::env::var("CL_MAINT_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5115".to_string())
}

async fn answers(addr: &str) -> bool {
    matches!(probe::get(addr, "/v2/", None, Duration::from_secs(2)).await, Ok(a) if a.status == 200)
}

/// Makes sure a registry answers at [`address`], starting one if needed.
pub async fn ensure(rig_dir: &Path) -> Result<String, String> {
    let addr = address();
    if answers(&addr).await {
        return Ok(addr);
    }
    let binary = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| {
            format!(
                "no registry answers at {addr} and Debian's docker-registry is not installed: \
                 run `apt-get install docker-registry` (or `bash .ci/run`, which installs it)"
            )
        })?;
    let dir = rig_dir.join("registry");
    std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own session: a Ctrl-C to this test run does not take the shared
    // registry down with it.
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| format!("cannot start {binary}: {e}"))?;
    std::fs::write(rig_dir.join("registry.pid"), child.id().to_string()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if answers(&addr).await {
            return Ok(addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log_text = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
    Err(format!(
        "started {binary} (pid {}) but it did not answer at {addr} within 30 s; its log:\n{log_text}",
        child.id()
    ))
}

/// The tags a repository has in the registry (empty when it has none).
pub async fn tags(addr: &str, repository: &str) -> Vec<String> {
    match probe::get(
        addr,
        &format!("/v2/{repository}/tags/list"),
        None,
        Duration::from_secs(5),
    )
    .await
    {
        Ok(a) if a.status == 200 => serde_json::from_str::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|v| v.get("tags").cloned())
            .and_then(|t| serde_json::from_value(t).ok())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
