//! Ordered, reliable links: how a node sends the messages a result depends on.
//!
//! [`super::Network::send_ordered`] queues a message for one peer. Each peer's queue goes out as
//! numbered batches (`transport/Sequenced`): one batch in flight at a time, its frames handled
//! on the far node one after another, in the order they were queued. A batch that fails in
//! transit (the peer unreachable, a timeout, a full command queue) is sent again with a growing
//! pause, until it is acknowledged or the link's delivery bound runs out; then every message in
//! it, and every one queued behind it, fails, and whoever waits on one sees the error.
//!
//! A batch sent again may reach the far node twice (the first copy was slow, not lost). The far
//! node keeps, per sender, the number of the last batch it handled and its replies: a copy of it
//! gets the same replies without being handled again, and an older one is refused. So a message
//! sent through a link is handled once, in order, or fails where the sender sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::codec::{Frame, Reply, WireError};
use super::router::{Router, WireMessage, decode_body, encode_body, route_id};
use super::{NetError, Network};

/// Frames in one batch, at most.
const MAX_BATCH: usize = 1024;

/// Bytes of frame bodies in one batch, at most (a batch must fit one request frame).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Messages queued for one peer, at most; past it `send_ordered` fails at once as busy.
const MAX_QUEUED: usize = 1 << 20;

/// Senders whose last batch a node remembers, at most (the oldest is forgotten first).
const MAX_SENDERS: usize = 4096;

/// A numbered batch of frames from one link, handled in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sequenced {
    /// The sending link's incarnation: a node restarted starts a new one.
    pub epoch: u64,
    /// 1, 2, 3, ... within the epoch.
    pub seq: u64,
    /// The messages.
    pub frames: Vec<Frame>,
}

impl actix::Message for Sequenced {
    type Result = Vec<Reply>;
}

crate::wire_message!(Sequenced => "transport/Sequenced");

/// Where a queued message's reply (or failure) goes.
type Ack = oneshot::Sender<Result<Reply, NetError>>;

struct Queued {
    frame: Frame,
    name: &'static str,
    ack: Option<Ack>,
    /// The references the message names, alive until the far node answered it.
    _kept: Vec<super::inflight::Kept>,
}

/// What a node sends its links: messages, or the news that their peer is dead.
enum LinkInput {
    Message(Queued),
    PeerDead(String),
}

/// The links of a node, one per peer it sends ordered messages to.
pub(crate) struct Links {
    /// How long a batch is retried before its messages fail.
    bound: Duration,
    senders: Mutex<HashMap<PeerId, mpsc::UnboundedSender<LinkInput>>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl Links {
    pub(crate) fn new(bound: Duration) -> Links {
        Links {
            bound,
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `frame` for `peer`, starting its link if needed.
    pub(crate) fn send(
        &self,
        net: &Network,
        peer: PeerId,
        frame: Frame,
        name: &'static str,
        ack: Option<Ack>,
        kept: Vec<super::inflight::Kept>,
    ) {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        let input = LinkInput::Message(Queued {
            frame,
            name,
            ack,
            _kept: kept,
        });
        let input = match senders.get(&peer) {
            Some(tx) => match tx.send(input) {
                Ok(()) => return,
                Err(mpsc::error::SendError(input)) => input,
            },
            None => input,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(input);
        senders.insert(peer, tx);
        let link = Link {
            net: net.clone(),
            peer,
            // Each link (a new one after its peer was declared dead, or after a restart) is
            // an epoch of its own, numbered from 1 again.
            epoch: new_epoch(),
            seq: 0,
            bound: self.bound,
            queue: VecDeque::new(),
        };
        net.spawn(link.run(rx));
    }

    /// Fails everything queued for `peer` at once, with `reason`: the peer is dead.
    pub(crate) fn peer_dead(&self, peer: PeerId, reason: String) {
        let tx = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer);
        if let Some(tx) = tx {
            let _ = tx.send(LinkInput::PeerDead(reason));
        }
    }
}

/// An epoch no other link of this process, nor of an earlier process, has used: the clock in
/// nanoseconds, made unique within the process.
fn new_epoch() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut last = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(
            last,
            next,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The sending side of one peer's link: a task on the network's runtime.
struct Link {
    net: Network,
    peer: PeerId,
    epoch: u64,
    seq: u64,
    bound: Duration,
    queue: VecDeque<Queued>,
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
            if self.queue.len() > MAX_QUEUED {
                let excess: Vec<Queued> = self.queue.drain(MAX_QUEUED..).collect();
                fail_all(excess, &NetError::Busy, self.peer);
            }
            let batch = self.next_batch();
            self.seq += 1;
            let outcome = self.deliver(&batch, &mut rx).await;
            match outcome {
                Delivery::Done(replies) => {
                    for (q, reply) in batch.into_iter().zip(replies) {
                        if let Some(ack) = q.ack {
                            let _ = ack.send(Ok(reply));
                        }
                    }
                }
                Delivery::Failed(e) => {
                    fail_all(batch, &e, self.peer);
                }
                Delivery::PeerDead(reason) => {
                    let e = NetError::Unreachable {
                        peer: self.peer,
                        reason,
                    };
                    fail_all(batch, &e, self.peer);
                    fail_all(std::mem::take(&mut self.queue).into(), &e, self.peer);
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
                let e = NetError::Unreachable {
                    peer: self.peer,
                    reason,
                };
                fail_all(std::mem::take(&mut self.queue).into(), &e, self.peer);
                false
            }
        }
    }

    fn next_batch(&mut self) -> Vec<Queued> {
        let mut bytes = 0;
        let mut batch = Vec::new();
        while let Some(q) = self.queue.front() {
            let size = q.frame.body.len() + 16;
            if !batch.is_empty() && (batch.len() >= MAX_BATCH || bytes + size > MAX_BATCH_BYTES) {
                break;
            }
            bytes += size;
            batch.push(self.queue.pop_front().expect("front exists"));
        }
        batch
    }

    /// Sends the batch until it is acknowledged, the bound runs out, or the peer is dead.
    async fn deliver(
        &mut self,
        batch: &[Queued],
        rx: &mut mpsc::UnboundedReceiver<LinkInput>,
    ) -> Delivery {
        let request = Sequenced {
            epoch: self.epoch,
            seq: self.seq,
            frames: batch.iter().map(|q| q.frame.clone()).collect(),
        };
        let body = match encode_body(&request) {
            Ok(b) => b,
            Err(e) => return Delivery::Failed(NetError::Codec(e.to_string())),
        };
        let frame = Frame {
            route: route_id::<Sequenced>(),
            target: super::Target::System,
            body,
        };
        let deadline = tokio::time::Instant::now() + self.bound;
        let mut pause = Duration::from_millis(50);
        loop {
            // An attempt never outlasts the bound (a stalled peer keeps a request unanswered
            // for the network's whole request timeout).
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = match tokio::time::timeout(
                left,
                self.net.ask_frame(self.peer, frame.clone()),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(NetError::Timeout { peer: self.peer }),
            };
            let error = match attempt {
                Ok(bytes) => {
                    return match decode_body::<Vec<Reply>>(&bytes) {
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
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    input = rx.recv() => match input {
                        Some(LinkInput::Message(q)) => self.queue.push_back(q),
                        Some(LinkInput::PeerDead(reason)) => return Delivery::PeerDead(reason),
                        None => return Delivery::Failed(NetError::Stopped),
                    },
                }
            }
            pause = (pause * 2).min(Duration::from_secs(2));
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

/// What a node remembers of each sender's link: the last batch it handled and its replies.
#[derive(Default)]
pub(crate) struct Delivered {
    senders: Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<LastBatch>>>>,
    order: Mutex<VecDeque<PeerId>>,
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
    fn of(&self, peer: PeerId) -> Arc<tokio::sync::Mutex<LastBatch>> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = senders.get(&peer) {
            return Arc::clone(s);
        }
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        while senders.len() >= MAX_SENDERS {
            match order.pop_front() {
                Some(old) => {
                    senders.remove(&old);
                }
                None => break,
            }
        }
        order.push_back(peer);
        let s = Arc::new(tokio::sync::Mutex::new(LastBatch::default()));
        senders.insert(peer, Arc::clone(&s));
        s
    }
}

/// Serves `transport/Sequenced` on `router`: each batch once, in order, per sender.
pub(crate) fn serve(router: &Router) {
    let weak = router.downgrade();
    router.serve_with(
        Sequenced::NAME,
        Arc::new(move |peer, body| {
            let weak = weak.clone();
            Box::pin(async move {
                let batch: Sequenced = decode_body(&body)?;
                let Some(router) = weak.upgrade() else {
                    return Err(WireError::ActorGone);
                };
                let last = router.delivered().of(peer);
                // One batch of a sender at a time: a copy waits for the original to finish.
                let mut last = last.lock().await;
                if last.epoch == batch.epoch && batch.seq <= last.seq {
                    if batch.seq == last.seq {
                        return encode_body(&last.replies);
                    }
                    return Err(WireError::Decode(format!(
                        "batch {} of a link already at {}",
                        batch.seq, last.seq
                    )));
                }
                let replies = router.dispatch_in_order(peer, batch.frames).await;
                *last = LastBatch {
                    epoch: batch.epoch,
                    seq: batch.seq,
                    replies: replies.clone(),
                };
                encode_body(&replies)
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
            Ok(Ok(Ok(bytes))) => decode_body(&bytes).map_err(|e| NetError::Codec(e.to_string())),
            Ok(Ok(Err(error))) => Err(NetError::Remote { peer, error }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError::Stopped),
        })
    }
}
