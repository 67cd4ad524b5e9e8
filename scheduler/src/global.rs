//! The global scheduler: places tasks their node cannot run.

use std::collections::HashMap;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::functions::NodesWithFunction;
use raya_cluster::gcs::nodes::NodeState;
use raya_cluster::gcs::objects::GetObjectLocations;
use raya_cluster::net::{Network, Target, remote_recipient};
use raya_common::NodeId;
use serde::{Deserialize, Serialize};

use crate::local::{TaskUnschedulable, infeasible_reason};
use crate::task::{SchedulingStrategy, TaskSpec};

/// Asks the global scheduler to place a task its origin node cannot run.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ScheduleTask {
    /// The task.
    pub spec: TaskSpec,
}

/// Hands a task to the local scheduler of the node the global scheduler picked.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct PlaceTask(pub TaskSpec);

/// Makes a node's local scheduler known to the global scheduler. Local wiring only: the local
/// schedulers of other nodes are reached through the network.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterLocalScheduler {
    /// The node.
    pub node: NodeId,
    /// Where placed tasks go.
    pub place: Recipient<PlaceTask>,
    /// Where unplaceable tasks are reported.
    pub unschedulable: Recipient<TaskUnschedulable>,
}

struct Local {
    place: Recipient<PlaceTask>,
    unschedulable: Recipient<TaskUnschedulable>,
}

/// The global scheduler actor. It reads the cluster's resource view from the GCS client's node
/// cache and the function table, and picks, among the alive nodes that link the task's function
/// and whose total resources fit the task, the one with the most of the task's resources free.
/// Nodes other than its own are reached through `net`.
pub struct GlobalScheduler {
    gcs: GcsHandle,
    net: Option<Network>,
    locals: HashMap<NodeId, Local>,
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

/// Picks a node for `spec` among `(node, total, available)`, preferring, among the nodes with
/// the task's resources free, those holding more of its arguments' bytes (`local_bytes`).
fn pick(
    spec: &TaskSpec,
    nodes: &[(NodeId, raya_common::ResourceSet, raya_common::ResourceSet)],
    local_bytes: &HashMap<NodeId, u64>,
) -> Option<NodeId> {
    let feasible = |n: &&(NodeId, raya_common::ResourceSet, raya_common::ResourceSet)| {
        spec.resources.fits_in(&n.1)
    };
    if let SchedulingStrategy::NodeAffinity { node, soft } = &spec.strategy {
        if let Some(n) = nodes.iter().filter(feasible).find(|n| n.0 == *node) {
            return Some(n.0);
        }
        if !soft {
            return None;
        }
    }
    let total_bytes: u64 = local_bytes.values().copied().max().unwrap_or(0);
    let score = |node: &NodeId, avail: &raya_common::ResourceSet| -> f64 {
        let free = spec
            .resources
            .iter()
            .map(|(name, _)| avail.get(name))
            .sum::<f64>()
            + avail.get("CPU");
        // Data locality weighs only among nodes that can start the task now.
        let locality = if total_bytes > 0 && spec.resources.fits_in(avail) {
            1000.0 * local_bytes.get(node).copied().unwrap_or(0) as f64 / total_bytes as f64
        } else {
            0.0
        };
        free + locality
    };
    nodes
        .iter()
        .filter(feasible)
        .max_by(|a, b| score(&a.0, &a.2).total_cmp(&score(&b.0, &b.2)))
        .map(|n| n.0)
}

impl Handler<ScheduleTask> for GlobalScheduler {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(
        &mut self,
        ScheduleTask { spec }: ScheduleTask,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let gcs = self.gcs.clone();
        let function = NodesWithFunction {
            name: spec.function.name.to_string(),
        };
        let clustered = self.net.is_some();
        // The arguments passed by reference (the first few): where their bytes are.
        let arg_ids: Vec<raya_common::ObjectId> = spec
            .args
            .iter()
            .filter_map(|a| match a {
                crate::task::TaskArg::Ref(r) => Some(r.id()),
                crate::task::TaskArg::Value(_) => None,
            })
            .take(16)
            .collect();
        Box::pin(
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
                (nodes, linking, local_bytes)
            }
            .into_actor(self)
            .map(move |(nodes, linking, local_bytes), this, ctx| {
                    let alive: Vec<_> = nodes
                        .into_iter()
                        .filter(|n| n.state == NodeState::Alive)
                        .filter(|n| linking.as_ref().is_none_or(|l| l.contains(&n.node_id)))
                        .map(|n| (n.node_id, n.resources_total, n.resources_available))
                        .collect();
                    let origin = spec.origin;
                    let picked = pick(&spec, &alive, &local_bytes);
                    if let (Some(node), Some(net)) = (picked, this.net.clone())
                        && !this.locals.contains_key(&node)
                    {
                        // Another node: if the placement does not arrive, the task goes back to
                        // its origin as unplaceable rather than vanishing.
                        let back = this.local(origin).map(|l| l.unschedulable.clone());
                        let kept = spec.clone();
                        ctx.spawn(actix::fut::wrap_future(async move {
                            if let Err(e) = net.ask(node.peer_id(), Target::System, PlaceTask(spec)).await {
                                let reason = format!("node {node} could not be given the task: {e}");
                                tracing::warn!(task = %kept.task_id, %reason, "placement failed");
                                match back {
                                    Some(b) => b.do_send(TaskUnschedulable { spec: kept, reason }),
                                    None => tracing::error!(%origin, "no route back to the node of an unplaced task"),
                                }
                            }
                        }));
                        return;
                    }
                    match picked.and_then(|n| this.local(n)) {
                        Some(local) => local.place.do_send(PlaceTask(spec)),
                        None => {
                            let totals: Vec<_> = alive.iter().map(|(n, t, _)| (*n, t.clone())).collect();
                            let mut reason = infeasible_reason(&spec, &totals);
                            if alive.is_empty() && linking.is_some() {
                                reason = format!("no alive node links `{}`", spec.function.name);
                            }
                            tracing::warn!(task = %spec.task_id, %reason, "task is infeasible");
                            match this.local(origin) {
                                Some(l) => l.unschedulable.do_send(TaskUnschedulable { spec, reason }),
                                None => tracing::error!(%origin, "no route back to the node of an infeasible task"),
                            }
                        }
                    }
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use raya_common::{JobId, ResourceSet, TaskId};

    use super::*;
    use crate::task::{FunctionDescriptor, TaskKind};

    fn spec() -> TaskSpec {
        TaskSpec {
            task_id: TaskId(7),
            job: JobId(1),
            parent: TaskId::driver(JobId(1), 1),
            origin: NodeId::random(),
            function: FunctionDescriptor {
                name: "test::f".into(),
                local_index: None,
            },
            args: Vec::new(),
            num_returns: 1,
            resources: ResourceSet::cpus(1.0).unwrap(),
            strategy: SchedulingStrategy::Default,
            max_retries: 0,
            retry_exceptions: false,
            attempt: 0,
            kind: TaskKind::Normal,
        }
    }

    #[test]
    fn nodes_holding_the_arguments_win_among_those_with_free_resources() {
        let (a, b) = (NodeId::random(), NodeId::random());
        let cpus = |n| ResourceSet::cpus(n).unwrap();
        let nodes = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(4.0), cpus(1.0))];
        // Without data, the node with more free CPUs.
        assert_eq!(pick(&spec(), &nodes, &HashMap::new()), Some(a));
        // With the arguments on b, b (it can start the task now).
        let on_b = HashMap::from([(b, 64 << 20)]);
        assert_eq!(pick(&spec(), &nodes, &on_b), Some(b));
        // But not when b has nothing free: locality never makes a task wait.
        let busy = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(4.0), cpus(0.0))];
        assert_eq!(pick(&spec(), &busy, &on_b), Some(a));
        // Infeasible everywhere: nobody.
        let small = vec![(a, cpus(0.5), cpus(0.5))];
        assert_eq!(pick(&spec(), &small, &HashMap::new()), None);
    }
}
