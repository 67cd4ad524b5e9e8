//! Ordered, reliable links: how a node sends the messages a result depends on.
//!
//! [`super::Network::send_ordered`] queues a message for one peer. Each peer's queue goes out as
//! numbered batches (`transport/Sequenced`): one batch in flight at a time, its frames handled
//! on the far node one after another, in the order they were queued. A batch that fails in
//! transit (the peer unreachable, a timeout, a full command queue) is sent again with a growing
//! pause. Every message has the link's delivery bound from the moment it was queued: one not
//! acknowledged by then fails, whether it was in the batch that kept failing or waited behind
//! it, and whoever waits on it sees the error. A message that can never be sent (over the frame
//! limit) or that a full link cannot take (too many messages or bytes queued) fails at once.
//! A peer declared dead ([`super::Network::peer_dead`]) fails its link's batch and queue at
//! once, the batch even while it waits for the far node's answer, and every message queued
//! for it afterwards.
//!
//! A batch sent again may reach the far node twice (the first copy was slow, not lost). The far
//! node keeps, per sender link, the number of the last batch it handled and its replies: a copy
//! of it gets the same replies without being handled again, and an older one — or one from an
//! epoch the sender has since replaced — is refused. So a message sent through a link is
//! handled once, in order, or fails where the sender sees it.
//!
//! Each peer has two links ([`Lane`]): borrow registrations travel apart from everything else,
//! so that no message waiting for its borrows to be counted can hold those borrows up.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::codec::{Frame, Reply, WireError};
use super::router::{Router, WireMessage, route_id};
use super::{NetError, Network};

/// Frames in one batch, at most.
const MAX_BATCH: usize = 1024;

/// Bytes of frame bodies in one batch, at most (a batch must fit one request frame).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Messages queued on one link, at most; past it a message fails at once as busy.
const MAX_QUEUED: usize = 1 << 20;

/// Bytes of messages queued on one link, at most; past it a message fails at once as busy.
const MAX_QUEUED_BYTES: usize = 256 << 20;

/// What a batch adds to its frames when encoded (its numbers, each frame's route and target).
const BATCH_OVERHEAD: usize = 64 << 10;

/// Links whose last batch a node remembers, at most (the one unused longest is forgotten).
const MAX_SENDERS: usize = 4096;

/// Which of the two links to a peer a message takes.
///
/// A message naming objects is held up on its receiver until the receiver's borrows of them are
/// counted by their owners, and the receiver's link from that sender stays busy meanwhile. Were
/// borrows queued on the ordinary link, two nodes sending each other new references at once
/// would each wait for a borrow queued behind the other's message. Borrows take a link of their
/// own, whose messages wait for nothing, so they are never behind such a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Every ordered message but borrow registrations.
    Main,
    /// Borrow registrations (a node's first and last reference to an object owned elsewhere).
    Refs,
}

impl Lane {
    fn number(self) -> u8 {
        match self {
            Lane::Main => 0,
            Lane::Refs => 1,
        }
    }
}

/// A numbered batch of frames from one link, handled in order.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sequenced {
    /// The sending link's incarnation: a node restarted starts a new one.
    pub epoch: u64,
    /// 1, 2, 3, ... within the epoch.
    pub seq: u64,
    /// Which of the sender's links (0 main, 1 borrows; anything else is refused).
    pub lane: u8,
    /// The messages.
    pub frames: Vec<Frame>,
}

impl actix::Message for Sequenced {
    type Result = Vec<Reply>;
}

crate::wire_message!(
    Sequenced => "transport/Sequenced" as archive
        where |m, _| check_batch(m.lane, m.frames.len())
);

/// A batch's lane must be one of the two, and it holds at most [`MAX_BATCH`] frames.
fn check_batch(lane: u8, frames: usize) -> Result<(), String> {
    if lane > Lane::Refs.number() {
        return Err(format!("no link lane {lane}"));
    }
    if frames > MAX_BATCH {
        return Err(format!(
            "a batch of {frames} messages, more than {MAX_BATCH}"
        ));
    }
    Ok(())
}

/// The numbers of a batch being handled.
struct Batch {
    epoch: u64,
    seq: u64,
}

/// Where a queued message's reply (or failure) goes.
type Ack = oneshot::Sender<Result<Reply, NetError>>;

/// What is queued on one link, counted as messages are queued and released as they are
/// answered or fail, so that a full link refuses a message at once.
#[derive(Default)]
struct Backlog {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

/// One message's share of its link's [`Backlog`], given back when it is dropped.
struct Slot {
    backlog: Arc<Backlog>,
    bytes: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.backlog.messages.fetch_sub(1, Ordering::Relaxed);
        self.backlog.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

struct Queued {
    frame: Frame,
    name: &'static str,
    ack: Option<Ack>,
    /// When the message fails if it has not been delivered: its link's bound after it was
    /// queued, however long it waited behind others.
    deadline: tokio::time::Instant,
    /// The references the message names, alive until the far node answered it.
    _kept: Vec<super::inflight::Kept>,
    _slot: Slot,
}

/// What a node sends its links: messages, or the news that their peer is dead.
enum LinkInput {
    Message(Queued),
    PeerDead(String),
}

/// The sending end of one running link.
struct LinkTx {
    tx: mpsc::UnboundedSender<LinkInput>,
    backlog: Arc<Backlog>,
}

/// The links of a node, two per peer it sends ordered messages to (see [`Lane`]).
pub(crate) struct Links {
    /// How long a message is retried before it fails.
    bound: Duration,
    /// The largest frame body a batch can carry (the network's request limit, less the
    /// batch's own bytes).
    max_frame: usize,
    /// The links, and the peers declared dead, under one lock: a message checked against the
    /// tombstones is queued before a death can be recorded, so none starts a link to a peer
    /// just declared dead.
    table: Mutex<LinkTable>,
}

#[derive(Default)]
struct LinkTable {
    senders: HashMap<(PeerId, Lane), LinkTx>,
    /// Peers declared dead, and why: a message queued for one later fails at once (a node
    /// declared dead never comes back under the same id; it rejoins as a new node).
    dead: Tombstones,
}

/// Peers declared dead, the latest [`MAX_SENDERS`] of them.
#[derive(Default)]
struct Tombstones {
    why: HashMap<PeerId, String>,
    order: VecDeque<PeerId>,
}

impl Tombstones {
    fn bury(&mut self, peer: PeerId, reason: String) {
        if self.why.insert(peer, reason).is_none() {
            self.order.push_back(peer);
        }
        while self.order.len() > MAX_SENDERS {
            if let Some(oldest) = self.order.pop_front() {
                self.why.remove(&oldest);
            }
        }
    }
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl Links {
    /// Links retrying each message for `bound`, over requests of at most `max_request` bytes.
    pub(crate) fn new(bound: Duration, max_request: usize) -> Links {
        Links {
            bound,
            max_frame: max_request.saturating_sub(BATCH_OVERHEAD),
            table: Mutex::default(),
        }
    }

    /// Queues `frame` for `peer` on `lane`, starting the link if needed. A message that can
    /// never be sent (over the frame limit) or that a full link cannot take fails at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &self,
        net: &Network,
        peer: PeerId,
        lane: Lane,
        frame: Frame,
        name: &'static str,
        ack: Option<Ack>,
        kept: Vec<super::inflight::Kept>,
    ) {
        let size = frame.body.len();
        if size > self.max_frame {
            let e = NetError::TooLarge {
                size,
                max: self.max_frame,
            };
            refuse(ack, name, peer, e);
            return;
        }
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = table.dead.why.get(&peer).cloned() {
            drop(table);
            refuse(ack, name, peer, NetError::NotSent { peer, reason });
            return;
        }
        let link = table
            .senders
            .entry((peer, lane))
            .or_insert_with(|| self.start(net, peer, lane));
        if link.tx.is_closed() {
            *link = self.start(net, peer, lane);
        }
        let backlog = &link.backlog;
        let queued = backlog.messages.fetch_add(1, Ordering::Relaxed);
        let bytes = backlog.bytes.fetch_add(size, Ordering::Relaxed);
        let slot = Slot {
            backlog: Arc::clone(backlog),
            bytes: size,
        };
        let refused = if queued >= MAX_QUEUED || bytes + size > MAX_QUEUED_BYTES {
            drop(slot);
            Some((
                ack,
                kept,
                format!("its link is full ({queued} messages, {bytes} bytes queued)"),
            ))
        } else {
            let input = LinkInput::Message(Queued {
                frame,
                name,
                ack,
                deadline: tokio::time::Instant::now() + self.bound,
                _kept: kept,
                _slot: slot,
            });
            match link.tx.send(input) {
                Ok(()) => None,
                Err(mpsc::error::SendError(LinkInput::Message(q))) => {
                    Some((q.ack, q._kept, "the network is stopped".to_string()))
                }
                Err(_) => None,
            }
        };
        // What is dropped here may free an object and send a borrow's end: not under the lock.
        drop(table);
        if let Some((ack, kept, reason)) = refused {
            refuse(ack, name, peer, NetError::NotSent { peer, reason });
            drop(kept);
        }
    }

    fn start(&self, net: &Network, peer: PeerId, lane: Lane) -> LinkTx {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = Link {
            net: net.clone(),
            peer,
            lane,
            // Each link (a new one after its peer was declared dead, or after a restart) is
            // an epoch of its own, numbered from 1 again.
            epoch: new_epoch(),
            seq: 0,
            queue: VecDeque::new(),
            last_error: None,
        };
        net.spawn(link.run(rx));
        LinkTx {
            tx,
            backlog: Arc::default(),
        }
    }

    /// `peer` is alive again (registered anew under its identity): messages to it are sent.
    pub(crate) fn peer_alive(&self, peer: PeerId) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.dead.why.remove(&peer).is_some() {
            table.dead.order.retain(|p| *p != peer);
        }
    }

    /// Fails everything queued for `peer` at once, with `reason`: the peer is dead. What is
    /// queued for it later fails at once too.
    pub(crate) fn peer_dead(&self, peer: PeerId, reason: String) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.dead.bury(peer, reason.clone());
        for lane in [Lane::Main, Lane::Refs] {
            if let Some(link) = table.senders.remove(&(peer, lane)) {
                let _ = link.tx.send(LinkInput::PeerDead(reason.clone()));
            }
        }
    }
}

/// Fails a message that was never queued.
fn refuse(ack: Option<Ack>, name: &'static str, peer: PeerId, e: NetError) {
    match ack {
        Some(ack) => {
            let _ = ack.send(Err(e));
        }
        None => {
            tracing::warn!(%peer, message = name, error = %e, "message to another node refused")
        }
    }
}

/// An epoch no other link of this process, nor of an earlier process, has used: the clock in
/// nanoseconds, made unique within the process.
fn new_epoch() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The sending side of one link: a task on the network's runtime.
struct Link {
    net: Network,
    peer: PeerId,
    lane: Lane,
    epoch: u64,
    seq: u64,
    queue: VecDeque<Queued>,
    /// Why the last batch failed: what messages that expire before their turn fail with.
    last_error: Option<NetError>,
}

impl Link {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<LinkInput>) {
        loop {
            if self.queue.is_empty() {
                match rx.recv().await {
                    Some(input) => {
                        if !self.take(input) {
                            return;
                        }
                    }
                    None => return,
                }
            }
            // Everything that arrived meanwhile joins the next batch.
            while let Ok(input) = rx.try_recv() {
                if !self.take(input) {
                    return;
                }
            }
            self.expire();
            if self.queue.is_empty() {
                continue;
            }
            let batch = self.next_batch();
            self.seq += 1;
            let outcome = self.deliver(&batch, &mut rx).await;
            match outcome {
                Delivery::Done(replies) => {
                    self.last_error = None;
                    for (q, reply) in batch.into_iter().zip(replies) {
                        if let Some(ack) = q.ack {
                            let _ = ack.send(Ok(reply));
                        }
                    }
                }
                Delivery::Failed(e) => {
                    fail_all(batch, &e, self.peer);
                    self.last_error = Some(e);
                }
                Delivery::PeerDead(reason) => {
                    let queued = NetError::NotSent {
                        peer: self.peer,
                        reason: reason.clone(),
                    };
                    let e = NetError::Unreachable {
                        peer: self.peer,
                        reason,
                    };
                    fail_all(batch, &e, self.peer);
                    fail_all(std::mem::take(&mut self.queue).into(), &queued, self.peer);
                    return;
                }
            }
        }
    }

    /// Takes one input; `false` when the link must stop (its peer is dead).
    fn take(&mut self, input: LinkInput) -> bool {
        match input {
            LinkInput::Message(q) => {
                self.queue.push_back(q);
                true
            }
            LinkInput::PeerDead(reason) => {
                let e = NetError::NotSent {
                    peer: self.peer,
                    reason,
                };
                fail_all(std::mem::take(&mut self.queue).into(), &e, self.peer);
                false
            }
        }
    }

    /// Fails the messages whose bound ran out while they waited (the oldest are first).
    fn expire(&mut self) {
        let now = tokio::time::Instant::now();
        let mut expired = Vec::new();
        while self.queue.front().is_some_and(|q| q.deadline <= now) {
            expired.extend(self.queue.pop_front());
        }
        if !expired.is_empty() {
            let why = match &self.last_error {
                Some(e) => format!("its delivery bound ran out while it waited ({e})"),
                None => "its delivery bound ran out while it waited".to_string(),
            };
            let e = NetError::NotSent {
                peer: self.peer,
                reason: why,
            };
            fail_all(expired, &e, self.peer);
        }
    }

    /// The next batch: the oldest messages, as many as fit, among those whose bound ends
    /// within a second of the first's (a batch is tried only for its oldest message's time,
    /// so a message queued much later waits for a batch of its own rather than lose its time).
    fn next_batch(&mut self) -> Vec<Queued> {
        let mut bytes = 0;
        let mut batch = Vec::new();
        let Some(first) = self.queue.front().map(|q| q.deadline) else {
            return batch;
        };
        let last = first + Duration::from_secs(1);
        while let Some(q) = self.queue.front() {
            let size = q.frame.body.len() + 16;
            if !batch.is_empty()
                && (batch.len() >= MAX_BATCH || bytes + size > MAX_BATCH_BYTES || q.deadline > last)
            {
                break;
            }
            bytes += size;
            batch.extend(self.queue.pop_front());
        }
        batch
    }

    /// Sends the batch until it is acknowledged, its oldest message's bound runs out, or the
    /// peer is dead.
    async fn deliver(
        &mut self,
        batch: &[Queued],
        rx: &mut mpsc::UnboundedReceiver<LinkInput>,
    ) -> Delivery {
        let request = Sequenced {
            epoch: self.epoch,
            seq: self.seq,
            lane: self.lane.number(),
            frames: batch.iter().map(|q| q.frame.clone()).collect(),
        };
        let body = match request.encode() {
            Ok(b) => b,
            Err(e) => return Delivery::Failed(NetError::Encode(e.to_string())),
        };
        let frame = Frame {
            route: route_id::<Sequenced>(),
            target: super::Target::System,
            body,
        };
        let Some(deadline) = batch.iter().map(|q| q.deadline).min() else {
            return Delivery::Done(Vec::new());
        };
        let mut pause = Duration::from_millis(50);
        loop {
            // An attempt never outlasts the bound (a stalled peer keeps a request unanswered
            // for the network's whole request timeout), nor the peer's life: one declared dead
            // while its batch is unanswered fails the batch at once.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ask = tokio::time::timeout(left, self.net.ask_frame(self.peer, frame.clone()));
            let attempt = match until_dead(&mut self.queue, self.peer, rx, ask).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(NetError::Timeout { peer: self.peer }),
                Err(dead) => return dead,
            };
            let error = match attempt {
                Ok(bytes) => {
                    return match Sequenced::decode_result(&bytes) {
                        Ok(replies) if replies.len() == batch.len() => Delivery::Done(replies),
                        Ok(replies) => Delivery::Failed(NetError::Codec(format!(
                            "{} replies to a batch of {}",
                            replies.len(),
                            batch.len()
                        ))),
                        Err(e) => Delivery::Failed(NetError::Codec(e.to_string())),
                    };
                }
                Err(e) if transient(&e) => e,
                Err(e) => return Delivery::Failed(e),
            };
            let now = tokio::time::Instant::now();
            if now + pause >= deadline {
                return Delivery::Failed(error);
            }
            tracing::debug!(peer = %self.peer, seq = self.seq, error = %error, "batch not delivered: retrying");
            // Wait before the next try, but stop at once when the peer is declared dead.
            let sleep = tokio::time::sleep(pause);
            if let Err(dead) = until_dead(&mut self.queue, self.peer, rx, sleep).await {
                return dead;
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// Waits for `work` while taking the link's input: messages join `queue`; the peer declared
/// dead (or the network stopped) ends the wait with what the batch comes to.
async fn until_dead<F: std::future::Future>(
    queue: &mut VecDeque<Queued>,
    peer: PeerId,
    rx: &mut mpsc::UnboundedReceiver<LinkInput>,
    work: F,
) -> Result<F::Output, Delivery> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            input = rx.recv() => match input {
                Some(LinkInput::Message(q)) => queue.push_back(q),
                Some(LinkInput::PeerDead(reason)) => return Err(Delivery::PeerDead(reason)),
                None => {
                    return Err(Delivery::Failed(NetError::NotSent {
                        peer,
                        reason: "the network is stopped".into(),
                    }));
                }
            },
        }
    }
}

enum Delivery {
    Done(Vec<Reply>),
    Failed(NetError),
    PeerDead(String),
}

/// Failures worth trying again: the batch may not have arrived.
fn transient(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Unreachable { .. } | NetError::Timeout { .. } | NetError::Busy
    )
}

fn fail_all(batch: Vec<Queued>, e: &NetError, peer: PeerId) {
    for q in batch {
        match q.ack {
            Some(ack) => {
                let _ = ack.send(Err(e.clone()));
            }
            None => {
                tracing::warn!(%peer, message = q.name, error = %e, "message to another node not delivered");
            }
        }
    }
}

/// What a node remembers of each sender's links: the last batch each handled and its replies.
#[derive(Default)]
pub(crate) struct Delivered {
    links: Mutex<HashMap<(PeerId, u8), Remembered>>,
    clock: AtomicU64,
}

struct Remembered {
    last: Arc<tokio::sync::Mutex<LastBatch>>,
    /// When it was last used (the `clock` of [`Delivered`]).
    used: u64,
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivered").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct LastBatch {
    epoch: u64,
    seq: u64,
    replies: Vec<Reply>,
}

impl Delivered {
    /// Forgets what `peer`'s links delivered (it was declared dead: a restarted process starts
    /// new links, whatever its clock says).
    pub(crate) fn forget(&self, peer: PeerId) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|(p, _), _| *p != peer);
    }

    fn of(&self, peer: PeerId, lane: u8) -> Arc<tokio::sync::Mutex<LastBatch>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = links.get_mut(&(peer, lane)) {
            r.used = now;
            return Arc::clone(&r.last);
        }
        if links.len() >= MAX_SENDERS {
            // Forget the link unused longest that no batch is being handled on.
            let idle = links
                .iter()
                .filter(|(_, r)| Arc::strong_count(&r.last) == 1)
                .min_by_key(|(_, r)| r.used)
                .map(|(k, _)| *k);
            if let Some(k) = idle {
                links.remove(&k);
            }
        }
        let last = Arc::new(tokio::sync::Mutex::new(LastBatch::default()));
        links.insert(
            (peer, lane),
            Remembered {
                last: Arc::clone(&last),
                used: now,
            },
        );
        last
    }
}

/// Serves `transport/Sequenced` on `router`: each batch once, in order, per sender's link.
pub(crate) fn serve(router: &Router) {
    let weak = router.downgrade();
    router.serve_with(
        Sequenced::NAME,
        Arc::new(move |from, body| {
            let weak = weak.clone();
            Box::pin(async move {
                let peer = from.peer;
                // Checked, then read in place: the batch's numbers decide what happens to it
                // (a copy of the last, a stale or a malformed batch is answered without its
                // frames being copied out); the frames of a batch to handle are copied once.
                let archived = rkyv::access::<ArchivedSequenced, rkyv::rancor::Error>(&body)
                    .map_err(|e| WireError::Decode(e.to_string()))?;
                let Some(router) = weak.upgrade() else {
                    return Err(WireError::ActorGone);
                };
                let (epoch, seq, lane) = (
                    archived.epoch.to_native(),
                    archived.seq.to_native(),
                    archived.lane,
                );
                if let Err(reason) = check_batch(lane, archived.frames.len()) {
                    return Err(router.refuse(&from, Sequenced::NAME, reason));
                }
                let batch = Batch { epoch, seq };
                let last = router.delivered().of(peer, lane);
                // One batch of a link at a time: a copy waits for the original to finish.
                let mut last = last.lock().await;
                if last.epoch == batch.epoch && batch.seq <= last.seq {
                    if batch.seq == last.seq {
                        return Sequenced::encode_result(&last.replies);
                    }
                    return Err(WireError::Decode(format!(
                        "batch {} of a link already at {}",
                        batch.seq, last.seq
                    )));
                }
                // Epochs grow (each link starts with the clock), so a batch of an older one is
                // from a link its sender has replaced.
                if batch.epoch < last.epoch {
                    return Err(WireError::Decode(format!(
                        "batch {} of a link the sender has replaced",
                        batch.seq
                    )));
                }
                let frames: Vec<Frame> = archived
                    .frames
                    .iter()
                    .map(|f| Frame {
                        route: f.route.to_native(),
                        target: match f.target {
                            super::codec::ArchivedTarget::System => super::Target::System,
                            super::codec::ArchivedTarget::Actor(id) => {
                                super::Target::Actor(id.to_native())
                            }
                        },
                        body: f.body.as_slice().to_vec(),
                    })
                    .collect();
                let replies = router.dispatch_in_order(from, frames).await;
                last.epoch = batch.epoch;
                last.seq = batch.seq;
                last.replies = replies.clone();
                Sequenced::encode_result(&replies)
            })
        }),
    );
}

/// The reply to one message sent with [`super::Network::send_ordered`]: its handler's result,
/// or why it was not delivered.
pub struct OrderedReply<M: WireMessage> {
    rx: oneshot::Receiver<Result<Reply, NetError>>,
    peer: PeerId,
    _m: std::marker::PhantomData<fn() -> M>,
}

impl<M: WireMessage> std::fmt::Debug for OrderedReply<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedReply")
            .field("message", &M::NAME)
            .field("peer", &self.peer)
            .finish()
    }
}

impl<M: WireMessage> OrderedReply<M> {
    pub(crate) fn new(rx: oneshot::Receiver<Result<Reply, NetError>>, peer: PeerId) -> Self {
        OrderedReply {
            rx,
            peer,
            _m: std::marker::PhantomData,
        }
    }
}

impl<M: WireMessage> std::future::Future for OrderedReply<M> {
    type Output = Result<M::Result, NetError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let peer = self.peer;
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| match r {
            Ok(Ok(Ok(bytes))) => {
                M::decode_result(&bytes).map_err(|e| NetError::Codec(e.to_string()))
            }
            Ok(Ok(Err(error))) => Err(NetError::Remote { peer, error }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError::Stopped),
        })
    }
}
