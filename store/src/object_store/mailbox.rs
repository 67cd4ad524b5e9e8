//! The object store's mailbox: the [`ObjectStore`] actor.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::objects::UpdateObjectLocations;
use raya_common::ObjectId;
use serde::{Deserialize, Serialize};

use super::{Lookup, StoreCore, StoreError, StoreStats};

/// The store actor of a node: reports object locations to the GCS in batches and answers
/// requests that arrive as messages (from other actors of the node, or from other nodes).
pub struct ObjectStore {
    core: Arc<StoreCore>,
    gcs: Option<GcsHandle>,
    flush_every: Duration,
}

impl ObjectStore {
    /// A store actor over `core`, reporting locations to `gcs` every `flush_every`.
    pub fn new(core: Arc<StoreCore>, gcs: Option<GcsHandle>, flush_every: Duration) -> Self {
        ObjectStore {
            core,
            gcs,
            flush_every,
        }
    }

    fn flush_locations(&mut self) {
        let (added, removed) = self.core.drain_location_changes();
        if added.is_empty() && removed.is_empty() {
            return;
        }
        if let Some(gcs) = &self.gcs {
            gcs.notify(UpdateObjectLocations {
                node: self.core.node(),
                added,
                removed,
            });
        }
    }
}

impl Actor for ObjectStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.flush_every, |this, _| this.flush_locations());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.flush_locations();
    }
}

/// The store's counters.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "StoreStats")]
pub struct GetStoreStats;

impl Handler<GetStoreStats> for ObjectStore {
    type Result = MessageResult<GetStoreStats>;
    fn handle(&mut self, _: GetStoreStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.stats())
    }
}

/// Reads an object in its encoded form (the form in which it leaves the node). `Ok(None)` while
/// the object is still pending.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<Vec<u8>>, StoreError>")]
pub struct FetchObject(pub ObjectId);

impl Handler<FetchObject> for ObjectStore {
    type Result = Result<Option<Vec<u8>>, StoreError>;
    fn handle(&mut self, FetchObject(id): FetchObject, _: &mut Context<Self>) -> Self::Result {
        match self.core.get(id) {
            Lookup::Ready(v) => v
                .encode()
                .map(|b| Some(b.to_vec()))
                .map_err(|e| StoreError::Io(format!("object {id} cannot be encoded: {e}"))),
            Lookup::Pending => Ok(None),
            Lookup::Failed(e) => Err(StoreError::Io(format!("object {id} failed: {e}"))),
            Lookup::Missing => Err(StoreError::Missing(id)),
        }
    }
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore").finish_non_exhaustive()
    }
}
