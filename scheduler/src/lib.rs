//! Scheduling for Raya nodes.
//!
//! - [`local`]: every node runs a [`LocalScheduler`]. It queues the tasks submitted on the node,
//!   waits for their arguments to be in the node's object store, keeps the node's resource
//!   accounting and dispatches tasks to the workers of its [`local::worker_pool`] (starting more
//!   while running ones block in `get`); actor creations go to the node manager.
//! - [`global`]: tasks a node cannot (or should not) run go to the head's [`GlobalScheduler`],
//!   which picks a feasible node of the cluster, or fails the task as infeasible.
//! - [`task_spec`]: the [`TaskSpec`] a task travels as.
//!
//! Both schedulers are Actix actors; the messages that cross nodes are named wire messages
//! (`global_scheduler/ScheduleTask`, `local_scheduler/PlaceTask`, `local_scheduler/TaskPlaced`,
//! `local_scheduler/TaskUnschedulable`, `local_scheduler/CancelTask`), each served by the
//! scheduler that handles it and sent on the ordered link to that node.

#![forbid(unsafe_code)]

pub mod global;
pub mod local;
pub mod task_spec;
pub mod wire_checks;

pub use global::{GlobalRoute, GlobalScheduler, RegisterLocalScheduler, ScheduleTask};
pub use local::{
    CancelFlags, CancelTask, ClusterHooks, CreateActor, Dispatched, GetSchedulerState,
    HeadRestarted, LocalScheduler, LocalSchedulerConfig, LocalSchedulerParts, PlaceTask,
    ReleaseResources, SchedulerState, SubmitTask, TaskDone, TaskGoing, TaskOutcome, TaskPlaced,
    TaskUnschedulable, WorkerBlocked, WorkerCommand, WorkerFactory, WorkerStopped, WorkerUnblocked,
    record_event,
};
pub use task_spec::{
    CreationOptions, FunctionDescriptor, MAX_RETURNS_FROM_WIRE, SchedulingStrategy, TaskArg,
    TaskKind, TaskSpec,
};
