//! Moving the lock: time the release to the successor's next lock try, look
//! once more that the successor still runs, stop the holder, confirm the
//! takeover on HTTP and measure the gap, with the command's own step beside
//! it once the successor provably holds the lock.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Engine;
use crate::interrupt::Interrupt;

use super::waits::{self, Release, Signals, Takeover, WaitLine};

/// One move of the lock from the container holding it to a successor that
/// waits for it (each may run on its own engine).
pub struct Transfer<'a, E: Engine> {
    /// The engine running the holder.
    pub from_engine: &'a E,
    /// The holder's container id.
    pub from: &'a str,
    /// How the holder is made to let go.
    pub release: Release,
    /// The engine running the successor.
    pub to_engine: &'a E,
    /// The successor's container id.
    pub to: &'a str,
    /// Where the successor answers HTTP once it holds the lock.
    pub to_addr: &'a str,
    /// How long the takeover may take.
    pub within: Duration,
    /// The successor is a bolt-era node on the holder's lock file: its
    /// `flock` contends with the holder's (see
    /// `waits::old_stopped_and_successor_holds`).
    pub bolt_shared: bool,
}

/// Why a transfer is not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The operator interrupted cl-maint while the release was being timed.
    Interrupted,
    /// The successor stopped after it logged that it waits for the lock.
    SuccessorGone,
}

/// When to release the lock so that the successor's next try comes right
/// after: from its waiting line `first_try`, when that can be known (see
/// [`super::timing::release_at`]).
pub fn release_at(first_try: Option<&WaitLine>) -> Option<Instant> {
    first_try.and_then(|line| waits::release_at(line.generation, line.written))
}

/// Sleeps until `at` (the `lock-retry` phase, whose length it returns);
/// with `interrupt`, an interrupt ends it early.
pub async fn align(at: Instant, interrupt: Option<&Interrupt>) -> Result<Duration, NotReady> {
    let began = Instant::now();
    let interrupted = async {
        match interrupt {
            Some(i) => i.wait().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep_until(at) => Ok(began.elapsed()),
        _ = interrupted => Err(NotReady::Interrupted),
    }
}

impl<E: Engine> Transfer<'_, E> {
    /// The last look before the holder is stopped: the node is never
    /// stopped for a successor that is gone.
    pub async fn successor_runs(&self) -> Result<(), NotReady> {
        if waits::still_runs(self.to_engine, self.to).await {
            Ok(())
        } else {
            Err(NotReady::SuccessorGone)
        }
    }

    /// Steps 3 and 4 for a transfer nothing may interrupt (the way home):
    /// waits for the successor's next lock try after `first_try`, its
    /// waiting line, then looks once more that it still runs.
    pub async fn prepare(&self, first_try: Option<&WaitLine>) -> Result<(), NotReady> {
        if let Some(at) = release_at(first_try) {
            let _ = align(at, None).await;
        }
        self.successor_runs().await
    }

    /// Releases the holder and waits until the successor serves, measuring
    /// the gap. `beside`, when given, starts once the holder's stop has
    /// returned (its name and ports are free) and the successor provably
    /// holds the lock, and runs alongside the rest of the takeover; its
    /// result is `None` when the takeover ended first. An interrupt does not
    /// end the takeover: the step in flight is finished.
    pub async fn run<T, F, Fut>(&self, interrupt: &Interrupt, beside: Option<F>) -> (Takeover, Option<T>)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let signals = Signals::default();
        let watched = beside.is_some().then_some(&signals);
        let early = async {
            let beside = beside?;
            let proven =
                waits::old_stopped_and_successor_holds(self.to_engine, self.to, &signals, self.bolt_shared).await;
            if !proven {
                return None;
            }
            Some(beside().await)
        };
        // On the heap: a takeover's state is large, and commands nest it deep
        // (debug builds overflowed the main thread's stack).
        let takeover = Box::pin(waits::takeover_signalled(
            self.from_engine,
            self.from,
            self.release,
            self.to_engine,
            self.to,
            self.to_addr,
            self.within,
            interrupt,
            watched,
        ));
        tokio::join!(takeover, Box::pin(early))
    }

    /// [`Transfer::run`] with nothing beside it.
    pub async fn plain(&self, interrupt: &Interrupt) -> Takeover {
        self.run(interrupt, None::<fn() -> std::future::Ready<()>>).await.0
    }
}
