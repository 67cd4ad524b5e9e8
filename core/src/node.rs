//! The node manager: places constructed actors.

use std::sync::Arc;

use actix::prelude::*;
use raya_scheduler::{TaskDone, TaskKind, TaskOutcome, WorkerCommand};

use crate::actor::HostControl;
use crate::runtime::NodeShared;

/// The node manager actor. The local scheduler hands it actor creations once their resources
/// are reserved; it passes each to the actor's host, which runs the constructor.
pub(crate) struct NodeManager {
    pub(crate) rt: Arc<NodeShared>,
}

impl Actor for NodeManager {
    type Context = Context<Self>;
}

impl Handler<WorkerCommand> for NodeManager {
    type Result = ();
    fn handle(&mut self, cmd: WorkerCommand, _: &mut Context<Self>) {
        let WorkerCommand::Execute(spec) = cmd else {
            return;
        };
        let TaskKind::ActorCreation { actor, .. } = spec.kind.clone() else {
            tracing::error!(task = %spec.task_id, "node manager given a task that creates no actor");
            return;
        };
        let task_id = spec.task_id;
        if !self.rt.actors.control(actor, HostControl::Construct(spec)) {
            tracing::debug!(%actor, "actor gone before it was placed");
            self.rt.scheduler().do_send(TaskDone {
                worker: None,
                task_id,
                outcome: TaskOutcome::Failed,
            });
        }
    }
}
