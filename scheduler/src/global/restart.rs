//! Placing again an actor whose node died ([`RestartActor`], from the actor table on the head):
//! its kept creation task, marked as restart number `num_restarts`, is placed like any task
//! (the node it lands on constructs the actor and reports it alive, or dead when it cannot host
//! it). No node hands it over, so nobody hears where it went; when the head finds no node to
//! take it, the actor table records the actor dead with the reason, and when the node it went
//! to dies first, the actor table places it again.

use actix::prelude::*;
use raya_cluster::gcs::actors::{ActorState, RestartActor, UpdateActor};
use raya_common::TaskErrorKind;

use super::GlobalScheduler;
use crate::task_spec::{TaskKind, TaskSpec};

impl Handler<RestartActor> for GlobalScheduler {
    type Result = ();

    fn handle(&mut self, m: RestartActor, ctx: &mut Context<Self>) {
        let spec = match restart_spec(&m) {
            Ok(spec) => spec,
            Err(reason) => {
                tracing::warn!(actor = %m.actor, %reason, "cannot restart the actor");
                self.restart_failed(m.actor, reason);
                return;
            }
        };
        let from = spec.origin;
        self.schedule(spec, from, Vec::new(), ctx);
    }
}

/// The creation task of `m`, checked, as restart number `m.num_restarts`.
fn restart_spec(m: &RestartActor) -> Result<TaskSpec, String> {
    let mut spec: TaskSpec = raya_cluster::transport::decode_body(&m.spec)
        .map_err(|e| format!("its kept creation task does not decode: {e}"))?;
    spec.check_from_wire()?;
    if spec.origin != m.creator {
        return Err("its kept creation task names another creator".into());
    }
    let TaskKind::ActorCreation { actor, options, .. } = &mut spec.kind else {
        return Err("its kept creation task creates no actor".into());
    };
    if *actor != m.actor {
        return Err("its kept creation task creates another actor".into());
    }
    options.restarts = m.num_restarts;
    spec.attempt = u32::try_from(m.num_restarts).unwrap_or(u32::MAX);
    if let Some(node) = m.on {
        spec.strategy = crate::task_spec::SchedulingStrategy::NodeAffinity { node, soft: true };
    }
    Ok(spec)
}

impl GlobalScheduler {
    /// Records the actor placed again by `RestartActor` dead: no node could take it.
    pub(super) fn restart_failed(&self, actor: raya_common::ActorId, reason: String) {
        self.gcs.notify(UpdateActor {
            actor_id: actor,
            state: ActorState::Dead,
            node: None,
            num_restarts: 0,
            death_cause: Some(format!(
                "its node died and it could not be restarted elsewhere: {reason}"
            )),
        });
    }

    /// Fails a task the scheduler cannot place: a restart makes its actor dead, any other task
    /// goes back to `from` with `reason`.
    pub(super) fn cannot_place(
        &mut self,
        spec: TaskSpec,
        from: raya_common::NodeId,
        reason: String,
        kind: TaskErrorKind,
    ) {
        match spec.restarted_actor() {
            Some(actor) => self.restart_failed(actor, reason),
            None => self.unschedulable(spec, from, reason, kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use raya_common::{ActorId, NodeId, ResourceSet, TaskId};

    use super::*;
    use crate::task_spec::{CreationOptions, test_spec};

    /// The creation task of actor `seq` made by `creator`, encoded as its creator keeps it.
    fn kept(creator: NodeId, seq: u128) -> (ActorId, Vec<u8>) {
        let id = (u128::from(creator.tag()) << 64) | seq;
        let mut spec = test_spec(TaskId(id));
        spec.origin = creator;
        spec.kind = TaskKind::ActorCreation {
            actor: ActorId(id),
            lifetime: ResourceSet::new(),
            options: CreationOptions::default(),
        };
        let bytes = raya_cluster::transport::encode_body(&spec).unwrap();
        (ActorId(id), bytes)
    }

    #[test]
    fn a_restart_is_placed_from_the_kept_task_only_when_it_names_the_actor_and_its_creator() {
        let creator = NodeId::random();
        let (actor, spec) = kept(creator, 7);
        let m = RestartActor {
            actor,
            num_restarts: 2,
            spec: spec.clone(),
            creator,
            on: None,
        };
        let placed = restart_spec(&m).unwrap();
        assert_eq!(placed.restarted_actor(), Some(actor));
        assert_eq!(placed.attempt, 2);
        // A restart the head had placed before it stopped goes back to that node first.
        let there = NodeId::random();
        let again = restart_spec(&RestartActor {
            on: Some(there),
            ..m.clone()
        })
        .unwrap();
        assert_eq!(
            again.strategy,
            crate::task_spec::SchedulingStrategy::NodeAffinity {
                node: there,
                soft: true
            }
        );

        let (other, _) = kept(creator, 8);
        let wrong_actor = RestartActor {
            actor: other,
            ..m.clone()
        };
        assert!(
            restart_spec(&wrong_actor)
                .unwrap_err()
                .contains("another actor")
        );
        let wrong_creator = RestartActor {
            creator: NodeId::random(),
            ..m.clone()
        };
        assert!(
            restart_spec(&wrong_creator)
                .unwrap_err()
                .contains("another creator")
        );
        let garbage = RestartActor {
            spec: vec![0xff; 3],
            ..m
        };
        assert!(
            restart_spec(&garbage)
                .unwrap_err()
                .contains("does not decode")
        );
    }
}
