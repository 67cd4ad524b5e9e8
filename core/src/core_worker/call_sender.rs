//! Calls to actors on other nodes (Ray's actor task submitter, for remote actors).
//!
//! A node's calls to one remote actor go through one [`CallSender`], which sends them in order,
//! in batches (`node_manager/DeliverCalls`): while a batch is in flight the next calls queue, so
//! calls from one caller keep their order and many small calls share a message. The receiving
//! node's node manager hands each call to the actor's host; the results are the caller's
//! objects, announced to it by the object manager when they are ready. [`RemoteActors`] keeps
//! the senders of a node, one per actor.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use raya_cluster::transport::{Network, Target};
use raya_common::{ActorId, NodeId, ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_store::StoreCore;

use crate::actor_host::env::ActorLoops;
use crate::actor_host::wire::{ControlActor, DeliverCalls, WireActorCall, WireControl};

/// At most this many calls travel in one batch.
const MAX_BATCH: usize = 1024;

/// The node `peer` died.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PeerDied(pub(crate) NodeId);

/// The call senders of a node, one per remote actor it calls.
pub(crate) struct RemoteActors {
    node: NodeId,
    store: Arc<StoreCore>,
    net: Option<Network>,
    loops: Arc<ActorLoops>,
    senders: Mutex<HashMap<ActorId, Addr<CallSender>>>,
}

impl std::fmt::Debug for RemoteActors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteActors")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl RemoteActors {
    pub(crate) fn new(store: Arc<StoreCore>, net: Option<Network>, loops: Arc<ActorLoops>) -> Self {
        RemoteActors {
            node: store.node(),
            store,
            net,
            loops,
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// Whether actors can live on other nodes (this node is part of a cluster).
    pub(crate) fn clustered(&self) -> bool {
        self.net.is_some()
    }

    /// The sender of this node's calls to actor `actor` on node `node` (one per actor).
    pub(crate) fn sender(&self, actor: ActorId, node: NodeId) -> Addr<CallSender> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = senders.get(&actor)
            && s.connected()
        {
            return s.clone();
        }
        let (me, store, net) = (self.node, Arc::clone(&self.store), self.net.clone());
        let s = CallSender::start_in_arbiter(&self.loops.next(), move |_| CallSender {
            me,
            store,
            net,
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
    pub(crate) fn node_died(&self, node: NodeId) {
        let senders: Vec<Addr<CallSender>> = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for s in senders {
            s.do_send(PeerDied(node));
        }
    }
}

/// Sends the calls of this node to one actor on node `node`, in order.
pub(crate) struct CallSender {
    /// This node.
    me: NodeId,
    store: Arc<StoreCore>,
    net: Option<Network>,
    actor: ActorId,
    node: NodeId,
    queue: VecDeque<WireActorCall>,
    in_flight: bool,
    /// Set once the actor is known gone: later calls fail at once.
    dead: Option<TaskError>,
}

impl Actor for CallSender {
    type Context = Context<Self>;
}

impl CallSender {
    /// Fails the results of a call this node owns with `err`.
    fn fail_results(&self, task: TaskId, num_returns: u32, owner: NodeId, err: &Arc<TaskError>) {
        if owner != self.me {
            return;
        }
        for i in 0..num_returns {
            self.store
                .fail(ObjectId::for_return(task, i), Arc::clone(err));
        }
    }

    /// Fails every queued call (the sender is dead).
    fn fail_queued(&mut self) {
        let err = Arc::new(self.dead.clone().unwrap_or_else(|| {
            TaskError::new(TaskErrorKind::ActorDied, "the actor is unreachable")
        }));
        for c in std::mem::take(&mut self.queue) {
            self.fail_results(c.task_id, c.num_returns, c.owner, &err);
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.queue.is_empty() {
            return;
        }
        let Some(net) = self.net.clone() else {
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
                                {
                                    this.fail_results(task, n, owner, &err);
                                }
                            }
                            this.flush(ctx);
                        }
                        Err(e) => {
                            let dead = TaskError::new(
                                TaskErrorKind::ActorDied,
                                format!(
                                    "actor {} on node {} is unreachable: {e}",
                                    this.actor, this.node
                                ),
                            );
                            // The batch's results: the far node may have taken some before it
                            // failed; those it announced fail when the node is declared dead.
                            let err = Arc::new(dead.clone());
                            this.dead = Some(dead);
                            for (task, n, owner) in &ids {
                                this.fail_results(*task, *n, *owner, &err);
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
            self.fail_results(call.task_id, call.num_returns, call.owner, &err);
            return;
        }
        self.queue.push_back(call);
        self.flush(ctx);
    }
}

impl Handler<WireControl> for CallSender {
    type Result = ();
    fn handle(&mut self, control: WireControl, ctx: &mut Context<Self>) {
        let Some(net) = self.net.clone() else {
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
