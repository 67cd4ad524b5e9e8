//! The node manager: the node's membership in the cluster, and the placement of actors.

use std::sync::Arc;

use actix::prelude::*;
use raya_cluster::GcsError;
use raya_cluster::gcs::functions::{FunctionInfo, FunctionKind, RegisterFunctions};
use raya_cluster::gcs::jobs::FinishJob;
use raya_cluster::gcs::nodes::{NodeInfo, NodeState, RegisterNode, UnregisterNode};
use raya_cluster::gcs::task_events::AddTaskEvents;
use raya_common::ResourceSet;
use raya_scheduler::{TaskDone, TaskKind, TaskOutcome, WorkerCommand};

use crate::actor::HostControl;
use crate::registry::{ACTOR_CLASSES, REMOTE_FUNCTIONS};
use crate::runtime::NodeShared;

/// The node manager actor. It registers the node and the functions and actor types its binary
/// links with the GCS, unregisters it on shutdown, and hands actor creations that the local
/// scheduler placed (their resources reserved) to the actors' hosts, which run the constructors.
pub(crate) struct NodeManager {
    pub(crate) rt: Arc<NodeShared>,
}

impl Actor for NodeManager {
    type Context = Context<Self>;
}

/// Registers the node (with its total resources) and its function table.
#[derive(Message)]
#[rtype(result = "Result<(), GcsError>")]
pub(crate) struct JoinCluster {
    pub(crate) total: ResourceSet,
}

/// Flushes the node's task records, finishes its job and unregisters it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LeaveCluster;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl Handler<JoinCluster> for NodeManager {
    type Result = ResponseFuture<Result<(), GcsError>>;
    fn handle(&mut self, m: JoinCluster, _: &mut Context<Self>) -> Self::Result {
        let gcs = self.rt.gcs().clone();
        let node = self.rt.node;
        let now = raya_cluster::time::now_ms();
        let info = NodeInfo {
            node_id: node,
            state: NodeState::Alive,
            is_head: self.rt.is_head,
            hostname: hostname(),
            addresses: self
                .rt
                .net
                .as_ref()
                .map(|n| {
                    raya_cluster::net::sockets_reachable_first(&n.listen_addrs())
                        .iter()
                        .map(|a| a.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            resources_total: m.total.clone(),
            resources_available: m.total,
            queued_tasks: 0,
            pending_demand: Vec::new(),
            start_time_ms: now,
            end_time_ms: None,
            last_heartbeat_ms: now,
            death_reason: None,
        };
        let functions = REMOTE_FUNCTIONS
            .iter()
            .map(|f| FunctionInfo {
                name: f.name.to_string(),
                kind: FunctionKind::Function,
            })
            .chain(ACTOR_CLASSES.iter().map(|c| FunctionInfo {
                name: c.name.to_string(),
                kind: FunctionKind::ActorClass,
            }))
            .collect();
        Box::pin(async move {
            // Functions first: once the node is alive, schedulers may send it work.
            gcs.request(RegisterFunctions { node, functions }).await?;
            gcs.request(RegisterNode(info)).await
        })
    }
}

impl Handler<LeaveCluster> for NodeManager {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: LeaveCluster, _: &mut Context<Self>) -> Self::Result {
        let gcs = self.rt.gcs().clone();
        // The last records, bounded like every flush: shutting down must stay quick.
        let (events, _) = self.rt.events.drain_at_most(10_000);
        let (node, job) = (self.rt.node, self.rt.job);
        Box::pin(async move {
            if !events.is_empty()
                && let Err(e) = gcs.request(AddTaskEvents(events)).await
            {
                tracing::warn!(error = %e, "last task records not saved");
            }
            if let Err(e) = gcs.request(FinishJob(job)).await {
                tracing::warn!(error = %e, "job not marked finished");
            }
            let bye = UnregisterNode {
                node,
                reason: "shut down".into(),
            };
            if let Err(e) = gcs.request(bye).await {
                tracing::warn!(error = %e, "node not unregistered");
            }
        })
    }
}

impl Handler<crate::actor::remote::DeliverCalls> for NodeManager {
    type Result = MessageResult<crate::actor::remote::DeliverCalls>;
    fn handle(
        &mut self,
        m: crate::actor::remote::DeliverCalls,
        _: &mut Context<Self>,
    ) -> Self::Result {
        MessageResult(crate::actor::remote::deliver(&self.rt, m.0))
    }
}

impl Handler<crate::actor::remote::ControlActor> for NodeManager {
    type Result = bool;
    fn handle(&mut self, m: crate::actor::remote::ControlActor, _: &mut Context<Self>) -> bool {
        self.rt.actors.control(m.actor, m.control.into())
    }
}

impl Handler<raya_cluster::gcs::GcsEvent> for NodeManager {
    type Result = ();
    fn handle(&mut self, ev: raya_cluster::gcs::GcsEvent, _: &mut Context<Self>) {
        if let raya_cluster::gcs::GcsEvent::NodeDead { node, reason } = ev
            && node != self.rt.node
        {
            if reason == "shut down" {
                tracing::info!(%node, "node left the cluster");
            } else {
                tracing::warn!(%node, %reason, "node died");
            }
            if let Some(o) = &self.rt.objects {
                o.do_send(raya_store::NodeGone(node));
            }
            crate::actor::remote::node_died(&self.rt, node);
        }
    }
}

impl Handler<WorkerCommand> for NodeManager {
    type Result = ();
    fn handle(&mut self, cmd: WorkerCommand, _: &mut Context<Self>) {
        let WorkerCommand::Execute(spec) = cmd else {
            return;
        };
        let TaskKind::ActorCreation { actor, .. } = spec.kind.clone() else {
            tracing::error!(task = %spec.task_id, "node manager given a task that creates no actor");
            return;
        };
        let task_id = spec.task_id;
        if spec.origin != self.rt.node && self.rt.actors.host_missing(actor) {
            // Placed here by the cluster: start its host from the registry.
            let class = ACTOR_CLASSES
                .iter()
                .find(|c| *c.name == *spec.function.name);
            match class {
                Some(c) => {
                    (c.start)(crate::actor::host::HostStart {
                        rt: Arc::clone(&self.rt),
                        spec,
                    });
                    return;
                }
                None => {
                    tracing::error!(class = %spec.function.name, "placed an actor whose type this binary does not link");
                }
            }
        }
        if !self.rt.actors.control(actor, HostControl::Construct(spec)) {
            tracing::debug!(%actor, "actor gone before it was placed");
            self.rt.scheduler().do_send(TaskDone {
                worker: None,
                task_id,
                outcome: TaskOutcome::Failed,
            });
        }
    }
}
