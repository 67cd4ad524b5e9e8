//! The object store's mailbox: the [`ObjectStore`] actor, which reports the node's object
//! locations to the GCS object table in batches.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::objects::UpdateObjectLocations;

use super::StoreCore;

/// The store actor of a node: every `flush_every` it takes the objects added to and removed from
/// the store since the last report and sends them to the GCS (`gcs/UpdateObjectLocations`).
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

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("flush_every", &self.flush_every)
            .finish_non_exhaustive()
    }
}
