//! Restarting actors whose node died, on another node.
//!
//! The creator of an actor that may restart (`max_restarts` ≠ 0) keeps its creation task in
//! the actor table ([`KeepActorCreation`], encoded by the scheduler: the table does not read
//! it). When a node dies, each actor recorded there that still has restarts left, and whose
//! creator is alive or which is detached, becomes `Restarting` with no node, its restart
//! counted, and its creation task goes to the head's global scheduler ([`RestartActor`]), which
//! places it anew; the node it lands on reports it `Alive` there (or `Dead`, when it cannot
//! host it), and if that node dies first the actor is placed again. The others become
//! `Dead`, and so do the actors a dead node created and did not detach. A creation task is
//! kept once per actor, and only for actors that may restart.
//!
//! The kept tasks are bounded ([`MAX_CREATION_BYTES`] each, [`MAX_KEPT_PER_CREATOR`] for one
//! creator, so one cannot take what the others need, and [`MAX_KEPT_CREATION_BYTES`] in all)
//! and let go when their actor dies; they are on disk, so a head restarted on its
//! directory restarts what was `Restarting` when it stopped: on the node it had placed the
//! restart on, when its placement reached the disk (that node may run the actor already).

use actix::prelude::*;
use raya_common::{ActorId, NodeId};
use serde::{Deserialize, Serialize};

use super::{ActorInfo, ActorState, ActorTable};
use crate::gcs::GcsError;

/// The bytes of one kept creation task, at most (its by-value constructor arguments included).
pub const MAX_CREATION_BYTES: usize = 4 << 20;

/// The bytes of all kept creation tasks, at most: past it, a new actor cannot be restarted on
/// another node (its creator logs why).
pub const MAX_KEPT_CREATION_BYTES: usize = 1 << 30;

/// The bytes of the creation tasks kept for one creator, at most (the same holds past it).
pub const MAX_KEPT_PER_CREATOR: usize = 64 << 20;

/// Keeps the creation task of actor `actor`, created by node `creator`, so the head can place
/// it again when the actor's node dies. Sent by the creator after `RegisterActor`, for actors
/// that may restart.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct KeepActorCreation {
    /// The actor.
    pub actor: ActorId,
    /// The node that created it (its owner).
    pub creator: NodeId,
    /// The creation task, as the scheduler encodes it.
    pub spec: Vec<u8>,
}

impl KeepActorCreation {
    /// Checks the request's size (the sender is checked where the request is declared).
    pub(crate) fn check_size(&self) -> Result<(), String> {
        if self.spec.len() > MAX_CREATION_BYTES {
            return Err(format!(
                "a creation task of {} bytes, more than the {MAX_CREATION_BYTES} kept",
                self.spec.len()
            ));
        }
        Ok(())
    }
}

/// A kept creation task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Creation {
    pub(super) creator: NodeId,
    pub(super) spec: Vec<u8>,
}

/// Place actor `actor` again, from its creation task `spec`: its node died, and this is its
/// restart number `num_restarts`. Sent by the actor table to the restarter (the head's global
/// scheduler). Local wiring only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RestartActor {
    /// The actor.
    pub actor: ActorId,
    /// Its restarts, this one included.
    pub num_restarts: u64,
    /// Its creation task, as kept.
    pub spec: Vec<u8>,
    /// The node that created it.
    pub creator: NodeId,
    /// The node it goes to, when the head placed this restart there before it stopped (the
    /// placement, on disk, may or may not have arrived): sent again there, so the instance that
    /// node may already run stays the only one. Another node only when that one cannot take it.
    pub on: Option<NodeId>,
}

/// Tells the actor table where restarts go ([`RestartActor`]); the actors left `Restarting`
/// when the head stopped go there at once. Local wiring only: without it, an actor whose node
/// dies is dead.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetActorRestarter(pub Recipient<RestartActor>);

impl Handler<KeepActorCreation> for ActorTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: KeepActorCreation, _: &mut Context<Self>) -> Self::Result {
        m.check_size().map_err(GcsError::Invalid)?;
        let Some(info) = self.actors.get(&m.actor) else {
            return Err(GcsError::NotFound(format!("actor {}", m.actor)));
        };
        if info.state == ActorState::Dead {
            return Ok(());
        }
        if info.max_restarts == 0 {
            return Err(GcsError::Invalid(format!(
                "actor {} may not restart: its creation task is not kept",
                m.actor
            )));
        }
        if self.creations.get(&m.actor).is_some() {
            // Kept once: an actor's creation task does not change.
            return Ok(());
        }
        let kept = self.creation_bytes + m.spec.len();
        let theirs = self.creation_bytes_by.get(&m.creator).copied().unwrap_or(0) + m.spec.len();
        if theirs > MAX_KEPT_PER_CREATOR {
            return Err(GcsError::Invalid(format!(
                "the head keeps {MAX_KEPT_PER_CREATOR} bytes of creation tasks for one creator at \
                 most: actor {} of node {} cannot be restarted on another node (pass large \
                 constructor arguments by reference)",
                m.actor, m.creator
            )));
        }
        if kept > MAX_KEPT_CREATION_BYTES {
            return Err(GcsError::Invalid(format!(
                "the head keeps {MAX_KEPT_CREATION_BYTES} bytes of creation tasks at most: actor \
                 {} cannot be restarted on another node",
                m.actor
            )));
        }
        self.creations.insert(
            m.actor,
            Creation {
                creator: m.creator,
                spec: m.spec,
            },
        )?;
        self.creation_bytes = kept;
        self.creation_bytes_by.insert(m.creator, theirs);
        Ok(())
    }
}

impl Handler<SetActorRestarter> for ActorTable {
    type Result = ();
    fn handle(&mut self, SetActorRestarter(r): SetActorRestarter, _: &mut Context<Self>) {
        self.restarter = Some(r);
        let waiting: Vec<ActorInfo> = self
            .actors
            .values()
            .filter(|a| a.state == ActorState::Restarting && a.node.is_none())
            .cloned()
            .collect();
        for a in waiting {
            let on = self.placements.placed(a.actor_id);
            self.send_restart_to(&a, on);
        }
    }
}

impl ActorTable {
    /// Lets go of actor `id`'s creation task (it died).
    pub(super) fn forget_creation(&mut self, id: ActorId) {
        match self.creations.remove(&id) {
            Ok(Some(c)) => {
                self.creation_bytes = self.creation_bytes.saturating_sub(c.spec.len());
                if let Some(b) = self.creation_bytes_by.get_mut(&c.creator) {
                    *b = b.saturating_sub(c.spec.len());
                    if *b == 0 {
                        self.creation_bytes_by.remove(&c.creator);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(actor = %id, error = %e, "could not let go of a creation task")
            }
        }
    }

    /// Node `node` died: the actors it created and did not detach die with it; those it hosted
    /// restart elsewhere when they may, else die.
    pub(super) fn node_died(&mut self, node: NodeId, reason: &str) {
        let orphans: Vec<ActorInfo> = self
            .creations
            .iter()
            .filter(|(_, c)| c.creator == node)
            .filter_map(|(id, _)| self.actors.get(id))
            .filter(|a| !a.detached && a.state != ActorState::Dead)
            .cloned()
            .collect();
        for a in orphans {
            let id = a.actor_id;
            let cause = format!("its creator, node {node}, died (the actor was not detached)");
            if let Err(e) = self.set_dead(a, cause) {
                tracing::warn!(actor = %id, error = %e, "could not record actor death");
            }
        }
        let on_node: Vec<ActorInfo> = self
            .actors
            .values()
            .filter(|a| self.was_on(a, node))
            .cloned()
            .collect();
        for a in on_node {
            let id = a.actor_id;
            let result = if self.may_restart(&a) {
                self.restart(a, node)
            } else {
                self.set_dead(a, format!("its node {node} died: {reason}"))
            };
            if let Err(e) = result {
                tracing::warn!(actor = %id, error = %e, "could not record that the actor's node died");
            }
        }
    }

    /// Whether actor `a` lived (or was being created or restarted) on node `node`: its record
    /// names the node and no placement elsewhere is in flight, or it was restarting and the
    /// head placed it there.
    fn was_on(&self, a: &ActorInfo, node: NodeId) -> bool {
        let placed = self.placements.placed(a.actor_id);
        match (a.state, a.node) {
            (ActorState::Dead, _) => false,
            // Its creation was handed to the head and went elsewhere: that node reports it.
            (ActorState::PendingCreation, Some(n)) => n == node && placed.is_none_or(|p| p == node),
            (ActorState::Restarting, None) => placed == Some(node),
            (_, n) => n == Some(node),
        }
    }

    /// Whether actor `a`, whose node died, is placed again: it has restarts left, a kept
    /// creation task and a restarter to send it to.
    fn may_restart(&self, a: &ActorInfo) -> bool {
        let left = a.max_restarts < 0 || a.num_restarts < a.max_restarts as u64;
        left && self.restarter.is_some() && self.creations.get(&a.actor_id).is_some()
    }

    /// Records actor `a` as restarting (on no node yet) and sends its creation task to be
    /// placed again.
    fn restart(&mut self, mut a: ActorInfo, dead: NodeId) -> Result<(), GcsError> {
        a.state = ActorState::Restarting;
        a.node = None;
        a.num_restarts += 1;
        tracing::info!(actor = %a.actor_id, %dead, restarts = a.num_restarts, "the actor's node died: restarting it elsewhere");
        self.actors.insert(a.actor_id, a.clone())?;
        self.send_restart(&a);
        Ok(())
    }

    fn send_restart(&self, a: &ActorInfo) {
        self.send_restart_to(a, None);
    }

    /// Sends actor `a`'s restart to be placed, on node `on` when given.
    fn send_restart_to(&self, a: &ActorInfo, on: Option<NodeId>) {
        if let (Some(r), Some(c)) = (&self.restarter, self.creations.get(&a.actor_id)) {
            r.do_send(RestartActor {
                actor: a.actor_id,
                num_restarts: a.num_restarts,
                spec: c.spec.clone(),
                creator: c.creator,
                on,
            });
        }
    }
}

#[cfg(test)]
mod tests;
