//! The actor table: every actor's state, node and restarts, the names of named actors, and
//! the creation tasks of actors that may restart on another node ([`restarts`]).

mod restarts;

pub use restarts::{
    KeepActorCreation, MAX_CREATION_BYTES, MAX_KEPT_CREATION_BYTES, MAX_KEPT_PER_CREATOR,
    RestartActor, SetActorRestarter,
};

use std::collections::HashMap;

use actix::prelude::*;
use raya_common::{ActorId, JobId, NodeId, ResourceSet};
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, GcsEvent, gcs_requests};
use raya_common::time::now_ms;

/// An actor's lifecycle state.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorState {
    /// Waiting for resources or for its constructor to finish.
    PendingCreation,
    /// Constructed and serving calls.
    Alive,
    /// Crashed and being constructed again.
    Restarting,
    /// Gone for good.
    Dead,
}

/// An actor's record.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// The actor.
    pub actor_id: ActorId,
    /// Its Rust type (registered class name).
    pub class_name: String,
    /// Its name, when named.
    pub name: Option<String>,
    /// The namespace the name lives in.
    pub namespace: String,
    /// The job that created it.
    pub job: JobId,
    /// The node hosting it.
    pub node: Option<NodeId>,
    /// Lifecycle state.
    pub state: ActorState,
    /// Survives its creator (only `kill` ends it).
    pub detached: bool,
    /// Allowed restarts (-1: unlimited).
    pub max_restarts: i64,
    /// How often a call that may have run is run again (-1: always): what a caller on another
    /// node that found the actor by name keeps to.
    pub max_task_retries: i64,
    /// Restarts so far.
    pub num_restarts: u64,
    /// Why it died.
    pub death_cause: Option<String>,
    /// Resources held while alive.
    pub resources: ResourceSet,
    /// Registration time (ms since the epoch).
    pub start_time_ms: u64,
    /// Death time.
    pub end_time_ms: Option<u64>,
}

/// Registers a new actor. Fails with [`GcsError::NameTaken`] when its name is already used by a
/// live actor of the same namespace.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct RegisterActor(pub ActorInfo);

/// Changes an actor's state.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct UpdateActor {
    /// The actor.
    pub actor_id: ActorId,
    /// New state.
    pub state: ActorState,
    /// Its node, when known.
    pub node: Option<NodeId>,
    /// Restarts so far.
    pub num_restarts: u64,
    /// Why it died (with `Dead`).
    pub death_cause: Option<String>,
}

/// One actor's record.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<ActorInfo>, GcsError>")]
pub struct GetActor(pub ActorId);

/// The live actor with `name` in `namespace`.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<ActorInfo>, GcsError>")]
pub struct GetNamedActor {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

/// Actor records; dead ones only when asked.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<ActorInfo>, GcsError>")]
pub struct ListActors {
    /// Include dead actors.
    pub include_dead: bool,
}

gcs_requests! {
    ActorTable, actors:
    RegisterActor => () as "gcs/RegisterActor",
        where |m, from| from.made(m.0.actor_id.node_tag(), "the actor registered");
    UpdateActor => () as "gcs/UpdateActor",
        where |m, from| match m.node {
            Some(node) => from.is(node, "an actor's new state"),
            None => Err("an actor's new state names no node".into()),
        };
    GetActor => Option<ActorInfo> as "gcs/GetActor", access = Read;
    GetNamedActor => Option<ActorInfo> as "gcs/GetNamedActor", access = Read;
    ListActors => Vec<ActorInfo> as "gcs/ListActors", access = Read;
    KeepActorCreation => () as "gcs/KeepActorCreation",
        where |m, from| {
            from.made(m.actor.node_tag(), "the actor whose creation is kept")?;
            from.is(m.creator, "an actor's creator")?;
            m.check_size()
        };
}

/// Where the head placed the creation of each actor it placed lately: the only node, besides
/// the one recorded, an actor's record may move to (so a member cannot claim another's actor
/// while it is being created, and receive its calls). Written by the head's global scheduler
/// before it sends the placement, read by the actor table, and let go once the placed node
/// reported the actor (so it holds the creations in flight). Keeps the latest
/// [`MAX_PLACEMENTS_KEPT`] placements.
///
/// The head's placements are on disk too (the `actor_placements` tree, written through sled's
/// log, which reaches the disk within the database's flush interval): a head restarted on its
/// directory still knows where it sent the restarts in flight, so the node that got one is
/// believed when it reports the actor, and the restart is sent there again rather than to
/// another node (which would leave two instances).
#[derive(Debug, Clone, Default)]
pub struct Placements(std::sync::Arc<std::sync::Mutex<PlacedActors>>);

/// Placements kept, at most (the oldest are let go).
pub const MAX_PLACEMENTS_KEPT: usize = 1 << 20;

/// The placements, and the order they came in (an entry let go early stays in the order until
/// its turn; the generation tells it from a later placement of the same actor).
#[derive(Debug, Default)]
struct PlacedActors {
    at: HashMap<ActorId, (NodeId, u64)>,
    order: std::collections::VecDeque<(ActorId, u64)>,
    generation: u64,
    /// Where they are on disk (none in a table that is not persisted, as in tests).
    tree: Option<sled::Tree>,
}

impl PlacedActors {
    fn store(&self, actor: ActorId, node: Option<NodeId>) {
        let Some(tree) = &self.tree else { return };
        let written = postcard::to_stdvec(&actor)
            .map_err(|e| e.to_string())
            .and_then(|k| match node {
                Some(n) => postcard::to_stdvec(&n)
                    .map_err(|e| e.to_string())
                    .and_then(|v| tree.insert(k, v).map(|_| ()).map_err(|e| e.to_string())),
                None => tree.remove(k).map(|_| ()).map_err(|e| e.to_string()),
            });
        if let Err(e) = written {
            tracing::warn!(actor = %actor, error = %e, "could not write an actor placement to disk");
        }
    }
}

impl Placements {
    /// The placements stored in `db` by an earlier run of the head, kept there from now on.
    pub(crate) fn open(db: &sled::Db) -> Result<Placements, GcsError> {
        let tree = db
            .open_tree("actor_placements")
            .map_err(|e| GcsError::Storage(e.to_string()))?;
        let placements = Placements::default();
        {
            let mut p = placements.0.lock().unwrap_or_else(|e| e.into_inner());
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| GcsError::Storage(e.to_string()))?;
                match (
                    postcard::from_bytes::<ActorId>(&k),
                    postcard::from_bytes::<NodeId>(&v),
                ) {
                    (Ok(actor), Ok(node)) => p.insert(actor, node),
                    _ => tracing::warn!("dropping an actor placement that does not decode"),
                }
            }
            p.tree = Some(tree);
        }
        Ok(placements)
    }

    /// Records that the head placed `actor`'s creation on `node`.
    pub fn record(&self, actor: ActorId, node: NodeId) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.store(actor, Some(node));
        p.insert(actor, node);
    }

    /// Resolves once every placement recorded so far is on disk (at once for placements kept
    /// in memory only). The flush runs on sled's threads; a failure is logged.
    pub fn flushed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let tree = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tree
            .clone();
        async move {
            if let Some(tree) = tree
                && let Err(e) = tree.flush_async().await
            {
                tracing::warn!(error = %e, "could not write the actor placements to disk");
            }
        }
    }

    /// Where the head last placed `actor`'s creation, if it did lately.
    pub fn placed(&self, actor: ActorId) -> Option<NodeId> {
        let p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.at.get(&actor).map(|(n, _)| *n)
    }

    /// Lets go of `actor`'s placement (its node reported it, or it died; a later move is a new
    /// placement).
    fn settled(&self, actor: ActorId) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.at.remove(&actor).is_some() {
            p.store(actor, None);
        }
    }
}

impl PlacedActors {
    /// Keeps `actor`'s placement on `node` in memory, letting go of the oldest past the bound.
    fn insert(&mut self, actor: ActorId, node: NodeId) {
        self.generation += 1;
        let g = self.generation;
        self.at.insert(actor, (node, g));
        self.order.push_back((actor, g));
        while self.order.len() > MAX_PLACEMENTS_KEPT {
            if let Some((old, g)) = self.order.pop_front()
                && self.at.get(&old).is_some_and(|(_, now)| *now == g)
            {
                self.at.remove(&old);
                self.store(old, None);
            }
        }
    }
}

/// The actor table actor.
pub struct ActorTable {
    actors: Persisted<ActorId, ActorInfo>,
    names: HashMap<(String, String), ActorId>,
    /// Where the head placed actors: the only node an actor's record moves to.
    placements: Placements,
    /// The creation tasks of actors that may restart on another node, and their total size.
    creations: Persisted<ActorId, restarts::Creation>,
    creation_bytes: usize,
    /// The size of the kept creation tasks, per creator.
    creation_bytes_by: HashMap<NodeId, usize>,
    /// Where the creation tasks of actors to restart go (the head's global scheduler).
    restarter: Option<Recipient<RestartActor>>,
}

impl ActorTable {
    pub(crate) fn load(db: &sled::Db, placements: Placements) -> Result<Self, GcsError> {
        let actors: Persisted<ActorId, ActorInfo> = Persisted::open(db, "actors")?;
        let names = actors
            .values()
            .filter(|a| a.state != ActorState::Dead)
            .filter_map(|a| {
                a.name
                    .clone()
                    .map(|n| ((a.namespace.clone(), n), a.actor_id))
            })
            .collect();
        let mut creations: Persisted<ActorId, restarts::Creation> =
            Persisted::open(db, "actor_creations")?;
        // An actor's death and the removal of its creation task are two writes: a crash
        // between them leaves a task no restart needs, charged to its creator for good.
        let stale: Vec<ActorId> = creations
            .iter()
            .filter(|(id, _)| actors.get(id).is_none_or(|a| a.state == ActorState::Dead))
            .map(|(id, _)| *id)
            .collect();
        if !stale.is_empty() {
            tracing::info!(
                count = stale.len(),
                "dropping the creation tasks of actors that died"
            );
            if let Err(e) = creations.apply(stale.into_iter().map(|id| (id, None)).collect()) {
                tracing::warn!(error = %e, "could not drop the creation tasks of dead actors");
            }
        }
        let creation_bytes = creations.values().map(|c| c.spec.len()).sum();
        let mut creation_bytes_by: HashMap<NodeId, usize> = HashMap::new();
        for c in creations.values() {
            *creation_bytes_by.entry(c.creator).or_default() += c.spec.len();
        }
        Ok(ActorTable {
            actors,
            names,
            placements,
            creations,
            creation_bytes,
            creation_bytes_by,
            restarter: None,
        })
    }

    fn set_dead(&mut self, mut info: ActorInfo, cause: String) -> Result<(), GcsError> {
        info.state = ActorState::Dead;
        info.death_cause = Some(cause);
        info.end_time_ms = Some(now_ms());
        if let Some(n) = &info.name {
            let key = (info.namespace.clone(), n.clone());
            if self.names.get(&key) == Some(&info.actor_id) {
                self.names.remove(&key);
            }
        }
        let id = info.actor_id;
        self.actors.insert(id, info)?;
        self.forget_creation(id);
        self.placements.settled(id);
        Ok(())
    }
}

impl Actor for ActorTable {
    type Context = Context<Self>;
}

impl Handler<RegisterActor> for ActorTable {
    type Result = Result<(), GcsError>;
    fn handle(
        &mut self,
        RegisterActor(info): RegisterActor,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if let Some(name) = &info.name {
            if name.is_empty() {
                return Err(GcsError::Invalid("actor names must not be empty".into()));
            }
            let key = (info.namespace.clone(), name.clone());
            if let Some(holder) = self.names.get(&key)
                && *holder != info.actor_id
            {
                return Err(GcsError::NameTaken {
                    name: name.clone(),
                    namespace: info.namespace.clone(),
                });
            }
            self.names.insert(key, info.actor_id);
        }
        self.actors.insert(info.actor_id, info)?;
        Ok(())
    }
}

impl Handler<UpdateActor> for ActorTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: UpdateActor, _: &mut Context<Self>) -> Self::Result {
        let Some(mut info) = self.actors.get(&m.actor_id).cloned() else {
            return Err(GcsError::NotFound(format!("actor {}", m.actor_id)));
        };
        if info.state == ActorState::Dead {
            // A death told twice is taken; an instance that says it lives is told it must not.
            return match m.state {
                ActorState::Alive | ActorState::Restarting => Err(GcsError::ActorDead(
                    info.death_cause.unwrap_or_else(|| "killed".into()),
                )),
                _ => Ok(()),
            };
        }
        // The node reporting (the router checked it is the sender) must be the actor's: the
        // one recorded, or the one the head placed its creation on.
        if let Some(from) = m.node
            && info.node != Some(from)
            && self.placements.placed(m.actor_id) != Some(from)
        {
            let at = info
                .node
                .map_or_else(|| "no node".to_string(), |n| format!("node {n}"));
            let why = format!(
                "actor {} lives on {at}, and the head did not place it on {from}",
                m.actor_id
            );
            // Only a node the head knows hosts the actor makes the reporter's instance a
            // stray one. A record still at its creator, or restarting nowhere, with no
            // placement known (a restarted head forgot where it sent it) says nothing of
            // the kind: refused, and the reporter keeps its instance.
            let known = self.placements.placed(m.actor_id).is_some()
                || matches!(info.state, ActorState::Alive | ActorState::Restarting)
                    && info.node.is_some();
            return Err(if known {
                GcsError::ActorElsewhere(why)
            } else {
                GcsError::Invalid(why)
            });
        }
        info.num_restarts = info.num_restarts.max(m.num_restarts);
        if m.node.is_some() {
            if info.node != m.node {
                self.placements.settled(m.actor_id);
            }
            info.node = m.node;
        }
        if m.state == ActorState::Dead {
            return self.set_dead(info, m.death_cause.unwrap_or_else(|| "killed".into()));
        }
        info.state = m.state;
        self.actors.insert(m.actor_id, info)?;
        Ok(())
    }
}

impl Handler<GetActor> for ActorTable {
    type Result = Result<Option<ActorInfo>, GcsError>;
    fn handle(&mut self, GetActor(id): GetActor, _: &mut Context<Self>) -> Self::Result {
        Ok(self.actors.get(&id).cloned())
    }
}

impl Handler<GetNamedActor> for ActorTable {
    type Result = Result<Option<ActorInfo>, GcsError>;
    fn handle(&mut self, m: GetNamedActor, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .names
            .get(&(m.namespace, m.name))
            .and_then(|id| self.actors.get(id))
            .cloned())
    }
}

impl Handler<ListActors> for ActorTable {
    type Result = Result<Vec<ActorInfo>, GcsError>;
    fn handle(&mut self, m: ListActors, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .actors
            .values()
            .filter(|a| m.include_dead || a.state != ActorState::Dead)
            .cloned()
            .collect())
    }
}

impl Handler<GcsEvent> for ActorTable {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        if let GcsEvent::NodeDead { node, reason } = ev {
            self.node_died(node, &reason);
        }
    }
}

impl std::fmt::Debug for ActorTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorTable").finish_non_exhaustive()
    }
}
