//! Sending actor calls (Ray's actor task submitter): the results are owned here from the
//! moment the call is made, and the call goes to the actor's host on this node or, through the
//! actor's [`CallSender`](super::call_sender::CallSender), to its node.

use std::sync::Arc;

use raya_common::{ActorAddress, ObjectId, TaskError, TaskErrorKind};
use raya_scheduler::TaskArg;
use raya_store::{Lookup, RawRef};

use super::CoreWorker;
use crate::actor_host::ActorCall;
use crate::actor_host::wire::not_deliverable;
use crate::api::actor::{ActorClass, Method};
use crate::api::handle::HandleInner;

impl CoreWorker {
    /// Calls `method` of the actor `target` with `args`, asking for `num_returns` results
    /// (0: nobody keeps the reply), and returns the references to them. An actor that is gone
    /// fails them at once.
    pub(crate) fn call_actor<A: ActorClass>(
        &self,
        target: &HandleInner<A>,
        method: Method<A>,
        args: Vec<TaskArg>,
        num_returns: u32,
    ) -> Vec<RawRef> {
        let task_id = self.ids.task_id();
        let refs: Vec<RawRef> = (0..num_returns)
            .map(|i| {
                self.store
                    .add_actor_ref(ObjectId::for_return(task_id, i), target.id)
            })
            .collect();
        let call = ActorCall {
            owner: self.node,
            task_id,
            method,
            args,
            num_returns,
            attempt: 0,
            parent: self.current_task(),
        };
        let refused = match (&target.host, &target.remote) {
            (Some(h), _) if h.connected() => {
                h.do_send(call);
                None
            }
            (None, Some(r)) => match not_deliverable(&call.method) {
                None => {
                    r.do_send(call.to_wire(ActorAddress {
                        node: target.node,
                        actor: target.id,
                    }));
                    None
                }
                Some(e) => Some(Arc::new(e)),
            },
            _ => Some(match self.store.get(target.ready.id()) {
                Lookup::Failed(e) => e,
                _ => Arc::new(TaskError::new(
                    TaskErrorKind::ActorDied,
                    format!(
                        "actor {} is gone: it was killed, went out of scope or is unknown on this node",
                        target.id
                    ),
                )),
            }),
        };
        if let Some(err) = refused {
            for r in &refs {
                self.store.fail(r.id(), Arc::clone(&err));
            }
        }
        refs
    }
}
