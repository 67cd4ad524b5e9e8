//! What the local scheduler receives and sends: from the node's core worker and workers, from
//! the global scheduler (the wire messages `local_scheduler/PlaceTask`,
//! `local_scheduler/TaskPlaced` and `local_scheduler/TaskUnschedulable`), from the owners of
//! tasks placed here (`local_scheduler/CancelTask`), and to workers and the node manager.

use actix::prelude::*;
use raya_common::{NodeId, ResourceSet, TaskErrorKind, TaskId, WorkerId};
use serde::{Deserialize, Serialize};

use crate::task_spec::TaskSpec;

/// Submits a task on this node (from the node's core worker).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubmitTask(pub TaskSpec);

/// Hands a task to the local scheduler of the node the global scheduler picked.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct PlaceTask(pub TaskSpec);

/// The global scheduler found no node for a task: it fails on the node that handed it over.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct TaskUnschedulable {
    /// The task.
    pub spec: TaskSpec,
    /// Why.
    pub reason: String,
    /// [`TaskErrorKind::Infeasible`] when no node can run it, [`TaskErrorKind::Unreachable`]
    /// when none that could was reachable.
    pub kind: TaskErrorKind,
}

/// The global scheduler gave a task this node handed over to node `node`, which has it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct TaskPlaced {
    /// The task.
    pub task_id: TaskId,
    /// The node that runs it.
    pub node: NodeId,
    /// The attempt that node runs (the head counts one more for each placement that may have
    /// run on a node that did not acknowledge it).
    pub attempt: u32,
}

/// The global scheduler is sending a task this node handed over to node `node` (sent before
/// the task itself, so the owner knows where its results come from before they can arrive;
/// [`TaskPlaced`] follows once the node has it).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct TaskGoing {
    /// The task.
    pub task_id: TaskId,
    /// The node it is sent to.
    pub node: NodeId,
}

/// The head restarted (a new incarnation registered under its identity): the tasks its previous
/// incarnation took and had not placed are handed to it again. Local wiring only, from the node
/// manager.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct HeadRestarted;

raya_cluster::wire_message!(
    PlaceTask => "local_scheduler/PlaceTask" where |_, from| from.is_head(),
    TaskGoing => "local_scheduler/TaskGoing" as archive where |_, from| from.is_head(),
    TaskPlaced => "local_scheduler/TaskPlaced" as archive where |_, from| from.is_head(),
    TaskUnschedulable => "local_scheduler/TaskUnschedulable" where |_, from| from.is_head(),
    CancelTask => "local_scheduler/CancelTask" as archive
        where |m, from| from.made(m.task_id.node_tag(), "the task cancelled"),
);

/// A command to a worker.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum WorkerCommand {
    /// Run a task.
    Execute(Dispatched),
    /// Cancel the task it runs: async tasks are dropped at their next await point when `force`;
    /// every task sees the cancellation through its flag ([`super::CancelFlags`]).
    Cancel {
        /// The task.
        task_id: TaskId,
        /// Stop it as soon as possible.
        force: bool,
    },
    /// Finish the current task, then exit.
    Stop,
}

/// A task handed to a worker. A worker that dies before taking it (its mailbox dropped with
/// the task in it) sends it back to the scheduler as it goes, so it is retried or failed, never
/// lost.
pub struct Dispatched {
    spec: Option<Box<TaskSpec>>,
    worker: WorkerId,
    back: Addr<super::LocalScheduler>,
}

impl Dispatched {
    /// `spec`, handed to `worker`; it goes back to `back` if never taken.
    pub fn new(spec: Box<TaskSpec>, worker: WorkerId, back: Addr<super::LocalScheduler>) -> Self {
        Dispatched {
            spec: Some(spec),
            worker,
            back,
        }
    }

    /// The worker takes the task.
    pub fn take(mut self) -> Box<TaskSpec> {
        self.spec.take().expect("a dispatched task is taken once")
    }
}

impl Drop for Dispatched {
    fn drop(&mut self) {
        if let Some(spec) = self.spec.take() {
            self.back.do_send(WorkerStopped {
                worker: self.worker,
                task: Some(spec),
            });
        }
    }
}

impl std::fmt::Debug for Dispatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatched")
            .field("task", &self.spec.as_ref().map(|s| s.task_id))
            .field("worker", &self.worker)
            .finish()
    }
}

/// An actor creation whose placement resources this node reserved: the node manager hands it
/// to the actor's host, which runs the constructor and reports a [`TaskDone`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CreateActor(pub Box<TaskSpec>);

/// How a dispatched task ended.
#[derive(Debug)]
pub enum TaskOutcome {
    /// Results stored.
    Finished,
    /// Error stored in place of the results.
    Failed,
    /// The attempt failed and may be retried: here is the spec of the next attempt.
    Retry(Box<TaskSpec>),
    /// The actor was constructed and keeps `keep` for its lifetime.
    ActorCreated {
        /// Resources the actor holds until it dies.
        keep: ResourceSet,
    },
}

/// A dispatched task (or actor creation) ended.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TaskDone {
    /// The worker that ran it (`None` for actor creations).
    pub worker: Option<WorkerId>,
    /// The task.
    pub task_id: TaskId,
    /// How it ended.
    pub outcome: TaskOutcome,
}

/// A worker's task blocked in `get`: its resources are lent back until [`WorkerUnblocked`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WorkerBlocked(pub WorkerId);

/// A worker's task stopped waiting and takes its resources back.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WorkerUnblocked(pub WorkerId);

/// A worker exited without being told to: its thread died (a panic outside a task's own guard,
/// such as in a `Drop`). The task it ran, or one it never took, comes back with it (each in a
/// message of its own).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WorkerStopped {
    /// The worker.
    pub worker: WorkerId,
    /// The task it was running.
    pub task: Option<Box<TaskSpec>>,
}

/// Cancels a queued or running task (and, when `recursive`, the tasks it submitted). Replies
/// whether the task was found here. From another node: the owner of a task placed here
/// cancelled it (one that has not arrived yet fails as cancelled when it does).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct CancelTask {
    /// The task.
    pub task_id: TaskId,
    /// Stop a running task as soon as possible.
    pub force: bool,
    /// Cancel its children too.
    pub recursive: bool,
}

/// Gives back resources an actor held for its lifetime.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReleaseResources(pub ResourceSet);

/// A snapshot of the scheduler's queues and accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Total resources.
    pub total: ResourceSet,
    /// Free resources.
    pub available: ResourceSet,
    /// Tasks waiting for arguments.
    pub waiting_for_args: usize,
    /// Tasks waiting for resources or a worker.
    pub queued: usize,
    /// Tasks running.
    pub running: usize,
    /// Running tasks blocked in `get`.
    pub blocked: usize,
    /// Workers started.
    pub workers: usize,
    /// Idle workers.
    pub idle_workers: usize,
}

/// Reads [`SchedulerState`].
#[derive(Debug, Message)]
#[rtype(result = "SchedulerState")]
pub struct GetSchedulerState;
