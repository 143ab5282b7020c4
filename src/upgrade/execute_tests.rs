//! Unit tests of the executor's step ordering and rollback branches, on the
//! fake engine (`engine/fake/`) with tokio's paused time.
//!
//! Every test checks the outcome, its exit code, the exact calls made to the
//! engine, the containers left, and that no two nodes were ever active at once.
//!
//! Here: the shared fixtures and helpers, the success paths, interrupts and
//! a check of the fake itself. The failure branches are in `execute_tests/`:
//! `standby_failures.rs` (up to and during the first handoff) and
//! `replacement_failures.rs` (after it).

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerState, ImageInspect};
use futures::StreamExt;

use super::*;
use crate::engine::fake::{Behaviour, FakeEngine};
use crate::exit;
use crate::names::{old_name, standby_name};
use crate::node::logs::{Event, Generation, classify};
use crate::progress::Mode;
use crate::reference::repository as repository_of;
use crate::report::ImageInfo;
use crate::spec::CloneSpec;
use crate::upgrade::observe::Observed;
use crate::upgrade::plan;

#[path = "execute_tests/replacement_failures.rs"]
mod replacement_failures;
#[path = "execute_tests/standby_failures.rs"]
mod standby_failures;

const NAME: &str = "chainlink";
const STANDBY: &str = "chainlink-cl-maint-standby";
const OLD: &str = "chainlink-cl-maint-old";
const PRIMARY_ID: &str = "primary-id";
const OLD_IMAGE: &str = "smartcontract/chainlink:2.9.0";
const NEW_IMAGE: &str = "smartcontract/chainlink:2.10.0";
const PRIMARY_ADDR: &str = "127.0.0.1:6688";
const STANDBY_ADDR: &str = "127.0.0.1:6687";
/// How long the new version takes from the lock to serving HTTP.
const BOOT: Duration = Duration::from_secs(2);
/// The calls of a successful upgrade, in order.
const SUCCESS: [&str; 9] = [
    "create chainlink-cl-maint-standby",
    "start chainlink-cl-maint-standby",
    "stop chainlink",
    "rename chainlink chainlink-cl-maint-old",
    "create chainlink",
    "start chainlink",
    "stop chainlink-cl-maint-standby",
    "remove chainlink-cl-maint-standby",
    "remove chainlink-cl-maint-old",
];

/// The new primary, started beside the takeover once the standby answered
/// as the holder, taken back when the takeover fails.
const EARLY_UNDONE: [&str; 6] = [
    "rename chainlink chainlink-cl-maint-old",
    "create chainlink",
    "start chainlink",
    "stop chainlink",
    "remove chainlink",
    "rename chainlink-cl-maint-old chainlink",
];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spec(name: &str, image: &str, port: u16) -> CloneSpec {
    crate::engine::fake::node_spec(name, image, port)
}

fn test_plan() -> Plan {
    Plan {
        container: NAME.to_string(),
        primary_id: PRIMARY_ID.to_string(),
        primary_addr: PRIMARY_ADDR.to_string(),
        standby_addr: STANDBY_ADDR.to_string(),
        from: ImageInfo {
            reference: OLD_IMAGE.to_string(),
            ..ImageInfo::default()
        },
        target: NEW_IMAGE.to_string(),
        standby: spec(STANDBY, NEW_IMAGE, 6687),
        replacement: spec(NAME, NEW_IMAGE, 6688),
        old_name: OLD.to_string(),
        mode: crate::upgrade::preflight::Mode::Handoff,
        original: spec(NAME, OLD_IMAGE, 6688),
        auto_remove: false,
        was_running: true,
        warnings: Vec::new(),
        generation: Some(Generation::Lease),
        lock_file_shared: false,
        steps: Vec::new(),
        changes: Vec::new(),
        docker_commands: Vec::new(),
        secret_env: Vec::new(),
    }
}

fn options() -> UpgradeOptions {
    let mut opts = UpgradeOptions::new(NAME, "2.10.0");
    opts.wait_timeout = secs(30);
    opts.takeover_timeout = secs(30);
    opts.stop_timeout = secs(5);
    opts
}

fn new_node() -> Behaviour {
    Behaviour {
        boot: BOOT,
        ..Behaviour::node("2.10.0")
    }
}

/// The primary on the old image holds the lock; the new image behaves so.
fn engine_with(new: Behaviour) -> FakeEngine {
    let fake = FakeEngine::new();
    fake.image(OLD_IMAGE, Behaviour::node("2.9.0"));
    fake.image(NEW_IMAGE, new);
    fake.seed_holder(NAME, PRIMARY_ID, OLD_IMAGE, PRIMARY_ADDR);
    fake
}

fn engine() -> FakeEngine {
    engine_with(new_node())
}

async fn run_with(fake: &FakeEngine, plan: &Plan, opts: &UpgradeOptions, interrupt: &Interrupt) -> Report {
    let events = Events::new(crate::progress::Progress::with_mode(Mode::Quiet));
    let report = Report::new("upgrade", &plan.container, Outcome::Refused);
    // The report as the report builder completes it from the events.
    events.report(Executor::new(fake, plan, opts, &events, interrupt, report).run().await)
}

async fn run(fake: &FakeEngine) -> Report {
    run_with(fake, &test_plan(), &options(), &Interrupt::new()).await
}

/// The outcome, its exit code, and the invariant: never two nodes active.
fn assert_ended(report: &Report, fake: &FakeEngine, outcome: Outcome, code: i32) {
    assert_eq!(
        report.outcome,
        outcome,
        "report: {report:#?}\ncalls: {:#?}",
        fake.calls()
    );
    assert_eq!(report.exit_code, code);
    assert_eq!(report.exit_code, outcome.exit_code());
    assert_eq!(fake.two_holders(), Vec::<String>::new(), "two containers held the lock");
    assert_eq!(fake.two_active(), Vec::<String>::new(), "two nodes were active");
}

/// `SUCCESS[..n]` followed by `more`.
fn calls(n: usize, more: &[&str]) -> Vec<String> {
    SUCCESS[..n].iter().chain(more).map(|c| c.to_string()).collect()
}

fn names(fake: &FakeEngine) -> Vec<String> {
    fake.containers().into_iter().map(|c| c.name).collect()
}

fn error(report: &Report) -> String {
    report.error.clone().unwrap_or_default()
}

/// The primary was never touched: it runs the old image and holds the lock,
/// and it is the only container.
fn assert_primary_untouched(fake: &FakeEngine) {
    assert_eq!(names(fake), vec![NAME.to_string()]);
    let primary = fake.container(PRIMARY_ID).expect("the primary exists");
    assert!(primary.running && primary.holds_lock, "{primary:?}");
    assert!(
        !fake.calls().iter().any(|c| c.split(' ').any(|word| word == NAME)),
        "{:?}",
        fake.calls()
    );
    assert_eq!(fake.db_version().as_deref(), Some("2.9.0"));
}

/// The node runs the new version in the standby, which holds the lock.
fn assert_on_standby(fake: &FakeEngine) {
    let standby = fake.container(STANDBY).expect("the standby exists");
    assert!(standby.running && standby.holds_lock, "{standby:?}");
    assert_eq!(standby.image, NEW_IMAGE);
    assert_eq!(fake.holder().as_deref(), Some(STANDBY));
}

#[tokio::test(start_paused = true)]
async fn upgrades_with_two_handoffs_in_order() {
    let fake = engine();
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(9, &[]));

    assert_eq!(names(&fake), vec![NAME.to_string()]);
    let node = fake.container(NAME).expect("the new primary");
    assert_ne!(node.id, PRIMARY_ID);
    assert_eq!(node.image, NEW_IMAGE);
    assert!(node.running && node.holds_lock);
    assert_eq!(fake.db_version().as_deref(), Some("2.10.0"));

    let moves: Vec<(&str, &str)> = report
        .handoffs
        .iter()
        .map(|h| (h.from.as_str(), h.to.as_str()))
        .collect();
    assert_eq!(moves, vec![(NAME, STANDBY), (STANDBY, NAME)]);
    for h in &report.handoffs {
        // The new node serves BOOT after it took the lock; polls are 20 ms apart.
        assert!((2000..2100).contains(&h.gap_ms), "{h:?}");
    }
    let phases: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        phases,
        [
            "start-standby",
            "lock-retry",
            "takeover",
            "recreate-primary",
            "lock-retry",
            "hand-back",
            "cleanup"
        ]
    );
    assert!(report.left.is_empty() && report.next_steps.is_empty() && report.error.is_none());
    assert_eq!(
        report.state,
        format!("chainlink runs {NEW_IMAGE} and holds the lock on {PRIMARY_ADDR}")
    );
}

/// Runs an upgrade to `new` with `plan`; the phases and the virtual time it
/// took.
async fn timed(new: Behaviour, plan: &Plan) -> (Vec<String>, Duration) {
    let fake = engine_with(new);
    let started = tokio::time::Instant::now();
    let report = run_with(&fake, plan, &options(), &Interrupt::new()).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(9, &[]));
    assert_eq!(report.handoffs.len(), 2);
    let phases = report.phases.iter().map(|p| p.name.clone()).collect();
    (phases, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn the_node_is_recreated_while_the_standby_migrates() {
    // v2.15+: the standby's 204 says it holds the lock 3 s before it serves;
    // the new primary is started then and has waited long enough by the time
    // the standby serves: the hand-back needs no wait for its next try.
    let migrating = Behaviour {
        migration: secs(3),
        answers_204_while_migrating: true,
        ..new_node()
    };
    let (phases, took) = timed(migrating.clone(), &test_plan()).await;
    assert_eq!(
        phases,
        [
            "start-standby",
            "lock-retry",
            "takeover",
            "recreate-primary",
            "hand-back",
            "cleanup"
        ]
    );
    // 0.8 s timing the first stop, 3 s migrating and 2 s booting, then 2 s
    // booting after the hand-back; recreating after the standby served would
    // add another 0.8 s.
    assert!(took < Duration::from_millis(7900), "{took:?}");
    // Without the 204, nothing proves the lock held before it serves.
    let silent = Behaviour {
        answers_204_while_migrating: false,
        ..migrating
    };
    let (phases, took) = timed(silent, &test_plan()).await;
    assert_eq!(phases.iter().filter(|p| *p == "lock-retry").count(), 2, "{phases:?}");
    assert!(took > Duration::from_millis(8500), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_bolt_node_on_a_shared_lock_file_is_recreated_while_the_standby_boots() {
    let plan = Plan {
        generation: Some(Generation::Bolt),
        lock_file_shared: true,
        ..test_plan()
    };
    let bolt = Behaviour {
        boot: BOOT,
        ..Behaviour::bolt("2.10.0")
    };
    let (phases, took) = timed(bolt.clone(), &plan).await;
    assert_eq!(
        phases,
        [
            "start-standby",
            "lock-retry",
            "takeover",
            "recreate-primary",
            "hand-back",
            "cleanup"
        ]
    );
    assert!(took < Duration::from_millis(4200), "{took:?}");
    // The lock file not shared (another host): recreated after the standby
    // serves, the stop then timed to the new primary's next try. (The first
    // stop comes after the 2 s watch of the standby's line: its tries' phase
    // is not known any more.)
    let apart = Plan {
        lock_file_shared: false,
        ..plan
    };
    let (phases, _) = timed(bolt, &apart).await;
    assert_eq!(
        phases,
        [
            "start-standby",
            "takeover",
            "recreate-primary",
            "lock-retry",
            "hand-back",
            "cleanup"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn upgrades_a_plan_built_from_captured_inspect_documents() {
    let mut primary: ContainerInspectResponse =
        serde_json::from_str(include_str!("../../tests/fixtures/inspect-container.json")).expect("container fixture");
    primary.state = Some(ContainerState {
        running: Some(true),
        ..Default::default()
    });
    let old_image: ImageInspect =
        serde_json::from_str(include_str!("../../tests/fixtures/inspect-image-old.json")).expect("image fixture");
    let name = crate::engine::name_of(&primary);
    let id = primary.id.clone().expect("fixture id");
    let from = crate::node::image::reference_of(&primary);
    let target = format!("{}:1.1.0", repository_of(&from));
    let mut opts = options();
    opts.container = name.clone();
    // The fixture is a v1 node configured by env (DATABASE_URL): it stays on 1.x.
    opts.tag = "1.1.0".into();
    let observed = Observed {
        endpoint: "fake://engine".into(),
        reach: Default::default(),
        primary: Some(primary),
        primary_image: Some(old_image),
        target_image: None,
        target: target.clone(),
        leftovers: Vec::new(),
        standby_port_users: Vec::new(),
        standby_port_free_here: None,
        generation: Some(Generation::Lease),
        running_version: Some(("1.0.0".into(), crate::node::version::Source::StartLine)),
        node_port: crate::members::port::NodePort::default_port(),
        primary_now: Some(crate::members::member::sample(
            "primary",
            &name,
            crate::members::LockRole::Holding,
        )),
        primary_tail: Vec::new(),
        holders: Vec::new(),
    };
    let plan = plan::plan(&observed, &opts).expect("a plan");

    let fake = FakeEngine::new();
    fake.image(&from, Behaviour::node("1.0.0"));
    fake.image(&target, Behaviour::node("1.1.0"));
    fake.seed_holder(&name, &id, &from, &plan.primary_addr);
    let report = run_with(&fake, &plan, &opts, &Interrupt::new()).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    let (standby, old) = (standby_name(&name), old_name(&name));
    let expected = [
        format!("create {standby}"),
        format!("start {standby}"),
        format!("stop {name}"),
        format!("rename {name} {old}"),
        format!("create {name}"),
        format!("start {name}"),
        format!("stop {standby}"),
        format!("remove {standby}"),
        format!("remove {old}"),
    ];
    assert_eq!(fake.calls(), expected);
    let node = fake.container(&name).expect("the new primary");
    assert!(node.holds_lock && node.image == target, "{node:?}");
    assert_eq!(names(&fake), vec![name]);
}

#[tokio::test(start_paused = true)]
async fn keep_old_leaves_the_old_container_stopped() {
    let fake = engine();
    let mut opts = options();
    opts.keep_old = true;
    let report = run_with(&fake, &test_plan(), &opts, &Interrupt::new()).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(8, &[]));
    assert_eq!(names(&fake), vec![OLD.to_string(), NAME.to_string()]);
    let old = fake.container(OLD).expect("the old container is kept");
    assert_eq!(
        (old.id.as_str(), old.image.as_str(), old.running),
        (PRIMARY_ID, OLD_IMAGE, false)
    );
    assert_eq!(fake.holder().as_deref(), Some(NAME));
    assert_eq!(report.left, vec![OLD.to_string()]);
    assert!(
        report
            .next_steps
            .iter()
            .any(|s| s.contains("`docker rm chainlink-cl-maint-old`"))
    );
}

#[tokio::test(start_paused = true)]
async fn kill_option_kills_the_primary_and_waits_out_its_lease() {
    let fake = engine();
    let mut opts = options();
    opts.kill = true;
    let report = run_with(&fake, &test_plan(), &opts, &Interrupt::new()).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    let mut expected = calls(9, &[]);
    expected[2] = "kill chainlink SIGKILL".to_string();
    assert_eq!(
        fake.calls(),
        expected,
        "the hand-back still stops the standby gracefully"
    );
    // Nothing is released on SIGKILL: the standby takes the lock once the 10 s lease expired.
    assert!(
        (12_000..12_100).contains(&report.handoffs[0].gap_ms),
        "{:?}",
        report.handoffs
    );
    assert!(
        (2000..2100).contains(&report.handoffs[1].gap_ms),
        "{:?}",
        report.handoffs
    );
    assert_eq!(fake.holder().as_deref(), Some(NAME));
}

#[tokio::test(start_paused = true)]
async fn a_stop_grace_shorter_than_the_shutdown_kills_and_the_lease_runs_out() {
    let fake = FakeEngine::new();
    let slow = Behaviour {
        shutdown: secs(8),
        ..Behaviour::node("2.9.0")
    };
    fake.image(OLD_IMAGE, slow);
    fake.image(NEW_IMAGE, new_node());
    fake.seed_holder(NAME, PRIMARY_ID, OLD_IMAGE, PRIMARY_ADDR);
    let report = run(&fake).await; // --stop-timeout 5 < 8 s of shutdown
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(9, &[]));
    // 5 s of grace, then SIGKILL: the lease holds the lock 10 s more.
    assert!(
        (17_000..17_100).contains(&report.handoffs[0].gap_ms),
        "{:?}",
        report.handoffs
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_serving_with_failing_checks_counts_as_serving() {
    let fake = engine_with(Behaviour {
        health: 207,
        ..new_node()
    });
    let report = run(&fake).await;
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(9, &[]));
}

#[tokio::test(start_paused = true)]
async fn interrupt_before_the_handoff_removes_the_standby() {
    // The standby takes 10 s to reach its lock attempt; the operator interrupts at 1 s.
    let fake = engine_with(Behaviour {
        startup: secs(10),
        ..new_node()
    });
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(1)).await;
        trigger.trigger();
    });
    let report = run_with(&fake, &test_plan(), &options(), &interrupt).await;
    assert_ended(&report, &fake, Outcome::Interrupted, exit::INTERRUPTED);
    assert_eq!(fake.calls(), calls(2, &[SUCCESS[7]]));
    assert_primary_untouched(&fake);
}

#[tokio::test(start_paused = true)]
async fn interrupt_during_the_takeover_finishes_the_upgrade() {
    let fake = engine();
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    // The takeover starts at once and lasts BOOT (2 s).
    tokio::spawn(async move {
        tokio::time::sleep(secs(1)).await;
        trigger.trigger();
    });
    let report = run_with(&fake, &test_plan(), &options(), &interrupt).await;
    assert!(interrupt.is_set());
    assert_ended(&report, &fake, Outcome::Upgraded, exit::OK);
    assert_eq!(fake.calls(), calls(9, &[]));
    assert_eq!(fake.holder().as_deref(), Some(NAME));
    assert_eq!(report.handoffs.len(), 2);
}

/// The fake itself: a stopped holder hands the lock to the waiter after the
/// handover delay, a followed log delivers later lines and ends when its
/// container stops, and an older version refuses a migrated database.
#[tokio::test(start_paused = true)]
async fn fake_hands_the_lock_over_and_follows_logs() {
    let fake = engine();
    fake.set_handover(secs(1));
    let id = fake.create(&spec(STANDBY, NEW_IMAGE, 6687)).await.expect("create");
    let mut lines = fake.log_lines(&id, true);
    fake.start(&id).await.expect("start");
    let first = lines.next().await.expect("a line").expect("no error");
    assert!(first.contains("Starting Chainlink Node 2.10.0"), "{first}");
    let wait = lines.next().await.expect("a line").expect("no error");
    assert!(
        matches!(classify(&wait), Some(Event::Waiting(Generation::Lease))),
        "{wait}"
    );
    assert!(fake.http_get(STANDBY_ADDR, "/health", secs(1)).await.is_err());
    fake.stop(PRIMARY_ID, secs(5)).await.expect("stop");
    assert_eq!(fake.holder(), None, "the handover takes 1 s");
    tokio::time::sleep(secs(1)).await;
    assert_eq!(fake.holder().as_deref(), Some(STANDBY));
    assert!(
        fake.http_get(STANDBY_ADDR, "/health", secs(1)).await.is_err(),
        "booting"
    );
    tokio::time::sleep(BOOT).await;
    let answer = fake
        .http_get(STANDBY_ADDR, "/health", secs(1))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200);

    fake.start(PRIMARY_ID).await.expect("start the old version");
    fake.stop(&id, secs(5)).await.expect("stop");
    let rest: Vec<_> = lines.collect().await;
    assert_eq!(rest.len(), 1, "the shutdown line, then the end: {rest:?}");
    tokio::time::sleep(secs(1)).await;
    let primary = fake.container(PRIMARY_ID).expect("the primary");
    assert_eq!((primary.running, primary.exit_code), (false, Some(1)));
    assert!(
        primary
            .log
            .last()
            .is_some_and(|l| classify(l) == Some(Event::Downgrade))
    );
    assert_eq!(fake.two_holders(), Vec::<String>::new());
}
