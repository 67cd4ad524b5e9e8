//! Actor calls and controls in the form that crosses nodes.
//!
//! A call to an actor on another node travels as a [`WireActorCall`]: the method by name
//! (`Type::method`, or `Type::Message` for an actix-native message), resolved by the receiving
//! node's copy of the actor type, the arguments encoded. A caller's calls to one actor go in
//! batches ([`DeliverCalls`], wire name `node_manager/DeliverCalls`) to the actor's node, whose
//! node manager hands each to the actor's host ([`deliver`]); kills, cancellations and the last
//! dropped handle go as [`ControlActor`] (`node_manager/ControlActor`).

use actix::Message;
use raya_cluster::transport::{Network, Target};
use raya_common::{ActorAddress, ActorId, NodeId, ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_scheduler::{MAX_RETURNS_FROM_WIRE, TaskArg};
use raya_store::{ExpectReturns, ExpectedFrom, MAX_HANDED_OVER, ObjectManager, RawRef};
use serde::{Deserialize, Serialize};

use super::call::ActorCall;
use super::control::HostControl;
use super::directory::ActorDirectory;
use crate::api::actor::{ActorClass, Method};

/// The serializable form of an actor call.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub(crate) struct WireActorCall {
    pub(crate) to: ActorAddress,
    /// The node that owns the call's results (the caller's).
    pub(crate) owner: NodeId,
    pub(crate) class: String,
    pub(crate) method: String,
    pub(crate) task_id: TaskId,
    pub(crate) args: Vec<TaskArg>,
    pub(crate) num_returns: u32,
    pub(crate) attempt: u32,
    pub(crate) parent: TaskId,
}

impl<A: ActorClass> ActorCall<A> {
    /// The call's serializable form.
    pub(crate) fn to_wire(&self, to: ActorAddress) -> WireActorCall {
        WireActorCall {
            to,
            owner: self.owner,
            class: A::CLASS_NAME.to_string(),
            method: self.method.name.to_string(),
            task_id: self.task_id,
            args: self.args.clone(),
            num_returns: self.num_returns,
            attempt: self.attempt,
            parent: self.parent,
        }
    }

    /// The call a wire form describes, or why it names nothing this actor type handles.
    pub(crate) fn from_wire(w: WireActorCall) -> Result<Self, TaskError> {
        if w.class != A::CLASS_NAME {
            return Err(TaskError::new(
                TaskErrorKind::ArgumentType,
                format!(
                    "a call for an actor of {} reached an actor of {}",
                    w.class,
                    A::CLASS_NAME
                ),
            ));
        }
        let method = A::method(&w.method).ok_or_else(|| {
            TaskError::new(
                TaskErrorKind::UnknownFunction,
                format!(
                    "{} has no method {:?} on this node",
                    A::CLASS_NAME,
                    w.method
                ),
            )
        })?;
        Ok(ActorCall {
            owner: w.owner,
            task_id: w.task_id,
            method,
            args: w.args,
            num_returns: w.num_returns,
            attempt: w.attempt,
            parent: w.parent,
        })
    }
}

/// Why `method` cannot be sent to an actor of `A` on another node, if it cannot: the far node
/// finds a method by its name, so an actix-native message must be listed in the actor's
/// `handles(..)` to have one.
pub(crate) fn not_deliverable<A: ActorClass>(method: &Method<A>) -> Option<TaskError> {
    if A::method(method.name).is_some() {
        return None;
    }
    Some(TaskError::new(
        TaskErrorKind::UnknownFunction,
        format!(
            "message {} cannot be sent to an actor of {} on another node: list it in \
             #[raya::actor(handles(..))] on the actor's impl block",
            method.name,
            A::CLASS_NAME
        ),
    ))
}

/// Hands calls to the hosts of actors living on the receiving node. Replies with the calls
/// whose actor does not live there.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<TaskId>")]
pub(crate) struct DeliverCalls(pub(crate) Vec<WireActorCall>);

/// A control message for an actor on another node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub(crate) enum WireControl {
    /// Kill it (restart when allowed and asked).
    Kill { no_restart: bool },
    /// Cancel one of its calls.
    Cancel { task_id: TaskId, force: bool },
    /// Every handle to it is gone.
    HandlesDropped,
}

/// [`WireControl`] addressed to an actor. Replies whether the actor lives on the node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub(crate) struct ControlActor {
    pub(crate) actor: ActorId,
    pub(crate) control: WireControl,
}

/// Returns the calls of one [`DeliverCalls`] batch ask for in all, at most.
const MAX_BATCH_RETURNS: u64 = 1 << 20;

raya_cluster::wire_message!(
    // A call comes from its owner, or from the node that created the actor, whose host
    // forwards the calls of handles still addressing it; either way the call id is the owner's.
    DeliverCalls => "node_manager/DeliverCalls" where |m, from| {
        // Each return costs the receiver a reference and an entry before the call runs.
        let returns: u64 = m.0.iter().map(|c| u64::from(c.num_returns)).sum();
        if let Some(c) = m.0.iter().find(|c| c.num_returns > MAX_RETURNS_FROM_WIRE) {
            return Err(format!(
                "an actor call asking for {} returns, more than {MAX_RETURNS_FROM_WIRE}",
                c.num_returns
            ));
        }
        if returns > MAX_BATCH_RETURNS {
            return Err(format!(
                "actor calls asking for {returns} returns in one batch, more than {MAX_BATCH_RETURNS}"
            ));
        }
        m.0.iter().try_for_each(|call| {
            if call.owner.tag() != call.task_id.node_tag() {
                return Err("an actor call whose id is not its owner's".into());
            }
            from.is(call.owner, "an actor call's owner")
                .or_else(|_| from.made(call.to.actor.node_tag(), "an actor call's owner"))
        })
    },
    // A cancellation comes from the call's owner (or the actor's creator passing it on), the
    // news that every handle is gone from the actor's creator, which counts them. A kill from
    // any member, as in Ray, where whoever can name an actor may kill it.
    ControlActor => "node_manager/ControlActor" as archive where |m, from| match m.control {
        WireControl::Kill { .. } => Ok(()),
        WireControl::Cancel { task_id, .. } => from
            .made(task_id.node_tag(), "a cancelled actor call")
            .or_else(|_| from.made(m.actor.node_tag(), "a cancelled actor call")),
        WireControl::HandlesDropped => from.made(m.actor.node_tag(), "an actor's handles"),
    },
);

impl From<WireControl> for HostControl {
    fn from(c: WireControl) -> HostControl {
        match c {
            WireControl::Kill { no_restart } => HostControl::Kill { no_restart },
            WireControl::Cancel { task_id, force } => HostControl::Cancel { task_id, force },
            WireControl::HandlesDropped => HostControl::HandlesDropped,
        }
    }
}

/// Of `calls` that node `from` sent, the ids of those it passed on for another owner and that
/// owner did not send it: each owner is asked whether it expects the results of its calls from
/// `from` ([`ExpectedFrom`]). A call with no results has nothing to check. A call whose owner
/// cannot be asked is not confirmed.
pub(crate) async fn unconfirmed_relays(
    net: &Network,
    from: NodeId,
    calls: &[WireActorCall],
) -> std::collections::HashSet<TaskId> {
    let mut asked: std::collections::HashMap<NodeId, Vec<TaskId>> = Default::default();
    for c in calls
        .iter()
        .filter(|c| c.owner != from && c.num_returns > 0)
    {
        asked.entry(c.owner).or_default().push(c.task_id);
    }
    let mut unconfirmed = std::collections::HashSet::new();
    for (owner, tasks) in asked {
        for chunk in tasks.chunks(MAX_HANDED_OVER) {
            let ids = chunk.iter().map(|t| ObjectId::for_return(*t, 0)).collect();
            let asked = net.ask(owner.peer_id(), Target::System, ExpectedFrom { ids, from });
            let flags = match asked.await {
                Ok(flags) if flags.len() == chunk.len() => flags,
                Ok(_) | Err(_) => vec![false; chunk.len()],
            };
            for (task, sent) in chunk.iter().zip(flags) {
                if !sent {
                    tracing::warn!(%task, %owner, peer = %from, "an actor call passed on that its owner did not send: refused");
                    unconfirmed.insert(*task);
                }
            }
        }
    }
    unconfirmed
}

/// Delivers calls that arrived from other nodes to their hosts on this node (the node manager's
/// side of [`DeliverCalls`]); returns the calls whose actor does not live here. The host that
/// runs a call keeps its results for their owner (a host that forwards it keeps nothing).
pub(crate) fn deliver(hosts: &ActorDirectory, calls: Vec<WireActorCall>) -> Vec<TaskId> {
    calls
        .into_iter()
        .filter_map(|call| {
            let task = call.task_id;
            hosts.deliver(call).err().map(|_| task)
        })
        .collect()
}

/// Keeps the results of a call owned by `owner` that this node's host takes (to run it, or to
/// fail it): entries in this node's store before the call can end, and the object manager told
/// to announce them to the owner. Nothing when the owner is this node.
pub(crate) fn keep_results_for_owner(
    store: &std::sync::Arc<raya_store::StoreCore>,
    objects: Option<&actix::Addr<ObjectManager>>,
    owner: NodeId,
    task_id: TaskId,
    num_returns: u32,
) {
    if owner == store.node() {
        return;
    }
    let Some(objects) = objects else {
        return;
    };
    let refs: Vec<RawRef> = (0..num_returns)
        .map(|i| store.add_ref(ObjectId::for_return(task_id, i)))
        .collect();
    objects.do_send(ExpectReturns { refs, owner });
}
