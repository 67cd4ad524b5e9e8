//! The host of an actor constructed on another node: when the creation object becomes ready
//! and the constructor did not run here, the host finds the actor's node in the GCS and from
//! then on forwards every call and control there through the node's [`CallSender`] for the
//! actor, keeping the order of the calls it queued.

use actix::prelude::*;
use raya_cluster::gcs::actors::GetActor;
use raya_common::{NodeId, TaskError, TaskErrorKind};

use super::ActorHost;
use super::control::HostControl;
use super::lifecycle::Lifecycle;
use super::wire::{WireControl, not_deliverable};
use crate::api::actor::ActorClass;
use crate::core_worker::call_sender::CallSender;

/// How long, in 50 ms steps, the host looks for the node that constructed its actor: that node
/// records itself in the GCS, and its record may trail the creation object by a moment.
const FIND_ATTEMPTS: u32 = 200;

/// Forwards a control to the actor's node.
pub(super) fn forward_control<A: ActorClass>(
    sender: &Addr<CallSender>,
    control: HostControl,
    ctx: &mut Context<ActorHost<A>>,
) {
    match control {
        HostControl::Kill { no_restart } => sender.do_send(WireControl::Kill { no_restart }),
        HostControl::Cancel { task_id, force } => {
            sender.do_send(WireControl::Cancel { task_id, force })
        }
        HostControl::HandlesDropped => {
            sender.do_send(WireControl::HandlesDropped);
            ctx.stop();
        }
        HostControl::Construct(_)
        | HostControl::CreationFailed(_)
        | HostControl::Placed
        | HostControl::CreatorGone(_) => {}
    }
}

impl<A: ActorClass> ActorHost<A> {
    /// `Placed`: the creation object is ready. Nothing to do when the actor was built here;
    /// otherwise find where it was.
    pub(super) fn placed(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.lifecycle, Lifecycle::Placing) {
            return;
        }
        let gcs = self.env.gcs.clone();
        let (id, me, generation) = (self.id, self.env.node, self.generation);
        ctx.spawn(
            async move {
                for _ in 0..FIND_ATTEMPTS {
                    match gcs.request(GetActor(id)).await {
                        Ok(Some(info)) => match info.node {
                            Some(n) if n != me => return Some(n),
                            _ => {}
                        },
                        Ok(None) => return None,
                        Err(e) => {
                            tracing::warn!(actor = %id, error = %e, "cannot find where the actor was placed");
                            return None;
                        }
                    }
                    actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                None
            }
            .into_actor(self)
            .map(move |found, this, ctx| {
                // Placed here meanwhile (or killed): what was found is out of date.
                if this.generation != generation || !matches!(this.lifecycle, Lifecycle::Placing)
                {
                    return;
                }
                match found {
                Some(node) => this.become_proxy(node, ctx),
                None if this.lifecycle.before_creation() => this.abort_creation(
                    TaskError::new(
                        TaskErrorKind::ActorDied,
                        "the actor was constructed on another node that cannot be found",
                    ),
                    ctx,
                ),
                None => {}
                }
            }),
        );
    }

    /// Sends `call` on to the actor's node through `sender` (or fails it, when it cannot cross).
    pub(super) fn forward_call(&self, sender: &Addr<CallSender>, call: super::ActorCall<A>) {
        match not_deliverable(&call.method) {
            None => sender.do_send(call.to_wire(self.address())),
            Some(e) => self.fail_call(&call, &e),
        }
    }

    /// The actor was constructed on `node`: forward everything there from now on.
    fn become_proxy(&mut self, node: NodeId, ctx: &mut Context<Self>) {
        let sender = self
            .env
            .remote
            .sender(self.id, node, self.opts.max_task_retries);
        for call in std::mem::take(&mut self.queue) {
            self.forward_call(&sender, call);
        }
        tracing::debug!(actor = %self.id, %node, "actor placed on another node");
        if self.handles_dropped {
            sender.do_send(WireControl::HandlesDropped);
            ctx.stop();
        }
        self.lifecycle = Lifecycle::Remote(sender);
    }
}
