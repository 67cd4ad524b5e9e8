//! What the current thread is running: the execution context of a task or actor call, set while
//! its code runs (and around each poll of its future), read by `runtime_context`,
//! `is_cancelled`, the blocking calls (which lend a worker's CPU back) and the submitters (which
//! record the parent of the tasks it submits).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskCx, Poll};

use actix::Addr;
use raya_common::{ActorId, TaskId, WorkerId};
use raya_scheduler::{LocalScheduler, WorkerBlocked, WorkerUnblocked};

use crate::error::Result;

/// The task (or actor call) a thread is executing.
#[derive(Debug)]
pub(crate) struct ExecCtx {
    pub(crate) task_id: TaskId,
    pub(crate) actor: Option<ActorId>,
    pub(crate) worker: Option<(WorkerId, Addr<LocalScheduler>)>,
    pub(crate) cancelled: Arc<AtomicBool>,
    /// Whether the worker's CPU is currently lent back (a blocking wait is in progress).
    pub(crate) lent: AtomicBool,
}

impl ExecCtx {
    /// The context of task `task_id` run by `worker` of the node's local scheduler.
    pub(crate) fn task(
        task_id: TaskId,
        worker: (WorkerId, Addr<LocalScheduler>),
        cancelled: Arc<AtomicBool>,
    ) -> Arc<ExecCtx> {
        Arc::new(ExecCtx {
            task_id,
            actor: None,
            worker: Some(worker),
            cancelled,
            lent: AtomicBool::new(false),
        })
    }

    /// The context of a call (or the constructor, `task_id` being its creation task) of actor
    /// `actor`.
    pub(crate) fn actor_call(
        task_id: TaskId,
        actor: ActorId,
        cancelled: Arc<AtomicBool>,
    ) -> Arc<ExecCtx> {
        Arc::new(ExecCtx {
            task_id,
            actor: Some(actor),
            worker: None,
            cancelled,
            lent: AtomicBool::new(false),
        })
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ExecCtx>>> = const { RefCell::new(None) };
    static EVENT_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous context when dropped.
pub(crate) struct CtxGuard(Option<Arc<ExecCtx>>);

impl Drop for CtxGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Makes `ctx` the current context until the guard drops.
pub(crate) fn enter(ctx: Arc<ExecCtx>) -> CtxGuard {
    CtxGuard(CURRENT.with(|c| c.borrow_mut().replace(ctx)))
}

/// The current context.
pub(crate) fn current() -> Option<Arc<ExecCtx>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Marks this thread as an event loop shared by many actors: blocking calls are refused here.
pub(crate) fn mark_event_loop() {
    EVENT_LOOP.with(|e| e.set(true));
}

/// Fails when the current thread must not block.
pub(crate) fn check_may_block(what: &'static str) -> Result<()> {
    if EVENT_LOOP.with(|e| e.get()) {
        return Err(crate::Error::BlockingInAsync(what));
    }
    Ok(())
}

/// While alive, the current worker's CPU is lent to other tasks (as Ray does for a task blocked
/// in `get`, so that nested fan-out cannot deadlock a fixed pool).
#[derive(Debug)]
pub(crate) struct LendCpu(Option<Arc<ExecCtx>>);

impl LendCpu {
    pub(crate) fn start() -> LendCpu {
        let Some(ctx) = current() else {
            return LendCpu(None);
        };
        match &ctx.worker {
            Some((w, sched)) if !ctx.lent.swap(true, Ordering::Relaxed) => {
                sched.do_send(WorkerBlocked(*w));
                LendCpu(Some(ctx))
            }
            _ => LendCpu(None),
        }
    }
}

impl Drop for LendCpu {
    fn drop(&mut self) {
        if let Some(ctx) = self.0.take()
            && let Some((w, sched)) = &ctx.worker
        {
            ctx.lent.store(false, Ordering::Relaxed);
            sched.do_send(WorkerUnblocked(*w));
        }
    }
}

/// A future run with an execution context set during each poll (async tasks and async actor
/// methods interleave on one thread, so the context is swapped in and out).
pub(crate) struct WithCtx<F: ?Sized> {
    pub(crate) ctx: Arc<ExecCtx>,
    pub(crate) fut: Pin<Box<F>>,
}

impl<F: Future + ?Sized> Future for WithCtx<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        let _g = enter(Arc::clone(&self.ctx));
        self.fut.as_mut().poll(cx)
    }
}

/// The id of the task running on this thread, or `driver` (the driver's pseudo-task) outside
/// tasks.
pub(crate) fn current_task_or(driver: TaskId) -> TaskId {
    current().map_or(driver, |c| c.task_id)
}
