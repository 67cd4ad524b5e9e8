//! The global scheduler (on the head): places the tasks a node hands it ([`ScheduleTask`]) —
//! tasks for functions the node does not link, resources it lacks, or that wait there while
//! another node has resources free.
//!
//! For each task it reads the cluster view — the alive nodes and their resources from the GCS
//! client's node cache, the nodes linking the task's function, where the task's reference
//! arguments are — and lets its placement policy (`policy::pick`) choose a node. The task goes
//! to that node's local scheduler ([`PlaceTask`], on the ordered link to it unless it is this
//! node's), and once that node has it, the node that handed the task over hears where it went
//! ([`TaskPlaced`]). A placement that cannot be delivered (the node died or stopped answering)
//! is tried again on another node, up to [`MAX_PLACEMENTS`] nodes; a task no node can run goes
//! back as [`TaskUnschedulable`], infeasible, and one no node could be given as unreachable.
//! At most a batch of placements is on the way to one node at once; the rest wait their turn
//! at the head (`window`), so a burst does not wait past the link's delivery bound.

mod policy;
mod restart;
mod route;
mod window;

pub use route::{GlobalRoute, Taken};

use std::collections::HashMap;

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::actors::Placements;
use raya_cluster::gcs::functions::NodesWithFunction;
use raya_cluster::gcs::nodes::{NodeInfo, NodeState};
use raya_cluster::gcs::objects::GetObjectLocations;
use raya_cluster::transport::{NetError, Network, Target, remote_recipient};
use raya_common::{NodeId, ObjectId, TaskErrorKind, TaskId};
use serde::{Deserialize, Serialize};

use crate::local::{PlaceTask, TaskGoing, TaskPlaced, TaskUnschedulable, infeasible_reason};
use crate::task_spec::{SchedulingStrategy, TaskSpec};
use policy::{NodeView, pick};

/// Nodes a task is offered to, at most, when placements fail to be delivered.
pub const MAX_PLACEMENTS: usize = 3;

/// Asks the global scheduler to place a task node `from` cannot run (or should not run now).
/// Answered once the global scheduler has taken it.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ScheduleTask {
    /// The task.
    pub spec: TaskSpec,
    /// The node handing it over, told where it went.
    pub from: NodeId,
}

raya_cluster::wire_message!(
    ScheduleTask => "global_scheduler/ScheduleTask" where |m, from| {
        from.is(m.from, "a task handed over")?;
        from.is(m.spec.origin, "a task's origin")
    }
);

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
    /// Where placements of the tasks it handed over are reported.
    pub placed: Recipient<TaskPlaced>,
    /// Where it hears, before a task it handed over leaves, which node it goes to.
    pub going: Recipient<TaskGoing>,
}

/// How the global scheduler reaches one node's local scheduler.
struct Local {
    place: Recipient<PlaceTask>,
    unschedulable: Recipient<TaskUnschedulable>,
    placed: Recipient<TaskPlaced>,
    going: Recipient<TaskGoing>,
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
    /// Where actor creations went, for the actor table (on the head).
    placements: Option<Placements>,
    /// Placements sent to each node and not answered yet, and those waiting their turn.
    window: window::Window,
    /// How many `Spread` tasks and actors each alive node was given (the policy evens them
    /// out); nodes no longer alive are let go at the next spread placement.
    spread: HashMap<NodeId, u64>,
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
            placements: None,
            window: window::Window::default(),
            spread: HashMap::new(),
        }
    }

    /// Records where each actor creation goes in `placements`, the actor table's (the only
    /// node, besides its creator, that may then report the actor as its own).
    pub fn with_placements(mut self, placements: Placements) -> Self {
        self.placements = Some(placements);
        self
    }

    /// Keeps the spread counts of the alive nodes only, and starts a node new to them at the
    /// lowest count (so a node that joins takes its share of what comes, not every task until
    /// it caught up with the others).
    fn even_spread_counts(&mut self, alive: &[NodeId]) {
        self.spread.retain(|n, _| alive.contains(n));
        let floor = self.spread.values().copied().min().unwrap_or(0);
        for n in alive {
            self.spread.entry(*n).or_insert(floor);
        }
    }

    /// Notes that `spec`, if it creates an actor, goes to `node`.
    fn note_placement(&self, spec: &TaskSpec, node: NodeId) {
        if let (Some(p), crate::task_spec::TaskKind::ActorCreation { actor, .. }) =
            (&self.placements, &spec.kind)
        {
            p.record(*actor, node);
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
                    unschedulable: remote_recipient(net.clone(), peer, Target::System),
                    placed: remote_recipient(net.clone(), peer, Target::System),
                    going: remote_recipient(net, peer, Target::System),
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
        let arg_ids: Vec<ObjectId> = spec.ref_args().map(|r| r.id()).take(16).collect();
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

    /// Reads the cluster view for `spec`, then places it on a node not in `tried`.
    fn schedule(
        &mut self,
        spec: TaskSpec,
        from: NodeId,
        tried: Vec<NodeId>,
        ctx: &mut Context<Self>,
    ) {
        ctx.spawn(
            self.view(&spec)
                .into_actor(self)
                .map(move |view, this, ctx| this.place(spec, from, view, tried, ctx)),
        );
    }

    /// Places `spec` on the node the policy picks from `view` (leaving out the nodes in
    /// `tried`, which could not be given it), or reports it unschedulable to `from`.
    fn place(
        &mut self,
        spec: TaskSpec,
        from: NodeId,
        view: ClusterView,
        tried: Vec<NodeId>,
        ctx: &mut Context<Self>,
    ) {
        let ClusterView {
            nodes,
            linking,
            local_bytes,
        } = view;
        // A detached actor must outlive the program that created it: never on a driver.
        let detached = spec.creates_detached_actor();
        if matches!(spec.strategy, SchedulingStrategy::Spread) {
            let nodes_alive: Vec<NodeId> = nodes
                .iter()
                .filter(|n| n.state == NodeState::Alive)
                .map(|n| n.node_id)
                .collect();
            self.even_spread_counts(&nodes_alive);
        }
        let labelled = nodes
            .iter()
            .any(|n| n.state == NodeState::Alive && spec.label_selector.matches(&n.labels));
        let alive: Vec<NodeView> = nodes
            .into_iter()
            .filter(|n| n.state == NodeState::Alive && !tried.contains(&n.node_id))
            .filter(|n| spec.label_selector.matches(&n.labels))
            .filter(|n| !(detached && n.is_driver))
            .filter(|n| linking.as_ref().is_none_or(|l| l.contains(&n.node_id)))
            .map(|n| (n.node_id, n.resources_total, n.resources_available))
            .collect();
        // A `Default` task handed over by a node that could not start it, or that spreads it
        // (the hybrid policy), goes back there only when no other node can take it: the head's
        // view of that node may still show the room it no longer has.
        let picked = pick(&spec, &alive, &local_bytes, &self.spread, Some(from));
        if let (Some(node), SchedulingStrategy::Spread) = (picked, &spec.strategy) {
            *self.spread.entry(node).or_default() += 1;
        }
        if let (Some(node), Some(net)) = (picked, self.net.clone())
            && !self.locals.contains_key(&node)
        {
            self.place_remote(spec, from, node, net, tried, ctx);
            return;
        }
        let task = spec.task_id;
        match picked.and_then(|n| self.local(n).map(|l| (n, l.place.clone()))) {
            Some((node, place)) => {
                // Placed on the head's own node: a restart needs no flush first (an instance
                // here dies with the head, so a restarted head cannot leave a second one).
                self.note_placement(&spec, node);
                let (attempt, restart) = (spec.attempt, spec.restarted_actor().is_some());
                if !restart {
                    self.report_going(task, from, node);
                }
                place.do_send(PlaceTask(spec));
                if !restart {
                    self.report_placed(task, from, node, attempt);
                }
            }
            None if !tried.is_empty() => {
                let reason = format!(
                    "no node could be given the task: {} did not take it, and no other node can run it",
                    list(&tried)
                );
                self.cannot_place(spec, from, reason, TaskErrorKind::Unreachable);
            }
            None => {
                let totals: Vec<_> = alive.iter().map(|(n, t, _)| (*n, t.clone())).collect();
                let mut reason = infeasible_reason(&spec, &totals);
                if !labelled {
                    reason = format!(
                        "{} requires a node labelled {}, and no alive node is",
                        spec.function.name, spec.label_selector
                    );
                } else if alive.is_empty() && linking.is_some() {
                    reason = format!("no alive node links `{}`", spec.function.name);
                }
                let kind = match spec.strategy {
                    SchedulingStrategy::NodeAffinity { soft: false, .. } => {
                        TaskErrorKind::Unschedulable
                    }
                    _ => TaskErrorKind::Infeasible,
                };
                tracing::warn!(task = %spec.task_id, %reason, "task cannot be placed");
                self.cannot_place(spec, from, reason, kind);
            }
        }
    }

    /// Tells `from`, before its task leaves, that it goes to `node` (so the results' owner
    /// knows their maker before they can arrive).
    fn report_going(&mut self, task_id: TaskId, from: NodeId, node: NodeId) {
        if let Some(l) = self.local(from) {
            l.going.do_send(TaskGoing { task_id, node });
        }
    }

    /// Tells `from` that its task went to `node`, as attempt `attempt`.
    fn report_placed(&mut self, task_id: TaskId, from: NodeId, node: NodeId, attempt: u32) {
        match self.local(from) {
            Some(l) => l.placed.do_send(TaskPlaced {
                task_id,
                node,
                attempt,
            }),
            None => tracing::error!(%from, "no route back to the node that handed over a task"),
        }
    }

    /// Sends `spec` back to `from`, which fails it with `reason`.
    fn unschedulable(&mut self, spec: TaskSpec, from: NodeId, reason: String, kind: TaskErrorKind) {
        match self.local(from) {
            Some(l) => l
                .unschedulable
                .do_send(TaskUnschedulable { spec, reason, kind }),
            None => {
                tracing::error!(%from, "no route back to the node of an unplaceable task")
            }
        }
    }

    /// Sends `spec` to `node` over the network. Once `node` has it, `from` hears where it
    /// went; if it cannot be given the task, the task is placed again elsewhere.
    fn place_remote(
        &mut self,
        spec: TaskSpec,
        from: NodeId,
        node: NodeId,
        net: Network,
        tried: Vec<NodeId>,
        ctx: &mut Context<Self>,
    ) {
        let held = window::Held {
            spec: Box::new(spec),
            from,
            tried,
        };
        match self.window.admit(node, held) {
            Ok(Some(held)) => self.send_placement(held, node, net, ctx),
            Ok(None) => {}
            Err(held) => {
                let reason = format!(
                    "the head holds {} placements waiting for their nodes, the most it holds",
                    window::MAX_HELD
                );
                self.cannot_place(*held.spec, held.from, reason, TaskErrorKind::Unreachable);
            }
        }
    }

    /// Sends a placement admitted to `node`'s window; its answer lets the next one waiting
    /// for the node go.
    fn send_placement(
        &mut self,
        held: window::Held,
        node: NodeId,
        net: Network,
        ctx: &mut Context<Self>,
    ) {
        let window::Held {
            spec,
            from,
            mut tried,
        } = held;
        let spec = *spec;
        let task = spec.task_id;
        let mut kept = spec.clone();
        let restart = spec.restarted_actor().is_some();
        self.note_placement(&spec, node);
        if !restart {
            self.report_going(task, from, node);
        }
        // An actor's creation (a restart too) leaves only once its placement is on disk: a
        // head restarted meanwhile still believes the node it went to, and sends a restart
        // there again instead of to one that would run a second instance.
        let creation = matches!(spec.kind, crate::task_spec::TaskKind::ActorCreation { .. });
        let durable = match (&self.placements, creation) {
            (Some(p), true) => Some(p.flushed()),
            _ => None,
        };
        let to = net.clone();
        let placed = async move {
            if let Some(flushed) = durable {
                flushed.await;
            }
            to.send_ordered(node.peer_id(), PlaceTask(spec)).await
        };
        let next_net = net.clone();
        ctx.spawn(placed.into_actor(self).map(move |res, this, ctx| {
            if matches!(
                res,
                Err(NetError::NotSent { .. } | NetError::Unreachable { .. })
            ) {
                // The node is gone or cannot be reached: what waits for it is placed
                // elsewhere, as first tries (none of it was sent).
                for held in this.window.drain(node) {
                    let mut tried = held.tried;
                    tried.push(node);
                    this.schedule(*held.spec, held.from, tried, ctx);
                }
            }
            if let Some(next) = this.window.answered(node) {
                this.send_placement(next, node, next_net, ctx);
            }
            let Err(e) = res else {
                if !restart {
                    this.report_placed(task, from, node, kept.attempt);
                }
                return;
            };
            tracing::warn!(%task, %node, error = %e, "placement not delivered");
            tried.push(node);
            if matches!(e, NetError::TooLarge { .. } | NetError::Encode(_)) {
                // No node could be sent it.
                let reason = format!("the task cannot be sent to another node: {e}");
                this.cannot_place(kept, from, reason, TaskErrorKind::System);
                return;
            }
            let never_sent = matches!(e, NetError::NotSent { .. });
            if never_sent && tried.len() < MAX_PLACEMENTS {
                // It never left: another node may have it, as a first try still.
                this.schedule(kept, from, tried, ctx);
                return;
            }
            // The node may have got the task and run it before the link gave up: placing it
            // again is a retry, allowed only as far as its `max_retries`.
            // An actor's restart is placed again anyway: the node that may have it reports
            // the actor only if the head's latest placement names it.
            if !never_sent && !kept.may_retry(false) && !restart {
                let reason = format!(
                    "{} did not acknowledge the task ({e}); it may or may not have run there, \
                     and max_retries does not allow running it again",
                    list(&tried)
                );
                this.cannot_place(kept, from, reason, TaskErrorKind::Unreachable);
            } else if tried.len() < MAX_PLACEMENTS {
                kept.attempt += 1;
                this.schedule(kept, from, tried, ctx);
            } else {
                let reason = format!("{} could not be given the task (last: {e})", list(&tried));
                this.cannot_place(kept, from, reason, TaskErrorKind::Unreachable);
            }
        }));
    }
}

/// `node a, node b` for error messages.
fn list(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| format!("node {n}"))
        .collect::<Vec<_>>()
        .join(", ")
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
                placed: m.placed,
                going: m.going,
            },
        );
    }
}

impl Handler<ScheduleTask> for GlobalScheduler {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(
        &mut self,
        ScheduleTask { spec, from }: ScheduleTask,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let refused = spec
            .check_from_wire()
            .and_then(|()| match spec.restarted_actor() {
                Some(_) => {
                    Err("only the head places an actor again after its node died".to_string())
                }
                None => Ok(()),
            });
        if let Err(e) = refused {
            tracing::warn!(task = %spec.task_id, %from, error = %e, "scheduling refused");
            let mut first = spec;
            first.num_returns = first.num_returns.min(1);
            self.unschedulable(first, from, e, TaskErrorKind::InvalidOptions);
            return Box::pin(actix::fut::ready(()));
        }
        // Answered once the task is placed here or on its way to a node (held by the link).
        Box::pin(
            self.view(&spec)
                .into_actor(self)
                .map(move |view, this, ctx| this.place(spec, from, view, Vec::new(), ctx)),
        )
    }
}
