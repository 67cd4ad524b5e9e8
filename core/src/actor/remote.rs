//! Calls to actors on other nodes.
//!
//! A caller's calls to one remote actor go through one [`CallSender`], which sends them in
//! order, in batches: while a batch is in flight the next calls queue, so calls from one caller
//! keep their order and many small calls share a message. The receiving node's node manager
//! hands each call to the actor's host ([`DeliverCalls`]); the results are the caller's objects,
//! announced to it by the object manager when they are ready.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use raya_cluster::net::Target;
use raya_common::{ActorId, NodeId, ObjectId, TaskError, TaskErrorKind, TaskId};
use serde::{Deserialize, Serialize};

use super::host::{HostControl, WireActorCall};
use crate::runtime::NodeShared;

/// At most this many calls travel in one batch.
const MAX_BATCH: usize = 1024;

/// Hands calls to the hosts of actors living on the receiving node. Replies with the calls
/// whose actor does not live there.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<TaskId>")]
pub(crate) struct DeliverCalls(pub(crate) Vec<WireActorCall>);

/// A control message for an actor on another node.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub(crate) enum WireControl {
    /// Kill it (restart when allowed and asked).
    Kill { no_restart: bool },
    /// Cancel one of its calls.
    Cancel { task_id: TaskId, force: bool },
    /// Every handle to it is gone.
    HandlesDropped,
}

/// [`WireControl`] addressed to an actor.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub(crate) struct ControlActor {
    pub(crate) actor: ActorId,
    pub(crate) control: WireControl,
}

impl From<WireControl> for HostControl {
    fn from(c: WireControl) -> HostControl {
        match c {
            WireControl::Kill { no_restart } => HostControl::Kill { no_restart },
            WireControl::Cancel { task_id, force } => HostControl::Cancel { task_id, force },
            WireControl::HandlesDropped => HostControl::HandlesDropped,
        }
    }
}

/// The node `peer` died.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PeerDied(pub(crate) NodeId);

/// Sends the calls of this node to one actor on node `node`, in order.
pub(crate) struct CallSender {
    rt: Arc<NodeShared>,
    actor: ActorId,
    node: NodeId,
    queue: VecDeque<WireActorCall>,
    in_flight: bool,
    dead: Option<TaskError>,
}

impl Actor for CallSender {
    type Context = Context<Self>;
}

/// Fails the results of `call` on its owner (this node) with `err`.
fn fail_call(rt: &NodeShared, call: &WireActorCall, err: &Arc<TaskError>) {
    for i in 0..call.num_returns {
        rt.store
            .fail(ObjectId::for_return(call.task_id, i), Arc::clone(err));
    }
}

impl CallSender {
    /// Fails every queued call (the sender is dead).
    fn fail_queued(&mut self) {
        let err = Arc::new(self.dead.clone().unwrap_or_else(|| {
            TaskError::new(TaskErrorKind::ActorDied, "the actor is unreachable")
        }));
        for c in &self.queue {
            if c.owner == self.rt.node {
                fail_call(&self.rt, c, &err);
            }
        }
        self.queue.clear();
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.queue.is_empty() {
            return;
        }
        let Some(net) = self.rt.net.clone() else {
            self.dead = Some(TaskError::new(
                TaskErrorKind::ActorDied,
                "the actor lives on another node and this node has no network",
            ));
            self.fail_queued();
            return;
        };
        let n = self.queue.len().min(MAX_BATCH);
        let batch: Vec<WireActorCall> = self.queue.drain(..n).collect();
        let ids: Vec<(TaskId, u32, NodeId)> = batch
            .iter()
            .map(|c| (c.task_id, c.num_returns, c.owner))
            .collect();
        self.in_flight = true;
        let peer = self.node.peer_id();
        ctx.spawn(
            async move { net.ask(peer, Target::System, DeliverCalls(batch)).await }
                .into_actor(self)
                .map(move |res, this, ctx| {
                    this.in_flight = false;
                    match res {
                        Ok(undelivered) => {
                            let err = Arc::new(TaskError::new(
                                TaskErrorKind::ActorDied,
                                format!(
                                    "actor {} is gone from node {}: it died or was killed",
                                    this.actor, this.node
                                ),
                            ));
                            for t in undelivered {
                                if let Some((task, n, owner)) =
                                    ids.iter().find(|(id, _, _)| *id == t).copied()
                                    && owner == this.rt.node
                                {
                                    for i in 0..n {
                                        this.rt
                                            .store
                                            .fail(ObjectId::for_return(task, i), Arc::clone(&err));
                                    }
                                }
                            }
                            this.flush(ctx);
                        }
                        Err(e) => {
                            this.dead = Some(TaskError::new(
                                TaskErrorKind::ActorDied,
                                format!(
                                    "actor {} on node {} is unreachable: {e}",
                                    this.actor, this.node
                                ),
                            ));
                            // The batch's results: the far node may have taken some before it
                            // failed; those it announced fail when the node is declared dead.
                            let err = Arc::new(this.dead.clone().expect("set above"));
                            for (task, n, owner) in &ids {
                                if *owner == this.rt.node {
                                    for i in 0..*n {
                                        this.rt
                                            .store
                                            .fail(ObjectId::for_return(*task, i), Arc::clone(&err));
                                    }
                                }
                            }
                            this.fail_queued();
                        }
                    }
                }),
        );
    }
}

impl Handler<WireActorCall> for CallSender {
    type Result = ();
    fn handle(&mut self, call: WireActorCall, ctx: &mut Context<Self>) {
        if let Some(e) = &self.dead {
            let err = Arc::new(e.clone());
            if call.owner == self.rt.node {
                fail_call(&self.rt, &call, &err);
            }
            return;
        }
        self.queue.push_back(call);
        self.flush(ctx);
    }
}

impl Handler<WireControl> for CallSender {
    type Result = ();
    fn handle(&mut self, control: WireControl, ctx: &mut Context<Self>) {
        let Some(net) = self.rt.net.clone() else {
            return;
        };
        let (peer, actor) = (self.node.peer_id(), self.actor);
        ctx.spawn(actix::fut::wrap_future(async move {
            if let Err(e) = net
                .ask(peer, Target::System, ControlActor { actor, control })
                .await
            {
                tracing::debug!(%actor, error = %e, "actor control not delivered");
            }
        }));
    }
}

impl Handler<PeerDied> for CallSender {
    type Result = ();
    fn handle(&mut self, PeerDied(node): PeerDied, _: &mut Context<Self>) {
        if node == self.node && self.dead.is_none() {
            self.dead = Some(TaskError::new(
                TaskErrorKind::NodeDied,
                format!("actor {} lived on node {node}, which died", self.actor),
            ));
            self.fail_queued();
        }
    }
}

/// The sender of this node's calls to actor `actor` on node `node` (one per actor).
pub(crate) fn call_sender(rt: &Arc<NodeShared>, actor: ActorId, node: NodeId) -> Addr<CallSender> {
    let mut senders = rt.call_senders.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = senders.get(&actor)
        && s.connected()
    {
        return s.clone();
    }
    let sender_rt = Arc::clone(rt);
    let s = CallSender::start_in_arbiter(&rt.next_actor_arbiter(), move |_| CallSender {
        rt: sender_rt,
        actor,
        node,
        queue: VecDeque::new(),
        in_flight: false,
        dead: None,
    });
    senders.insert(actor, s.clone());
    s
}

/// Tells every sender that `node` died.
pub(crate) fn node_died(rt: &NodeShared, node: NodeId) {
    let senders: Vec<Addr<CallSender>> = rt
        .call_senders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    for s in senders {
        s.do_send(PeerDied(node));
    }
}

/// Delivers calls that arrived from other nodes (the node manager's side of [`DeliverCalls`]).
pub(crate) fn deliver(rt: &NodeShared, calls: Vec<WireActorCall>) -> Vec<TaskId> {
    let mut undelivered = Vec::new();
    for call in calls {
        let owner = call.owner;
        let task = call.task_id;
        // The results need entries here before the call can finish.
        let refs: Vec<raya_store::RawRef> = (0..call.num_returns)
            .map(|i| rt.store.add_ref(ObjectId::for_return(task, i)))
            .collect();
        match rt.actors.deliver(call) {
            Ok(()) => {
                if owner != rt.node
                    && let Some(o) = &rt.objects
                {
                    o.do_send(raya_store::ExpectReturns { refs, owner });
                }
            }
            Err(_) => undelivered.push(task),
        }
    }
    undelivered
}
