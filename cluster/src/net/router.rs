//! One routing mechanism for every message that crosses nodes.
//!
//! A message type that is an Actix [`Message`] and serde-serializable (as is its result) is a
//! [`WireMessage`]. Its route id is a hash of its type path, the same in every binary built from
//! the same sources. A node [serves](Router::serve) a wire message by naming the local actor that
//! handles it; a frame for that route is decoded, sent to the actor's mailbox, and the actor's
//! reply is encoded and sent back. Callers on other nodes use [`super::Network::ask`] with the
//! same typed message they would send locally.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Frame, Reply, Target, WireError};

/// A message that can be delivered to an actor on another node: serializable, with a
/// serializable result.
pub trait WireMessage:
    Message<Result: Serialize + DeserializeOwned + Send> + Serialize + DeserializeOwned + Send + 'static
{
}

impl<M> WireMessage for M
where
    M: Message + Serialize + DeserializeOwned + Send + 'static,
    M::Result: Serialize + DeserializeOwned + Send,
{
}

/// The route id of message type `M`: a 64-bit FNV-1a hash of its type path (never
/// [`super::codec::MALFORMED_ROUTE`]).
pub fn route_id<M: 'static>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<M>().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// A boxed future of a reply.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Serves the frames of one route: gets the target and the body, answers with the reply.
pub type RouteHandler = Arc<dyn Fn(Target, Vec<u8>) -> ReplyFuture + Send + Sync>;

/// The routes a node serves. Cloning shares the table. [`Router::new`] serves
/// [`OrderedFrames`] from the start.
#[derive(Clone, Default)]
pub struct Router {
    routes: Arc<RwLock<HashMap<u64, RouteHandler>>>,
}

/// Decodes a wire message from a frame body.
pub fn decode_body<M: DeserializeOwned>(body: &[u8]) -> Result<M, WireError> {
    postcard::from_bytes(body).map_err(|e| WireError::Decode(e.to_string()))
}

/// Encodes a wire message (or its result) as a frame body.
pub fn encode_body<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(value).map_err(|e| WireError::Decode(e.to_string()))
}

/// Several frames for one node, handled there one after another in the order given: how a
/// sender keeps the order of messages it does not wait for one by one.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OrderedFrames(pub Vec<Frame>);

impl actix::Message for OrderedFrames {
    type Result = Vec<Reply>;
}

impl Router {
    /// A table that serves [`OrderedFrames`].
    pub fn new() -> Self {
        let router = Router::default();
        let weak = Arc::downgrade(&router.routes);
        router.serve_with(
            route_id::<OrderedFrames>(),
            Arc::new(move |_, body| {
                let weak = weak.clone();
                Box::pin(async move {
                    let OrderedFrames(frames) = decode_body(&body)?;
                    let Some(routes) = weak.upgrade() else {
                        return Err(WireError::ActorGone);
                    };
                    let router = Router { routes };
                    let mut replies = Vec::with_capacity(frames.len());
                    for f in frames {
                        replies.push(router.dispatch(f).await);
                    }
                    encode_body(&replies)
                })
            }),
        );
        router
    }

    /// Serves message type `M` with the actor at `addr`: frames for `M` are decoded, sent to
    /// its mailbox and its result is sent back. Serving a type again replaces the actor.
    pub fn serve<M, A>(&self, addr: Addr<A>)
    where
        M: WireMessage,
        A: Actor + Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.serve_with(
            route_id::<M>(),
            Arc::new(move |_, body| {
                let addr = addr.clone();
                Box::pin(async move {
                    let msg: M = decode_body(&body)?;
                    let result = addr.send(msg).await.map_err(|_| WireError::ActorGone)?;
                    encode_body(&result)
                })
            }),
        );
    }

    /// Serves route `route` with a handler of its own (used where the target actor is chosen
    /// per frame, such as user actors by id).
    pub fn serve_with(&self, route: u64, handler: RouteHandler) {
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(route, handler);
    }

    /// Answers one frame.
    pub fn dispatch(&self, frame: Frame) -> ReplyFuture {
        let handler = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&frame.route)
            .cloned();
        match handler {
            Some(h) => h(frame.target, frame.body),
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
    use actix::prelude::*;
    use serde::Deserialize;

    struct Adder(u64);
    impl Actor for Adder {
        type Context = Context<Self>;
    }

    #[derive(Message, Serialize, Deserialize)]
    #[rtype(result = "u64")]
    struct Add(u64);

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
            let reply = router.dispatch(frame).await.unwrap();
            assert_eq!(decode_body::<u64>(&reply).unwrap(), 15);
        });
    }

    #[test]
    fn ordered_frames_are_handled_in_order() {
        actix_rt::System::new().block_on(async {
            let router = Router::new();
            router.serve::<Add, _>(Adder(0).start());
            let frame = |n| Frame {
                route: route_id::<Add>(),
                target: Target::System,
                body: encode_body(&Add(n)).unwrap(),
            };
            let batch = Frame {
                route: route_id::<OrderedFrames>(),
                target: Target::System,
                body: encode_body(&OrderedFrames(vec![frame(1), frame(2), frame(3)])).unwrap(),
            };
            let replies: Vec<Reply> = decode_body(&router.dispatch(batch).await.unwrap()).unwrap();
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
                router.dispatch(unknown).await,
                Err(WireError::UnknownRoute(1))
            );
            let bad = Frame {
                route: route_id::<Add>(),
                target: Target::System,
                body: vec![0xff; 12],
            };
            assert!(matches!(
                router.dispatch(bad).await,
                Err(WireError::Decode(_))
            ));
            assert_ne!(route_id::<Add>(), route_id::<u64>());
        });
    }
}
