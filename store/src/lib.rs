//! The objects of a Raya node, and how they move between nodes.
//!
//! - [`object_store`]: the node's store ([`StoreCore`], Ray's plasma store in-process): live
//!   values by id, reference counts, the memory budget, spilling to disk, waits; and the
//!   [`ObjectStore`] actor, its mailbox.
//! - [`object_manager`]: the [`ObjectManager`] actor of a cluster node: results announced to
//!   their owners, objects located at their owner and pulled from other nodes in chunks,
//!   borrowers counted across nodes, copies freed with the object.
//! - [`RawRef`]: one counted reference to an object (what an `ObjectRef` holds).

#![forbid(unsafe_code)]

pub mod object_manager;
pub mod object_store;
mod raw_ref;
mod signal;
pub mod wire_value;

pub use object_manager::{
    ExpectReturns, ExpectedFrom, ForgetReturns, Loss, MAX_HANDED_OVER, MakerGoing, NodeBack,
    NodeGone, ObjectManager, ObjectsExpected, Recover, RecoverWith,
};
pub use object_store::{
    Lookup, ObjectStore, Resident, Status, StoreConfig, StoreCore, StoreError, StoreHooks,
    StoreStats,
};
pub use raw_ref::{RawRef, collect_refs, current_store, set_current_store};
pub use signal::{Signal, Waiter, WaiterId, next_waiter_id};
pub use wire_value::WireValue;
