//! Waiting for objects: how `get`, `wait` and their async forms block until objects are no
//! longer pending. A blocking wait sleeps on a [`Signal`] registered with each pending object; an
//! async one registers its waker. Either way a worker's CPU is lent to other tasks meanwhile
//! ([`LendCpu`]), so nested fan-out cannot deadlock a fixed pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as PollContext, Poll};
use std::time::{Duration, Instant};

use raya_store::{RawRef, Signal, Status, StoreCore, Waiter, WaiterId, next_waiter_id};

use crate::error::Result;
use crate::execution::context::{LendCpu, check_may_block};

/// Blocks until `refs` has at least `need` objects that are no longer pending, or `deadline`
/// passes. Returns whether enough are ready. A worker's CPU is lent to other tasks meanwhile.
pub(crate) fn block_until(
    store: &StoreCore,
    refs: &[&RawRef],
    need: usize,
    deadline: Option<Instant>,
    what: &'static str,
) -> Result<bool> {
    // Whether at least `need` are ready; stops looking as soon as they are.
    let enough = |refs: &[&RawRef]| {
        need == 0
            || refs
                .iter()
                .filter(|r| store.status(r.id()) != Status::Pending)
                .nth(need - 1)
                .is_some()
    };
    if enough(refs) {
        return Ok(true);
    }
    check_may_block(what)?;
    let _lend = LendCpu::start();
    let sig = Arc::new(Signal::new());
    let wid = next_waiter_id();
    let mut seen = sig.count();
    for r in refs {
        let _ = store.register_waiter(r.id(), wid, Waiter::Signal(Arc::clone(&sig)));
    }
    let satisfied = loop {
        if enough(refs) {
            break true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break false;
        }
        seen = sig.wait(seen, deadline);
    };
    for r in refs {
        store.unregister_waiter(r.id(), wid);
    }
    Ok(satisfied)
}

/// A future waiting for objects in the store; registers its waker with each pending one.
#[derive(Debug)]
pub(crate) struct WaitReady {
    refs: Vec<RawRef>,
    need: usize,
    wid: WaiterId,
    registered: bool,
    deadline: Option<Instant>,
    timer: Option<crate::timer::Timeout>,
    lend: Option<LendCpu>,
}

impl WaitReady {
    pub(crate) fn new(refs: Vec<RawRef>, need: usize, timeout: Option<Duration>) -> Self {
        WaitReady {
            refs,
            need,
            wid: next_waiter_id(),
            registered: false,
            deadline: timeout.map(|t| Instant::now() + t),
            timer: None,
            lend: None,
        }
    }
}

impl Future for WaitReady {
    /// Whether enough objects are ready (false: timed out).
    type Output = Result<bool>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut PollContext<'_>) -> Poll<Result<bool>> {
        let core = match crate::runtime::current() {
            Ok(core) => core,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let this = &mut *self;
        let mut ready = 0;
        for r in &this.refs {
            // Registering first, then counting, cannot miss a completion in between.
            if core
                .store
                .register_waiter(r.id(), this.wid, Waiter::Waker(cx.waker().clone()))
                .is_err()
            {
                ready += 1;
            }
        }
        this.registered = true;
        if ready >= this.need {
            return Poll::Ready(Ok(true));
        }
        if let Some(d) = this.deadline {
            if Instant::now() >= d {
                return Poll::Ready(Ok(false));
            }
            this.timer = Some(crate::timer::wake_at(d, cx.waker().clone()));
        }
        if this.lend.is_none() {
            this.lend = Some(LendCpu::start());
        }
        Poll::Pending
    }
}

impl Drop for WaitReady {
    fn drop(&mut self) {
        if self.registered
            && let Ok(core) = crate::runtime::current()
        {
            for r in &self.refs {
                core.store.unregister_waiter(r.id(), self.wid);
            }
        }
    }
}
