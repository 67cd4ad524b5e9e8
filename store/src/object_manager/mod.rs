//! The object manager: moves objects between the stores of a cluster's nodes.
//!
//! - A task run for another node (its *owner*) keeps its results here until the owner frees
//!   them, and tells the owner when each is ready ([`ObjectReady`]): small results travel in that
//!   message, large ones stay where they are and are pulled when someone needs them.
//! - A node that needs an object it does not have (a `get`, a `wait`, a task argument) asks the
//!   owner where it is ([`LocateObject`], answered at once; for a pending object the owner
//!   sends word when it is made, [`ObjectLocated`]). A small object held as bytes that names no
//!   other comes back in the answer itself ([`Located::Value`], as Ray's owners answer with
//!   small objects); any other is pulled from where it is over a stream in chunks
//!   (`/raya/object/1`, [`raya_cluster::transport::OBJECT_PROTOCOL`]), so a multi-GiB object
//!   never sits in one message and a transfer does not hold up the node's other traffic.
//! - Reference counting spans nodes: a node holding references to an object owned elsewhere is
//!   a borrower the owner counts ([`Borrow`]); when the last reference anywhere is gone the owner
//!   frees the object and tells every node holding a copy ([`FreeObject`]).
//! - When a node dies ([`NodeGone`]), the objects owned here that it was making or held the
//!   only copy of are made again from their lineage ([`Recover`], sent to the local scheduler,
//!   which keeps the tasks this node handed over) or fail with an error naming the node;
//!   objects this node borrows from the dead node fail as `OwnerDied`. When a maker stalls or
//!   is cut off instead, its objects fail after the object lease (`lease`, [`StillMaking`]).

mod early;
mod lease;
mod locate;
mod messages;
mod transfer;

pub use early::{EARLY_WAIT, EarlyResults};
pub use lease::StillMaking;
pub use locate::{
    ASK_AGAIN, MAX_PER_NODE, MAX_PER_OBJECT, MAX_SUBSCRIBED, ObjectLocated, SUBSCRIPTION_LIFE,
    Subscriptions,
};

/// The object manager's wire checks, by wire name (see
/// [`raya_cluster::transport::checks`]).
pub fn wire_checks() -> Vec<raya_cluster::transport::WireCheck> {
    use raya_cluster::transport::{WireMessage, check_body};
    vec![
        (ObjectReady::NAME, check_body::<ObjectReady>),
        (ObjectsExpected::NAME, check_body::<ObjectsExpected>),
        (LocateObject::NAME, check_body::<LocateObject>),
        (ObjectLocated::NAME, check_body::<ObjectLocated>),
        (ExpectedFrom::NAME, check_body::<ExpectedFrom>),
        (FreeObject::NAME, check_body::<FreeObject>),
        (Borrow::NAME, check_body::<Borrow>),
        (StillMaking::NAME, check_body::<StillMaking>),
        ("object_manager/Pull", transfer::check_pull),
    ]
}

pub use messages::{
    Borrow, ExpectReturns, ExpectedFrom, ForgetReturns, FreeObject, LocateObject, Located, Loss,
    MAX_HANDED_OVER, MAX_INLINE, MAX_OBJECT, MakerGoing, NodeBack, NodeGone, ObjectReady,
    ObjectsExpected, ReadyData, Recover, RecoverWith,
};

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::transport::{Lane, Network, Received};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind};

use crate::object_store::{Resident, Status, StoreCore, StoreHooks};
use crate::raw_ref::RawRef;
use crate::wire_value::WireValue;
use transfer::{locate_and_pull, pull_object, serve_pulls};

/// Someone on this node waits for pending object `.0`, owned by `.1` (`None`: this node).
#[derive(Message)]
#[rtype(result = "()")]
struct ObjectWanted(ObjectId, Option<NodeId>);

/// A result kept here for its owner `.1` is ready (or failed): announce it. `.2`: when it was
/// first announced, if it was (an announcement is sent again until the owner acknowledges it,
/// for at most a lease).
#[derive(Message)]
#[rtype(result = "()")]
struct ResultReady(ObjectId, NodeId, Option<Instant>);

/// A pull of `.0` ended; `.1`: the node pulled from, for an object owned here.
#[derive(Message)]
#[rtype(result = "()")]
struct PullDone(ObjectId, Option<NodeId>, Result<(), TaskError>);

/// The hooks the store calls: cheap, from any thread.
struct Hooks {
    manager: Addr<ObjectManager>,
    net: Network,
    me: NodeId,
}

impl StoreHooks for Hooks {
    fn wanted(&self, id: ObjectId, owner: Option<NodeId>) {
        self.manager.do_send(ObjectWanted(id, owner));
    }

    /// Tells the owner at once, on the ordered link for borrows to it (so a node's first
    /// reference and its last reach the owner in that order, and never wait behind a message
    /// that itself waits for borrows: see [`Lane`]). A first reference made while a message is
    /// decoded holds up that message's answer until the owner counted it, so the message's
    /// sender, which keeps its own references until answered, never lets the object go first.
    fn borrowed(&self, id: ObjectId, owner: NodeId, first: bool) {
        let msg = Borrow {
            id,
            node: self.me,
            add: first,
        };
        if !first {
            self.net.tell_ordered_on(Lane::Refs, owner.peer_id(), msg);
            return;
        }
        let reply = self.net.send_ordered_on(Lane::Refs, owner.peer_id(), msg);
        let registered: raya_cluster::transport::inflight::Settle = Box::pin(async move {
            if let Err(e) = reply.await {
                tracing::warn!(object = %id, %owner, error = %e, "borrow not registered with the owner");
            }
        });
        if let Some(unawaited) = raya_cluster::transport::inflight::settle_later(registered) {
            self.net.spawn(unawaited);
        }
    }
}

/// The object manager actor of a cluster node.
pub struct ObjectManager {
    core: Arc<StoreCore>,
    net: Network,
    me: NodeId,
    /// Results made here for other nodes, kept until their owner frees them.
    held: HashMap<ObjectId, (RawRef, NodeId)>,
    /// For objects owned here: the other nodes holding a copy.
    copies: HashMap<ObjectId, HashSet<NodeId>>,
    /// For objects owned here and being made elsewhere: the node making them.
    expected: HashMap<ObjectId, NodeId>,
    /// Of those, the ones whose work is still being sent there ([`MakerGoing`]): neither that
    /// node's death nor its lease fails them yet.
    going: HashSet<ObjectId>,
    /// Objects owned here whose free must reach the copies (an `on_free` hook is set).
    watched_free: HashSet<ObjectId>,
    /// Borrowers' references, held for them.
    borrowers: HashMap<(ObjectId, NodeId), RawRef>,
    /// Nodes waiting for word of pending objects owned here.
    subscribers: locate::Subscribers,
    /// Objects whose readiness this manager watches (for their subscribers).
    watching: HashSet<ObjectId>,
    /// This node's locates waiting for their owners' word.
    watches: locate::Watches,
    /// Pulls in flight.
    pulling: HashSet<ObjectId>,
    /// How long an object's owner, maker or holder may stay unreachable before it fails.
    lease: Duration,
    /// What is known of the makers of the objects in `expected`.
    leases: lease::Leases,
    /// Results that arrived before this node's record of who makes them.
    early: early::Early,
    /// Where objects lost with a dead node go to be made again, in turn.
    recover: Vec<Recipient<Recover>>,
    /// Nodes lately declared dead, oldest first.
    dead: VecDeque<NodeId>,
    /// Borrowers not in the node table when they first borrowed, and since when.
    strangers: HashMap<NodeId, Instant>,
}

/// How long a maker waits before announcing a result again that its owner did not take yet
/// (the owner's record of where the work went may trail the result), at first and at most.
const NOT_YET_FIRST: Duration = Duration::from_millis(10);
const NOT_YET_MOST: Duration = Duration::from_secs(1);

impl ObjectManager {
    /// Starts the object manager of the node whose store is `core` on `arbiter`: connects it
    /// to the store, serves its messages through `net`'s router and accepts pulls. An object
    /// whose owner, maker or holder stays unreachable for `lease` fails.
    pub fn start(
        core: Arc<StoreCore>,
        net: Network,
        arbiter: &actix_rt::ArbiterHandle,
        lease: Duration,
    ) -> Addr<ObjectManager> {
        let me = core.node();
        let (c, n) = (Arc::clone(&core), net.clone());
        let addr = ObjectManager::start_in_arbiter(arbiter, move |_| ObjectManager {
            core: c,
            net: n,
            me,
            lease,
            held: HashMap::new(),
            copies: HashMap::new(),
            expected: HashMap::new(),
            going: HashSet::new(),
            watched_free: HashSet::new(),
            borrowers: HashMap::new(),
            subscribers: locate::Subscribers::default(),
            watching: HashSet::new(),
            watches: locate::Watches::default(),
            pulling: HashSet::new(),
            leases: lease::Leases::default(),
            early: early::Early::default(),
            recover: Vec::new(),
            dead: VecDeque::new(),
            strangers: HashMap::new(),
        });
        core.set_hooks(Box::new(Hooks {
            manager: addr.clone(),
            net: net.clone(),
            me,
        }));
        let router = net.router();
        router.serve_received::<ObjectReady, _>(addr.clone());
        router.serve_received::<ObjectsExpected, _>(addr.clone());
        router.serve_received::<LocateObject, _>(addr.clone());
        router.serve_received::<ObjectLocated, _>(addr.clone());
        router.serve::<ExpectedFrom, _>(addr.clone());
        router.serve::<FreeObject, _>(addr.clone());
        router.serve::<Borrow, _>(addr.clone());
        router.serve::<StillMaking, _>(addr.clone());
        serve_pulls(core, &net);
        addr
    }

    /// Sends `msg` to `node`'s object manager on the ordered link to it: after the messages
    /// sent to it before, retried until delivered or the delivery bound runs out (logged then).
    fn tell<M>(&self, node: NodeId, msg: M)
    where
        M: raya_cluster::transport::WireMessage<Result = ()>,
    {
        self.net.tell_ordered(node.peer_id(), msg);
    }

    /// Makes sure the copies elsewhere are freed with the object here.
    fn watch_free(&mut self, id: ObjectId, ctx: &mut Context<Self>) {
        if !self.watched_free.insert(id) {
            return;
        }
        let me = ctx.address();
        if !self
            .core
            .on_free(id, Box::new(move || me.do_send(FreeObject(id))))
        {
            self.watched_free.remove(&id);
        }
    }

    fn pull(&mut self, id: ObjectId, from: NodeId, ctx: &mut Context<Self>) {
        if from == self.me || !self.pulling.insert(id) {
            return;
        }
        let (net, core, me, lease) = (
            self.net.clone(),
            Arc::clone(&self.core),
            ctx.address(),
            self.lease,
        );
        self.net.spawn(async move {
            let result = pull_object(&net, &core, id, from, lease).await;
            me.do_send(PullDone(id, Some(from), result));
        });
    }
}

impl Actor for ObjectManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_leases(ctx);
    }
}

impl Handler<ExpectReturns> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: ExpectReturns, ctx: &mut Context<Self>) {
        if m.owner == self.me {
            return;
        }
        for r in m.refs {
            let id = r.id();
            if self.held.contains_key(&id) {
                continue;
            }
            self.held.insert(id, (r, m.owner));
            let me = ctx.address();
            let owner = m.owner;
            self.core.on_ready(
                id,
                Box::new(move || me.do_send(ResultReady(id, owner, None))),
            );
        }
    }
}

impl Handler<ForgetReturns> for ObjectManager {
    type Result = ();
    fn handle(&mut self, ForgetReturns(ids): ForgetReturns, _: &mut Context<Self>) {
        for id in ids {
            // Only a result still to be made: one made here after all stays for its owner.
            if self.core.status(id) == Status::Pending {
                self.held.remove(&id);
            }
        }
    }
}

impl Handler<ResultReady> for ObjectManager {
    type Result = ();
    fn handle(&mut self, ResultReady(id, owner, first): ResultReady, ctx: &mut Context<Self>) {
        if !self.held.contains_key(&id) {
            // Freed by its owner, or the owner died.
            return;
        }
        // Never from disk here (that would hold up this event loop): a spilled result stays
        // where it is, to be pulled.
        let data = match self.core.resident(id) {
            Resident::Spilled(len) => ReadyData::Held { size: len },
            // Large values are not encoded here either: they are encoded when pulled.
            Resident::Memory(v) if v.size() > MAX_INLINE => ReadyData::Held {
                size: v.size() as u64,
            },
            Resident::Memory(v) => match WireValue::encode(&v) {
                Ok(b) if b.len() <= MAX_INLINE => ReadyData::Inline(b),
                Ok(b) => ReadyData::Held {
                    size: b.len() as u64,
                },
                Err(e) => ReadyData::Failed(TaskError::new(
                    TaskErrorKind::System,
                    format!("the result cannot be encoded to leave the node: {e}"),
                )),
            },
            Resident::Failed(e) => ReadyData::Failed((*e).clone()),
            Resident::Pending | Resident::Missing => return,
        };
        // Once the owner has an inline value or a failure, no copy needs to stay here (the
        // message keeps the objects it names alive until the owner counted them). Until it
        // acknowledged, the copy stays: the owner's lease asks for it meanwhile.
        let settled = !matches!(data, ReadyData::Held { .. });
        let first = first.unwrap_or_else(Instant::now);
        let reply = self.net.send_ordered(
            owner.peer_id(),
            ObjectReady {
                id,
                from: self.me,
                data,
            },
        );
        ctx.spawn(reply.into_actor(self).map(move |r, act, ctx| match r {
            Ok(true) => {
                if settled {
                    act.held.remove(&id);
                }
            }
            Ok(false) if first.elapsed() < act.lease => {
                // Its owner does not know yet that this node makes it: soon, it will.
                let wait = (first.elapsed() / 4).clamp(NOT_YET_FIRST, NOT_YET_MOST);
                tracing::debug!(object = %id, %owner, "result not taken yet: sending again");
                ctx.run_later(wait, move |_, ctx| {
                    ctx.notify(ResultReady(id, owner, Some(first)))
                });
            }
            Err(e) if first.elapsed() < act.lease => {
                tracing::debug!(object = %id, %owner, error = %e, "result not announced: sending again");
                ctx.run_later(Duration::from_secs(1), move |_, ctx| {
                    ctx.notify(ResultReady(id, owner, Some(first)))
                });
            }
            Ok(false) => {
                tracing::warn!(object = %id, %owner, "result not taken by its owner within the object lease: dropped");
                act.held.remove(&id);
            }
            Err(e) => {
                tracing::warn!(object = %id, %owner, error = %e, "result not announced within the object lease: dropped");
                act.held.remove(&id);
            }
        }));
    }
}

impl Handler<ObjectsExpected> for ObjectManager {
    type Result = ();
    /// This node's own record of where it sent work whose results it owns.
    fn handle(&mut self, m: ObjectsExpected, ctx: &mut Context<Self>) {
        if self.dead.contains(&m.at) {
            // Placed on a node whose death was heard first: lost with it.
            let lost = m
                .ids
                .into_iter()
                .filter(|id| {
                    self.going.remove(id);
                    self.expected.remove(id);
                    self.core.status(*id) == Status::Pending
                })
                .map(|id| (id, Loss::Making))
                .collect();
            self.recover_lost(m.at, lost, ctx);
            return;
        }
        for id in m.ids {
            self.going.remove(&id);
            if self.core.status(id) == Status::Pending {
                self.expected.insert(id, m.at);
                self.leases.expect(m.at);
                self.settle_early(id, ctx);
            }
        }
    }
}

impl Handler<ExpectedFrom> for ObjectManager {
    type Result = MessageResult<ExpectedFrom>;
    fn handle(&mut self, m: ExpectedFrom, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            m.ids
                .iter()
                .take(MAX_HANDED_OVER)
                .map(|id| self.expected.get(id) == Some(&m.from))
                .collect(),
        )
    }
}

impl Handler<MakerGoing> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: MakerGoing, ctx: &mut Context<Self>) {
        for id in m.ids {
            if self.core.status(id) == Status::Pending {
                self.expected.insert(id, m.at);
                self.going.insert(id);
                self.settle_early(id, ctx);
            }
        }
    }
}

impl Handler<Received<ObjectsExpected>> for ObjectManager {
    type Result = ();
    /// A handover: taken for the objects the sender is expected to make, and only those.
    fn handle(&mut self, r: Received<ObjectsExpected>, ctx: &mut Context<Self>) {
        let (from, at) = (r.from.node(), r.msg.at);
        let mut refused = 0usize;
        for id in r.msg.ids {
            match self.expected.get_mut(&id) {
                Some(maker) if *maker == from => {
                    *maker = at;
                    self.going.remove(&id);
                    self.leases.expect(at);
                    self.settle_early(id, ctx);
                }
                Some(maker) if *maker == at => {}
                _ => refused += 1,
            }
        }
        if refused > 0 {
            tracing::warn!(peer = %from, %at, refused, "objects handed over by a node not making them: ignored");
        }
    }
}

/// Stores a result that arrived, or its failure to fit.
fn complete_or_fail(core: &StoreCore, id: ObjectId, value: raya_common::Value) {
    if let Err(e) = core.complete(id, value) {
        core.fail(
            id,
            Arc::new(TaskError::new(TaskErrorKind::StoreFull, e.to_string())),
        );
    }
}

impl Handler<ObjectWanted> for ObjectManager {
    type Result = ();
    fn handle(&mut self, ObjectWanted(id, owner): ObjectWanted, ctx: &mut Context<Self>) {
        match owner {
            None => {
                // Owned here: pull it if it is known to be elsewhere (else the result will
                // arrive, or be announced, by itself).
                if let Some(n) = self.copies.get(&id).and_then(|c| c.iter().next()).copied() {
                    self.pull(id, n, ctx);
                }
            }
            Some(owner) => {
                if !self.pulling.insert(id) {
                    return;
                }
                let (net, core, me, lease) = (
                    self.net.clone(),
                    Arc::clone(&self.core),
                    ctx.address(),
                    self.lease,
                );
                let watches = self.watches.clone();
                self.net.spawn(async move {
                    let result = locate_and_pull(&net, &watches, &core, id, owner, lease).await;
                    me.do_send(PullDone(id, None, result));
                });
            }
        }
    }
}

impl Handler<PullDone> for ObjectManager {
    type Result = ();
    fn handle(&mut self, PullDone(id, from, result): PullDone, ctx: &mut Context<Self>) {
        self.pulling.remove(&id);
        if let (Err(e), Some(from)) = (&result, from)
            && !self.copies.get(&id).is_some_and(|c| c.contains(&from))
        {
            // An object owned here, pulled from a node no longer holding it (it died): it is
            // being made again, or pulled from another copy.
            tracing::debug!(object = %id, %from, error = %e, "pull from a lost copy ended");
            if let Some(n) = self.copies.get(&id).and_then(|c| c.iter().next()).copied()
                && self.core.has_waiters(id)
            {
                self.pull(id, n, ctx);
            }
            return;
        }
        if let Err(e) = result {
            tracing::warn!(object = %id, error = %e, "object could not be fetched");
            self.core.fail(id, Arc::new(e));
        }
        self.tell_subscribers(id);
    }
}

impl Handler<FreeObject> for ObjectManager {
    type Result = ();
    fn handle(&mut self, FreeObject(id): FreeObject, ctx: &mut Context<Self>) {
        // On the owner (from its own on_free hook): tell the copies. On a copy: drop it.
        self.watched_free.remove(&id);
        self.expected.remove(&id);
        self.going.remove(&id);
        // Results still waiting for their record need nothing more (copies are let go).
        self.settle_early(id, ctx);
        if let Some(nodes) = self.copies.remove(&id) {
            for n in nodes {
                self.tell(n, FreeObject(id));
            }
        }
        self.held.remove(&id);
        // Whoever still waits for word of it hears it is gone.
        self.tell_subscribers(id);
    }
}

impl Handler<Borrow> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: Borrow, _: &mut Context<Self>) {
        if m.add {
            if self.core.status(m.id) == Status::Missing {
                tracing::debug!(object = %m.id, node = %m.node, "borrow of an object already freed");
                return;
            }
            if !self.net.router().knows(m.node) && !self.strangers.contains_key(&m.node) {
                // Not (yet) in the node table this node learned: its borrows last only if it
                // turns out to be a member (see `forget_strangers`).
                if self.strangers.len() >= MAX_STRANGERS {
                    tracing::warn!(node = %m.node, "borrow from a node the cluster does not know, with too many such: refused");
                    return;
                }
                self.strangers.insert(m.node, Instant::now());
            }
            let r = self.core.add_ref(m.id);
            self.borrowers.insert((m.id, m.node), r);
        } else {
            self.borrowers.remove(&(m.id, m.node));
        }
    }
}

/// Nodes unknown to the cluster whose borrows a node keeps while it waits to learn of them,
/// at most.
const MAX_STRANGERS: usize = 4096;

impl ObjectManager {
    /// Drops the borrows of nodes the cluster's node table still does not know a lease after
    /// their first borrow (a key holder that never joined cannot pin objects forever); a node
    /// learned meanwhile keeps its borrows.
    fn forget_strangers(&mut self) {
        let router = self.net.router().clone();
        let lease = self.lease;
        let mut gone = Vec::new();
        self.strangers.retain(|node, since| {
            if router.knows(*node) {
                return false;
            }
            if since.elapsed() > lease {
                gone.push(*node);
                return false;
            }
            true
        });
        for node in gone {
            let before = self.borrowers.len();
            self.borrowers.retain(|(_, n), _| *n != node);
            tracing::warn!(%node, dropped = before - self.borrowers.len(), "borrows of a node the cluster never knew: dropped");
        }
    }
}

impl Handler<NodeGone> for ObjectManager {
    type Result = ();
    fn handle(&mut self, NodeGone(dead): NodeGone, ctx: &mut Context<Self>) {
        self.note_dead(dead);
        self.subscribers.forget(dead);
        let mut lost = Vec::new();
        let going = &self.going;
        self.expected.retain(|id, n| {
            if *n != dead || going.contains(id) {
                // Still being sent there: the head places it elsewhere, or fails it.
                return true;
            }
            lost.push((*id, Loss::Making));
            false
        });
        for (id, nodes) in self.copies.iter_mut() {
            if nodes.remove(&dead) && nodes.is_empty() && self.core.status(*id) == Status::Pending {
                lost.push((*id, Loss::OnlyCopy));
            }
        }
        self.copies.retain(|_, n| !n.is_empty());
        self.borrowers.retain(|(_, n), _| *n != dead);
        self.leases.forget(dead);
        // Results kept here for the dead node: nobody will ask for them.
        self.held.retain(|_, (_, owner)| *owner != dead);
        // What this node borrows from the dead node and does not have: nobody is left to
        // say where it is or to make it again.
        let owner_died = Arc::new(TaskError::new(
            TaskErrorKind::OwnerDied,
            format!("its owner, node {dead}, died"),
        ));
        for id in self.core.pending_owned_by(dead) {
            self.core.fail(id, Arc::clone(&owner_died));
        }
        self.recover_lost(dead, lost, ctx);
    }
}

/// Recipients of lost objects a node chains, at most (the local scheduler, the actor call
/// senders).
const MAX_RECOVERERS: usize = 4;

/// Nodes declared dead that a node remembers, at most (a placement on one reported after its
/// death counts as lost with it).
const MAX_DEAD_REMEMBERED: usize = 1024;

impl ObjectManager {
    /// Remembers that `node` died.
    fn note_dead(&mut self, node: NodeId) {
        if self.dead.contains(&node) {
            return;
        }
        self.dead.push_back(node);
        while self.dead.len() > MAX_DEAD_REMEMBERED {
            self.dead.pop_front();
        }
    }

    /// Has objects owned here that node `dead` lost made again ([`Recover`]); those nothing
    /// can make again fail.
    fn recover_lost(&mut self, dead: NodeId, lost: Vec<(ObjectId, Loss)>, ctx: &mut Context<Self>) {
        if lost.is_empty() {
            return;
        }
        // Each in turn takes what it can make again and answers with the rest.
        let chain = self.recover.clone();
        ctx.spawn(
            async move {
                let mut left = lost;
                for r in chain {
                    if left.is_empty() {
                        break;
                    }
                    let asked = Recover {
                        node: dead,
                        lost: left.clone(),
                    };
                    if let Ok(ids) = r.send(asked).await {
                        let unknown: HashSet<ObjectId> = ids.into_iter().collect();
                        left.retain(|(id, _)| unknown.contains(id));
                    }
                }
                left
            }
            .into_actor(self)
            .map(move |left, this, _| {
                for (id, loss) in left {
                    this.fail_lost(id, loss, dead);
                }
            }),
        );
    }
}

impl ObjectManager {
    /// Fails object `id`, lost with node `dead`, that nothing can make again.
    fn fail_lost(&mut self, id: ObjectId, loss: Loss, dead: NodeId) {
        let message = match loss {
            Loss::Making => format!("node {dead}, which was making this object, died"),
            Loss::OnlyCopy => format!("node {dead}, which held the only copy of this object, died"),
        };
        self.core.fail(
            id,
            Arc::new(TaskError::new(TaskErrorKind::NodeDied, message)),
        );
        self.tell_subscribers(id);
    }
}

impl Handler<NodeBack> for ObjectManager {
    type Result = ();
    fn handle(&mut self, NodeBack(node): NodeBack, _: &mut Context<Self>) {
        self.dead.retain(|n| *n != node);
    }
}

impl Handler<RecoverWith> for ObjectManager {
    type Result = ();
    fn handle(&mut self, RecoverWith(r): RecoverWith, _: &mut Context<Self>) {
        if self.recover.len() < MAX_RECOVERERS {
            self.recover.push(r);
        }
    }
}

impl std::fmt::Debug for ObjectManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectManager").finish_non_exhaustive()
    }
}
