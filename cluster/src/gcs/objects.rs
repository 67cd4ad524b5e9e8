//! The object location table: which nodes hold a copy of each object.
//!
//! Object stores report additions and removals in batches; the table keeps locations in memory
//! and in sled, so that a restarted head still knows where the objects of surviving nodes are.

use actix::prelude::*;
use raya_common::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, GcsEvent, gcs_requests};

/// Where an object lives.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLocation {
    /// Nodes holding a copy.
    pub nodes: Vec<NodeId>,
    /// Size in bytes as reported by the first holder.
    pub size: u64,
}

/// A batch of location changes from one node's object store.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct UpdateObjectLocations {
    /// The reporting node.
    pub node: NodeId,
    /// Objects now held, with sizes.
    pub added: Vec<(ObjectId, u64)>,
    /// Objects no longer held.
    pub removed: Vec<ObjectId>,
}

/// The locations of one object.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<ObjectLocation>, GcsError>")]
pub struct GetObjectLocations(pub ObjectId);

/// How many objects have at least one location.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<usize, GcsError>")]
pub struct CountObjects;

gcs_requests! {
    ObjectTable, objects:
    UpdateObjectLocations => () as "gcs/UpdateObjectLocations", access = Notify,
        where |m, from| from.is(m.node, "an object location update");
    GetObjectLocations => Option<ObjectLocation> as "gcs/GetObjectLocations", access = Read;
    CountObjects => usize as "gcs/CountObjects", access = Read;
}

/// The object location table actor.
pub struct ObjectTable {
    locations: Persisted<ObjectId, ObjectLocation>,
}

impl ObjectTable {
    pub(crate) fn load(db: &sled::Db) -> Result<Self, GcsError> {
        Ok(ObjectTable {
            locations: Persisted::open(db, "objects")?,
        })
    }

    fn remove_node(
        &mut self,
        node: NodeId,
        objects: impl IntoIterator<Item = ObjectId>,
    ) -> Vec<(ObjectId, Option<ObjectLocation>)> {
        let mut ops = Vec::new();
        for id in objects {
            if let Some(loc) = self.locations.get(&id) {
                let mut loc = loc.clone();
                loc.nodes.retain(|n| *n != node);
                ops.push((id, (!loc.nodes.is_empty()).then_some(loc)));
            }
        }
        ops
    }
}

impl Actor for ObjectTable {
    type Context = Context<Self>;
}

impl Handler<UpdateObjectLocations> for ObjectTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: UpdateObjectLocations, _: &mut Context<Self>) -> Self::Result {
        let mut ops = Vec::with_capacity(m.added.len() + m.removed.len());
        for (id, size) in m.added {
            let mut loc = self.locations.get(&id).cloned().unwrap_or(ObjectLocation {
                nodes: Vec::new(),
                size,
            });
            if !loc.nodes.contains(&m.node) {
                loc.nodes.push(m.node);
            }
            ops.push((id, Some(loc)));
        }
        ops.extend(self.remove_node(m.node, m.removed));
        self.locations.apply(ops)
    }
}

impl Handler<GetObjectLocations> for ObjectTable {
    type Result = Result<Option<ObjectLocation>, GcsError>;
    fn handle(
        &mut self,
        GetObjectLocations(id): GetObjectLocations,
        _: &mut Context<Self>,
    ) -> Self::Result {
        Ok(self.locations.get(&id).cloned())
    }
}

impl Handler<CountObjects> for ObjectTable {
    type Result = Result<usize, GcsError>;
    fn handle(&mut self, _: CountObjects, _: &mut Context<Self>) -> Self::Result {
        Ok(self.locations.len())
    }
}

impl Handler<GcsEvent> for ObjectTable {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        if let GcsEvent::NodeDead { node, .. } = ev {
            let held: Vec<ObjectId> = self
                .locations
                .iter()
                .filter(|(_, l)| l.nodes.contains(&node))
                .map(|(id, _)| *id)
                .collect();
            let ops = self.remove_node(node, held);
            if let Err(e) = self.locations.apply(ops) {
                tracing::warn!(%node, error = %e, "could not drop a dead node's object locations");
            }
        }
    }
}

impl std::fmt::Debug for ObjectTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectTable").finish_non_exhaustive()
    }
}
