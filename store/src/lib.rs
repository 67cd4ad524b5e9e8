//! The object store of a Raya node.
//!
//! [`StoreCore`] holds the node's objects by id: live Rust values (never serialized while they
//! stay on the node), encoded bytes, errors of failed tasks, and objects spilled to disk when the
//! memory budget is exceeded. Every [`RawRef`] alive on the node counts as a reference; when the
//! last one goes, the object is freed (and its spill file deleted). Threads and actors on the node
//! read the core directly — a local `get` is a lock, an `Arc` clone and a downcast — while the
//! [`ObjectStore`] actor is the store's mailbox: it reports object locations to the GCS and
//! answers requests that arrive as messages.

#![warn(missing_docs)]

mod actor;
mod core;
pub mod manager;
mod raw_ref;
mod signal;

pub use actor::{FetchObject, GetStoreStats, ObjectStore};
pub use core::Status;
pub use core::{Lookup, StoreConfig, StoreCore, StoreError, StoreHooks, StoreStats};
pub use manager::{ExpectReturns, NodeGone, ObjectManager};
pub use raw_ref::{RawRef, collect_refs, current_store, set_current_store};
pub use signal::{Signal, Waiter, WaiterId, next_waiter_id};
