//! Where an object is: the owner's answer to [`LocateObject`], and its word when a pending
//! object is made ([`ObjectLocated`]).
//!
//! An owner answers every locate at once, from what it knows now: the value itself for a small
//! ready object that names no other ([`Located::Value`]), the node to pull it from, its failure,
//! or [`Located::Pending`]. A locate never waits at the owner: each request in flight holds one
//! of the few a node may have open to a peer (256), and a node whose queued tasks wait for
//! hundreds of pending objects would hold them all, so that a question about an object that is
//! ready waited behind them. Instead, for a pending object the owner notes who asked (a
//! *subscriber*) and tells it on the ordered link, once the object is no longer pending.
//!
//! The asker registers its wait ([`Watches`]) before it asks, so the owner's word cannot come
//! before anyone listens, and takes it only from the node it asked. It asks again after
//! [`ASK_AGAIN`] if no word came (an owner past its subscriber bounds answers `Pending` without
//! noting the asker).
//!
//! Bounded: an owner notes at most [`MAX_PER_OBJECT`] nodes per object, [`MAX_PER_NODE`]
//! objects per node and [`MAX_SUBSCRIBED`] in all, and only for objects it owns. A subscription
//! lasts [`SUBSCRIPTION_LIFE`] unless the asker asks again (a waiting asker does, every
//! [`ASK_AGAIN`]), so one nobody waits on any more (the asker gave up, the object was freed
//! while pending) goes by itself; a node declared dead is forgotten with its subscriptions.
//!
//! Only values already held as bytes travel in an answer: encoding a live value could take
//! long (its size is not always known before) and would run on this actor's thread, for any
//! member that asks; a live value is pulled, and encoded off the network's threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::transport::Received;
use raya_common::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{LocateObject, Located, MAX_INLINE, ObjectManager};
use crate::object_store::{Resident, Status};
use raya_common::Value;

/// Nodes an owner notes per pending object, at most.
pub const MAX_PER_OBJECT: usize = 1024;

/// Subscriptions an owner holds in all, at most.
pub const MAX_SUBSCRIBED: usize = 1 << 18;

/// Subscriptions an owner holds for one node, at most.
pub const MAX_PER_NODE: usize = MAX_SUBSCRIBED / 16;

/// How long a subscription lasts unless its node asks again.
pub const SUBSCRIPTION_LIFE: Duration = Duration::from_secs(30);

/// How long an asker waits for the owner's word on a pending object before it asks again.
pub const ASK_AGAIN: Duration = Duration::from_secs(15);

/// Tells a node that asked where an object is ([`LocateObject`]) and heard it was pending
/// that the object is no longer pending, and where it is now. Sent by the object's owner only;
/// an asker takes it only from the node it asked.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ObjectLocated {
    /// The object.
    pub id: ObjectId,
    /// Where it is (never [`Located::Pending`]).
    pub located: Located,
}

raya_cluster::wire_message!(
    ObjectLocated => "object_manager/ObjectLocated" as archive where |m, _| match &m.located {
        Located::Pending => Err("word that an object is still pending".into()),
        Located::Value(b) if b.len() > MAX_INLINE => Err(format!(
            "{} bytes of an object in word of it, more than {MAX_INLINE}",
            b.len()
        )),
        _ => Ok(()),
    }
);

/// Asks the object manager how many subscriptions to its pending objects it holds (what a
/// dashboard or a test watches).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct Subscriptions;

/// The nodes waiting for word of this node's pending objects, and since when they last asked.
#[derive(Default)]
pub(super) struct Subscribers {
    by_object: HashMap<ObjectId, Vec<(NodeId, Instant)>>,
    per_node: HashMap<NodeId, usize>,
    count: usize,
}

impl Subscribers {
    /// Notes that `node` waits for `id` (renewing it if noted already); whether it is noted
    /// (within the bounds).
    fn add(&mut self, id: ObjectId, node: NodeId, now: Instant) -> bool {
        if let Some(list) = self.by_object.get_mut(&id)
            && let Some(seen) = list.iter_mut().find(|(n, _)| *n == node)
        {
            seen.1 = now;
            return true;
        }
        let mine = self.per_node.get(&node).copied().unwrap_or(0);
        let here = self.by_object.get(&id).map_or(0, Vec::len);
        if here >= MAX_PER_OBJECT || mine >= MAX_PER_NODE || self.count >= MAX_SUBSCRIBED {
            return false;
        }
        self.by_object.entry(id).or_default().push((node, now));
        *self.per_node.entry(node).or_default() += 1;
        self.count += 1;
        true
    }

    /// Takes the nodes waiting for `id`.
    fn take(&mut self, id: ObjectId) -> Vec<NodeId> {
        let list = self.by_object.remove(&id).unwrap_or_default();
        for (n, _) in &list {
            self.uncount(*n);
        }
        list.into_iter().map(|(n, _)| n).collect()
    }

    fn uncount(&mut self, node: NodeId) {
        self.count -= 1;
        if let Some(c) = self.per_node.get_mut(&node) {
            *c -= 1;
            if *c == 0 {
                self.per_node.remove(&node);
            }
        }
    }

    /// Whether anyone waits for `id`.
    fn waited(&self, id: ObjectId) -> bool {
        self.by_object.contains_key(&id)
    }

    /// Drops the subscriptions `keep` refuses.
    fn retain(&mut self, mut keep: impl FnMut(&ObjectId, NodeId, Instant) -> bool) {
        let mut gone = Vec::new();
        self.by_object.retain(|id, list| {
            list.retain(|(n, since)| {
                let kept = keep(id, *n, *since);
                if !kept {
                    gone.push(*n);
                }
                kept
            });
            !list.is_empty()
        });
        for n in gone {
            self.uncount(n);
        }
    }

    /// Forgets `node` (declared dead).
    pub(super) fn forget(&mut self, node: NodeId) {
        self.retain(|_, n, _| n != node);
    }

    /// Drops the subscriptions not renewed within [`SUBSCRIPTION_LIFE`].
    fn expire(&mut self, now: Instant) {
        self.retain(|_, _, since| now.duration_since(since) < SUBSCRIPTION_LIFE);
    }
}

/// A wait for an owner's word, registered for one locate.
struct Waiting {
    owner: NodeId,
    seq: u64,
    tx: oneshot::Sender<Located>,
}

/// The locates of this node waiting for their owners' word, shared with the fetches that wait.
#[derive(Clone, Default)]
pub(super) struct Watches {
    inner: Arc<Mutex<WatchTable>>,
}

#[derive(Default)]
struct WatchTable {
    by_object: HashMap<ObjectId, Vec<Waiting>>,
    next: u64,
}

/// A registered wait: its entry goes when it is dropped.
pub(super) struct Watch {
    watches: Watches,
    id: ObjectId,
    seq: u64,
    rx: Option<oneshot::Receiver<Located>>,
}

impl Watches {
    /// Registers a wait for `owner`'s word on `id`.
    pub(super) fn watch(&self, id: ObjectId, owner: NodeId) -> Watch {
        let (tx, rx) = oneshot::channel();
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seq = t.next;
        t.next += 1;
        t.by_object
            .entry(id)
            .or_default()
            .push(Waiting { owner, seq, tx });
        Watch {
            watches: self.clone(),
            id,
            seq,
            rx: Some(rx),
        }
    }

    /// Hands `located` to the waits for `id` that asked `from`; how many took it.
    fn deliver(&self, id: ObjectId, from: NodeId, located: &Located) -> usize {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = t.by_object.get_mut(&id) else {
            return 0;
        };
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(list)
            .into_iter()
            .partition(|w| w.owner == from);
        *list = others;
        if list.is_empty() {
            t.by_object.remove(&id);
        }
        mine.into_iter()
            .map(|w| w.tx.send(located.clone()).is_ok())
            .filter(|taken| *taken)
            .count()
    }

    fn remove(&self, id: ObjectId, seq: u64) {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = t.by_object.get_mut(&id) {
            list.retain(|w| w.seq != seq);
            if list.is_empty() {
                t.by_object.remove(&id);
            }
        }
    }
}

impl Watch {
    /// The owner's word, or `None` after `wait`.
    pub(super) async fn word(&mut self, wait: Duration) -> Option<Located> {
        let rx = self.rx.as_mut()?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(l)) => {
                self.rx = None;
                Some(l)
            }
            _ => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watches.remove(self.id, self.seq);
    }
}

/// An object that subscribers wait for is no longer pending.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct LocateResolved(pub(super) ObjectId);

impl ObjectManager {
    /// Where object `id`, owned here, is as far as this node knows now.
    pub(super) fn located(&self, id: ObjectId) -> Located {
        // The status only: reading the object would load a spilled one from disk.
        match self.core.status(id) {
            Status::Ready => self.inline(id).unwrap_or(Located::At(self.me)),
            Status::Failed => match self.core.failure(id) {
                Some(e) => Located::Failed((*e).clone()),
                None => Located::Pending,
            },
            Status::Missing => Located::Unknown,
            Status::Pending => match self.copies.get(&id).and_then(|c| c.iter().next()) {
                Some(n) => Located::At(*n),
                None => Located::Pending,
            },
        }
    }

    /// The answer carrying ready object `id` itself, when it is held as bytes (no encoding on
    /// this thread), at most [`MAX_INLINE`] of them, naming no other object (the borrows of
    /// those are settled by a pull, before it is acknowledged).
    fn inline(&self, id: ObjectId) -> Option<Located> {
        match self.core.resident(id) {
            Resident::Memory(Value::Bytes(b, None)) if b.len() <= MAX_INLINE => {
                Some(Located::Value(b.to_vec()))
            }
            _ => None,
        }
    }

    /// Drops the subscriptions nobody renewed, and the watches of objects nobody waits for
    /// that are no longer pending (a pending object freed never fires its watch).
    pub(super) fn expire_subscriptions(&mut self) {
        self.subscribers.expire(Instant::now());
        let (core, subscribers) = (&self.core, &self.subscribers);
        self.watching
            .retain(|id| subscribers.waited(*id) || core.status(*id) == Status::Pending);
    }

    /// Tells the nodes waiting for `id` where it is, once it is no longer pending.
    pub(super) fn tell_subscribers(&mut self, id: ObjectId) {
        if !self.subscribers.waited(id) {
            return;
        }
        let located = self.located(id);
        if matches!(located, Located::Pending) {
            return;
        }
        for node in self.subscribers.take(id) {
            self.tell(
                node,
                ObjectLocated {
                    id,
                    located: located.clone(),
                },
            );
        }
    }

    /// Watches `id` for the subscribers waiting for it.
    fn watch_for_subscribers(&mut self, id: ObjectId, ctx: &mut Context<Self>) {
        if self.watching.insert(id) {
            let me = ctx.address();
            self.core
                .on_ready(id, Box::new(move || me.do_send(LocateResolved(id))));
        }
    }
}

impl Handler<Received<LocateObject>> for ObjectManager {
    type Result = MessageResult<Received<LocateObject>>;
    fn handle(&mut self, r: Received<LocateObject>, ctx: &mut Context<Self>) -> Self::Result {
        let id = r.msg.0;
        let now = self.located(id);
        // Only the owner sends word (a borrower asked would only be made to fetch it).
        if matches!(now, Located::Pending)
            && self.core.owned_here(id)
            && self.subscribers.add(id, r.from.node(), Instant::now())
        {
            self.watch_for_subscribers(id, ctx);
        }
        MessageResult(now)
    }
}

impl Handler<LocateResolved> for ObjectManager {
    type Result = ();
    fn handle(&mut self, LocateResolved(id): LocateResolved, ctx: &mut Context<Self>) {
        self.watching.remove(&id);
        self.tell_subscribers(id);
        if self.subscribers.waited(id) {
            // Still pending (made again under the same id): wait on.
            self.watch_for_subscribers(id, ctx);
        }
    }
}

impl Handler<Received<ObjectLocated>> for ObjectManager {
    type Result = ();
    fn handle(&mut self, r: Received<ObjectLocated>, _: &mut Context<Self>) {
        let from = r.from.node();
        let ObjectLocated { id, located } = r.msg;
        if matches!(located, Located::Pending) {
            return;
        }
        if self.watches.deliver(id, from, &located) == 0 {
            tracing::debug!(object = %id, peer = %from, "word of an object nobody here asked that node about: ignored");
        }
    }
}

impl Handler<Subscriptions> for ObjectManager {
    type Result = usize;
    fn handle(&mut self, _: Subscriptions, _: &mut Context<Self>) -> usize {
        self.subscribers.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raya_common::TaskId;

    fn node(i: u8) -> NodeId {
        let key = libp2p::identity::Keypair::ed25519_from_bytes([i; 32]).unwrap();
        NodeId::from_peer_id(key.public().to_peer_id())
    }

    fn object(i: u128) -> ObjectId {
        ObjectId::for_return(TaskId(i), 0)
    }

    /// A node id of its own for `i`.
    fn many(i: usize) -> NodeId {
        let mut b = [7u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let key = libp2p::identity::Keypair::ed25519_from_bytes(b).unwrap();
        NodeId::from_peer_id(key.public().to_peer_id())
    }

    #[test]
    fn an_owner_notes_each_node_once_and_no_more_than_the_bound_per_object() {
        let mut s = Subscribers::default();
        let (id, now) = (object(1), Instant::now());
        assert!(s.add(id, node(1), now));
        assert!(
            s.add(id, node(1), now),
            "asking again keeps the subscription"
        );
        assert_eq!(s.count, 1);
        let noted = (0..MAX_PER_OBJECT)
            .filter(|i| s.add(id, many(*i), now))
            .count();
        assert_eq!(
            noted,
            MAX_PER_OBJECT - 1,
            "the bound counts the first node too"
        );
        assert_eq!(s.count, MAX_PER_OBJECT);
        assert_eq!(s.take(id).len(), MAX_PER_OBJECT);
        assert_eq!(s.count, 0);
        assert!(s.per_node.is_empty());
        assert!(!s.waited(id));
    }

    #[test]
    fn one_node_holds_no_more_than_its_share_of_an_owners_subscriptions() {
        let mut s = Subscribers::default();
        let now = Instant::now();
        let noted = (0..MAX_PER_NODE as u128 + 10)
            .filter(|i| s.add(object(*i), node(1), now))
            .count();
        assert_eq!(noted, MAX_PER_NODE);
        assert!(
            s.add(object(0), node(2), now),
            "another node is still noted"
        );
    }

    #[test]
    fn a_subscription_not_renewed_within_its_life_goes() {
        let mut s = Subscribers::default();
        let start = Instant::now();
        assert!(s.add(object(1), node(1), start));
        assert!(s.add(object(2), node(1), start));
        // The asker still waiting for object 2 asks again.
        let later = start + SUBSCRIPTION_LIFE / 2;
        assert!(s.add(object(2), node(1), later));
        s.expire(start + SUBSCRIPTION_LIFE);
        assert!(!s.waited(object(1)));
        assert!(s.waited(object(2)));
        assert_eq!((s.count, s.per_node[&node(1)]), (1, 1));
        s.expire(later + SUBSCRIPTION_LIFE);
        assert_eq!(s.count, 0);
        assert!(s.per_node.is_empty() && s.by_object.is_empty());
    }

    #[test]
    fn a_dead_node_is_forgotten_with_all_its_subscriptions() {
        let mut s = Subscribers::default();
        let now = Instant::now();
        for i in 0..10 {
            assert!(s.add(object(i), node(1), now));
            assert!(s.add(object(i), node(2), now));
        }
        assert!(s.add(object(99), node(1), now));
        s.forget(node(1));
        assert_eq!(s.count, 10);
        assert!(
            !s.waited(object(99)),
            "an object only the dead node waited for is let go"
        );
        assert_eq!(s.take(object(3)), vec![node(2)]);
    }

    #[test]
    fn a_word_reaches_only_the_waits_that_asked_its_sender() {
        let w = Watches::default();
        let id = object(5);
        let mut asked_1 = w.watch(id, node(1));
        let mut asked_2 = w.watch(id, node(2));
        assert_eq!(w.deliver(id, node(3), &Located::Unknown), 0);
        assert_eq!(w.deliver(id, node(1), &Located::Unknown), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(matches!(
                asked_1.word(Duration::from_secs(5)).await,
                Some(Located::Unknown)
            ));
            assert!(asked_2.word(Duration::from_millis(1)).await.is_none());
        });
        drop(asked_2);
        assert!(
            w.inner.lock().unwrap().by_object.is_empty(),
            "a dropped wait leaves nothing behind"
        );
    }
}
