//! The object manager's messages: what nodes tell each other about objects (wire messages,
//! each named in the protocol catalogue), and what the node's own components tell it.

use raya_common::{NodeId, ObjectId, TaskError};
use serde::{Deserialize, Serialize};

use actix::prelude::*;

use crate::raw_ref::RawRef;
use crate::wire_value::WireValue;

/// Results at most this large (encoded) travel inline in [`ObjectReady`], as Ray's
/// `max_direct_call_object_size`.
pub const MAX_INLINE: usize = 100 * 1024;

/// Objects one [`ObjectsExpected`] hands over, at most.
pub const MAX_HANDED_OVER: usize = 4096;

/// Largest object accepted from a pull.
pub const MAX_OBJECT: u64 = 1 << 40;

/// How an object made for another node ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReadyData {
    /// The encoded value, with the references it names.
    Inline(WireValue),
    /// Too large to send along: it stays on the sending node, to be pulled.
    Held {
        /// Encoded size in bytes.
        size: u64,
    },
    /// The task failed.
    Failed(TaskError),
}

/// Tells an object's owner that the object is ready on node `from` (or failed). Answered
/// whether the owner took it: an owner takes it only from the node its own records say makes
/// the object (where it placed the task, or sent the actor call, or the node that node handed
/// the call on to); `false` tells the maker it is not (yet) known as such, and to send again
/// shortly (the owner's record may trail the result).
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct ObjectReady {
    /// The object.
    pub id: ObjectId,
    /// The node that made it.
    pub from: NodeId,
    /// Its value, or where it is.
    pub data: ReadyData,
}

/// Tells an object's owner that node `at` will make it (so the owner fails it if `at` dies).
/// From the node's own components, a record of where they sent the work; from another node,
/// a handover: the node the owner sent an actor call to passed it on to `at`, which the owner
/// takes only from the node it expects the objects from.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ObjectsExpected {
    /// The objects.
    pub ids: Vec<ObjectId>,
    /// The node making them.
    pub at: NodeId,
}

/// Asks an object's owner whether it expects these objects from node `from` (answered per id):
/// asked by a node given actor calls that `from` passed on for the owner (an actor's creator
/// forwarding the calls of handles that still address it) before it runs them, so a node can
/// pass on only calls the owner sent it, never slip its own in under another node's ids.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<bool>")]
pub struct ExpectedFrom {
    /// The objects.
    pub ids: Vec<ObjectId>,
    /// The node said to have been sent the work that makes them.
    pub from: NodeId,
}

/// What an object's owner knows of it: its value, where to pull it from, its failure, or that
/// it is still pending.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Located {
    /// On this node.
    At(NodeId),
    /// Ready on the owner, held there as bytes, at most [`MAX_INLINE`] of them, with no other
    /// object named in it: those bytes, so the asker needs no pull.
    Value(Vec<u8>),
    /// It failed with this error.
    Failed(TaskError),
    /// Not ready yet: the owner sends word when it is (`ObjectLocated`), unless it holds too
    /// many such waits; the asker asks again after a while without word.
    Pending,
    /// The owner no longer has it (freed, or never made).
    Unknown,
}

/// Asks an object's owner where the object is. Answered at once, never held at the owner;
/// for a pending object the owner notes the asker and sends word later (see the `locate`
/// module of the object manager).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Located")]
pub struct LocateObject(pub ObjectId);

/// Tells a node holding a copy of an object that the owner freed it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct FreeObject(pub ObjectId);

/// Tells an owner that node `node` took its first reference to `id` (`add`) or dropped its last.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
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

/// The head is sending the work that makes these objects (owned here) to node `at`: results
/// from `at` are taken, but the work may yet go elsewhere (when `at` cannot be given it), so
/// neither `at`'s death nor its lease fails the objects until [`ObjectsExpected`] confirms it
/// (the task's own placement lease bounds the wait meanwhile). Local wiring only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct MakerGoing {
    /// The objects.
    pub ids: Vec<ObjectId>,
    /// The node the work is sent to.
    pub at: NodeId,
}

/// A node of the cluster died: what it made or held is lost.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeGone(pub NodeId);

/// A node registered again under an identity that died (a restarted head, or a node restarted
/// on its session directory): work placed there from now on is not lost with the old one.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeBack(pub NodeId);

/// How an object owned here was lost with a node that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loss {
    /// The node was making it (the task or call was queued or running there).
    Making,
    /// The object was made, and the node held its only copy.
    OnlyCopy,
}

/// Objects owned here that the death of `node` lost: whoever keeps their lineage (the local
/// scheduler, for the tasks this node handed over) makes them again or fails them itself.
/// Answered with the ids it does not know, which the object manager fails. Local wiring only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<ObjectId>")]
pub struct Recover {
    /// The node that died.
    pub node: NodeId,
    /// The objects it lost, and how.
    pub lost: Vec<(ObjectId, Loss)>,
}

/// Tells the object manager where lost objects go to be made again ([`Recover`]): each
/// recipient told, in the order told, gets what those before it did not take. Local wiring
/// only; without any, lost objects fail at once.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecoverWith(pub Recipient<Recover>);

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

/// The work whose results this node kept for their owner ([`ExpectReturns`]) was passed on to
/// another node, and the owner told where they are made now: the references kept here go (the
/// node that makes them keeps them). Local wiring only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ForgetReturns(pub Vec<ObjectId>);

/// Refuses more than [`MAX_HANDED_OVER`] objects in one message.
fn at_most_handed_over(count: usize, what: &str) -> Result<(), String> {
    if count > MAX_HANDED_OVER {
        return Err(format!(
            "{count} objects {what} at once, more than {MAX_HANDED_OVER}"
        ));
    }
    Ok(())
}

raya_cluster::wire_message!(
    ObjectReady => "object_manager/ObjectReady"
        where |m, from| from.is(m.from, "a finished object"),
    ObjectsExpected => "object_manager/ObjectsExpected" as archive
        where |m, _| at_most_handed_over(m.ids.len(), "handed over"),
    LocateObject => "object_manager/LocateObject" as archive,
    ExpectedFrom => "object_manager/ExpectedFrom" as archive
        where |m, _| at_most_handed_over(m.ids.len(), "asked about"),
    FreeObject => "object_manager/FreeObject" as archive
        where |m, from| from.made(m.0.task.node_tag(), "the object freed"),
    Borrow => "object_manager/Borrow" as archive where |m, from| from.is(m.node, "a borrow"),
);
