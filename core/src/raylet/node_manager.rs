//! The node manager (Ray's raylet `NodeManager`): the node's membership in the cluster, and the
//! actors placed on it.
//!
//! It serves:
//! - [`JoinCluster`] / [`LeaveCluster`] from the runtime: registers the node (its resources and
//!   addresses) and the functions and actor types its binary links with the GCS, and at
//!   shutdown flushes the last task records, finishes the job and unregisters the node;
//! - [`CreateActor`] from the local scheduler: an actor creation whose placement resources are
//!   reserved here goes to the actor's host, which this node starts from the actor-type registry
//!   when another node created the actor;
//! - `node_manager/DeliverCalls` and `node_manager/ControlActor` from other nodes: calls and
//!   controls for the actors hosted here (declared with the calls' wire form in
//!   [`crate::actor_host::wire`]); calls a node passes on for another owner are delivered only
//!   once that owner confirmed it sent them there;
//! - [`GcsEvent`] from the GCS client: when another node dies, what this node expected from it
//!   fails (the object manager's objects, the calls to its actors).

use std::sync::Arc;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::actors::{ActorState, UpdateActor};
use raya_cluster::gcs::functions::{FunctionInfo, FunctionKind, RegisterFunctions};
use raya_cluster::gcs::jobs::FinishJob;
use raya_cluster::gcs::nodes::{GetNode, NodeInfo, NodeState, RegisterNode, UnregisterNode};
use raya_cluster::gcs::task_events::MAX_EVENTS_A_REQUEST;
use raya_cluster::gcs::task_events::{AddTaskEvents, TaskEventBuffer};
use raya_cluster::gcs::{GcsError, GcsEvent};
use raya_cluster::transport::{Network, Received, sockets_reachable_first};
use raya_common::{JobId, NodeId, ResourceSet, TaskId};
use raya_scheduler::{CreateActor, HeadRestarted, TaskDone, TaskKind, TaskOutcome};
use raya_store::{NodeBack, NodeGone, ObjectManager};

use crate::actor_host::env::HostEnv;
use crate::actor_host::wire::{ControlActor, DeliverCalls, deliver, unconfirmed_relays};
use crate::actor_host::{HostControl, HostStart};
use crate::registry::{ACTOR_CLASSES, REMOTE_FUNCTIONS};

/// The node manager actor (see the module docs).
pub(crate) struct NodeManager {
    pub(crate) node: NodeId,
    pub(crate) job: JobId,
    pub(crate) is_head: bool,
    /// Whether the node is a driver (see `Config::serves`).
    pub(crate) is_driver: bool,
    /// The node's labels.
    pub(crate) labels: raya_common::labels::NodeLabels,
    /// The node's network, when it is part of a cluster.
    pub(crate) net: Option<Network>,
    pub(crate) gcs: GcsHandle,
    /// The node's task records (the last are flushed at shutdown).
    pub(crate) events: TaskEventBuffer,
    /// The node's actor hosts and what they share.
    pub(crate) host_env: Arc<HostEnv>,
    /// The node's object manager, when it is part of a cluster.
    pub(crate) objects: Option<Addr<ObjectManager>>,
    /// Its liveness as the head sees it (see [`Fencing`]).
    pub(crate) fencing: Fencing,
}

/// What a node knows of its own liveness in the head's node table: once registered, it checks
/// its record once a second (`gcs/GetNode`), and a record saying this incarnation was declared
/// dead — the node stalled or was cut off for longer than the node timeout, and the cluster
/// moved its work elsewhere — fences it: it must not go on answering for objects and actors the
/// cluster gave up on (see `runtime::fence`).
#[derive(Debug, Default)]
pub(crate) struct Fencing {
    /// When this incarnation registered (its record's start time), once it did.
    joined_at: Option<u64>,
    /// Leaving on purpose: its own death notice is no fencing.
    leaving: bool,
    /// A check is in flight.
    checking: bool,
    /// Fenced already.
    fenced: bool,
    /// When the head this node knows registered (a different one means it restarted).
    head_started: Option<u64>,
}

/// How often a node checks that the head still counts it alive.
const LIVENESS_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for NodeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeManager")
            .field("node", &self.node)
            .field("is_head", &self.is_head)
            .finish_non_exhaustive()
    }
}

impl NodeManager {
    /// Runs the node manager in `ctx` (whose address the local scheduler already has) and, on a
    /// cluster node, serves what other nodes send it and follows the node table.
    pub(crate) fn launch(self, ctx: Context<Self>) -> Addr<Self> {
        let addr = ctx.address();
        if let Some(net) = &self.net {
            net.router().serve_received::<DeliverCalls, _>(addr.clone());
            net.router().serve::<ControlActor, _>(addr.clone());
            self.gcs.subscribe(addr.clone().recipient());
        }
        let mut ctx = ctx;
        if self.net.is_some() && !self.is_head {
            ctx.run_interval(LIVENESS_CHECK, |this, ctx| this.check_alive(ctx));
        }
        ctx.run(self)
    }

    /// Asks the head whether it still counts this incarnation alive (see [`Fencing`]).
    fn check_alive(&mut self, ctx: &mut Context<Self>) {
        let f = &mut self.fencing;
        let Some(start) = f.joined_at else { return };
        if f.leaving || f.fenced || f.checking {
            return;
        }
        f.checking = true;
        let (gcs, node) = (self.gcs.clone(), self.node);
        // The head's own start time too, to tell its restarts (the head's notice of its own
        // registration may have gone out before this node was back in touch to hear it).
        let head = self
            .net
            .as_ref()
            .and_then(|n| n.head())
            .map(NodeId::from_peer_id);
        let asked = async move {
            let head_started = async {
                match head {
                    Some(h) => match gcs.request(GetNode(h)).await {
                        Ok(Some(info)) => Some(info.start_time_ms),
                        _ => None,
                    },
                    None => None,
                }
            };
            // Side by side: the head's record does not hold up this node's own.
            tokio::join!(head_started, gcs.request(GetNode(node)))
        };
        ctx.spawn(
            asked
                .into_actor(self)
                .map(move |(head_started, res), this, _| {
                    this.fencing.checking = false;
                    if let Some(t) = head_started {
                        this.head_seen(t);
                    }
                    if let Ok(Some(info)) = res
                        && info.state == NodeState::Dead
                        && info.start_time_ms == start
                    {
                        let reason = info.death_reason.unwrap_or_else(|| "declared dead".into());
                        this.fence(reason);
                    }
                }),
        );
    }

    /// The head's registration says it started at `start_time_ms`: one other than the start
    /// known means it restarted, and the local scheduler hands the new incarnation what the
    /// old one took and never placed (once per incarnation, whichever way this node heard).
    fn head_seen(&mut self, start_time_ms: u64) {
        // Only a later start counts: an answer sent by the old incarnation may arrive after
        // the new one was heard of.
        let known = self.fencing.head_started;
        if known.is_some_and(|t| t >= start_time_ms) {
            return;
        }
        self.fencing.head_started = Some(start_time_ms);
        if known.is_some() {
            tracing::info!("the head restarted: handing it what its last incarnation never placed");
            self.host_env.scheduler.do_send(HeadRestarted);
        }
    }

    /// This incarnation was declared dead: fenced (once).
    fn fence(&mut self, reason: String) {
        if self.fencing.fenced || self.fencing.leaving {
            return;
        }
        self.fencing.fenced = true;
        crate::runtime::fence(reason);
    }

    fn info(&self, total: ResourceSet) -> NodeInfo {
        let now = raya_common::time::now_ms();
        NodeInfo {
            node_id: self.node,
            state: NodeState::Alive,
            is_head: self.is_head,
            is_driver: self.is_driver,
            hostname: hostname(),
            addresses: self
                .net
                .as_ref()
                .map(|n| {
                    sockets_reachable_first(&n.listen_addrs())
                        .iter()
                        .map(|a| a.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            resources_total: total.clone(),
            resources_available: total,
            queued_tasks: 0,
            pending_demand: Vec::new(),
            start_time_ms: now,
            end_time_ms: None,
            last_heartbeat_ms: now,
            death_reason: None,
            labels: self.labels.clone(),
        }
    }
}

impl Actor for NodeManager {
    type Context = Context<Self>;
}

/// Registers the node (with its total resources) and its function table.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GcsError>")]
pub(crate) struct JoinCluster {
    pub(crate) total: ResourceSet,
}

/// Flushes the node's task records, finishes its job and unregisters it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct LeaveCluster;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl Handler<JoinCluster> for NodeManager {
    type Result = ResponseActFuture<Self, Result<(), GcsError>>;
    fn handle(&mut self, m: JoinCluster, _: &mut Context<Self>) -> Self::Result {
        let gcs = self.gcs.clone();
        let node = self.node;
        let info = self.info(m.total);
        self.fencing.joined_at = Some(info.start_time_ms);
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
        let head = match &self.net {
            Some(n) if !self.is_head => n.head().map(NodeId::from_peer_id),
            _ => None,
        };
        let joined = async move {
            // Functions first: once the node is alive, schedulers may send it work.
            gcs.request(RegisterFunctions { node, functions }).await?;
            gcs.request(RegisterNode(info)).await?;
            // The head's start time, known before this node hands it any task: a restart of
            // the head is told by it, and the tasks the old head took then handed to the new
            // one (a restart before this node knew would leave them waiting out their lease).
            let head_started = match head {
                Some(h) => match gcs.request(GetNode(h)).await {
                    Ok(Some(h)) => Some(h.start_time_ms),
                    _ => None,
                },
                None => None,
            };
            Ok(head_started)
        };
        Box::pin(joined.into_actor(self).map(|res, this, _| {
            let head_started = res?;
            if this.fencing.head_started.is_none() {
                this.fencing.head_started = head_started;
            }
            Ok(())
        }))
    }
}

impl Handler<LeaveCluster> for NodeManager {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: LeaveCluster, _: &mut Context<Self>) -> Self::Result {
        self.fencing.leaving = true;
        let gcs = self.gcs.clone();
        // The last records, bounded like every flush: shutting down must stay quick.
        let (events, _) = self.events.drain_at_most(MAX_EVENTS_A_REQUEST);
        let (node, job) = (self.node, self.job);
        Box::pin(async move {
            // Behind what this node reported while a member (actor states, locations): once
            // it has left, the head takes no more table changes from it.
            if !events.is_empty()
                && let Err(e) = gcs.request_ordered(AddTaskEvents(events)).await
            {
                tracing::warn!(error = %e, "last task records not saved");
            }
            if let Err(e) = gcs.request_ordered(FinishJob { job, node }).await {
                tracing::warn!(error = %e, "job not marked finished");
            }
            let bye = UnregisterNode {
                node,
                reason: "shut down".into(),
            };
            // Nothing trails the goodbye: the head takes no table changes from a node that left.
            gcs.leave();
            if let Err(e) = gcs.request_ordered(bye).await {
                tracing::warn!(error = %e, "node not unregistered");
            }
        })
    }
}

impl Handler<Received<DeliverCalls>> for NodeManager {
    type Result = Response<Vec<TaskId>>;
    /// Calls a node sends for itself are delivered at once; calls it passes on for another
    /// owner only once that owner confirmed it sent them there (the batch waits, so the
    /// sender's calls keep their order).
    fn handle(&mut self, r: Received<DeliverCalls>, _: &mut Context<Self>) -> Self::Result {
        let (from, calls) = (r.from.node(), r.msg.0);
        let directory = Arc::clone(&self.host_env.directory);
        let relayed = calls.iter().any(|c| c.owner != from && c.num_returns > 0);
        let Some(net) = self.net.clone().filter(|_| relayed) else {
            return Response::reply(deliver(&directory, calls));
        };
        Response::fut(async move {
            let refused = unconfirmed_relays(&net, from, &calls).await;
            let (confirmed, dropped): (Vec<_>, Vec<_>) = calls
                .into_iter()
                .partition(|c| !refused.contains(&c.task_id));
            let mut undelivered = deliver(&directory, confirmed);
            undelivered.extend(dropped.into_iter().map(|c| c.task_id));
            undelivered
        })
    }
}

impl Handler<ControlActor> for NodeManager {
    type Result = bool;
    fn handle(&mut self, m: ControlActor, _: &mut Context<Self>) -> bool {
        self.host_env.directory.control(m.actor, m.control.into())
    }
}

impl Handler<GcsEvent> for NodeManager {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, ctx: &mut Context<Self>) {
        if let GcsEvent::NodeAlive(info) = &ev
            && info.node_id != self.node
        {
            if let Some(o) = &self.objects {
                o.do_send(NodeBack(info.node_id));
            }
            if let Some(net) = &self.net {
                // Registered again under its identity (restarted on its key): it may be sent
                // to again.
                net.peer_alive(info.node_id.peer_id());
            }
            if info.is_head {
                self.head_seen(info.start_time_ms);
            }
        }
        if let GcsEvent::NodeDead { node, .. } = &ev
            && *node == self.node
            && !self.is_head
        {
            // A death notice under its identity: this incarnation's (fenced), or that of one
            // before it; its record at the head tells which.
            self.check_alive(ctx);
            return;
        }
        if let GcsEvent::NodeDead { node, reason } = ev
            && node != self.node
        {
            if reason == "shut down" {
                tracing::info!(%node, "node left the cluster");
            } else {
                tracing::warn!(%node, %reason, "node died");
            }
            // The actors it created here and did not detach go with it.
            for actor in self.host_env.directory.owned_by(node) {
                self.host_env
                    .directory
                    .control(actor, crate::actor_host::HostControl::CreatorGone(node));
            }
            // Call senders first: a batch failing below then finds its sender knows why.
            self.host_env.remote.node_died(node);
            if let Some(o) = &self.objects {
                o.do_send(NodeGone(node));
            }
            let head = self
                .net
                .as_ref()
                .and_then(|n| n.head())
                .is_some_and(|h| h == node.peer_id());
            if head {
                // The head restarted under its identity: what waits to be delivered to it goes
                // to the new incarnation (its tables are durable); what its previous one took
                // and never placed is handed over again when the new one registers (above).
            } else if let Some(net) = &self.net {
                // What waits to be delivered there fails now rather than at the delivery bound.
                net.peer_dead(node.peer_id(), format!("declared dead: {reason}"));
            }
        }
    }
}

impl Handler<CreateActor> for NodeManager {
    type Result = ();
    fn handle(&mut self, CreateActor(spec): CreateActor, _: &mut Context<Self>) {
        let TaskKind::ActorCreation { actor, .. } = spec.kind.clone() else {
            tracing::error!(task = %spec.task_id, "node manager given a task that creates no actor");
            return;
        };
        let task_id = spec.task_id;
        if spec.origin != self.node && self.host_env.directory.host_missing(actor) {
            // Placed here by the cluster: start its host from the registry.
            match ACTOR_CLASSES
                .iter()
                .find(|c| *c.name == *spec.function.name)
            {
                Some(c) => {
                    (c.start)(HostStart {
                        env: Arc::clone(&self.host_env),
                        spec,
                    });
                    return;
                }
                None => {
                    tracing::error!(class = %spec.function.name, "placed an actor whose type this binary does not link");
                    if spec.restarted_actor().is_some() {
                        // Nobody else hears of it: the head would wait for the actor forever.
                        self.gcs.notify(UpdateActor {
                            actor_id: actor,
                            state: ActorState::Dead,
                            node: Some(self.node),
                            num_restarts: 0,
                            death_cause: Some(format!(
                                "restarted on node {}, which does not link {}",
                                self.node, spec.function.name
                            )),
                        });
                    }
                }
            }
        }
        if !self
            .host_env
            .directory
            .control(actor, HostControl::Construct(spec))
        {
            tracing::debug!(%actor, "actor gone before it was placed");
            self.host_env.scheduler.do_send(TaskDone {
                worker: None,
                task_id,
                outcome: TaskOutcome::Failed,
            });
        }
    }
}
