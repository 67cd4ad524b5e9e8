//! The global scheduler (on the head): places the tasks a node hands it ([`ScheduleTask`]) —
//! tasks for functions the node does not link, resources it lacks, or that wait there while
//! another node has resources free.
//!
//! For each task it reads the cluster view — the alive nodes and their resources from the GCS
//! client's node cache, the nodes linking the task's function, where the task's reference
//! arguments are — and lets its placement policy (`policy::pick`) choose a node. The task goes to that node's local
//! scheduler ([`PlaceTask`], through the network unless it is this node's); a task no node can
//! run goes back to its origin as [`TaskUnschedulable`], and so does one whose placement could
//! not be delivered.

mod policy;

use std::collections::HashMap;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::functions::NodesWithFunction;
use raya_cluster::gcs::nodes::{NodeInfo, NodeState};
use raya_cluster::gcs::objects::GetObjectLocations;
use raya_cluster::transport::{Network, Target, remote_recipient};
use raya_common::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};

use crate::local::{PlaceTask, TaskUnschedulable, infeasible_reason};
use crate::task_spec::{TaskArg, TaskSpec};
use policy::{NodeView, pick};

/// Asks the global scheduler to place a task its origin node cannot run.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ScheduleTask {
    /// The task.
    pub spec: TaskSpec,
}

raya_cluster::wire_message!(ScheduleTask => "global_scheduler/ScheduleTask");

/// Makes a node's local scheduler known to the global scheduler. Local wiring only: the local
/// schedulers of other nodes are reached through the network.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RegisterLocalScheduler {
    /// The node.
    pub node: NodeId,
    /// Where placed tasks go.
    pub place: Recipient<PlaceTask>,
    /// Where unplaceable tasks are reported.
    pub unschedulable: Recipient<TaskUnschedulable>,
}

/// How the global scheduler reaches one node's local scheduler.
struct Local {
    place: Recipient<PlaceTask>,
    unschedulable: Recipient<TaskUnschedulable>,
}

/// What the global scheduler learnt about the cluster for one task.
struct ClusterView {
    nodes: Vec<NodeInfo>,
    /// The nodes linking the task's function (cluster only).
    linking: Option<Vec<NodeId>>,
    /// Bytes of the task's reference arguments held on each node.
    local_bytes: HashMap<NodeId, u64>,
}

/// The global scheduler actor (see the module docs).
pub struct GlobalScheduler {
    gcs: GcsHandle,
    net: Option<Network>,
    locals: HashMap<NodeId, Local>,
}

impl std::fmt::Debug for GlobalScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalScheduler")
            .field("clustered", &self.net.is_some())
            .finish_non_exhaustive()
    }
}

impl GlobalScheduler {
    /// A global scheduler reading the cluster view through `gcs`, reaching other nodes through
    /// `net` (none for an embedded one-node cluster).
    pub fn new(gcs: GcsHandle, net: Option<Network>) -> Self {
        GlobalScheduler {
            gcs,
            net,
            locals: HashMap::new(),
        }
    }

    /// Starts the scheduler on the current arbiter and, on a head, serves
    /// `global_scheduler/ScheduleTask` for the other nodes.
    pub fn launch(self) -> Addr<GlobalScheduler> {
        let router = self.net.as_ref().map(|n| n.router().clone());
        let addr = self.start();
        if let Some(router) = router {
            router.serve::<ScheduleTask, _>(addr.clone());
        }
        addr
    }

    /// The local scheduler of `node`: registered here, or reached through the network.
    fn local(&mut self, node: NodeId) -> Option<&Local> {
        if !self.locals.contains_key(&node) {
            let net = self.net.clone()?;
            let peer = node.peer_id();
            self.locals.insert(
                node,
                Local {
                    place: remote_recipient(net.clone(), peer, Target::System),
                    unschedulable: remote_recipient(net, peer, Target::System),
                },
            );
        }
        self.locals.get(&node)
    }

    /// Reads what placing `spec` needs from the GCS.
    fn view(&self, spec: &TaskSpec) -> impl Future<Output = ClusterView> + 'static {
        let gcs = self.gcs.clone();
        let function = NodesWithFunction {
            name: spec.function.name.to_string(),
        };
        let clustered = self.net.is_some();
        // The arguments passed by reference (the first few): where their bytes are.
        let arg_ids: Vec<ObjectId> = spec
            .args
            .iter()
            .filter_map(|a| match a {
                TaskArg::Ref(r) => Some(r.id()),
                TaskArg::Value(_) => None,
            })
            .take(16)
            .collect();
        async move {
            let nodes = gcs.cached_nodes().await.unwrap_or_default();
            // Only a cluster has nodes that may lack the function.
            let linking = if clustered {
                gcs.request(function).await.ok()
            } else {
                None
            };
            let mut local_bytes: HashMap<NodeId, u64> = HashMap::new();
            if clustered {
                for id in arg_ids {
                    if let Ok(Some(loc)) = gcs.request(GetObjectLocations(id)).await {
                        for n in loc.nodes {
                            *local_bytes.entry(n).or_default() += loc.size;
                        }
                    }
                }
            }
            ClusterView {
                nodes,
                linking,
                local_bytes,
            }
        }
    }

    /// Places `spec` on the node the policy picks from `view`, or reports it unschedulable.
    fn place(&mut self, spec: TaskSpec, view: ClusterView, ctx: &mut Context<Self>) {
        let ClusterView {
            nodes,
            linking,
            local_bytes,
        } = view;
        let alive: Vec<NodeView> = nodes
            .into_iter()
            .filter(|n| n.state == NodeState::Alive)
            .filter(|n| linking.as_ref().is_none_or(|l| l.contains(&n.node_id)))
            .map(|n| (n.node_id, n.resources_total, n.resources_available))
            .collect();
        let origin = spec.origin;
        let picked = pick(&spec, &alive, &local_bytes);
        if let (Some(node), Some(net)) = (picked, self.net.clone())
            && !self.locals.contains_key(&node)
        {
            self.place_remote(spec, node, net, ctx);
            return;
        }
        match picked.and_then(|n| self.local(n)) {
            Some(local) => local.place.do_send(PlaceTask(spec)),
            None => {
                let totals: Vec<_> = alive.iter().map(|(n, t, _)| (*n, t.clone())).collect();
                let mut reason = infeasible_reason(&spec, &totals);
                if alive.is_empty() && linking.is_some() {
                    reason = format!("no alive node links `{}`", spec.function.name);
                }
                tracing::warn!(task = %spec.task_id, %reason, "task is infeasible");
                match self.local(origin) {
                    Some(l) => l.unschedulable.do_send(TaskUnschedulable { spec, reason }),
                    None => {
                        tracing::error!(%origin, "no route back to the node of an infeasible task")
                    }
                }
            }
        }
    }

    /// Sends `spec` to `node` over the network. If the placement does not arrive, the task goes
    /// back to its origin as unplaceable rather than vanishing.
    fn place_remote(
        &mut self,
        spec: TaskSpec,
        node: NodeId,
        net: Network,
        ctx: &mut Context<Self>,
    ) {
        let origin = spec.origin;
        let back = self.local(origin).map(|l| l.unschedulable.clone());
        let kept = spec.clone();
        let placed = net.send_ordered(node.peer_id(), PlaceTask(spec));
        ctx.spawn(actix::fut::wrap_future(async move {
            let Err(e) = placed.await else {
                return;
            };
            let reason = format!("node {node} could not be given the task: {e}");
            tracing::warn!(task = %kept.task_id, %reason, "placement failed");
            match back {
                Some(b) => b.do_send(TaskUnschedulable { spec: kept, reason }),
                None => tracing::error!(%origin, "no route back to the node of an unplaced task"),
            }
        }));
    }
}

impl Actor for GlobalScheduler {
    type Context = Context<Self>;
}

impl Handler<RegisterLocalScheduler> for GlobalScheduler {
    type Result = ();
    fn handle(&mut self, m: RegisterLocalScheduler, _: &mut Context<Self>) {
        self.locals.insert(
            m.node,
            Local {
                place: m.place,
                unschedulable: m.unschedulable,
            },
        );
    }
}

impl Handler<ScheduleTask> for GlobalScheduler {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(
        &mut self,
        ScheduleTask { spec }: ScheduleTask,
        _: &mut Context<Self>,
    ) -> Self::Result {
        Box::pin(
            self.view(&spec)
                .into_actor(self)
                .map(move |view, this, ctx| this.place(spec, view, ctx)),
        )
    }
}
