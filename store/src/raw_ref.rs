//! Untyped, reference-counted handles to objects.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, RwLock};

use raya_common::{ActorId, NodeId, ObjectId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::object_store::StoreCore;

/// One counted reference to an object of the node's store. Cloning is cheap (an `Arc` clone,
/// not a new count); the object is freed when the last `RawRef` to it — in any value, task or
/// thread of the node — is dropped.
#[derive(Clone)]
pub struct RawRef(Arc<RefInner>);

struct RefInner {
    id: ObjectId,
    owner: NodeId,
    actor: Option<ActorId>,
    store: Arc<StoreCore>,
}

impl Drop for RefInner {
    fn drop(&mut self) {
        self.store.remove_ref(self.id);
    }
}

impl RawRef {
    /// Wraps a reference the store already counted.
    pub(crate) fn counted(
        store: Arc<StoreCore>,
        id: ObjectId,
        owner: NodeId,
        actor: Option<ActorId>,
    ) -> RawRef {
        RawRef(Arc::new(RefInner {
            id,
            owner,
            actor,
            store,
        }))
    }

    /// The actor whose method call makes this object, when it is an actor call's result (used
    /// to route a cancellation to the actor).
    pub fn actor(&self) -> Option<ActorId> {
        self.0.actor
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.0.id
    }

    /// The node that created the reference.
    pub fn owner(&self) -> NodeId {
        self.0.owner
    }

    /// The store holding the object.
    pub fn store(&self) -> &Arc<StoreCore> {
        &self.0.store
    }
}

impl fmt::Debug for RawRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({})", self.0.id)
    }
}

impl PartialEq for RawRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for RawRef {}

static CURRENT: RwLock<Option<Arc<StoreCore>>> = RwLock::new(None);

/// Sets the store that references deserialized in this process attach to (the node's store);
/// `None` on shutdown.
pub fn set_current_store(store: Option<Arc<StoreCore>>) {
    *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = store;
}

/// The store references deserialized in this process attach to.
pub fn current_store() -> Option<Arc<StoreCore>> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

thread_local! {
    static COLLECTOR: RefCell<Option<Vec<RawRef>>> = const { RefCell::new(None) };
}

/// Runs `f` (which serializes something) and returns its result with every reference the
/// serialized data contains, so the caller can keep those objects alive as long as the bytes.
pub fn collect_refs<R>(f: impl FnOnce() -> R) -> (R, Vec<RawRef>) {
    let outer = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let found = COLLECTOR
        .with(|c| std::mem::replace(&mut *c.borrow_mut(), outer))
        .unwrap_or_default();
    (r, found)
}

#[derive(Serialize, Deserialize)]
struct Wire {
    id: ObjectId,
    owner: NodeId,
    actor: Option<ActorId>,
}

impl Serialize for RawRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        COLLECTOR.with(|c| {
            if let Some(v) = c.borrow_mut().as_mut() {
                v.push(self.clone());
            }
        });
        // A message naming the object keeps it alive until its receiver counted its own.
        raya_cluster::transport::inflight::keep(Arc::clone(&self.0) as _);
        Wire {
            id: self.0.id,
            owner: self.0.owner,
            actor: self.0.actor,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = Wire::deserialize(d)?;
        let store = current_store().ok_or_else(|| {
            D::Error::custom(
                "an ObjectRef can only be deserialized while a Raya runtime is running",
            )
        })?;
        Ok(store.attach(w.id, w.owner, w.actor))
    }
}
