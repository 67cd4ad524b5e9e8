//! How a waiter learns that an object became ready.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::Waker;
use std::time::Instant;

/// A counter a blocked thread sleeps on; every notification bumps it.
#[derive(Default)]
pub struct Signal {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Signal {
    /// A fresh signal.
    pub fn new() -> Self {
        Signal::default()
    }

    /// The current count.
    pub fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bumps the count and wakes every sleeper.
    pub fn notify(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// Sleeps until the count differs from `seen` or `deadline` passes; returns the count.
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) -> u64 {
        let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *c == seen {
            match deadline {
                None => c = self.cv.wait(c).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    c = self
                        .cv
                        .wait_timeout(c, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        *c
    }
}

/// Identifies a registered waiter so that it can be replaced or removed.
pub type WaiterId = u64;

/// A fresh waiter id.
pub fn next_waiter_id() -> WaiterId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What to do when an object becomes ready (or fails).
pub enum Waiter {
    /// Notify a signal a thread sleeps on.
    Signal(std::sync::Arc<Signal>),
    /// Wake an async task.
    Waker(Waker),
    /// Run a callback (it must be quick: it runs on the thread that completed the object).
    Callback(Box<dyn FnOnce() + Send>),
}

impl Waiter {
    pub(crate) fn fire(self) {
        match self {
            Waiter::Signal(s) => s.notify(),
            Waiter::Waker(w) => w.wake(),
            Waiter::Callback(f) => f(),
        }
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}
