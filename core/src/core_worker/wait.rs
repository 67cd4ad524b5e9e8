//! Waiting for objects: how `get`, `wait` and their async forms block until objects are no
//! longer pending ([`Need`] says how many: `wait` a number of them, `get` of many all of them
//! or the first that fails, as Ray does). A blocking wait sleeps on a [`Signal`] registered
//! with each pending object; an async one registers its waker. Either way a worker's CPU is lent
//! to other tasks meanwhile ([`LendCpu`]), so nested fan-out cannot deadlock a fixed pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as PollContext, Poll};
use std::time::{Duration, Instant};

use raya_store::{RawRef, Signal, Status, StoreCore, Waiter, WaiterId, next_waiter_id};

use crate::error::Result;
use crate::execution::context::{LendCpu, check_may_block};

/// What a wait waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// At least this many objects no longer pending (`wait`).
    Some(usize),
    /// Every object, or the first that fails (`get` of many).
    AllOrFailure,
}

impl Need {
    /// Whether `ids`' states satisfy the need; stops looking as soon as they do.
    fn met(self, store: &StoreCore, mut ids: impl Iterator<Item = raya_common::ObjectId>) -> bool {
        match self {
            Need::Some(0) => true,
            Need::Some(n) => ids
                .filter(|id| store.status(*id) != Status::Pending)
                .nth(n - 1)
                .is_some(),
            Need::AllOrFailure => {
                let mut all = true;
                for id in ids.by_ref() {
                    match store.status(id) {
                        Status::Failed => return true,
                        Status::Pending => all = false,
                        _ => {}
                    }
                }
                all
            }
        }
    }
}

/// Blocks until `refs` meet `need`, or `deadline` passes. Returns whether they do. A worker's
/// CPU is lent to other tasks meanwhile.
pub(crate) fn block_until(
    store: &StoreCore,
    refs: &[&RawRef],
    need: Need,
    deadline: Option<Instant>,
    what: &'static str,
) -> Result<bool> {
    let enough = |refs: &[&RawRef]| need.met(store, refs.iter().map(|r| r.id()));
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
    need: Need,
    wid: WaiterId,
    registered: bool,
    deadline: Option<Instant>,
    timer: Option<crate::timer::Timeout>,
    lend: Option<LendCpu>,
}

impl WaitReady {
    pub(crate) fn new(refs: Vec<RawRef>, need: Need, timeout: Option<Duration>) -> Self {
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
        // The store the references are in (a node that stopped meanwhile failed them there),
        // else the running node's.
        let store = match self.refs.first() {
            Some(r) => Arc::clone(r.store()),
            None => match crate::runtime::current() {
                Ok(core) => Arc::clone(&core.store),
                Err(e) => return Poll::Ready(Err(e)),
            },
        };
        let this = &mut *self;
        for r in &this.refs {
            // Registering first, then looking, cannot miss a completion in between.
            let _ = store.register_waiter(r.id(), this.wid, Waiter::Waker(cx.waker().clone()));
        }
        this.registered = true;
        if this.need.met(&store, this.refs.iter().map(|r| r.id())) {
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
        if self.registered {
            for r in &self.refs {
                r.store().unregister_waiter(r.id(), self.wid);
            }
        }
    }
}
