//! What the store is configured with and answers: its configuration, errors, counters, and
//! what it holds for an id.

use std::path::PathBuf;
use std::sync::Arc;

use raya_common::{NodeId, ObjectId, TaskError, Value};
use serde::{Deserialize, Serialize};

/// How a node's store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The node the store belongs to.
    pub node: NodeId,
    /// Bytes of objects kept in memory; past it objects are spilled (or puts fail).
    pub memory_budget: u64,
    /// Whether objects may be spilled to disk.
    pub spilling: bool,
    /// Where spilled objects go.
    pub spill_dir: PathBuf,
}

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    /// No room in the memory budget and spilling is off (or nothing could be spilled).
    #[error(
        "object store full: {needed} bytes needed, {used} of {budget} bytes held by referenced objects{}",
        if *spilling { "" } else { " and spilling is off" }
    )]
    Full {
        /// Bytes the object needs.
        needed: u64,
        /// Bytes in memory.
        used: u64,
        /// The budget.
        budget: u64,
        /// Whether spilling is on.
        spilling: bool,
    },
    /// The object is not in the store.
    #[error(
        "object {0} is not in the object store (all its references were dropped, or it was lost)"
    )]
    Missing(ObjectId),
    /// Reading or writing a spill file failed.
    #[error("spill file error: {0}")]
    Io(String),
}

/// Counters describing the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Objects with at least one reference (pending, in memory, failed or spilled).
    pub num_objects: u64,
    /// Objects held in memory.
    pub num_in_memory: u64,
    /// Waits on pending objects here (each `get`, `wait` or task argument waiting on one).
    pub num_waiters: u64,
    /// Bytes held in memory (estimated for live values).
    pub bytes_in_memory: u64,
    /// Objects currently on disk.
    pub num_spilled: u64,
    /// Bytes currently on disk.
    pub bytes_spilled: u64,
    /// The memory budget.
    pub memory_budget: u64,
    /// Objects spilled since start.
    pub total_spilled: u64,
    /// Objects read back from disk since start.
    pub total_restored: u64,
    /// Reads of spill files since start (a `get`, a pull served, a restore).
    pub total_spill_reads: u64,
}

/// What the store holds for an id.
pub enum Lookup {
    /// The value (live, or bytes read back from disk).
    Ready(Value),
    /// The task that was to make it failed.
    Failed(Arc<TaskError>),
    /// Not made yet.
    Pending,
    /// Not in the store.
    Missing,
}

/// Where an object is, without reading it from disk.
pub enum Resident {
    /// In memory.
    Memory(Value),
    /// On disk, this many bytes encoded.
    Spilled(u64),
    /// The task that was to make it failed.
    Failed(Arc<TaskError>),
    /// Not made yet.
    Pending,
    /// Not in the store.
    Missing,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident").finish_non_exhaustive()
    }
}

/// Readiness of an object, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// In memory or on disk.
    Ready,
    /// Failed.
    Failed,
    /// Not made yet.
    Pending,
    /// Not in the store.
    Missing,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").finish_non_exhaustive()
    }
}
