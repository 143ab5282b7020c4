//! Ctrl-C and SIGTERM to cl-maint: a flag the executor checks between steps
//! and waits on during waits. What an interrupt does depends on the step:
//! before the old node is stopped, the run rolls back; after, it finishes the
//! step in flight and whatever is needed to leave one node holding the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A shared interrupt flag.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<(AtomicBool, Notify)>,
}

impl Interrupt {
    /// A flag that is not set.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Sets the flag and wakes every waiter.
    pub fn trigger(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Sets the flag on SIGINT or SIGTERM (for the whole process's life).
    pub fn listen_for_signals(&self) {
        let flag = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                flag.trigger();
            }
        });
    }
}
