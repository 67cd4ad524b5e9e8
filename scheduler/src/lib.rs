//! Scheduling for Raya nodes.
//!
//! Every node runs a [`LocalScheduler`]: it queues the tasks submitted on the node, waits for
//! their arguments to be in the node's object store, keeps the node's resource accounting and
//! dispatches tasks to idle workers (starting more workers when running ones block in `get`).
//! Tasks the node can never run go to the [`GlobalScheduler`], which picks a feasible node of the
//! cluster or fails the task as infeasible. Both are Actix actors; their messages are
//! serializable so they can cross nodes.

#![warn(missing_docs)]

mod global;
mod local;
mod task;

pub use global::{GlobalScheduler, PlaceTask, RegisterLocalScheduler, ScheduleTask};
pub use local::{
    CancelFlags, CancelTask, ClusterHooks, GetSchedulerState, LocalScheduler, LocalSchedulerConfig,
    ReleaseResources, SchedulerState, SubmitTask, TaskDone, TaskOutcome, TaskUnschedulable,
    WorkerBlocked, WorkerCommand, WorkerFactory, WorkerStopped, WorkerUnblocked, record_event,
};
pub use task::{
    CreationOptions, FunctionDescriptor, SchedulingStrategy, TaskArg, TaskKind, TaskSpec,
};
