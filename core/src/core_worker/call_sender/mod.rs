//! Calls to actors on other nodes (Ray's actor task submitter, for remote actors).
//!
//! A node's calls to one remote actor go through one [`CallSender`], which sends them in order,
//! in batches (`node_manager/DeliverCalls`) on the ordered link to the actor's node: while a
//! batch is in flight the next calls queue, so calls from one caller keep their order and many
//! small calls share a message. Controls (kill, cancel, the last handle dropped) queue behind
//! the calls sent before them (`node_manager/ControlActor`). The receiving node's node manager
//! hands each call to the actor's host; the results are the caller's objects, announced to it
//! by the object manager when they are ready (and followed by the caller's object lease from
//! the moment the batch is delivered).
//!
//! A batch the link could not deliver within its bound may or may not have run there. Its
//! calls are sent again when the actor's `max_task_retries` allows, and otherwise fail as
//! unreachable; either way later calls are sent as usual, so one stall does not make a live
//! actor dead for its callers.
//!
//! When the actor's node dies, the sender looks for the actor in the GCS until it is alive on
//! another node (the head restarts it there when `max_restarts` allows), dead, or a bound
//! passed ([`relocate`]): calls wait meanwhile, then go to the new node (or, when it landed on
//! this node, to its host here). Calls the dead node had taken and not finished are sent
//! again when `max_task_retries` allows and fail with `ActorDied` naming the node otherwise:
//! the object manager reports them lost ([`LostCalls`]). [`RemoteActors`] keeps the senders
//! of a node, one per actor.

mod relocate;

pub(crate) use relocate::{LostCalls, MovedHere, RELOCATE_WAIT};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::transport::{NetError, Network};
use raya_common::{ActorId, FastHashSet, NodeId, ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_store::{ForgetReturns, ObjectManager, ObjectsExpected, Status, StoreCore};

use crate::actor_host::directory::ActorDirectory;
use crate::actor_host::env::ActorLoops;
use crate::actor_host::wire::{ControlActor, DeliverCalls, WireActorCall, WireControl};

/// At most this many calls travel in one batch.
const MAX_BATCH: usize = 1024;

/// A batch takes more calls only while their arguments' sizes stay within this (a batch must
/// fit one frame; a single larger call travels alone).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// About how many bytes `call` takes on the wire: its by-value arguments' sizes, plus a little
/// for the rest.
fn wire_size(call: &WireActorCall) -> usize {
    let args: usize = call
        .args
        .iter()
        .map(|a| match a {
            raya_scheduler::TaskArg::Value(v) => v.size(),
            raya_scheduler::TaskArg::Ref(_) => 64,
        })
        .sum();
    args + call.class.len() + call.method.len() + 128
}

/// The node `peer` died.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PeerDied(pub(crate) NodeId);

/// The call senders of a node, one per remote actor it calls.
pub(crate) struct RemoteActors {
    node: NodeId,
    store: Arc<StoreCore>,
    net: Option<Network>,
    objects: Option<Addr<ObjectManager>>,
    loops: Arc<ActorLoops>,
    gcs: GcsHandle,
    directory: Arc<ActorDirectory>,
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
    pub(crate) fn new(
        store: Arc<StoreCore>,
        net: Option<Network>,
        objects: Option<Addr<ObjectManager>>,
        loops: Arc<ActorLoops>,
        gcs: GcsHandle,
        directory: Arc<ActorDirectory>,
    ) -> Self {
        RemoteActors {
            node: store.node(),
            store,
            net,
            objects,
            loops,
            gcs,
            directory,
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// Whether actors can live on other nodes (this node is part of a cluster).
    pub(crate) fn clustered(&self) -> bool {
        self.net.is_some()
    }

    /// The sender of this node's calls to actor `actor` on node `node` (one per actor). A
    /// batch that may not have arrived is sent again up to `max_task_retries` times (-1:
    /// always), as the actor's options say when this node knows them.
    pub(crate) fn sender(
        &self,
        actor: ActorId,
        node: NodeId,
        max_task_retries: i64,
    ) -> Addr<CallSender> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = senders.get(&actor)
            && s.connected()
        {
            return s.clone();
        }
        let (me, store, net, objects, gcs, directory) = (
            self.node,
            Arc::clone(&self.store),
            self.net.clone(),
            self.objects.clone(),
            self.gcs.clone(),
            Arc::clone(&self.directory),
        );
        let s = CallSender::start_in_arbiter(&self.loops.next(), move |_| CallSender {
            me,
            store,
            net,
            objects,
            gcs,
            directory,
            actor,
            node,
            max_task_retries,
            queue: VecDeque::new(),
            in_flight: None,
            batch_limit: MAX_BATCH,
            dead: None,
            relocating: None,
            rounds: 0,
            last_error: String::new(),
            delivered: VecDeque::new(),
            delivered_bytes: 0,
        });
        senders.insert(actor, s.clone());
        s
    }

    /// Sends `control` to actor `actor` through its sender, if this node has one; returns
    /// whether it had.
    pub(crate) fn control(&self, actor: ActorId, control: WireControl) -> bool {
        let sender = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&actor)
            .cloned();
        match sender {
            Some(s) if s.connected() => {
                s.do_send(control);
                true
            }
            _ => false,
        }
    }

    /// Tells every sender that `node` died.
    pub(crate) fn node_died(&self, node: NodeId) {
        for s in self.all() {
            s.do_send(PeerDied(node));
        }
    }

    /// Every sender running.
    fn all(&self) -> Vec<Addr<CallSender>> {
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| s.connected())
            .cloned()
            .collect()
    }
}

/// What a sender sends, in order.
// Nearly every entry is a call: boxing calls would cost an allocation each to save space on
// the rare control.
#[expect(clippy::large_enum_variant)]
enum Outgoing {
    Call(WireActorCall),
    Control(WireControl),
}

/// Sends the calls of this node to one actor on node `node`, in order.
pub(crate) struct CallSender {
    /// This node.
    me: NodeId,
    store: Arc<StoreCore>,
    net: Option<Network>,
    /// Told which node makes the results of the calls delivered.
    objects: Option<Addr<ObjectManager>>,
    /// Where the actor is looked for when its node dies.
    gcs: GcsHandle,
    /// The hosts of this node, for an actor that came to live here.
    directory: Arc<ActorDirectory>,
    actor: ActorId,
    /// The node the actor lives on, as this sender knows it (this node, once it moved here).
    node: NodeId,
    /// Times a batch that may not have arrived is sent again (-1: always).
    max_task_retries: i64,
    queue: VecDeque<Outgoing>,
    /// The calls of the batch in flight, and those of them reported lost meanwhile.
    in_flight: Option<InFlight>,
    /// Calls in the next batch, at most: halved while a batch is too large to send, back to
    /// [`MAX_BATCH`] once one is delivered.
    batch_limit: usize,
    /// Set once the actor is known dead (or not found again after its node died): later calls
    /// fail at once.
    dead: Option<TaskError>,
    /// Set while the actor is looked for after its node died: calls queue.
    relocating: Option<relocate::Search>,
    /// Searches begun, and the last error the GCS gave one.
    rounds: u64,
    last_error: String,
    /// This node's calls the actor's node took whose results are not made yet, with the node
    /// they were sent to, oldest first (at most [`MAX_TRACKED`]): sent again if that node dies.
    delivered: VecDeque<(WireActorCall, NodeId)>,
    /// About how many bytes `delivered` holds (at most [`MAX_TRACKED_BYTES`]).
    delivered_bytes: usize,
}

/// The batch in flight.
struct InFlight {
    /// The node it went to.
    to: NodeId,
    calls: FastHashSet<TaskId>,
    /// Reported lost (the node died) while in flight: handled once the batch's answer comes.
    lost: FastHashSet<TaskId>,
}

/// This node's delivered calls a sender keeps for sending again, at most (the oldest are let
/// go: if the node dies, their results fail as lost with it).
const MAX_TRACKED: usize = 1 << 16;

/// About how many bytes of arguments those calls hold, at most.
const MAX_TRACKED_BYTES: usize = 64 << 20;

/// Calls a sender holds for an actor being looked for after its node died, at most: later
/// calls fail at once.
const MAX_QUEUED: usize = 1 << 17;

impl Actor for CallSender {
    type Context = Context<Self>;
}

/// Results of one call, at most, that a cancellation looks for.
const MAX_RETURNS: u32 = 1 << 16;

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

    /// Fails every queued call (the actor's node is dead).
    fn fail_queued(&mut self) {
        let err = Arc::new(self.dead.clone().unwrap_or_else(|| {
            TaskError::new(TaskErrorKind::ActorDied, "the actor is unreachable")
        }));
        for c in std::mem::take(&mut self.queue) {
            if let Outgoing::Call(c) = c {
                self.fail_results(c.task_id, c.num_returns, c.owner, &err);
            }
        }
    }

    /// Whether a batch of calls at `attempt` may be sent again.
    fn may_resend(&self, attempt: u32) -> bool {
        self.max_task_retries < 0 || i64::from(attempt) < self.max_task_retries
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        let Some(net) = self.net.clone() else {
            self.dead = Some(TaskError::new(
                TaskErrorKind::ActorDied,
                "the actor lives on another node and this node has no network",
            ));
            self.fail_queued();
            return;
        };
        if self.relocating.is_some() || self.dead.is_some() {
            return;
        }
        if self.node == self.me {
            self.deliver_here();
            return;
        }
        let peer = self.node.peer_id();
        while self.in_flight.is_none() {
            match self.queue.pop_front() {
                None => return,
                Some(Outgoing::Control(control)) => {
                    let actor = self.actor;
                    let sent = net.send_ordered(peer, ControlActor { actor, control });
                    net.spawn(async move {
                        if let Err(e) = sent.await {
                            tracing::warn!(%actor, error = %e, "actor control not delivered");
                        }
                    });
                }
                Some(Outgoing::Call(first)) => {
                    let mut bytes = wire_size(&first);
                    let mut batch = vec![first];
                    while batch.len() < self.batch_limit {
                        let Some(Outgoing::Call(next)) = self.queue.front() else {
                            break;
                        };
                        let size = wire_size(next);
                        if bytes + size > MAX_BATCH_BYTES {
                            break;
                        }
                        bytes += size;
                        if let Some(Outgoing::Call(c)) = self.queue.pop_front() {
                            batch.push(c);
                        }
                    }
                    self.send_batch(&net, batch, ctx);
                }
            }
        }
    }

    /// Sends one batch of calls on the ordered link and handles the answer.
    fn send_batch(&mut self, net: &Network, batch: Vec<WireActorCall>, ctx: &mut Context<Self>) {
        self.in_flight = Some(InFlight {
            to: self.node,
            calls: batch.iter().map(|c| c.task_id).collect(),
            lost: FastHashSet::default(),
        });
        // The object manager learns where this node's results are made before they can be
        // announced (it takes a result only from the node it expects it from), and its lease
        // follows that node from now on.
        let made_there: Vec<ObjectId> = batch
            .iter()
            .filter(|c| c.owner == self.me)
            .flat_map(|c| (0..c.num_returns).map(|i| ObjectId::for_return(c.task_id, i)))
            .collect();
        if let (Some(o), false) = (&self.objects, made_there.is_empty()) {
            o.do_send(ObjectsExpected {
                ids: made_there,
                at: self.node,
            });
        }
        let kept = batch.clone();
        let sent = net.send_ordered(self.node.peer_id(), DeliverCalls(batch));
        let to = self.node;
        ctx.spawn(sent.into_actor(self).map(move |res, this, ctx| {
            let lost = this.in_flight.take().map(|f| f.lost).unwrap_or_default();
            match res {
                Ok(undelivered) => {
                    this.batch_limit = MAX_BATCH;
                    let (gone, taken): (Vec<_>, Vec<_>) =
                        kept.into_iter().partition(|c| lost.contains(&c.task_id));
                    this.delivered(taken, &undelivered);
                    // Taken by a node that died before making the results.
                    this.calls_lost(gone, to, true);
                }
                Err(e @ (NetError::TooLarge { .. } | NetError::Encode(_))) => {
                    this.not_sendable(kept, e)
                }
                Err(NetError::NotSent { .. }) => {
                    // It never left (the node died, or a handle names a node the actor left):
                    // nothing ran; it goes where the GCS says the actor is.
                    for c in kept.into_iter().rev() {
                        this.queue.push_front(Outgoing::Call(c));
                    }
                    this.relocate(None, ctx);
                }
                Err(_) if this.relocating.is_some() || !lost.is_empty() => {
                    // The node died with the batch: it may have run there.
                    this.calls_lost(kept, to, false)
                }
                Err(e) => this.not_delivered(kept, e.to_string(), ctx),
            }
            this.flush(ctx);
        }));
    }

    /// The actor's node took the batch: the calls whose actor is not there fail, the others'
    /// results are made there. The owners of calls this node passed on (for handles that still
    /// address the actor's creator here) are told where their results are made now: they take
    /// that news only from this node, which they sent the calls to.
    fn delivered(&mut self, batch: Vec<WireActorCall>, undelivered: &[TaskId]) {
        let gone = Arc::new(TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} is gone from node {}: it died or was killed",
                self.actor, self.node
            ),
        ));
        let mut handed_over: HashMap<NodeId, Vec<ObjectId>> = HashMap::new();
        let remote = self.node != self.me;
        for c in batch {
            if undelivered.contains(&c.task_id) {
                self.fail_results(c.task_id, c.num_returns, c.owner, &gone);
            } else if c.owner != self.me {
                handed_over
                    .entry(c.owner)
                    .or_default()
                    .extend((0..c.num_returns).map(|i| ObjectId::for_return(c.task_id, i)));
            } else if remote && c.num_returns > 0 {
                let to = self.node;
                self.track(c, to);
            }
        }
        let Some(net) = &self.net else { return };
        for (owner, ids) in handed_over {
            for chunk in ids.chunks(raya_store::MAX_HANDED_OVER) {
                net.tell_ordered(
                    owner.peer_id(),
                    ObjectsExpected {
                        ids: chunk.to_vec(),
                        at: self.node,
                    },
                );
            }
            // Results this node kept for the owner while the calls waited here are made and
            // kept there now: the references here would hold pending entries for good.
            if let (true, Some(o)) = (remote, &self.objects) {
                o.do_send(ForgetReturns(ids));
            }
        }
    }

    /// The batch could not be sent at all (too large for a frame, or a value that does not
    /// encode): nothing of it ran. A batch of several calls is sent again in halves, until the
    /// call that cannot be sent is alone; that one fails, saying why.
    fn not_sendable(&mut self, batch: Vec<WireActorCall>, e: NetError) {
        if batch.len() > 1 {
            self.batch_limit = (batch.len() / 2).max(1);
            for c in batch.into_iter().rev() {
                self.queue.push_front(Outgoing::Call(c));
            }
            return;
        }
        let err = Arc::new(TaskError::new(
            TaskErrorKind::System,
            format!(
                "the call to actor {} on node {} cannot be sent there ({e}); pass a large \
                 argument as an ObjectRef (raya::put) instead of by value",
                self.actor, self.node
            ),
        ));
        for c in &batch {
            self.fail_results(c.task_id, c.num_returns, c.owner, &err);
        }
    }

    /// The link gave up on the batch: it may or may not have run. It is sent again when the
    /// actor's retries allow, after asking the GCS where the actor lives (a handle may name a
    /// node the actor left), else its calls fail.
    fn not_delivered(
        &mut self,
        batch: Vec<WireActorCall>,
        reason: String,
        ctx: &mut Context<Self>,
    ) {
        if let Some(e) = &self.dead {
            let err = Arc::new(e.clone());
            for c in &batch {
                self.fail_results(c.task_id, c.num_returns, c.owner, &err);
            }
            return;
        }
        let attempt = batch.iter().map(|c| c.attempt).max().unwrap_or(0);
        if self.may_resend(attempt) {
            tracing::warn!(actor = %self.actor, node = %self.node, %reason, "actor calls not delivered: sending them again");
            for mut c in batch.into_iter().rev() {
                c.attempt = c.attempt.saturating_add(1);
                self.queue.push_front(Outgoing::Call(c));
            }
            self.relocate(None, ctx);
            return;
        }
        let err = Arc::new(TaskError::new(
            TaskErrorKind::Unreachable,
            format!(
                "the call to actor {} on node {} was not confirmed within the delivery bound, \
                 so it may or may not have run: {reason}",
                self.actor, self.node
            ),
        ));
        for c in &batch {
            self.fail_results(c.task_id, c.num_returns, c.owner, &err);
        }
    }

    /// Cancels call `task_id`: its results here report cancellation now; a call still queued
    /// here is dropped, one already sent is cancelled on the actor's node.
    fn cancel(&mut self, task_id: TaskId, force: bool, ctx: &mut Context<Self>) {
        let cancelled = Arc::new(TaskError::new(
            TaskErrorKind::Cancelled,
            "the actor call was cancelled",
        ));
        let queued = self
            .queue
            .iter()
            .position(|o| matches!(o, Outgoing::Call(c) if c.task_id == task_id));
        if let Some(pos) = queued {
            if let Some(Outgoing::Call(c)) = self.queue.remove(pos) {
                self.fail_results(c.task_id, c.num_returns, c.owner, &cancelled);
            }
            return;
        }
        for i in 0..MAX_RETURNS {
            let id = ObjectId::for_return(task_id, i);
            if self.store.status(id) == Status::Missing {
                break;
            }
            self.store.fail(id, Arc::clone(&cancelled));
        }
        self.queue
            .push_back(Outgoing::Control(WireControl::Cancel { task_id, force }));
        self.flush(ctx);
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
        if self.relocating.is_some() && self.queue.len() >= MAX_QUEUED {
            let err = Arc::new(TaskError::new(
                TaskErrorKind::System,
                format!(
                    "{MAX_QUEUED} calls already wait for actor {}, whose node died and which is \
                     being looked for: this one is refused",
                    self.actor
                ),
            ));
            self.fail_results(call.task_id, call.num_returns, call.owner, &err);
            return;
        }
        self.queue.push_back(Outgoing::Call(call));
        self.flush(ctx);
    }
}

impl Handler<WireControl> for CallSender {
    type Result = ();
    fn handle(&mut self, control: WireControl, ctx: &mut Context<Self>) {
        if self.dead.is_some() {
            return;
        }
        match control {
            WireControl::Cancel { task_id, force } => self.cancel(task_id, force, ctx),
            other => {
                self.queue.push_back(Outgoing::Control(other));
                self.flush(ctx);
            }
        }
    }
}

impl Handler<PeerDied> for CallSender {
    type Result = ();
    fn handle(&mut self, PeerDied(node): PeerDied, ctx: &mut Context<Self>) {
        if node == self.node {
            self.relocate(Some(node), ctx);
        }
    }
}
