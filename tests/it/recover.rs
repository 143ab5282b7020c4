//! `cl-maint recover` after cl-maint itself was SIGKILLed at each step of an
//! `upgrade` and of a `failover`, on the real engine, in both lock
//! generations. The kill lands when the test sees the engine reach the step
//! (polled with a deadline); whatever instant it lands, recover must leave
//! exactly one holder, on the main port, nothing but what its report names,
//! the volume untouched, and the journal without overlap.

use std::time::Duration;

use cl_maint::node::logs::{self, Event};
use tokio::time::Instant;

use crate::failover::{Pair, lock_of, pair_up};
use crate::rig::{Gen, NEW, Node, Rig, Run, free_port};
use crate::upgrade::{primary, world};

/// How long any poll waits for the engine to get somewhere.
const DEADLINE: Duration = Duration::from_secs(60);
/// A handoff bound for a machine busy with parallel tests.
const MARGIN: Duration = Duration::from_secs(2);
/// The operator's file in the node's volume, which nothing may touch.
const SENTINEL: (&str, &str) = ("operator-keystore.json", "{\"keys\":[\"0xfeed\"]}\n");

/// `cl-maint ARGS --json` as a child process.
pub fn spawn(args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(args)
        .arg("--json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start cl-maint")
}

/// Sends `signal` to the child this test started; waits for it to end.
pub async fn signal_and_wait(child: tokio::process::Child, signal: i32) -> Run {
    let pid = child.id().map(|p| p as i32);
    if let Some(pid) = pid {
        // SAFETY: kill(2) on a child process this test spawned and still owns
        // (it may have exited already: then ESRCH, which is fine).
        unsafe { libc::kill(pid, signal) };
    }
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("cl-maint ends after the signal")
        .expect("cl-maint's output");
    Run::from_output(out)
}

/// Polls `check` every 10 ms until it is true; false at the deadline or
/// when `child` ended first (the run was quicker than the poll).
pub async fn until<F, Fut>(child: &mut tokio::process::Child, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if check().await {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        assert!(Instant::now() < deadline, "the run never got to the step");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The container's id, if it exists.
pub async fn id_of(rig: &Rig, name: &str) -> Option<String> {
    rig.docker.inspect_container(name, None).await.ok()?.id
}

async fn running(rig: &Rig, name: &str) -> Option<bool> {
    rig.docker.inspect_container(name, None).await.ok()?.state?.running
}

/// Whether the container's log has a line meaning `event`.
async fn logged(rig: &Rig, name: &str, event: fn(&Event) -> bool) -> bool {
    let Some(id) = id_of(rig, name).await else { return false };
    let node = Node {
        id,
        name: name.to_string(),
        addr: String::new(),
    };
    rig.logs(&node)
        .await
        .lines()
        .any(|l| logs::classify(l).as_ref().is_some_and(event))
}

fn waiting(e: &Event) -> bool {
    matches!(e, Event::Waiting(_))
}

fn shutting_down(e: &Event) -> bool {
    *e == Event::ShuttingDown
}

async fn answers(addr: &str) -> bool {
    cl_maint::probe::get(addr, "/health", None, Duration::from_millis(500))
        .await
        .is_ok_and(|a| a.status == 200)
}

/// The steps of an upgrade at which cl-maint is killed.
#[derive(Clone, Copy, Debug)]
enum Step {
    PullDone,
    StandbyCreated,
    StandbyWaiting,
    OldStopping,
    StandbyHolding,
    OldRenamed,
    NewCreated,
    NewWaiting,
    HandingBack,
}

/// Whether the upgrade of `node` (standby on `standby_addr`) got to `step`.
async fn reached(rig: &Rig, node: &Node, standby_addr: &str, step: Step) -> bool {
    let standby = format!("{}-cl-maint-standby", node.name);
    let old = format!("{}-cl-maint-old", node.name);
    let new_exists = async { id_of(rig, &node.name).await.is_some_and(|id| id != node.id) };
    match step {
        Step::PullDone => rig.docker.inspect_image(&rig.images.reference(NEW)).await.is_ok(),
        Step::StandbyCreated => id_of(rig, &standby).await.is_some(),
        Step::StandbyWaiting => logged(rig, &standby, waiting).await,
        Step::OldStopping => {
            logged(rig, &node.name, shutting_down).await || running(rig, &node.name).await == Some(false)
        }
        Step::StandbyHolding => answers(standby_addr).await,
        Step::OldRenamed => id_of(rig, &old).await.is_some(),
        Step::NewCreated => new_exists.await,
        Step::NewWaiting => new_exists.await && logged(rig, &node.name, waiting).await,
        Step::HandingBack => {
            logged(rig, &standby, shutting_down).await
                || (id_of(rig, &old).await.is_some() && running(rig, &standby).await == Some(false))
        }
    }
}

fn plant(rig: &Rig) {
    std::fs::write(rig.dir.join(SENTINEL.0), SENTINEL.1).unwrap();
}

fn assert_volume_untouched(rig: &Rig) {
    let text = std::fs::read_to_string(rig.dir.join(SENTINEL.0)).expect("the operator's file is gone");
    assert_eq!(text, SENTINEL.1, "the node's volume was changed");
}

/// What every recovered single node must look like: `NAME` holds the lock on
/// its port, on the new version if the new version ever held the lock (else
/// the untouched original), nothing is left but what the report names, and
/// the journal shows no overlap.
async fn assert_recovered(rig: &Rig, node: &Node, generation: Gen, run: &Run) {
    assert!(
        run.code == 0 && ["recovered", "nothing-to-do"].contains(&run.report["outcome"].as_str().unwrap_or("")),
        "{run:?}"
    );
    assert!(
        run.report["state"].as_str().unwrap().contains("holds the lock"),
        "{run:?}"
    );
    rig.wait_serving(node, Duration::from_secs(30)).await;
    let figures = rig.journal().assert_safe(generation.handoff_bound(MARGIN));
    let new_held = figures.tenures.iter().any(|t| t.version == NEW);
    let c = rig.docker.inspect_container(&node.name, None).await.unwrap();
    if new_held {
        assert!(
            c.config.unwrap().image.unwrap().ends_with(&format!(":{NEW}")),
            "once the new version held the lock, never back: {run:?}"
        );
        // Said when recover finished the upgrade; a run killed only after
        // its own clean-up (a slow poll of the step under load) leaves
        // nothing to recover, and the image check above is what counts.
        if run.report["outcome"] == "recovered" {
            assert!(run.report["state"].as_str().unwrap().contains("new version"), "{run:?}");
        }
    } else {
        assert_eq!(
            c.id.as_deref(),
            Some(node.id.as_str()),
            "the untouched original: {run:?}"
        );
    }
    let left: Vec<String> = serde_json::from_value(run.report["left"].clone()).unwrap();
    for line in world(rig).await {
        let name = line.split(' ').next().unwrap();
        assert!(
            name == node.name || left.iter().any(|l| l == name),
            "{name} left behind: {run:?}"
        );
    }
    assert_volume_untouched(rig);
}

/// Kills `cl-maint upgrade` at `step`, then (with `again`) runs the same
/// upgrade once more, then `cl-maint recover`.
async fn upgrade_killed_at(generation: Gen, step: Step, again: bool, test: &str) {
    let rig = Rig::new(test).await;
    let node = primary(&rig, generation, &["DATABASE_TIMEOUT=0"]).await;
    plant(&rig);
    let port = free_port().to_string();
    let args: Vec<String> = [
        "upgrade",
        "--container",
        &node.name,
        "--tag",
        NEW,
        "--standby-port",
        &port,
    ]
    .map(String::from)
    .to_vec();
    let standby_addr = format!("127.0.0.1:{port}");
    let mut child = spawn(&args);
    let hit = until(&mut child, || reached(&rig, &node, &standby_addr, step)).await;
    let killed = signal_and_wait(child, libc::SIGKILL).await;
    eprintln!("{test}: step {step:?} reached: {hit}; killed run: {}", killed.code);
    if again {
        let rerun = rig.cl_maint(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let says_recover = rerun.report["next_steps"].to_string().contains("cl-maint recover");
        assert!(
            rerun.code == 0 || (rerun.code == 3 && says_recover),
            "the same command converges or points at recover: {rerun:?}"
        );
    }
    let run = rig.cl_maint(&["recover", "--container", &node.name]).await;
    assert_recovered(&rig, &node, generation, &run).await;
    // Recover again: nothing left to do.
    let twice = rig.cl_maint(&["recover", "--container", &node.name]).await;
    assert_eq!(
        (twice.code, twice.report["outcome"].as_str()),
        (0, Some("nothing-to-do")),
        "{twice:?}"
    );
}

macro_rules! upgrade_kills {
    ($($test:ident: $gen:expr, $step:expr, $again:expr;)*) => {$(
        #[tokio::test]
        async fn $test() {
            upgrade_killed_at($gen, $step, $again, stringify!($test)).await;
        }
    )*};
}

upgrade_kills! {
    rec_pull_done_lease: Gen::Lease, Step::PullDone, false;
    rec_standby_created_lease: Gen::Lease, Step::StandbyCreated, false;
    rec_standby_waiting_lease: Gen::Lease, Step::StandbyWaiting, true;
    rec_standby_waiting_bolt: Gen::Bolt, Step::StandbyWaiting, false;
    rec_old_stopping_lease: Gen::Lease, Step::OldStopping, false;
    rec_old_stopping_bolt: Gen::Bolt, Step::OldStopping, false;
    rec_standby_holding_lease: Gen::Lease, Step::StandbyHolding, true;
    rec_standby_holding_bolt: Gen::Bolt, Step::StandbyHolding, false;
    rec_old_renamed_lease: Gen::Lease, Step::OldRenamed, true;
    rec_new_created_bolt: Gen::Bolt, Step::NewCreated, false;
    rec_new_waiting_lease: Gen::Lease, Step::NewWaiting, false;
    rec_new_waiting_bolt: Gen::Bolt, Step::NewWaiting, false;
    rec_handing_back_lease: Gen::Lease, Step::HandingBack, false;
}

/// The steps of a switchover at which cl-maint is killed.
#[derive(Clone, Copy, Debug)]
enum Switch {
    OldStopping,
    OtherHolding,
    OldStarting,
}

async fn failover_killed_at(generation: Gen, step: Switch, test: &str) {
    let rig = Rig::new(test).await;
    let pair: Pair = pair_up(&rig, generation).await;
    plant(&rig);
    let secondary = pair.secondary_node(&rig).await;
    let port = pair.port.to_string();
    let args: Vec<String> = [
        "failover",
        "--container",
        &pair.primary.name,
        "--secondary",
        &pair.secondary,
        "--secondary-port",
        &port,
    ]
    .map(String::from)
    .to_vec();
    let mut child = spawn(&args);
    let p = &pair.primary;
    let hit = until(&mut child, || async {
        match step {
            Switch::OldStopping => {
                logged(&rig, &p.name, shutting_down).await || running(&rig, &p.name).await == Some(false)
            }
            Switch::OtherHolding => answers(&secondary.addr).await,
            Switch::OldStarting => answers(&secondary.addr).await && running(&rig, &p.name).await == Some(true),
        }
    })
    .await;
    let killed = signal_and_wait(child, libc::SIGKILL).await;
    eprintln!("{test}: step {step:?} reached: {hit}; killed run: {}", killed.code);
    let run = pair.run(&rig, &["recover"]).await;
    assert!(
        run.code == 0 && ["recovered", "nothing-to-do"].contains(&run.report["outcome"].as_str().unwrap_or("")),
        "{run:?}"
    );
    // Exactly one holder; the other waits.
    let status = pair.run(&rig, &["status"]).await;
    assert_eq!(status.code, 0, "one holder: {status:?}");
    let holder = status.report["holder"].as_str().unwrap().to_string();
    let other = if holder == p.name { &pair.secondary } else { &p.name };
    assert_eq!(lock_of(&status.report, other), "waiting", "{status:?}");
    rig.journal().assert_safe(generation.handoff_bound(MARGIN));
    let names: Vec<String> = world(&rig)
        .await
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "only the pair is left: {names:?}");
    assert_volume_untouched(&rig);
}

#[tokio::test]
async fn rec_failover_old_stopping_lease() {
    failover_killed_at(Gen::Lease, Switch::OldStopping, "rec-fo-stop-lease").await;
}

#[tokio::test]
async fn rec_failover_other_holding_bolt() {
    failover_killed_at(Gen::Bolt, Switch::OtherHolding, "rec-fo-hold-bolt").await;
}

#[tokio::test]
async fn rec_failover_old_starting_lease() {
    failover_killed_at(Gen::Lease, Switch::OldStarting, "rec-fo-start-lease").await;
}

#[tokio::test]
async fn recover_with_no_such_node_refuses() {
    let rig = Rig::new("rec-none").await;
    let missing = format!("{}-nope", rig.id);
    let run = rig.cl_maint(&["recover", "--container", &missing]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.report["error"].as_str().unwrap().contains("no container named"),
        "{run:?}"
    );
}
