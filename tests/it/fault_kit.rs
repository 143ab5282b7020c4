//! What the fault tests share: cl-maint as a child process that a test can
//! signal at a chosen step, polls of the engine's state with deadlines, a
//! registry gate (a loopback TCP proxy in front of the rig's registry that
//! can hold every connection, so that cl-maint stays in its pull while the
//! test changes the world), a file in the node's volume that must never
//! change, and the final-state assertions every fault test makes.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::rig::{Node, Rig, Run};

/// How long any poll of a test waits for the engine to get somewhere.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The file in the node's volume every fault must leave as it was.
const SENTINEL: &str = "operator-keystore.json";
const SENTINEL_TEXT: &str = "{\"keys\":[\"0xfeed\"]}\n";

/// Writes the operator's file into the test's volume directory.
pub fn plant_sentinel(rig: &Rig) {
    std::fs::write(rig.dir.join(SENTINEL), SENTINEL_TEXT).expect("write the sentinel file");
}

/// Asserts the operator's file is still there, unchanged.
pub fn assert_sentinel(rig: &Rig) {
    let text = std::fs::read_to_string(rig.dir.join(SENTINEL)).expect("the sentinel file is gone");
    assert_eq!(text, SENTINEL_TEXT, "the node's volume was changed");
}

/// `cl-maint ARGS --json` as a child process with `env` set (`None`
/// removes), stdout and stderr piped.
pub fn spawn(args: &[String], env: &[(&str, Option<&str>)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"));
    command
        .args(args)
        .arg("--json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    command.spawn().expect("start cl-maint")
}

/// Sends `signal` (`libc::SIGINT`, `libc::SIGTERM`) to the child this test
/// started, by its PID.
pub fn signal(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("cl-maint's pid") as i32;
    // SAFETY: kill(2) on a child process this test spawned and still owns.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signalling cl-maint");
}

/// Waits for the child to end (within [`DEADLINE`] plus `extra`) and reads
/// its report.
pub async fn finish(child: tokio::process::Child, extra: Duration) -> Run {
    let out = tokio::time::timeout(DEADLINE + extra, child.wait_with_output())
        .await
        .expect("cl-maint did not end in time")
        .expect("cl-maint's output");
    Run::from_output(out)
}

/// Polls `check` every 20 ms until it returns `Some`, failing the test with
/// `what` at [`DEADLINE`].
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never saw: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The container `name`'s (id, running), when it exists.
pub async fn container(rig: &Rig, name: &str) -> Option<(String, bool)> {
    let c = rig.docker.inspect_container(name, None).await.ok()?;
    Some((
        c.id.unwrap_or_default(),
        c.state.and_then(|s| s.running).unwrap_or(false),
    ))
}

/// Waits until `name` exists and runs (`running`) or exists and does not.
pub async fn until_state(rig: &Rig, name: &str, running: bool) -> String {
    until(&format!("{name} running={running}"), || async {
        container(rig, name)
            .await
            .filter(|(_, r)| *r == running)
            .map(|(id, _)| id)
    })
    .await
}

/// Waits until a container named `name` runs with an id other than `not`.
pub async fn until_recreated(rig: &Rig, name: &str, not: &str) -> String {
    until(&format!("{name} recreated"), || async {
        container(rig, name)
            .await
            .filter(|(id, running)| *running && id != not)
            .map(|(id, _)| id)
    })
    .await
}

/// Waits until the container's log has a line containing `text` (polling:
/// a followed log of a container not yet started ends at once).
pub async fn until_logged(rig: &Rig, name: &str, text: &str) {
    let node = Node {
        id: name.to_string(),
        name: name.to_string(),
        addr: String::new(),
    };
    until(&format!("{name} logging {text:?}"), || async {
        rig.logs(&node).await.contains(text).then_some(())
    })
    .await;
}

/// How many containers of this test answer `/health` as a lock holder, by
/// the host ports they publish, with the addresses that answer.
pub async fn holders(rig: &Rig) -> Vec<String> {
    let mut answering = Vec::new();
    for line in crate::upgrade::world(rig).await {
        let name = line.split_whitespace().next().unwrap_or_default().to_string();
        let Ok(c) = rig.docker.inspect_container(&name, None).await else {
            continue;
        };
        if c.state.and_then(|s| s.running) != Some(true) {
            continue;
        }
        let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
        for binding in ports.get("6688/tcp").cloned().flatten().unwrap_or_default() {
            let addr = format!("127.0.0.1:{}", binding.host_port.unwrap_or_default());
            if let Ok(a) = cl_maint::probe::get(&addr, "/health", None, Duration::from_secs(2)).await
                && matches!(a.status, 200 | 204 | 207 | 503)
            {
                answering.push(format!("{name} on {addr}"));
            }
        }
    }
    answering
}

/// The final state every fault must end in: exactly one node holding the
/// lock, and it is `node` on its main port when `on_main` (else anywhere);
/// the journal shows no overlap; the operator's file is unchanged.
pub async fn assert_one_holder(rig: &Rig, node: &Node, on_main: bool) {
    if on_main {
        rig.wait_serving(node, Duration::from_secs(30)).await;
    }
    let holders = holders(rig).await;
    assert_eq!(holders.len(), 1, "exactly one lock holder: {holders:?}");
    if on_main {
        assert!(
            holders[0].ends_with(&node.addr),
            "the holder is on the main port: {holders:?}"
        );
    }
    rig.journal().assert_safe(Duration::MAX);
    assert_sentinel(rig);
}

/// The report's `error`, or stderr when there is none.
pub fn error_of(run: &Run) -> String {
    run.report["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| run.stderr.clone())
}

/// A loopback TCP proxy in front of the rig's registry. While held, it
/// accepts connections and forwards nothing; on release they go through.
/// Dropping it stops accepting (live connections end with their peers).
pub struct RegistryGate {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    held: Arc<(Mutex<bool>, Condvar)>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RegistryGate {
    /// A gate to `upstream` (`host:port`), held from the start.
    pub fn held(upstream: &str) -> RegistryGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let addr = listener.local_addr().expect("the gate's address").to_string();
        listener.set_nonblocking(true).expect("non-blocking gate");
        let held = Arc::new((Mutex::new(true), Condvar::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, a, s, up) = (held.clone(), accepted.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let (h, up) = (h.clone(), up.clone());
                        std::thread::spawn(move || forward(client, &up, &h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RegistryGate {
            addr,
            held,
            accepted,
            stop,
        }
    }

    /// The double's repository, reached through the gate.
    pub fn repository(&self, rig: &Rig) -> String {
        let path = rig.images.repo.split_once('/').map(|(_, p)| p).unwrap_or_default();
        format!("{}/{path}", self.addr)
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Lets every connection (held or new) through.
    pub fn release(&self) {
        *self.held.0.lock().unwrap() = false;
        self.held.1.notify_all();
    }
}

impl Drop for RegistryGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release();
    }
}

fn forward(client: TcpStream, upstream: &str, held: &(Mutex<bool>, Condvar)) {
    let _ = client.set_nonblocking(false);
    let mut gate = held.0.lock().unwrap();
    while *gate {
        gate = held.1.wait(gate).unwrap();
    }
    drop(gate);
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut client, mut server) = (client, server);
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
