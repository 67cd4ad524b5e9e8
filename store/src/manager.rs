//! The object manager: moves objects between the stores of a cluster's nodes.
//!
//! - A task run for another node (its *owner*) keeps its results here until the owner frees
//!   them, and tells the owner when each is ready ([`ObjectReady`]): small results travel in that
//!   message, large ones stay where they are and are pulled when someone needs them.
//! - A node that needs an object it does not have (a `get`, a `wait`, a task argument) asks the
//!   owner where it is ([`LocateObject`], answered when the object is ready) and pulls it from
//!   there over a stream in chunks ([`OBJECT_PROTOCOL`]), so a multi-GiB object never sits in one
//!   message and a transfer does not hold up the node's other traffic.
//! - Reference counting spans nodes: a node holding references to an object owned elsewhere is
//!   a borrower the owner counts ([`Borrow`]); when the last reference anywhere is gone the owner
//!   frees the object and tells every node holding a copy ([`FreeObject`]).
//! - When a node dies, the objects it was making or holding fail with a clear error instead of
//!   being waited for forever ([`NodeGone`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use raya_cluster::net::codec::{read_frame, write_frame};
use raya_cluster::net::{Network, OBJECT_PROTOCOL, Target};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::core::{Lookup, Status, StoreCore, StoreHooks};
use crate::raw_ref::RawRef;

/// Results at most this large (encoded) travel inline in [`ObjectReady`], as Ray's
/// `max_direct_call_object_size`.
pub const MAX_INLINE: usize = 100 * 1024;

/// Largest object accepted from a pull.
pub const MAX_OBJECT: u64 = 1 << 40;

/// How an object made for another node ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReadyData {
    /// The encoded value.
    Inline(Vec<u8>),
    /// Too large to send along: it stays on the sending node, to be pulled.
    Held {
        /// Encoded size in bytes.
        size: u64,
    },
    /// The task failed.
    Failed(TaskError),
}

/// Tells an object's owner that the object is ready on node `from` (or failed).
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ObjectReady {
    /// The object.
    pub id: ObjectId,
    /// The node that made it.
    pub from: NodeId,
    /// Its value, or where it is.
    pub data: ReadyData,
}

/// Tells an object's owner that node `at` will make it (so the owner fails it if `at` dies).
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ObjectsExpected {
    /// The objects.
    pub ids: Vec<ObjectId>,
    /// The node making them.
    pub at: NodeId,
}

/// Where an object can be pulled from, as its owner knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Located {
    /// On this node.
    At(NodeId),
    /// It failed with this error.
    Failed(TaskError),
    /// Not ready yet; ask again.
    Pending,
    /// The owner no longer has it (freed, or never made).
    Unknown,
}

/// Asks an object's owner where the object is. Answered when the object is ready, or
/// [`Located::Pending`] after a while.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Located")]
pub struct LocateObject(pub ObjectId);

/// Tells a node holding a copy of an object that the owner freed it.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct FreeObject(pub ObjectId);

/// Tells an owner that node `node` took its first reference to `id` (`add`) or dropped its last.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Borrow {
    /// The object.
    pub id: ObjectId,
    /// The borrowing node.
    pub node: NodeId,
    /// First reference taken, or last dropped.
    pub add: bool,
}

/// A node of the cluster died: what it made or held is lost.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeGone(pub NodeId);

/// Keeps the results of work run here for another node until the owner frees them, and tells
/// the owner when they are ready. The sender takes the references (so the results have entries
/// in the store before the work can finish).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ExpectReturns {
    /// References to the results.
    pub refs: Vec<RawRef>,
    /// Their owner.
    pub owner: NodeId,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Want(ObjectId, Option<NodeId>);

#[derive(Message)]
#[rtype(result = "()")]
struct Push(ObjectId, NodeId);

#[derive(Message)]
#[rtype(result = "()")]
struct Resolved(ObjectId);

#[derive(Message)]
#[rtype(result = "()")]
struct PullDone(ObjectId, Result<(), TaskError>);

#[derive(Serialize, Deserialize)]
struct PullRequest {
    id: ObjectId,
}

#[derive(Serialize, Deserialize)]
enum PullHeader {
    Bytes(u64),
    Error(String),
}

/// The hooks the store calls: cheap, from any thread.
struct Hooks(Addr<ObjectManager>);

impl StoreHooks for Hooks {
    fn wanted(&self, id: ObjectId, owner: Option<NodeId>) {
        self.0.do_send(Want(id, owner));
    }
    fn borrowed(&self, id: ObjectId, owner: NodeId, first: bool) {
        self.0.do_send(BorrowChange(id, owner, first));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct BorrowChange(ObjectId, NodeId, bool);

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
    /// Objects owned here whose free must reach the copies (an `on_free` hook is set).
    watched_free: HashSet<ObjectId>,
    /// Borrowers' references, held for them.
    borrowers: HashMap<(ObjectId, NodeId), RawRef>,
    /// Locate requests waiting for an object to be ready.
    parked: HashMap<ObjectId, Vec<oneshot::Sender<Located>>>,
    /// Objects whose readiness this manager watches (for parked locates).
    watching: HashSet<ObjectId>,
    /// Pulls in flight.
    pulling: HashSet<ObjectId>,
}

impl ObjectManager {
    /// Starts the object manager of the node whose store is `core` on `arbiter`: connects it
    /// to the store, serves its messages through `net`'s router and accepts pulls.
    pub fn start(
        core: Arc<StoreCore>,
        net: Network,
        arbiter: &actix_rt::ArbiterHandle,
    ) -> Addr<ObjectManager> {
        let me = core.node();
        let (c, n) = (Arc::clone(&core), net.clone());
        let addr = ObjectManager::start_in_arbiter(arbiter, move |_| ObjectManager {
            core: c,
            net: n,
            me,
            held: HashMap::new(),
            copies: HashMap::new(),
            expected: HashMap::new(),
            watched_free: HashSet::new(),
            borrowers: HashMap::new(),
            parked: HashMap::new(),
            watching: HashSet::new(),
            pulling: HashSet::new(),
        });
        core.set_hooks(Box::new(Hooks(addr.clone())));
        let router = net.router();
        router.serve::<ObjectReady, _>(addr.clone());
        router.serve::<ObjectsExpected, _>(addr.clone());
        router.serve::<LocateObject, _>(addr.clone());
        router.serve::<FreeObject, _>(addr.clone());
        router.serve::<Borrow, _>(addr.clone());
        serve_pulls(core, &net);
        addr
    }

    fn tell<M>(&self, node: NodeId, msg: M)
    where
        M: raya_cluster::net::WireMessage<Result = ()>,
    {
        let net = self.net.clone();
        self.net.spawn(async move {
            if let Err(e) = net.ask(node.peer_id(), Target::System, msg).await {
                tracing::debug!(%node, error = %e, message = std::any::type_name::<M>(), "object message not delivered");
            }
        });
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
        let (net, core, me) = (self.net.clone(), Arc::clone(&self.core), ctx.address());
        self.net.spawn(async move {
            let result = pull_object(&net, &core, id, from).await;
            me.do_send(PullDone(id, result));
        });
    }

    fn located(&self, id: ObjectId) -> Located {
        // The status only: reading the object would load a spilled one from disk.
        match self.core.status(id) {
            Status::Ready => Located::At(self.me),
            Status::Failed => match self.core.get(id) {
                Lookup::Failed(e) => Located::Failed((*e).clone()),
                _ => Located::Pending,
            },
            Status::Missing => Located::Unknown,
            Status::Pending => match self.copies.get(&id).and_then(|c| c.iter().next()) {
                Some(n) => Located::At(*n),
                None => Located::Pending,
            },
        }
    }

    fn answer_parked(&mut self, id: ObjectId) {
        let answer = self.located(id);
        if matches!(answer, Located::Pending) {
            return;
        }
        for tx in self.parked.remove(&id).unwrap_or_default() {
            let _ = tx.send(answer.clone());
        }
    }
}

impl Actor for ObjectManager {
    type Context = Context<Self>;
}

impl Handler<ExpectReturns> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: ExpectReturns, ctx: &mut Context<Self>) {
        if m.owner == self.me {
            return;
        }
        let ids: Vec<ObjectId> = m.refs.iter().map(|r| r.id()).collect();
        for r in m.refs {
            let id = r.id();
            if self.held.contains_key(&id) {
                continue;
            }
            self.held.insert(id, (r, m.owner));
            let me = ctx.address();
            let owner = m.owner;
            self.core
                .on_ready(id, Box::new(move || me.do_send(Push(id, owner))));
        }
        self.tell(m.owner, ObjectsExpected { ids, at: self.me });
    }
}

impl Handler<Push> for ObjectManager {
    type Result = ();
    fn handle(&mut self, Push(id, owner): Push, _: &mut Context<Self>) {
        let data = match self.core.get(id) {
            // Large values are not encoded here (that would hold up this event loop): they stay
            // and are encoded when pulled.
            Lookup::Ready(v) if v.size() > MAX_INLINE => ReadyData::Held {
                size: v.size() as u64,
            },
            Lookup::Ready(v) => match v.encode() {
                Ok(b) if b.len() <= MAX_INLINE => {
                    // The owner has it now: no copy needs to stay here.
                    self.held.remove(&id);
                    ReadyData::Inline(b.to_vec())
                }
                Ok(b) => ReadyData::Held {
                    size: b.len() as u64,
                },
                Err(e) => ReadyData::Failed(TaskError::new(
                    TaskErrorKind::System,
                    format!("the result cannot be encoded to leave the node: {e}"),
                )),
            },
            Lookup::Failed(e) => {
                self.held.remove(&id);
                ReadyData::Failed((*e).clone())
            }
            Lookup::Pending | Lookup::Missing => return,
        };
        self.tell(
            owner,
            ObjectReady {
                id,
                from: self.me,
                data,
            },
        );
    }
}

impl Handler<ObjectsExpected> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: ObjectsExpected, _: &mut Context<Self>) {
        for id in m.ids {
            if self.core.status(id) == Status::Pending {
                self.expected.insert(id, m.at);
            }
        }
    }
}

impl Handler<ObjectReady> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: ObjectReady, ctx: &mut Context<Self>) {
        self.expected.remove(&m.id);
        match m.data {
            ReadyData::Inline(bytes) => {
                if let Err(e) = self.core.complete(m.id, Value::from_bytes(bytes)) {
                    self.core.fail(
                        m.id,
                        Arc::new(TaskError::new(TaskErrorKind::StoreFull, e.to_string())),
                    );
                }
            }
            ReadyData::Failed(e) => {
                self.core.fail(m.id, Arc::new(e));
            }
            ReadyData::Held { .. } => {
                if self.core.status(m.id) == Status::Missing {
                    // Freed here already: the maker may drop it too.
                    self.tell(m.from, FreeObject(m.id));
                    return;
                }
                self.copies.entry(m.id).or_default().insert(m.from);
                self.watch_free(m.id, ctx);
                if self.core.has_waiters(m.id) {
                    self.pull(m.id, m.from, ctx);
                }
            }
        }
        self.answer_parked(m.id);
    }
}

impl Handler<Want> for ObjectManager {
    type Result = ();
    fn handle(&mut self, Want(id, owner): Want, ctx: &mut Context<Self>) {
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
                let (net, core, me) = (self.net.clone(), Arc::clone(&self.core), ctx.address());
                self.net.spawn(async move {
                    let result = locate_and_pull(&net, &core, id, owner).await;
                    me.do_send(PullDone(id, result));
                });
            }
        }
    }
}

impl Handler<PullDone> for ObjectManager {
    type Result = ();
    fn handle(&mut self, PullDone(id, result): PullDone, _: &mut Context<Self>) {
        self.pulling.remove(&id);
        if let Err(e) = result {
            tracing::warn!(object = %id, error = %e, "object could not be fetched");
            self.core.fail(id, Arc::new(e));
        }
        self.answer_parked(id);
    }
}

impl Handler<LocateObject> for ObjectManager {
    type Result = ResponseFuture<Located>;
    fn handle(&mut self, LocateObject(id): LocateObject, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.located(id);
        if !matches!(now, Located::Pending) {
            return Box::pin(async move { now });
        }
        let (tx, rx) = oneshot::channel();
        self.parked.entry(id).or_default().push(tx);
        if self.watching.insert(id) {
            let me = ctx.address();
            self.core
                .on_ready(id, Box::new(move || me.do_send(Resolved(id))));
        }
        Box::pin(async move {
            // Answer before the request times out; the asker asks again.
            match actix_rt::time::timeout(Duration::from_secs(15), rx).await {
                Ok(Ok(l)) => l,
                _ => Located::Pending,
            }
        })
    }
}

impl Handler<Resolved> for ObjectManager {
    type Result = ();
    fn handle(&mut self, Resolved(id): Resolved, _: &mut Context<Self>) {
        self.watching.remove(&id);
        self.answer_parked(id);
        if let Some(list) = self.parked.get_mut(&id) {
            list.retain(|tx| !tx.is_closed());
        }
    }
}

impl Handler<FreeObject> for ObjectManager {
    type Result = ();
    fn handle(&mut self, FreeObject(id): FreeObject, _: &mut Context<Self>) {
        // On the owner (from its own on_free hook): tell the copies. On a copy: drop it.
        self.watched_free.remove(&id);
        self.expected.remove(&id);
        if let Some(nodes) = self.copies.remove(&id) {
            for n in nodes {
                self.tell(n, FreeObject(id));
            }
        }
        self.held.remove(&id);
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
            let r = self.core.add_ref(m.id);
            self.borrowers.insert((m.id, m.node), r);
        } else {
            self.borrowers.remove(&(m.id, m.node));
        }
    }
}

impl Handler<BorrowChange> for ObjectManager {
    type Result = ();
    fn handle(&mut self, BorrowChange(id, owner, add): BorrowChange, _: &mut Context<Self>) {
        let node = self.me;
        self.tell(owner, Borrow { id, node, add });
    }
}

impl Handler<NodeGone> for ObjectManager {
    type Result = ();
    fn handle(&mut self, NodeGone(dead): NodeGone, _: &mut Context<Self>) {
        let core = &self.core;
        self.expected.retain(|id, n| {
            if *n != dead {
                return true;
            }
            core.fail(
                *id,
                Arc::new(TaskError::new(
                    TaskErrorKind::NodeDied,
                    format!("node {dead}, which was making this object, died"),
                )),
            );
            false
        });
        for (id, nodes) in self.copies.iter_mut() {
            if nodes.remove(&dead) && nodes.is_empty() && self.core.status(*id) == Status::Pending {
                self.core.fail(
                    *id,
                    Arc::new(TaskError::new(
                        TaskErrorKind::NodeDied,
                        format!("node {dead}, which held the only copy of this object, died"),
                    )),
                );
            }
        }
        self.copies.retain(|_, n| !n.is_empty());
        self.borrowers.retain(|(_, n), _| *n != dead);
        // Results kept here for the dead node: nobody will ask for them.
        self.held.retain(|_, (_, owner)| *owner != dead);
    }
}

async fn locate_and_pull(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    owner: NodeId,
) -> Result<(), TaskError> {
    loop {
        if core.status(id) != Status::Pending {
            return Ok(());
        }
        let answer = net
            .ask(owner.peer_id(), Target::System, LocateObject(id))
            .await
            .map_err(|e| {
                TaskError::new(
                    TaskErrorKind::NodeDied,
                    format!("the owner of the object, node {owner}, is unreachable: {e}"),
                )
            })?;
        match answer {
            Located::At(node) => return pull_object(net, core, id, node).await,
            Located::Failed(e) => {
                core.fail(id, Arc::new(e));
                return Ok(());
            }
            Located::Unknown => {
                return Err(TaskError::new(
                    TaskErrorKind::ObjectLost,
                    format!("its owner, node {owner}, no longer has it"),
                ));
            }
            Located::Pending => continue,
        }
    }
}

/// Pulls object `id` from node `from` into `core`.
async fn pull_object(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    from: NodeId,
) -> Result<(), TaskError> {
    let unreachable = |e: String| {
        TaskError::new(
            TaskErrorKind::ObjectLost,
            format!("could not fetch it from node {from}: {e}"),
        )
    };
    let mut control = net.stream_control();
    let mut s = tokio::time::timeout(
        Duration::from_secs(30),
        control.open_stream(from.peer_id(), OBJECT_PROTOCOL),
    )
    .await
    .map_err(|_| unreachable("timed out opening a stream".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let req = postcard::to_stdvec(&PullRequest { id }).map_err(|e| unreachable(e.to_string()))?;
    write_frame(&mut s, &req, 4096)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let header = tokio::time::timeout(Duration::from_secs(30), read_frame(&mut s, 4096))
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let header: PullHeader =
        postcard::from_bytes(&header).map_err(|e| unreachable(format!("bad header: {e}")))?;
    let len = match header {
        PullHeader::Bytes(n) if n <= MAX_OBJECT => n,
        PullHeader::Bytes(n) => return Err(unreachable(format!("{n} bytes is over the limit"))),
        PullHeader::Error(e) => return Err(unreachable(e)),
    };
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(len as usize)
        .map_err(|_| unreachable(format!("no memory for {len} bytes")))?;
    // Chunk by chunk: the buffer's pages are touched as the data arrives, not all up front.
    let mut chunk = vec![0u8; (1 << 20).min(len as usize).max(1)];
    while (buf.len() as u64) < len {
        let want = chunk.len().min((len - buf.len() as u64) as usize);
        let n = s
            .read(&mut chunk[..want])
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if n == 0 {
            return Err(unreachable(format!(
                "the stream ended after {} of {len} bytes",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = s.close().await;
    match core.complete(id, Value::from_bytes(buf)) {
        Ok(_) => Ok(()),
        Err(e) => Err(TaskError::new(TaskErrorKind::StoreFull, e.to_string())),
    }
}

/// Accepts pull streams and sends the objects asked for, each on its own task.
fn serve_pulls(core: Arc<StoreCore>, net: &Network) {
    let mut control = net.stream_control();
    let mut incoming = match control.accept(OBJECT_PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "cannot accept object streams");
            return;
        }
    };
    let spawner = net.clone();
    let in_flight = Arc::new(Mutex::new(0usize));
    net.spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let core = Arc::clone(&core);
            let in_flight = Arc::clone(&in_flight);
            {
                let mut n = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if *n >= 64 {
                    tracing::warn!(%peer, "too many object transfers in flight: refused");
                    continue;
                }
                *n += 1;
            }
            spawner.spawn(async move {
                if let Err(e) = send_object(&core, &mut stream).await {
                    tracing::debug!(%peer, error = %e, "object transfer failed");
                }
                *in_flight.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            });
        }
    });
}

async fn send_object(core: &StoreCore, s: &mut libp2p::Stream) -> std::io::Result<()> {
    let req = tokio::time::timeout(Duration::from_secs(30), read_frame(s, 4096))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    let req: PullRequest = postcard::from_bytes(&req)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let bytes = match core.get(req.id) {
        // Encoding a large value takes a while: not on the I/O threads.
        Lookup::Ready(v) => tokio::task::spawn_blocking(move || v.encoded_parts())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
        Lookup::Pending => Err("not ready".into()),
        Lookup::Failed(e) => Err(format!("it failed: {e}")),
        Lookup::Missing => Err("not on this node".into()),
    };
    let header = match &bytes {
        Ok(b) => PullHeader::Bytes(b.len() as u64),
        Err(e) => PullHeader::Error(e.clone()),
    };
    let h = postcard::to_stdvec(&header)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    write_frame(s, &h, 4096).await?;
    if let Ok(b) = bytes {
        for part in b.slices() {
            for chunk in part.chunks(1 << 20) {
                s.write_all(chunk).await?;
            }
        }
        s.flush().await?;
    }
    s.close().await
}
