//! The cluster layer of Raya, in two parts:
//!
//! - [`gcs`], the **global control store**: one Actix actor per table — nodes, jobs, actors,
//!   functions, object locations, task events and a key-value store — each persisted in sled on
//!   the head, so that a head restarted on the same directory reloads its tables; every node
//!   reaches it through its [`GcsClient`] (in this process on the head, over the network
//!   elsewhere), which caches the node table and hands its changes to the node's components;
//!   the head's [`gcs::GcsPublisher`] gossips those changes to the other nodes.
//! - [`transport`], the **libp2p network** that links the nodes: one swarm per node on its own
//!   thread, request-response for typed messages to actors on other nodes, gossip for what every
//!   node must learn, streams for objects; its [`transport::protocol`] catalogue lists every
//!   message that crosses nodes.
//!
//! The GCS uses the transport; the transport knows nothing of the GCS.

#![forbid(unsafe_code)]

pub mod gcs;
pub mod transport;

#[cfg(test)]
mod tag_collision;

pub use gcs::{GcsClient, GcsConfig, GcsError, GcsHandle, GcsRequest, GcsTables};
