//! Unit tests of the one lock transfer on the fake engine with tokio's
//! paused time: what runs beside a takeover starts only once the holder's
//! stop has returned and the successor holds the lock; the last look and
//! the timed release can each stop a transfer before anything changed.

use std::time::Duration;

use super::*;
use crate::engine::Engine;
use crate::engine::fake::{Behaviour, FakeEngine, node_spec};
use crate::interrupt::Interrupt;

const HOLDER: &str = "chainlink";
const SUCCESSOR: &str = "chainlink-cl-maint-standby";
const IMAGE: &str = "smartcontract/chainlink:2.10.0";
const SUCCESSOR_ADDR: &str = "127.0.0.1:6687";

/// A lease-era holder and a successor waiting for the lock; their ids.
async fn holder_and_successor() -> (FakeEngine, String, String) {
    holder_and(Behaviour::node("2.10.0")).await
}

/// A lease-era holder and a successor that behaves so, waiting for the lock.
async fn holder_and(successor: Behaviour) -> (FakeEngine, String, String) {
    let fake = FakeEngine::new();
    fake.image(IMAGE, Behaviour::node("2.10.0"));
    fake.behave_named(SUCCESSOR, successor);
    let mut ids = Vec::new();
    for (name, port) in [(HOLDER, 6688), (SUCCESSOR, 6687)] {
        let id = fake.create(&node_spec(name, IMAGE, port)).await.expect("create");
        fake.start(&id).await.expect("start");
        ids.push(id);
    }
    assert_eq!(fake.holder().as_deref(), Some(HOLDER));
    let successor = ids.pop().unwrap();
    (fake, ids.pop().unwrap(), successor)
}

fn transfer<'a>(fake: &'a FakeEngine, from: &'a str, to: &'a str) -> Transfer<'a, FakeEngine> {
    Transfer {
        from_engine: fake,
        from,
        release: Release::Stop(Duration::from_secs(5)),
        to_engine: fake,
        to,
        to_addr: SUCCESSOR_ADDR,
        within: Duration::from_secs(30),
        bolt_shared: false,
    }
}

#[tokio::test(start_paused = true)]
async fn the_step_beside_starts_once_the_holder_stopped_and_the_successor_holds() {
    let (fake, holder, successor) = holder_and_successor().await;
    let t = transfer(&fake, &holder, &successor);
    // What the step beside sees when it starts.
    let beside = || async {
        let holder_runs = fake.container(HOLDER).is_some_and(|c| c.running);
        (holder_runs, fake.holder())
    };
    let (took, seen) = t.run(&Interrupt::new(), Some(beside)).await;
    assert!(took.held && took.stop_error.is_none(), "{took:?}");
    assert!(took.gap.is_ok(), "{took:?}");
    assert_eq!(seen, Some((false, Some(SUCCESSOR.to_string()))));
    assert_eq!(fake.calls()[4..], ["stop chainlink"]);
    assert!(fake.two_holders().is_empty(), "{:?}", fake.two_holders());
}

#[tokio::test(start_paused = true)]
async fn a_plain_transfer_measures_the_gap_and_only_stops_the_holder() {
    let (fake, holder, successor) = holder_and_successor().await;
    // The successor takes the lock 300 ms after the holder lets go.
    fake.set_handover(Duration::from_millis(300));
    let took = transfer(&fake, &holder, &successor).plain(&Interrupt::new()).await;
    let gap = took.gap.expect("the successor serves");
    assert!(
        gap >= Duration::from_millis(300) && gap < Duration::from_millis(400),
        "{gap:?}"
    );
    assert_eq!(fake.calls()[4..], ["stop chainlink"]);
    assert_eq!(fake.holder().as_deref(), Some(SUCCESSOR));
}

#[tokio::test(start_paused = true)]
async fn a_successor_that_failed_its_takeover_leaves_nothing_beside() {
    // The successor crashes 100 ms after it gets the lock, before it serves.
    let (fake, holder, successor) = holder_and(Behaviour {
        crash_after_lock: Some(Duration::from_millis(100)),
        boot: Duration::from_secs(1),
        ..Behaviour::node("2.10.0")
    })
    .await;
    let t = transfer(&fake, &holder, &successor);
    let (took, beside) = t.run(&Interrupt::new(), Some(|| async { "ran" })).await;
    assert!(took.gap.is_err(), "{took:?}");
    // It held the lock a moment: the step beside may have run, but only then.
    if beside.is_some() {
        assert!(took.held, "{took:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_last_look_and_an_interrupted_release_stop_a_transfer_before_any_change() {
    let (fake, holder, successor) = holder_and_successor().await;
    let t = transfer(&fake, &holder, &successor);
    assert_eq!(t.successor_runs().await, Ok(()));
    let interrupt = Interrupt::new();
    interrupt.trigger();
    let at = tokio::time::Instant::now() + Duration::from_secs(1);
    assert_eq!(transfer::align(at, Some(&interrupt)).await, Err(NotReady::Interrupted));
    assert_eq!(
        transfer::align(at, None).await.map(|d| d >= Duration::from_millis(999)),
        Ok(true)
    );
    fake.stop(&successor, Duration::from_secs(5)).await.expect("stop");
    assert_eq!(t.successor_runs().await, Err(NotReady::SuccessorGone));
    assert_eq!(fake.calls()[4..], ["stop chainlink-cl-maint-standby"]);
    assert_eq!(fake.holder().as_deref(), Some(HOLDER));
}
