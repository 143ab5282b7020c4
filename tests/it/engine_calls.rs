//! The engine adapter's calls that a handoff's timing rests on, on the real
//! engine.

use std::time::Duration;

use cl_maint::engine::Engine;
use cl_maint::engine::docker::DockerEngine;

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
