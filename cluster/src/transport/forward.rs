//! Recipients for actors on other nodes.

use std::marker::PhantomData;

use actix::prelude::*;
use libp2p::PeerId;

use super::{Network, Target, WireMessage};

/// An actor standing in, on this node, for the actor serving `M` on node `peer`: every message
/// it receives is sent there, serialized, on the ordered link to that node (so handled there
/// once and in order, or failed after the delivery bound, logged). Its [`Recipient`] is used
/// exactly like the recipient of a local actor.
pub struct Forward<M> {
    net: Network,
    peer: PeerId,
    target: Target,
    _m: PhantomData<fn() -> M>,
}

impl<M: WireMessage<Result = ()>> Actor for Forward<M> {
    type Context = Context<Self>;
}

impl<M: WireMessage<Result = ()>> Handler<M> for Forward<M> {
    type Result = ();
    fn handle(&mut self, msg: M, _: &mut Context<Self>) {
        let _ = self.target;
        self.net.tell_ordered(self.peer, msg);
    }
}

/// A recipient that delivers `M` to the actor serving it (`target`) on node `peer`. Starts a
/// small forwarding actor on the current arbiter.
pub fn remote_recipient<M: WireMessage<Result = ()>>(
    net: Network,
    peer: PeerId,
    target: Target,
) -> Recipient<M> {
    Forward::<M> {
        net,
        peer,
        target,
        _m: PhantomData,
    }
    .start()
    .recipient()
}

impl<M> std::fmt::Debug for Forward<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("peer", &self.peer)
            .field("target", &self.target)
            .finish()
    }
}
