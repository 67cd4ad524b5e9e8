//! The cluster layer of Raya: the global control store (GCS) and each node's handle to it.
//!
//! The GCS is a set of Actix actors, one per table — nodes, jobs, actors, functions, object
//! locations, task events and a key-value store — each persisted in sled so that a GCS restarted
//! on the same directory reloads its tables. Every node talks to the GCS through its
//! [`gcs::GcsClient`] actor, which forwards typed requests to the tables (locally on the head) and
//! caches the node table it subscribes to.
//!
//! Every request is a typed Actix message that also derives `Serialize`/`Deserialize`, so the
//! same message can be delivered to a GCS on another node.

#![warn(missing_docs)]

pub mod gcs;
pub mod identity;
pub mod net;
pub mod time;

pub use gcs::{GcsClient, GcsConfig, GcsError, GcsHandle, GcsRequest, GcsTables};
