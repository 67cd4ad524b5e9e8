//! Shared vocabulary of the Raya crates: ids, resource sets, type-erased values, task errors and
//! the binary codec used when a value leaves its node or is spilled to disk.
//!
//! Users normally reach these types through the `raya` crate, which re-exports what they need.

#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod hash;
pub mod ids;
pub mod labels;
pub mod private_fs;
pub mod resources;
pub mod size;
pub mod time;
pub mod value;

pub use codec::CodecError;
pub use error::{TaskError, TaskErrorKind, TaskFrame};
pub use hash::{FastHashMap, FastHashSet, FastHasher};
pub use ids::{ActorAddress, ActorId, IdGenerator, JobId, NodeId, ObjectId, TaskId, WorkerId};
pub use resources::{ResourceError, ResourceSet};
pub use value::{EncodedParts, Object, Value};
