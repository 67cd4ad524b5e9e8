//! Where the calling code runs: [`runtime_context`] and [`is_cancelled`].

use std::sync::atomic::Ordering;

use raya_common::{ActorId, JobId, NodeId, TaskId, WorkerId};

use crate::error::Result;
use crate::execution::context::current;

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
    let core = crate::runtime::current()?;
    let ctx = current();
    Ok(RuntimeContext {
        node_id: core.node,
        job_id: core.job,
        task_id: ctx.as_ref().map(|c| c.task_id),
        actor_id: ctx.as_ref().and_then(|c| c.actor),
        worker_id: ctx.as_ref().and_then(|c| c.worker.as_ref().map(|w| w.0)),
        namespace: core.namespace.clone(),
    })
}

/// Whether the task or actor call running on this thread was cancelled. Running code cannot be
/// interrupted in Rust: a long task checks this to stop early (its result is already reported
/// as cancelled).
pub fn is_cancelled() -> bool {
    current().is_some_and(|c| c.cancelled.load(Ordering::Relaxed))
}
