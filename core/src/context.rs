//! What the current thread is running: the runtime context of tasks and actor methods.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskCx, Poll};

use actix::Addr;
use raya_common::{ActorId, JobId, NodeId, TaskId, WorkerId};
use raya_scheduler::{LocalScheduler, WorkerBlocked, WorkerUnblocked};

use crate::error::Result;

/// The task (or actor call) a thread is executing.
pub(crate) struct ExecCtx {
    pub(crate) task_id: TaskId,
    pub(crate) actor: Option<ActorId>,
    pub(crate) worker: Option<(WorkerId, Addr<LocalScheduler>)>,
    pub(crate) cancelled: Arc<AtomicBool>,
    /// Whether the worker's CPU is currently lent back (a blocking wait is in progress).
    pub(crate) lent: AtomicBool,
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

/// Where and as what the calling code runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeContext {
    /// The node.
    pub node_id: NodeId,
    /// The job (driver session).
    pub job_id: JobId,
    /// The task being executed (`None` in the driver).
    pub task_id: Option<TaskId>,
    /// The actor whose method is executing, if any.
    pub actor_id: Option<ActorId>,
    /// The worker running the task, if any.
    pub worker_id: Option<WorkerId>,
    /// The namespace named actors are looked up in.
    pub namespace: String,
}

/// The runtime context of the calling code.
///
/// ```
/// # raya::init(raya::Config::default().num_cpus(1)).unwrap();
/// let ctx = raya::runtime_context().unwrap();
/// assert!(ctx.task_id.is_none(), "the driver is not a task");
/// # raya::shutdown();
/// ```
pub fn runtime_context() -> Result<RuntimeContext> {
    let rt = crate::runtime::runtime()?;
    let ctx = current();
    Ok(RuntimeContext {
        node_id: rt.node,
        job_id: rt.job,
        task_id: ctx.as_ref().map(|c| c.task_id),
        actor_id: ctx.as_ref().and_then(|c| c.actor),
        worker_id: ctx.as_ref().and_then(|c| c.worker.as_ref().map(|w| w.0)),
        namespace: rt.namespace.clone(),
    })
}

/// Whether the task or actor call running on this thread was cancelled. Running code cannot be
/// interrupted in Rust: a long task checks this to stop early (its result is already reported
/// as cancelled).
pub fn is_cancelled() -> bool {
    current().is_some_and(|c| c.cancelled.load(Ordering::Relaxed))
}

/// The id of the task running on this thread, or the driver's pseudo-task.
pub(crate) fn current_task_id(rt: &crate::runtime::NodeShared) -> TaskId {
    current().map_or(rt.driver_task, |c| c.task_id)
}
