//! The actor table: every actor's state, node and restarts, the names of named actors, and
//! the creation tasks of actors that may restart on another node ([`restarts`]).

mod placements;
mod restarts;

pub use placements::{MAX_PLACEMENTS_KEPT, Placements};
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
        placements.retain(|id| {
            actors.get(&id).is_some_and(|a| {
                matches!(
                    a.state,
                    ActorState::PendingCreation | ActorState::Restarting
                )
            })
        });
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
            // The placed node reported it (or it moved): the placement is settled, also when
            // the record named that node already (a creation placed back on its creator).
            if info.node != m.node || self.placements.placed(m.actor_id) == m.node {
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
