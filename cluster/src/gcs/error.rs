//! [`GcsError`]: why a GCS request failed.
// rkyv's derive leaves the fields of its resolver's struct variants undocumented.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

/// A GCS request failed.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug), attr(allow(missing_docs)))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum GcsError {
    /// sled could not read or write.
    #[error("GCS storage error: {0}")]
    Storage(String),
    /// An actor name is already used in its namespace.
    #[error("actor name {name:?} is already taken in namespace {namespace:?}")]
    NameTaken {
        /// The name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// The record does not exist.
    #[error("not found in the GCS: {0}")]
    NotFound(String),
    /// The GCS (or the path to it) is gone: shut down or unreachable.
    #[error("the GCS is unavailable")]
    Unavailable,
    /// The request was malformed.
    #[error("invalid GCS request: {0}")]
    Invalid(String),
    /// The head refused the request because of who sent it (it named another node, or a
    /// table change came from a node that is not a member).
    #[error("the GCS refused the request: {0}")]
    Refused(String),
    /// A node reported an actor as living on it, and the head records it on another node (or
    /// placed it on another): the reporting node's instance is not the actor's.
    #[error("the head records the actor on another node: {0}")]
    ActorElsewhere(String),
    /// A node reported an actor as living on it (`Alive`, `Restarting`), and the head records
    /// it dead (killed, or its owner or node died meanwhile): the reporter's instance must
    /// die too. Carries the recorded cause.
    #[error("the head records the actor dead: {0}")]
    ActorDead(String),
}

impl GcsError {
    /// What a request that failed on the network tells its caller: the head's refusal as
    /// such, anything else as [`GcsError::Unavailable`].
    pub fn from_network(e: crate::transport::NetError) -> GcsError {
        use crate::transport::{NetError, WireError};
        match e {
            NetError::Remote {
                error: WireError::Refused(reason),
                ..
            } => GcsError::Refused(reason),
            e => {
                tracing::debug!(error = %e, "GCS request failed on the network");
                GcsError::Unavailable
            }
        }
    }
}
