//! [`GcsEvent`]: the changes the GCS publishes, and their numbered gossip form.
// rkyv's derive leaves the fields of its resolver's struct variants undocumented, and names the
// resolver's variants after the event's (all `Node…`).
#![allow(missing_docs, clippy::enum_variant_names)]

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::nodes;

/// A change of the node table as the head publishes it by gossip: numbered, so that a node that
/// missed one notices the gap and reloads the table from the GCS.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionedEvent {
    /// Changes with every start of the GCS.
    pub epoch: u64,
    /// 1, 2, 3, ... within an epoch.
    pub seq: u64,
    /// The change.
    pub event: GcsEvent,
}

/// A change the GCS publishes to its subscribers.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug), attr(allow(missing_docs)))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum GcsEvent {
    /// A node registered (or re-registered) and is alive.
    NodeAlive(nodes::NodeInfo),
    /// A node's resource report changed its record.
    NodeResources(nodes::NodeInfo),
    /// A node was declared dead.
    NodeDead {
        /// The node.
        node: raya_common::NodeId,
        /// Why.
        reason: String,
    },
}
