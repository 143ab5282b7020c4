//! The waits of a handoff, each with a deadline, an exit watch and the
//! interrupt: a container's lock-wait line, a container holding the lock
//! (answering HTTP), and a takeover (stop the holder while the successor is
//! polled, measuring the gap; only [`super::Transfer`] runs one).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::timing;
pub use super::timing::{BOLT_RETRY, LOCK_RETRY, WaitLine, release_at};
use crate::engine::{Engine, state_of};
use crate::interrupt::Interrupt;
use crate::node::health::{status_means_holding, status_means_serving};
use crate::node::logs::{self, Event};

/// How many log lines a failure report carries.
pub const TAIL_LINES: usize = 20;
/// How often a node's HTTP port is polled.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How often a polled container's state is checked.
const STATE_EVERY: Duration = Duration::from_millis(250);

/// Why a wait ended without what it waited for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitFailure {
    /// The container stopped (its exit code, when known).
    Exited {
        /// The exit code.
        code: Option<i64>,
        /// Its last log lines.
        tail: Vec<String>,
        /// It refused a database a newer version has migrated.
        downgrade_refused: bool,
    },
    /// The deadline passed.
    Timeout {
        /// Its last log lines.
        tail: Vec<String>,
    },
    /// The operator interrupted cl-maint.
    Interrupted,
    /// The engine failed.
    Engine(String),
}

impl std::fmt::Display for WaitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitFailure::Exited {
                code,
                downgrade_refused,
                ..
            } => {
                match code {
                    Some(c) => write!(f, "it exited (code {c})")?,
                    None => f.write_str("it exited")?,
                }
                if *downgrade_refused {
                    f.write_str(": its version refuses a database a newer version has migrated")?;
                }
                Ok(())
            }
            WaitFailure::Timeout { .. } => f.write_str("its deadline passed"),
            WaitFailure::Interrupted => f.write_str("interrupted"),
            WaitFailure::Engine(e) => write!(f, "the engine failed: {e}"),
        }
    }
}

impl WaitFailure {
    /// The log lines that explain the failure.
    pub fn tail(&self) -> &[String] {
        match self {
            WaitFailure::Exited { tail, .. } | WaitFailure::Timeout { tail } => tail,
            _ => &[],
        }
    }
}

/// How long a node whose waiting line precedes its lock attempt is watched
/// before it counts as waiting.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Watches a node that just printed a waiting line for `within`: it is still
/// waiting if it serves no HTTP and logs nothing else (a node that got a lock
/// logs its boot). Fails with what it saw otherwise.
/// The first `skip` lines of its log (from earlier runs) are ignored.
pub async fn settle<E: Engine>(engine: &E, id: &str, addr: &str, within: Duration, skip: usize) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut lines = engine.log_lines(id, true).skip(skip);
    let mut seen_waiting = false;
    loop {
        if let Ok(answer) = engine.http_get(addr, "/health", Duration::from_secs(1)).await
            && status_means_holding(answer.status)
        {
            return Err(format!("it answered HTTP {} on {addr}", answer.status));
        }
        let poll = tokio::time::sleep(POLL_EVERY);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            line = lines.next() => match line {
                Some(Ok(line)) => match logs::classify(&line) {
                    Some(Event::Waiting(_)) => seen_waiting = true,
                    _ if !seen_waiting => {}
                    _ => return Err(format!("it logged after its waiting line: {line}")),
                },
                Some(Err(_)) | None => return Err("it stopped".to_string()),
            },
            _ = poll => {}
        }
    }
}

/// Follows the container's log until it says it is waiting for the lock,
/// ignoring its first `skip` lines (those of earlier runs); the line's
/// generation and when the node wrote it.
pub async fn lock_wait_line<E: Engine>(
    engine: &E,
    id: &str,
    within: Duration,
    interrupt: &Interrupt,
    skip: usize,
) -> Result<WaitLine, WaitFailure> {
    let mut lines = engine.timed_log_lines(id, true).skip(skip);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let deadline = Instant::now() + within;
    loop {
        tokio::select! {
            biased;
            _ = interrupt.wait() => return Err(WaitFailure::Interrupted),
            _ = tokio::time::sleep_until(deadline) => return Err(WaitFailure::Timeout { tail: tail.into() }),
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    if let Some(Event::Waiting(generation)) = logs::classify(&line.text) {
                        let written = timing::written_at(line.at, SystemTime::now(), Instant::now());
                        return Ok(WaitLine { generation, written });
                    }
                    push_tail(&mut tail, line.text);
                }
                Some(Err(e)) => return Err(WaitFailure::Engine(e.to_string())),
                None => return Err(exited(engine, id, tail.into()).await),
            },
        }
    }
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// The failure for a container that stopped: its exit code and last lines.
pub async fn exited<E: Engine>(engine: &E, id: &str, tail: Vec<String>) -> WaitFailure {
    // The log stream can end a moment before the engine records the exit:
    // wait (briefly) for the engine to say so before reading the code.
    let deadline = Instant::now() + EXIT_RECORDED;
    let code = loop {
        match engine.inspect_container(id).await {
            Ok(Some(c)) => {
                let state = state_of(&c);
                if !state.running || restarting(&c) {
                    break state.exit_code;
                }
                if Instant::now() >= deadline {
                    break None;
                }
            }
            _ => break None,
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    exited_with(engine, id, code, tail).await
}

/// The failure for a container that stopped with `code`.
async fn exited_with<E: Engine>(engine: &E, id: &str, code: Option<i64>, mut tail: Vec<String>) -> WaitFailure {
    if tail.is_empty() {
        tail = last_lines(engine, id).await;
    }
    let downgrade_refused = tail.iter().any(|l| logs::classify(l) == Some(Event::Downgrade));
    WaitFailure::Exited {
        code,
        tail,
        downgrade_refused,
    }
}

/// Whether the container runs (and is not being restarted by its policy).
/// When the engine cannot tell quickly, it is taken to run: the next wait
/// watches it anyway.
pub async fn still_runs<E: Engine>(engine: &E, id: &str) -> bool {
    match tokio::time::timeout(STATE_EVERY * 4, engine.inspect_container(id)).await {
        Ok(Ok(Some(c))) => state_of(&c).running && !restarting(&c),
        Ok(Ok(None)) => false,
        _ => true,
    }
}

/// How long the engine may take to record an exit after the log ends.
const EXIT_RECORDED: Duration = Duration::from_secs(2);

/// Whether the engine is restarting the container (its restart policy after
/// an exit).
fn restarting(c: &bollard::models::ContainerInspectResponse) -> bool {
    c.state.as_ref().and_then(|s| s.restarting).unwrap_or(false)
}

/// How many lines the container's log holds now (to skip them once it is
/// started again).
pub async fn log_length<E: Engine>(engine: &E, id: &str) -> usize {
    engine.log_lines(id, false).count().await
}

/// The container's last line saying that it waits for the lock, when the
/// engine dates it believably (see [`timing::dated`]).
pub async fn last_wait_line<E: Engine>(engine: &E, id: &str) -> Option<WaitLine> {
    let mut lines = engine.timed_log_lines(id, false);
    let mut last = None;
    while let Some(Ok(line)) = lines.next().await {
        if let Some(Event::Waiting(generation)) = logs::classify(&line.text) {
            last = Some((generation, line.at));
        }
    }
    let (generation, at) = last?;
    let written = timing::dated(at?, SystemTime::now(), Instant::now())?;
    Some(WaitLine { generation, written })
}

/// The container's last log lines.
pub async fn last_lines<E: Engine>(engine: &E, id: &str) -> Vec<String> {
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut lines = engine.log_lines(id, false);
    while let Some(Ok(line)) = lines.next().await {
        push_tail(&mut tail, line);
    }
    tail.into()
}

/// What a watch of a node's HTTP port saw.
#[derive(Debug)]
pub struct Watch {
    /// When it first answered as the lock holder (the migration window's 204
    /// counts): from then on, the database may have been migrated.
    pub held_at: Option<Instant>,
    /// When its real server answered, or why it did not.
    pub result: Result<Instant, WaitFailure>,
}

/// Polls `addr` until the node there serves (200/207/503, past its
/// migrations), while watching that the container `id` still runs. Records
/// when it first held the lock (any holding answer, 204 included). With
/// `ignore_interrupt`, an interrupt does not end the wait (the step in flight
/// is finished).
pub async fn serving<E: Engine>(
    engine: &E,
    id: &str,
    addr: &str,
    within: Duration,
    interrupt: &Interrupt,
    ignore_interrupt: bool,
) -> Watch {
    serving_signalled(engine, id, addr, within, interrupt, ignore_interrupt, None).await
}

/// [`serving`], notifying `held` the first time the node answers as the
/// lock holder.
async fn serving_signalled<E: Engine>(
    engine: &E,
    id: &str,
    addr: &str,
    within: Duration,
    interrupt: &Interrupt,
    ignore_interrupt: bool,
    held: Option<&Notify>,
) -> Watch {
    let deadline = Instant::now() + within;
    let mut held_at = None;
    // A container with a restart policy that crashes is running again a
    // moment later: its restart count tells the crash.
    let restarts = |c: &bollard::models::ContainerInspectResponse| c.restart_count.unwrap_or(0);
    let before = tokio::time::timeout(STATE_EVERY, engine.inspect_container(id))
        .await
        .ok()
        .and_then(|r| r.ok().flatten())
        .map(|c| restarts(&c));
    // The HTTP polls that time the handoff and the container's state are
    // watched side by side: an engine slow to answer (loaded, or an outage
    // being retried) holds up neither.
    let result = {
        let http = async {
            loop {
                if let Ok(answer) = engine.http_get(addr, "/health", Duration::from_secs(2)).await {
                    if status_means_holding(answer.status) && held_at.is_none() {
                        held_at = Some(Instant::now());
                        if let Some(held) = held {
                            held.notify_one();
                        }
                    }
                    if status_means_serving(answer.status) {
                        return Instant::now();
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        };
        let state = async {
            loop {
                tokio::time::sleep(STATE_EVERY).await;
                match engine.inspect_container(id).await {
                    Ok(Some(c)) if !state_of(&c).running || restarting(&c) => {
                        return exited(engine, id, Vec::new()).await;
                    }
                    // Restarted by its policy since: its exit code is gone.
                    Ok(Some(c)) if before.is_some_and(|b| restarts(&c) > b) => {
                        return exited_with(engine, id, None, Vec::new()).await;
                    }
                    Ok(None) => return WaitFailure::Engine(format!("container {id} disappeared")),
                    _ => {}
                }
            }
        };
        let interrupted = async {
            if ignore_interrupt {
                std::future::pending::<()>().await
            } else {
                interrupt.wait().await
            }
        };
        tokio::select! {
            biased;
            at = http => Some(Ok(at)),
            failure = state => Some(Err(failure)),
            _ = interrupted => Some(Err(WaitFailure::Interrupted)),
            _ = tokio::time::sleep_until(deadline) => None,
        }
    };
    let result = match result {
        Some(result) => result,
        None => Err(WaitFailure::Timeout {
            tail: last_lines(engine, id).await,
        }),
    };
    Watch { held_at, result }
}

/// Whether anything answers HTTP at `addr` as a lock holder, right now.
pub async fn answers<E: Engine>(engine: &E, addr: &str) -> bool {
    matches!(engine.http_get(addr, "/health", Duration::from_secs(2)).await, Ok(a) if status_means_holding(a.status))
}

/// How the old holder is made to let go.
#[derive(Clone, Copy, Debug)]
pub enum Release {
    /// `docker stop -t grace`.
    Stop(Duration),
    /// `docker kill` (SIGKILL).
    Kill,
}

/// What a takeover saw.
#[derive(Debug)]
pub struct Takeover {
    /// The successor first held the lock (the point of no return for a new
    /// version).
    pub held: bool,
    /// The gap from signalling the holder to the successor serving, or why
    /// it did not serve.
    pub gap: Result<Duration, WaitFailure>,
    /// Whether stopping the old holder failed.
    pub stop_error: Option<String>,
}

/// What a takeover tells a step that runs beside it (each is notified once).
#[derive(Debug, Default)]
pub struct Signals {
    /// The old holder's process exited (or its stop returned): it has let
    /// go of the lock.
    pub released: Notify,
    /// The old holder's stop returned: the engine is done with its
    /// container, whose name and host ports are free again (that comes
    /// about 100 ms after the exit, and under load even after the successor
    /// answers).
    pub stopped: Notify,
    /// The successor first answered as the lock holder.
    pub held: Notify,
    /// The takeover is over, however it ended.
    pub ended: Notify,
}

/// Waits, beside a takeover that tells `signals`, until the old holder's
/// container is stopped (its name and ports are free to reuse) and the
/// successor (`successor` on `engine`) provably holds the lock: it answered
/// as the holder, or, with `bolt_shared` (a bolt-era successor on the
/// holder's lock file), the old holder exited and the successor, the only
/// node trying for the free `flock`, still runs one retry interval later.
/// False when the takeover ended first, or the successor stopped.
pub(super) async fn old_stopped_and_successor_holds<E: Engine>(
    engine: &E,
    successor: &str,
    signals: &Signals,
    bolt_shared: bool,
) -> bool {
    let holds = async {
        if bolt_shared {
            signals.released.notified().await;
            tokio::time::sleep(BOLT_RETRY).await;
            still_runs(engine, successor).await
        } else {
            signals.held.notified().await;
            true
        }
    };
    let proven = async { tokio::join!(holds, signals.stopped.notified()).0 };
    tokio::select! {
        biased;
        proven = proven => proven,
        _ = signals.ended.notified() => false,
    }
}

/// A takeover between containers on two engines: signal `from` on
/// `from_engine` and poll `to` on `to_engine`, telling `signals` (when
/// given) how it goes.
#[allow(clippy::too_many_arguments)]
pub(super) async fn takeover_signalled<E: Engine>(
    from_engine: &E,
    from: &str,
    release: Release,
    to_engine: &E,
    to: &str,
    to_addr: &str,
    within: Duration,
    interrupt: &Interrupt,
    signals: Option<&Signals>,
) -> Takeover {
    let signalled = Instant::now();
    let stop = async {
        match release {
            Release::Stop(grace) => from_engine.stop(from, grace).await,
            Release::Kill => from_engine.kill(from, "SIGKILL").await,
        }
        .map_err(|e| e.to_string())
    };
    let poll = serving_signalled(
        to_engine,
        to,
        to_addr,
        within,
        interrupt,
        true,
        signals.map(|s| &s.held),
    );
    // The old holder's exit, which the engine reports before the stop returns.
    let exit = async {
        match signals {
            Some(_) => from_engine.exited(from).await.is_ok(),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, poll, exit);
    // Telling `released` twice is harmless: it is waited for once.
    let release = || signals.inspect(|s| s.released.notify_one());
    let mut stopped: Option<Result<(), String>> = None;
    let mut exit_seen = false;
    let watch = loop {
        tokio::select! {
            ok = &mut exit, if !exit_seen => {
                exit_seen = true;
                if ok {
                    release();
                }
            }
            result = &mut stop, if stopped.is_none() => {
                // A failed stop leaves the old holder holding: stop watching.
                if let Err(e) = &result {
                    let watch = Watch { held_at: None, result: Err(WaitFailure::Engine(e.clone())) };
                    stopped = Some(result);
                    break watch;
                }
                release();
                signals.inspect(|s| s.stopped.notify_one());
                stopped = Some(result);
            }
            watch = &mut poll => break watch,
        }
    };
    let stopped = match stopped {
        Some(result) => result,
        None => {
            let result = stop.await;
            if result.is_ok() {
                signals.inspect(|s| s.stopped.notify_one());
            }
            result
        }
    };
    signals.inspect(|s| s.ended.notify_one());
    Takeover {
        held: watch.held_at.is_some(),
        gap: watch.result.map(|at| at - signalled),
        stop_error: stopped.err(),
    }
}
