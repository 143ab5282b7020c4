//! The engine adapter's calls that a handoff's timing rests on, on the real
//! engine.

use std::time::{Duration, SystemTime};

use cl_maint::engine::docker::DockerEngine;
use cl_maint::engine::{Engine, LogLine};
use cl_maint::handoff::waits;
use cl_maint::interrupt::Interrupt;
use cl_maint::node::logs::Generation;
use futures::StreamExt;
use tokio::time::Instant;

use crate::rig::{Gen, Rig};

/// The old node's exit (its `die` event) is what lets cl-maint recreate the
/// node while the standby boots: it must resolve when the process exits, not
/// before, and at once for a node that is not running.
#[tokio::test]
async fn a_nodes_exit_is_seen_when_it_exits() {
    let rig = Rig::new("engine-exit").await;
    let node = crate::upgrade::primary(&rig, Gen::Bolt, &[]).await;
    let engine = DockerEngine::connect(None).await.expect("the Docker Engine answers");

    let exit = engine.exited(&node.id);
    tokio::pin!(exit);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut exit)
            .await
            .is_err(),
        "a running node was reported as exited"
    );
    let (exited, stopped) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), &mut exit),
        engine.stop(&node.id, Duration::from_secs(10)),
    );
    stopped.expect("the stop");
    exited.expect("the exit seen within 20 s").expect("the engine's events");
    let state = rig
        .docker
        .inspect_container(&node.id, None)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.running, Some(false));

    // Not running: at once.
    tokio::time::timeout(Duration::from_secs(5), engine.exited(&node.id))
        .await
        .expect("at once")
        .expect("no error");
}

/// A log line's time is the engine's, from when the node wrote it, not when
/// cl-maint read it: a bolt-era stop is timed from it to the successor's
/// next lock try (`upgrade::timing`), and a line reaches cl-maint too late
/// to time a 50 ms interval by.
#[tokio::test]
async fn a_log_lines_time_is_when_the_node_wrote_it() {
    let rig = Rig::new("engine-log-time").await;
    // Serving: its waiting line came before its lock and its 250 ms boot.
    let node = crate::upgrade::primary(&rig, Gen::Bolt, &[]).await;
    let engine = DockerEngine::connect(None).await.expect("the Docker Engine answers");

    let before = Instant::now();
    let line = waits::lock_wait_line(&engine, &node.id, Duration::from_secs(10), &Interrupt::new(), 0)
        .await
        .expect("the node's waiting line");
    assert_eq!(line.generation, Generation::Bolt);
    let age = before.saturating_duration_since(line.written);
    assert!(
        age >= Duration::from_millis(250) && age < Duration::from_secs(60),
        "the waiting line was dated {age:?} before it was read; it was written before the node's 250 ms boot"
    );

    // Read again, as `failover back` reads a member's last waiting line: the
    // same time, while the engine's time of it is recent enough to believe.
    let again = waits::last_wait_line(&engine, &node.id).await;
    if Instant::now().saturating_duration_since(line.written) < Duration::from_millis(900) {
        let again = again.expect("the last waiting line, dated");
        let apart = again.written.max(line.written) - again.written.min(line.written);
        assert!(apart < Duration::from_millis(5), "dated {apart:?} apart");
    }

    // The same lines as without times, each with the engine's time.
    let timed: Vec<_> = engine.timed_log_lines(&node.id, false).collect().await;
    let plain: Vec<_> = engine.log_lines(&node.id, false).collect().await;
    let plain: Vec<String> = plain.into_iter().map(|l| l.expect("a line")).collect();
    let timed: Vec<LogLine> = timed.into_iter().map(|l| l.expect("a line")).collect();
    assert_eq!(timed.iter().map(|l| l.text.clone()).collect::<Vec<_>>(), plain);
    let now = SystemTime::now();
    for l in &timed {
        let at = l.at.unwrap_or_else(|| panic!("no time for {:?}", l.text));
        assert!(at <= now, "a line dated after it was read: {:?}", l.text);
    }
}
