//! The messages an actor host receives besides calls: controls from the node and the handles
//! ([`HostControl`], the same for every actor type), and the reports of its own work
//! (constructor done, a batch of calls done, the front call's argument ready).

use std::sync::Arc;

use actix::Message;
use raya_common::{NodeId, TaskError, TaskId};
use raya_scheduler::TaskSpec;

use super::call::ActorCall;

/// Control messages any host understands, whatever its actor type.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) enum HostControl {
    /// The scheduler placed the actor here: run the constructor.
    Construct(Box<TaskSpec>),
    /// Kill the actor, restarting it when allowed and asked.
    Kill { no_restart: bool },
    /// Cancel a queued or running call.
    Cancel { task_id: TaskId, force: bool },
    /// The last handle was dropped.
    HandlesDropped,
    /// The actor could not be placed (its creation object failed).
    CreationFailed(Arc<TaskError>),
    /// The creation object is ready: when the constructor did not run here, the actor lives on
    /// another node and this host forwards to it from now on.
    Placed,
    /// The node that created this (not detached) actor is gone: the actor goes with it.
    CreatorGone(NodeId),
}

/// A constructor run of incarnation `generation` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Constructed {
    pub(super) generation: u64,
    pub(super) result: Result<(), TaskError>,
}

/// A batch of synchronous calls of incarnation `generation` ended on a pool thread: `done` ran
/// (or were skipped as cancelled), `crashed` panicked, `rest` did not run because of it.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct BatchDone<A: 'static> {
    pub(super) generation: u64,
    pub(super) done: Vec<TaskId>,
    pub(super) crashed: Option<(ActorCall<A>, String)>,
    pub(super) rest: Vec<ActorCall<A>>,
}

/// The argument the front call of the queue waited for is ready.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct FrontCallReady;
