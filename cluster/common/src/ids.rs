//! Ids of nodes, jobs, tasks, actors, workers and objects.
//!
//! A node id is the node's libp2p peer id. Task and actor ids are 128-bit integers made of the job,
//! a random tag of the node that created them and a counter, so ids made on different nodes never
//! collide and making one costs one atomic increment. An object id is the id of the task that
//! creates the object plus its return index, so the creating task can be found from the object.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p_identity::PeerId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node of the cluster, named by its libp2p peer id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(PeerId);

impl NodeId {
    /// Wraps a libp2p peer id.
    pub fn from_peer_id(peer: PeerId) -> Self {
        NodeId(peer)
    }

    /// The libp2p peer id of the node.
    pub fn peer_id(&self) -> PeerId {
        self.0
    }

    /// A random node id, for tests and for nodes that have no identity yet.
    pub fn random() -> Self {
        NodeId(PeerId::random())
    }

    /// The node id's binary form (a multihash).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// Parses the binary form produced by [`NodeId::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::CodecError> {
        PeerId::from_bytes(bytes)
            .map(NodeId)
            .map_err(|e| crate::CodecError::Invalid(format!("node id: {e}")))
    }

    /// A 32-bit tag derived from the peer id, used to keep ids made on different nodes apart.
    pub fn tag(&self) -> u32 {
        let bytes = self.0.to_bytes();
        let mut h: u32 = 0x811c_9dc5;
        for b in bytes {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
        h
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = crate::CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PeerId>()
            .map(NodeId)
            .map_err(|e| crate::CodecError::Invalid(format!("node id {s:?}: {e}")))
    }
}

/// On the wire (rkyv) a node id is its peer id's bytes, checked when read back.
impl rkyv::Archive for NodeId {
    type Archived = rkyv::vec::ArchivedVec<u8>;
    type Resolver = rkyv::vec::VecResolver;

    fn resolve(&self, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        rkyv::vec::ArchivedVec::<u8>::resolve_from_len(self.0.to_bytes().len(), resolver, out);
    }
}

impl<S> rkyv::Serialize<S> for NodeId
where
    S: rkyv::rancor::Fallible + rkyv::ser::Writer + rkyv::ser::Allocator + ?Sized,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        rkyv::vec::ArchivedVec::<u8>::serialize_from_slice(&self.0.to_bytes(), serializer)
    }
}

impl<D> rkyv::Deserialize<NodeId, D> for rkyv::vec::ArchivedVec<u8>
where
    D: rkyv::rancor::Fallible + ?Sized,
    D::Error: rkyv::rancor::Source,
{
    fn deserialize(&self, _: &mut D) -> Result<NodeId, D::Error> {
        NodeId::from_bytes(self.as_slice()).map_err(<D::Error as rkyv::rancor::Source>::new)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_base58())
        } else {
            s.serialize_bytes(&self.0.to_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let b: Vec<u8> = serde::Deserialize::deserialize(d)?;
            NodeId::from_bytes(&b).map_err(D::Error::custom)
        }
    }
}

/// A job: one driver's session with the cluster.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u32);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

macro_rules! id128 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[rkyv(derive(Debug))]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u128);

        impl $name {
            /// The job this id was made in.
            pub fn job(&self) -> JobId {
                JobId((self.0 >> 96) as u32)
            }
            /// The tag of the node that made this id.
            pub fn node_tag(&self) -> u32 {
                (self.0 >> 64) as u32
            }
            /// The per-node sequence number of this id.
            pub fn sequence(&self) -> u64 {
                self.0 as u64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

/// The 128-bit ids. In a module of their own: the wire form rkyv derives for them (inside a
/// macro) has resolver types without `Debug`.
mod wide {
    #![allow(missing_debug_implementations)]
    use super::*;

    id128!(
        /// A task: one execution request of a remote function, an actor creation or an actor call.
        TaskId
    );
    id128!(
        /// An actor.
        ActorId
    );
}
pub use wide::{ActorId, ArchivedActorId, ArchivedTaskId, TaskId};

impl TaskId {
    /// The pseudo-task of a driver: the parent of every task the driver submits directly.
    pub fn driver(job: JobId, node_tag: u32) -> TaskId {
        TaskId(((job.0 as u128) << 96) | ((node_tag as u128) << 64))
    }

    /// Whether this is a driver's pseudo-task.
    pub fn is_driver(&self) -> bool {
        self.sequence() == 0
    }
}

/// Where an actor lives: its node and its id. Messages to actors are addressed with one, so the
/// same message can be delivered to an actor next door or on another node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActorAddress {
    /// The node hosting the actor.
    pub node: NodeId,
    /// The actor.
    pub actor: ActorId,
}

impl fmt::Display for ActorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.actor, self.node)
    }
}

impl fmt::Debug for ActorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorAddress({self})")
    }
}

/// A worker thread of a node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct WorkerId(pub u32);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker-{}", self.0)
    }
}

/// An object in the object store: the id of the creating task plus a return index.
///
/// Return values of a task have indexes `1..=num_returns`; objects made by `put` have
/// [`ObjectId::PUT_INDEX`] and a task id of their own.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    /// The task that creates the object (for a put: an id allocated for that put).
    pub task: TaskId,
    /// The return index, or [`ObjectId::PUT_INDEX`].
    pub index: u32,
}

impl ObjectId {
    /// The index of objects created by `put`.
    pub const PUT_INDEX: u32 = 0x8000_0000;

    /// The object id of return value `i` (0-based) of `task`.
    pub fn for_return(task: TaskId, i: u32) -> ObjectId {
        ObjectId { task, index: i + 1 }
    }

    /// Whether the object was made by `put` rather than returned by a task.
    pub fn is_put(&self) -> bool {
        self.index == Self::PUT_INDEX
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}{:08x}", self.task.0, self.index)
    }
}
impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Makes task, actor and put-object ids for one node and job.
#[derive(Debug)]
pub struct IdGenerator {
    prefix: u128,
    counter: AtomicU64,
}

impl IdGenerator {
    /// A generator for ids made by the node with `node_tag` in `job`.
    pub fn new(job: JobId, node_tag: u32) -> Self {
        IdGenerator {
            prefix: ((job.0 as u128) << 96) | ((node_tag as u128) << 64),
            counter: AtomicU64::new(1),
        }
    }

    fn next(&self) -> u128 {
        self.prefix | self.counter.fetch_add(1, Ordering::Relaxed) as u128
    }

    /// A fresh task id.
    pub fn task_id(&self) -> TaskId {
        TaskId(self.next())
    }

    /// A fresh actor id.
    pub fn actor_id(&self) -> ActorId {
        ActorId(self.next())
    }

    /// A fresh id for an object made by `put`.
    pub fn put_id(&self) -> ObjectId {
        ObjectId {
            task: TaskId(self.next()),
            index: ObjectId::PUT_INDEX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_job_and_node_tag() {
        let g = IdGenerator::new(JobId(7), 0xdead_beef);
        let t = g.task_id();
        assert_eq!(t.job(), JobId(7));
        assert_eq!(t.node_tag(), 0xdead_beef);
        assert_ne!(g.task_id(), t);
        assert!(!t.is_driver());
        assert!(TaskId::driver(JobId(7), 1).is_driver());
        let o = ObjectId::for_return(t, 0);
        assert_eq!(o.index, 1);
        assert!(!o.is_put());
        assert!(g.put_id().is_put());
    }

    #[test]
    fn node_id_round_trips_in_both_encodings() {
        let n = NodeId::random();
        let bin = postcard::to_stdvec(&n).unwrap();
        assert_eq!(postcard::from_bytes::<NodeId>(&bin).unwrap(), n);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), n);
        assert_eq!(n.to_string().parse::<NodeId>().unwrap(), n);
    }

    #[test]
    fn malformed_node_id_is_an_error() {
        assert!(NodeId::from_bytes(&[1, 2, 3]).is_err());
        assert!(postcard::from_bytes::<NodeId>(&[3, 1, 2, 3]).is_err());
    }
}
