//! One routing mechanism for every message that crosses nodes.
//!
//! A message type that is an Actix [`Message`], serde-serializable (as is its result) and named
//! for the wire is a [`WireMessage`]. Its route id is a hash of that name ([`route_of`]), so it
//! stays the same when the type moves to another file, across binaries and compiler versions.
//! A node [serves](Router::serve) a wire message by naming the local actor that handles it; a
//! frame for that route is decoded, sent to the actor's mailbox, and the actor's reply is encoded
//! and sent back. Callers on other nodes use [`super::Network::ask`] with the same typed message
//! they would send locally. Every name is listed in the [`super::protocol`] catalogue.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use libp2p::PeerId;
use raya_common::NodeId;

use super::codec::{Frame, Reply, WireError};

/// Who sent a frame: the peer the connection authenticated (its Noise handshake proved the
/// key behind the peer id), and whether that peer is this node's head. A [`WireMessage`] that
/// names a node checks it against the caller before its handler sees it
/// ([`WireMessage::check_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated peer.
    pub peer: PeerId,
    /// Whether it is the head this node follows (or this node, on the head).
    pub head: bool,
    /// Whether the cluster knows another node with this peer's id tag ([`NodeId::tag`]): ids
    /// carrying that tag are that node's, never this peer's (a key ground until its tag
    /// matches a member's makes no ids of that member's).
    pub tag_taken: bool,
}

impl Caller {
    /// The caller as a node id.
    pub fn node(&self) -> NodeId {
        NodeId::from_peer_id(self.peer)
    }

    /// Refuses unless the caller is `node`: a message speaking for a node comes from it.
    pub fn is(&self, node: NodeId, what: &str) -> Result<(), String> {
        if node.peer_id() == self.peer {
            Ok(())
        } else {
            Err(format!("{what} names node {node}, not the sender"))
        }
    }

    /// Refuses unless the caller made the id carrying `tag` (ids carry the tag of the node that
    /// made them, [`NodeId::tag`]): only an object's or a task's owner speaks for it.
    pub fn made(&self, tag: u32, what: &str) -> Result<(), String> {
        if self.node().tag() == tag && !self.tag_taken {
            Ok(())
        } else {
            Err(format!("{what} belongs to another node than the sender"))
        }
    }

    /// Refuses unless the caller is the head.
    pub fn is_head(&self) -> Result<(), String> {
        if self.head {
            Ok(())
        } else {
            Err("only the head sends this".into())
        }
    }
}

/// A wire message with the peer that sent it, for handlers served with
/// [`Router::serve_received`] (whose checks need their own records as well as the message).
#[derive(Debug)]
pub struct Received<M> {
    /// The message (already checked with [`WireMessage::check_from`]).
    pub msg: M,
    /// Who sent it.
    pub from: Caller,
}

impl<M: Message> Message for Received<M> {
    type Result = M::Result;
}

/// A router held weakly by its own handlers.
#[derive(Clone)]
pub(crate) struct WeakRouter {
    routes: std::sync::Weak<RwLock<HashMap<u64, Route>>>,
    sequenced: std::sync::Weak<super::link::Delivered>,
    head: std::sync::Weak<RwLock<Option<PeerId>>>,
    refused: Arc<AtomicU64>,
    tags: std::sync::Weak<RwLock<HashMap<u32, PeerId>>>,
}

impl WeakRouter {
    pub(crate) fn upgrade(&self) -> Option<Router> {
        Some(Router {
            routes: self.routes.upgrade()?,
            sequenced: self.sequenced.upgrade()?,
            head: self.head.upgrade()?,
            refused: Arc::clone(&self.refused),
            tags: self.tags.upgrade()?,
        })
    }
}

/// A message that can be delivered to an actor on another node: serializable, with a
/// serializable result, and named for the wire. Implement it with [`crate::wire_message!`].
///
/// ```
/// #[derive(actix::Message, serde::Serialize, serde::Deserialize)]
/// #[rtype(result = "u64")]
/// struct Add(u64);
/// raya_cluster::wire_message!(Add => "example/Add");
/// assert_eq!(<Add as raya_cluster::transport::WireMessage>::NAME, "example/Add");
/// ```
pub trait WireMessage:
    Message<Result: Serialize + DeserializeOwned + Send> + Serialize + DeserializeOwned + Send + 'static
{
    /// The message's name on the wire (`component/Message`): its identity in every frame, never
    /// changed once released, and listed in the protocol catalogue.
    const NAME: &'static str;

    /// Whether this message, decoded from a frame `from` sent, may be handled: whether that
    /// peer may send it (one that names a node as its sender, its maker or its owner is refused
    /// unless it comes from that node, one only the head sends unless it comes from the head),
    /// and whether its counts are within what a receiver takes (the returns a task asks for,
    /// the records or ids a request carries). Checked on every frame before the handler sees
    /// the message; a refusal is logged with the peer and counted ([`Router::refused`]). Any
    /// member may send a message that names nobody.
    fn check_from(&self, from: &Caller) -> Result<(), String> {
        let _ = from;
        Ok(())
    }

    /// The message as a frame body: postcard, or an rkyv archive for a message declared
    /// `as archive` (see [`super::archive`]).
    fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_body(self)
    }

    /// The message read back from a frame body (an archive is checked before it is read).
    fn decode(body: &[u8]) -> Result<Self, WireError> {
        decode_body(body)
    }

    /// The message's result as a reply body, in the message's format.
    fn encode_result(result: &Self::Result) -> Result<Vec<u8>, WireError> {
        encode_body(result)
    }

    /// The message's result read back from a reply body.
    fn decode_result(body: &[u8]) -> Result<Self::Result, WireError> {
        decode_body(body)
    }
}

/// Names wire messages: `wire_message!(PlaceTask => "local_scheduler/PlaceTask", ...)` implements
/// [`WireMessage`] for each type with that name. A `where` clause says who may send it and
/// what it may carry ([`WireMessage::check_from`]):
///
/// ```
/// # #[derive(actix::Message, serde::Serialize, serde::Deserialize)]
/// # #[rtype(result = "()")]
/// # struct Hello { node: raya_common::NodeId }
/// # #[derive(actix::Message, serde::Serialize, serde::Deserialize)]
/// # #[rtype(result = "()")]
/// # struct Order;
/// raya_cluster::wire_message!(
///     Hello => "example/Hello" where |m, from| from.is(m.node, "a hello"),
///     Order => "example/Order" where |_, from| from.is_head(),
/// );
/// ```
#[macro_export]
macro_rules! wire_message {
    ($($ty:ty => $name:literal $(as $format:ident)? $(where $check:expr)?),+ $(,)?) => {
        $(
            impl $crate::transport::WireMessage for $ty {
                const NAME: &'static str = $name;
                $($crate::wire_format!($format);)?
                $(
                    fn check_from(
                        &self,
                        from: &$crate::transport::Caller,
                    ) -> ::std::result::Result<(), ::std::string::String> {
                        let check: fn(
                            &Self,
                            &$crate::transport::Caller,
                        ) -> ::std::result::Result<(), ::std::string::String> = $check;
                        check(self, from)
                    }
                )?
            }
        )+
    };
}

/// The body format of a wire message declared `as archive` in [`crate::wire_message!`]: the
/// message and its result travel as rkyv archives ([`super::archive::Archived`]).
#[doc(hidden)]
#[macro_export]
macro_rules! wire_format {
    (archive) => {
        fn encode(
            &self,
        ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::transport::WireError> {
            $crate::transport::archive::Archived::to_archive(self)
        }
        fn decode(body: &[u8]) -> ::std::result::Result<Self, $crate::transport::WireError> {
            $crate::transport::archive::Archived::from_archive(body)
        }
        fn encode_result(
            result: &Self::Result,
        ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::transport::WireError> {
            $crate::transport::archive::Archived::to_archive(result)
        }
        fn decode_result(
            body: &[u8],
        ) -> ::std::result::Result<Self::Result, $crate::transport::WireError> {
            $crate::transport::archive::Archived::from_archive(body)
        }
    };
}

/// The route id of a wire name: its 64-bit FNV-1a hash (never
/// [`super::codec::MALFORMED_ROUTE`]).
pub const fn route_of(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    if h == 0 { 1 } else { h }
}

/// The route id of wire message `M`.
pub const fn route_id<M: WireMessage>() -> u64 {
    route_of(M::NAME)
}

/// A boxed future of a reply.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Serves the frames of one route: gets who sent the frame and its body, answers with the
/// reply.
pub type RouteHandler = Arc<dyn Fn(Caller, Vec<u8>) -> ReplyFuture + Send + Sync>;

/// The routes a node serves. Cloning shares the table. [`Router::new`] serves the batches of
/// ordered links (`transport/Sequenced`) from the start.
#[derive(Clone, Default)]
pub struct Router {
    routes: Arc<RwLock<HashMap<u64, Route>>>,
    /// What the senders of ordered links last delivered here (see [`super::link`]).
    sequenced: Arc<super::link::Delivered>,
    /// The head this node follows, once known (this node, on the head).
    head: Arc<RwLock<Option<PeerId>>>,
    /// Messages refused because of who sent them.
    refused: Arc<AtomicU64>,
    /// The node each id tag belongs to, as the cluster's node table says.
    tags: Arc<RwLock<HashMap<u32, PeerId>>>,
}

/// Bytes of replies one ordered batch answers with, at most (below the default reply limit,
/// [`super::NetConfig::max_reply`]).
pub const MAX_BATCH_REPLY: usize = 48 << 20;

/// Id tags a node keeps the owner of, at most (one per node the cluster ever registered).
pub const MAX_TAGS_KNOWN: usize = 1 << 20;

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.names())
            .finish()
    }
}

#[derive(Clone)]
struct Route {
    name: &'static str,
    handler: RouteHandler,
}

/// Reads a frame body as one wire message and checks it as a node does before handling it:
/// an entry of [`WireCheck`] tables, which fuzzers and protocol tests run on untrusted bytes.
pub type BodyCheck = fn(&[u8], &Caller) -> Result<(), String>;

/// A wire name and the check of its frame bodies.
pub type WireCheck = (&'static str, BodyCheck);

/// Decodes `body` as `M` and runs [`WireMessage::check_from`]: what a node does with a frame
/// for `M` before its handler sees it.
pub fn check_body<M: WireMessage>(body: &[u8], from: &Caller) -> Result<(), String> {
    M::decode(body).map_err(|e| e.to_string())?.check_from(from)
}

/// Decodes a wire message from a frame body.
pub fn decode_body<M: DeserializeOwned>(body: &[u8]) -> Result<M, WireError> {
    postcard::from_bytes(body).map_err(|e| WireError::Decode(e.to_string()))
}

/// Encodes a wire message (or its result) as a frame body.
pub fn encode_body<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(value).map_err(|e| WireError::Decode(e.to_string()))
}

impl Router {
    /// A table that serves the batches of ordered links ([`super::link::Sequenced`]).
    pub fn new() -> Self {
        let router = Router::default();
        super::link::serve(&router);
        router
    }

    /// Answers `frames` from `peer` one after another, in order. A batch inside a batch is
    /// refused (never nested: nesting would recurse as deep as a peer likes, or wait on the
    /// sender's own link forever).
    ///
    /// The replies of one batch travel together, so they are bounded together
    /// ([`MAX_BATCH_REPLY`] bytes): a frame whose reply would pass the bound is still handled, in
    /// order, but answered with a refusal instead of its reply (a batch of a thousand reads of
    /// the largest values would otherwise be held in memory at once).
    ///
    /// A frame is handled once the one before it was, not once the borrows of the references
    /// it named were counted: those are waited for together, before the batch is answered
    /// ([`super::inflight::in_batch`]).
    pub(crate) async fn dispatch_in_order(&self, from: Caller, frames: Vec<Frame>) -> Vec<Reply> {
        super::inflight::in_batch(self.dispatch_each(from, frames)).await
    }

    async fn dispatch_each(&self, from: Caller, frames: Vec<Frame>) -> Vec<Reply> {
        let batch = route_id::<super::link::Sequenced>();
        let mut replies = Vec::with_capacity(frames.len());
        let mut bytes = 0usize;
        for f in frames {
            if f.route == batch {
                tracing::warn!(peer = %from.peer, "a batch of ordered messages nested in another: refused");
                replies.push(Err(WireError::Decode("a batch inside a batch".into())));
                continue;
            }
            let route = f.route;
            let reply = match self.dispatch_from(from, f).await {
                Ok(body) if bytes + body.len() > MAX_BATCH_REPLY => Err(self.refuse(
                    &from,
                    self.name_of(route),
                    format!(
                        "the replies of one ordered batch pass {MAX_BATCH_REPLY} bytes: this \
                         message was handled but its {}-byte reply is not sent",
                        body.len()
                    ),
                )),
                Ok(body) => {
                    bytes += body.len();
                    Ok(body)
                }
                Err(e) => Err(e),
            };
            replies.push(reply);
        }
        replies
    }

    /// The wire name of route `route`, if served here.
    fn name_of(&self, route: u64) -> &'static str {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&route)
            .map_or("unknown route", |r| r.name)
    }

    /// Records the head this node follows: messages only the head sends are accepted from it
    /// alone.
    pub fn set_head(&self, head: PeerId) {
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Some(head);
    }

    /// Who `peer` is to this node.
    pub fn caller(&self, peer: PeerId) -> Caller {
        let head = *self.head.read().unwrap_or_else(|p| p.into_inner()) == Some(peer);
        let tag = NodeId::from_peer_id(peer).tag();
        let tag_taken = self
            .tags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tag)
            .is_some_and(|owner| *owner != peer);
        Caller {
            peer,
            head,
            tag_taken,
        }
    }

    /// Whether the cluster's node table (as this node learned it) knows `node`.
    pub fn knows(&self, node: NodeId) -> bool {
        self.tags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node.tag())
            == Some(&node.peer_id())
    }

    /// Records that `node` is registered in the cluster, so the ids carrying its tag are its
    /// own: a peer with the same tag is refused as their maker ([`Caller::made`]). The first
    /// node known with a tag keeps it (the head registers no second node with a known tag).
    pub fn know_node(&self, node: NodeId) {
        let mut tags = self.tags.write().unwrap_or_else(|p| p.into_inner());
        if tags.len() < MAX_TAGS_KNOWN {
            tags.entry(node.tag()).or_insert(node.peer_id());
        }
    }

    /// How many messages this node refused before their handler saw them
    /// ([`WireMessage::check_from`]): a message naming another node than its sender, one only
    /// the head sends from another node, a table write from a node that is not a member, a
    /// count over its bound.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts and logs a refused message, and makes the reply.
    pub fn refuse(&self, from: &Caller, name: &'static str, reason: String) -> WireError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %from.peer, message = name, %reason, "message refused");
        WireError::Refused(reason)
    }

    /// The record of what ordered links delivered here.
    pub(crate) fn delivered(&self) -> &Arc<super::link::Delivered> {
        &self.sequenced
    }

    /// A weak form of this router, for handlers it holds itself.
    pub(crate) fn downgrade(&self) -> WeakRouter {
        WeakRouter {
            routes: Arc::downgrade(&self.routes),
            sequenced: Arc::downgrade(&self.sequenced),
            head: Arc::downgrade(&self.head),
            refused: Arc::clone(&self.refused),
            tags: Arc::downgrade(&self.tags),
        }
    }

    /// Serves message type `M` with the actor at `addr`: frames for `M` are decoded, sent to
    /// its mailbox and its result is sent back. Serving a type again replaces the actor.
    pub fn serve<M, A>(&self, addr: Addr<A>)
    where
        M: WireMessage,
        A: Actor + Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.serve_mapped::<M, M, A>(addr, |msg, _| msg);
    }

    /// Serves message type `M` with the actor at `addr`, handing it the message with its
    /// [`Caller`] ([`Received`]): for a handler whose check needs its own records (whether the
    /// caller is the node it expects an answer from), beyond what [`WireMessage::check_from`]
    /// can see in the message alone.
    pub fn serve_received<M, A>(&self, addr: Addr<A>)
    where
        M: WireMessage,
        A: Actor + Handler<Received<M>>,
        A::Context: ToEnvelope<A, Received<M>>,
    {
        self.serve_mapped::<M, Received<M>, A>(addr, |msg, from| Received { msg, from });
    }

    fn serve_mapped<M, T, A>(&self, addr: Addr<A>, wrap: fn(M, Caller) -> T)
    where
        M: WireMessage,
        T: Message<Result = M::Result> + Send + 'static,
        A: Actor + Handler<T>,
        A::Context: ToEnvelope<A, T>,
    {
        let router = self.downgrade();
        self.serve_with(
            M::NAME,
            Arc::new(move |from, body| {
                let addr = addr.clone();
                let router = router.clone();
                Box::pin(async move {
                    // References the message names register with their owners while it is
                    // handled, and it is answered only once they are counted (see
                    // `super::inflight`): the sender keeps its own until the answer.
                    let (msg, pending) = super::inflight::settling(|| M::decode(&body));
                    // In an ordered batch, the batch waits for them once all its frames are
                    // handled.
                    let pending = super::inflight::to_batch(pending);
                    let msg = msg?;
                    if let Err(reason) = msg.check_from(&from) {
                        // The references it named are dropped with it, once counted.
                        super::inflight::settled(pending).await;
                        return Err(match router.upgrade() {
                            Some(r) => r.refuse(&from, M::NAME, reason),
                            None => WireError::Refused(reason),
                        });
                    }
                    let (_, result) = futures::join!(
                        super::inflight::settled(pending),
                        addr.send(wrap(msg, from))
                    );
                    let result = result.map_err(|_| WireError::ActorGone)?;
                    M::encode_result(&result)
                })
            }),
        );
    }

    /// Serves the wire name `name` with a handler of its own (used where the target actor is
    /// chosen per frame). Serving a name again replaces its handler.
    ///
    /// # Panics
    ///
    /// When another name already has the same route id (a hash collision between two names of
    /// the catalogue, which must be renamed).
    pub fn serve_with(&self, name: &'static str, handler: RouteHandler) {
        let route = route_of(name);
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = routes.get(&route)
            && other.name != name
        {
            panic!(
                "wire names {name:?} and {:?} have the same route id",
                other.name
            );
        }
        routes.insert(route, Route { name, handler });
    }

    /// The wire names this node serves, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| r.name)
            .collect();
        names.sort_unstable();
        names
    }

    /// Answers one frame from `peer`.
    pub fn dispatch(&self, peer: PeerId, frame: Frame) -> ReplyFuture {
        self.dispatch_from(self.caller(peer), frame)
    }

    /// Answers one frame from `from`.
    fn dispatch_from(&self, from: Caller, frame: Frame) -> ReplyFuture {
        let handler = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&frame.route)
            .map(|r| Arc::clone(&r.handler));
        match handler {
            Some(h) => h(from, frame.body),
            None => {
                let route = frame.route;
                Box::pin(async move { Err(WireError::UnknownRoute(route)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Target;
    use actix::prelude::*;
    use serde::Deserialize;

    struct Adder(u64);
    impl Actor for Adder {
        type Context = Context<Self>;
    }

    #[derive(Message, Serialize, Deserialize)]
    #[rtype(result = "u64")]
    struct Add(u64);

    crate::wire_message!(Add => "test/Add");

    impl Handler<Add> for Adder {
        type Result = u64;
        fn handle(&mut self, m: Add, _: &mut Context<Self>) -> u64 {
            self.0 += m.0;
            self.0
        }
    }

    #[test]
    fn a_served_message_reaches_its_actor_and_its_result_comes_back() {
        actix_rt::System::new().block_on(async {
            let router = Router::new();
            router.serve::<Add, _>(Adder(10).start());
            let frame = Frame {
                route: route_id::<Add>(),
                target: Target::System,
                body: encode_body(&Add(5)).unwrap(),
            };
            let reply = router.dispatch(PeerId::random(), frame).await.unwrap();
            assert_eq!(decode_body::<u64>(&reply).unwrap(), 15);
        });
    }

    #[test]
    fn sequenced_frames_are_handled_in_order() {
        actix_rt::System::new().block_on(async {
            let router = Router::new();
            router.serve::<Add, _>(Adder(0).start());
            let frame = |n| Frame {
                route: route_id::<Add>(),
                target: Target::System,
                body: encode_body(&Add(n)).unwrap(),
            };
            let batch = Frame {
                route: route_id::<super::super::link::Sequenced>(),
                target: Target::System,
                body: super::super::link::Sequenced {
                    epoch: 1,
                    seq: 1,
                    lane: 0,
                    frames: vec![frame(1), frame(2), frame(3)],
                }
                .encode()
                .unwrap(),
            };
            let replies: Vec<Reply> = super::super::link::Sequenced::decode_result(
                &router.dispatch(PeerId::random(), batch).await.unwrap(),
            )
            .unwrap();
            let sums: Vec<u64> = replies
                .into_iter()
                .map(|r| decode_body(&r.unwrap()).unwrap())
                .collect();
            assert_eq!(sums, vec![1, 3, 6]);
        });
    }

    #[test]
    fn unknown_routes_and_bad_bodies_are_errors() {
        actix_rt::System::new().block_on(async {
            let router = Router::new();
            router.serve::<Add, _>(Adder(0).start());
            let unknown = Frame {
                route: 1,
                target: Target::System,
                body: vec![],
            };
            assert_eq!(
                router.dispatch(PeerId::random(), unknown).await,
                Err(WireError::UnknownRoute(1))
            );
            let bad = Frame {
                route: route_id::<Add>(),
                target: Target::System,
                body: vec![0xff; 12],
            };
            assert!(matches!(
                router.dispatch(PeerId::random(), bad).await,
                Err(WireError::Decode(_))
            ));
            assert_ne!(
                route_id::<Add>(),
                route_id::<super::super::link::Sequenced>()
            );
            assert_eq!(router.names(), vec!["test/Add", "transport/Sequenced"]);
        });
    }
}
