//! The node's actor hosts by actor id: how handles, `get_actor`, `kill`, the node manager and
//! calls from other nodes find them.

use std::any::Any;
use std::sync::Mutex;

use actix::{Addr, Recipient};
use raya_common::{ActorId, FastHashMap, NodeId};
use raya_store::RawRef;

use super::wire::WireActorCall;
use super::{ActorHost, HostControl};
use crate::api::actor::ActorClass;

struct Entry {
    host: Box<dyn Any + Send + Sync>,
    control: Recipient<HostControl>,
    calls: Recipient<WireActorCall>,
    /// A detached actor's own reference to its creation object, so it outlives its handles.
    keep_alive: Option<RawRef>,
    /// The node that created the actor, and whether the actor is detached (else it goes with
    /// its creator).
    creator: NodeId,
    detached: bool,
}

/// Hosts of the actors living on this node.
#[derive(Default)]
pub(crate) struct ActorDirectory {
    entries: Mutex<FastHashMap<ActorId, Entry>>,
}

impl std::fmt::Debug for ActorDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorDirectory")
            .field("actors", &self.lock().len())
            .finish()
    }
}

impl ActorDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, FastHashMap<ActorId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert<A: ActorClass>(
        &self,
        id: ActorId,
        host: Addr<ActorHost<A>>,
        keep_alive: Option<RawRef>,
        creator: NodeId,
        detached: bool,
    ) {
        let control = host.clone().recipient();
        let calls = host.clone().recipient();
        self.lock().insert(
            id,
            Entry {
                host: Box::new(host),
                control,
                calls,
                keep_alive,
                creator,
                detached,
            },
        );
    }

    /// The actors hosted here that node `creator` created and did not detach (they go with it).
    pub(crate) fn owned_by(&self, creator: NodeId) -> Vec<ActorId> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.creator == creator && !e.detached)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets an actor whose host stopped.
    pub(crate) fn remove(&self, id: ActorId) {
        let e = self.lock().remove(&id);
        drop(e);
    }

    /// Drops a detached actor's own reference (it is dead; its handles decide when it goes).
    pub(crate) fn release_keep_alive(&self, id: ActorId) {
        let r = self.lock().get_mut(&id).and_then(|e| e.keep_alive.take());
        drop(r);
    }

    /// The typed host of actor `id`, when it lives here and has type `A`.
    pub(crate) fn host<A: ActorClass>(&self, id: ActorId) -> Option<Addr<ActorHost<A>>> {
        self.lock()
            .get(&id)
            .and_then(|e| e.host.downcast_ref::<Addr<ActorHost<A>>>())
            .cloned()
    }

    /// Sends a control message to actor `id`'s host; returns whether it lives here.
    pub(crate) fn control(&self, id: ActorId, msg: HostControl) -> bool {
        let c = self.lock().get(&id).map(|e| e.control.clone());
        match c {
            Some(c) => {
                c.do_send(msg);
                true
            }
            None => false,
        }
    }

    /// Whether no host of actor `id` runs here.
    pub(crate) fn host_missing(&self, id: ActorId) -> bool {
        !self.lock().contains_key(&id)
    }

    /// Delivers a call in its serialized form to actor `call.to`'s host, whatever its type;
    /// hands the call back when the actor does not live here.
    pub(crate) fn deliver(&self, call: WireActorCall) -> Result<(), Box<WireActorCall>> {
        let r = self.lock().get(&call.to.actor).map(|e| e.calls.clone());
        match r {
            Some(r) => {
                r.do_send(call);
                Ok(())
            }
            None => Err(Box::new(call)),
        }
    }
}
