//! The host of an actor constructed on another node: when the creation object becomes ready
//! and the constructor did not run here, the host finds the actor's node in the GCS and from
//! then on forwards every call and control there through the node's [`CallSender`] for the
//! actor, keeping the order of the calls it queued.

use actix::prelude::*;
use raya_cluster::gcs::GcsError;
use raya_cluster::gcs::actors::{ActorInfo, ActorState, GetActor};
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

/// How many answers without a node a relocating host takes before it fails the calls queued
/// meanwhile ([`ActorHost::relocate`]): about 20 s of pauses, well inside an owner's object
/// lease, so an owner never sees a call it was told is still being made fail as lost first.
const RELOCATE_ATTEMPTS: u32 = 10;

/// The first pause between two lookups of a relocating host.
const RELOCATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// The longest pause between two lookups of a relocating host.
const RELOCATE_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// What a relocating host does with the head's answer about its actor.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Relocation {
    /// It lives on that node: forward there.
    There(NodeId),
    /// It is dead, or no longer recorded: its calls fail, with this cause.
    Gone(String),
    /// Not known yet (the head unreachable, or the record names no other node): ask again.
    Again(String),
}

/// The step a relocating host on node `me` takes for the head's `answer` about its actor.
pub(super) fn relocation_step(
    answer: Result<Option<ActorInfo>, GcsError>,
    me: NodeId,
) -> Relocation {
    match answer {
        Ok(Some(info)) if info.state == ActorState::Dead => Relocation::Gone(
            info.death_cause
                .unwrap_or_else(|| "the head records it dead".into()),
        ),
        Ok(Some(info)) => match info.node {
            Some(n) if n != me => Relocation::There(n),
            Some(_) => Relocation::Again("the head still records it on this node".into()),
            None => Relocation::Again("the head records it on no node yet".into()),
        },
        Ok(None) => Relocation::Gone("the head no longer records the actor".into()),
        Err(e) => Relocation::Again(e.to_string()),
    }
}

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

    /// Looks up the node the head records the actor on, for a host whose instance stopped
    /// because the actor lives elsewhere ([`Lifecycle::Relocating`]). A head that cannot be
    /// reached, or a record that names no other node yet (the actor restarting there), is
    /// asked again after a pause that doubles up to [`RELOCATE_PAUSE_MAX`]; every
    /// [`RELOCATE_ATTEMPTS`] answers without a node, the calls queued meanwhile fail (so none
    /// waits unbounded) and the host goes on looking for later ones.
    pub(super) fn relocate(&mut self, attempt: u32, ctx: &mut Context<Self>) {
        if !matches!(self.lifecycle, Lifecycle::Relocating) {
            return;
        }
        let gcs = self.env.gcs.clone();
        let (id, me, generation) = (self.id, self.env.node, self.generation);
        ctx.spawn(
            async move { relocation_step(gcs.request(GetActor(id)).await, me) }
                .into_actor(self)
                .map(move |step, this, ctx| {
                    if this.generation != generation
                        || !matches!(this.lifecycle, Lifecycle::Relocating)
                    {
                        return;
                    }
                    match step {
                        Relocation::There(node) => this.become_proxy(node, ctx),
                        Relocation::Gone(cause) => {
                            this.gone(TaskError::new(TaskErrorKind::ActorDied, cause), ctx)
                        }
                        Relocation::Again(why) => {
                            let attempt = attempt.saturating_add(1);
                            tracing::debug!(actor = %this.id, attempt, %why, "the actor's node is not known yet");
                            if attempt.is_multiple_of(RELOCATE_ATTEMPTS) {
                                this.relocation_timed_out(&why);
                            }
                            let pause = RELOCATE_PAUSE
                                .saturating_mul(1 << attempt.min(8))
                                .min(RELOCATE_PAUSE_MAX);
                            ctx.run_later(pause, move |this, ctx| this.relocate(attempt, ctx));
                        }
                    }
                }),
        );
    }

    /// The queued calls fail: the actor's node could not be learned for a whole round.
    fn relocation_timed_out(&mut self, why: &str) {
        let err = TaskError::new(
            TaskErrorKind::Unreachable,
            format!(
                "actor {} ({}) moved to another node, which could not be learned from the \
                 head ({why}); the call did not run",
                self.id, self.opts.class
            ),
        );
        tracing::warn!(actor = %self.id, class = self.opts.class, reason = %why, "cannot learn where the actor moved: its queued calls fail");
        for call in std::mem::take(&mut self.queue) {
            self.fail_call(&call, &err);
        }
    }

    /// Sends `call` on to the actor's node through `sender` (or fails it, when it cannot cross).
    pub(super) fn forward_call(&self, sender: &Addr<CallSender>, call: super::ActorCall<A>) {
        // Results kept here when it was queued are let go by the sender once the owner hears
        // where they are made.
        self.kept_early.borrow_mut().remove(&call.task_id);
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
        if let Some(no_restart) = self.relocated_kill.take() {
            sender.do_send(WireControl::Kill { no_restart });
        }
        if self.handles_dropped {
            sender.do_send(WireControl::HandlesDropped);
            ctx.stop();
        }
        self.lifecycle = Lifecycle::Remote(sender);
    }
}
