//! The node table: which nodes exist, their resources and whether they are alive.

use std::time::Duration;

use actix::prelude::*;
use raya_common::{NodeId, ResourceSet};
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, GcsEvent, gcs_requests};
use raya_common::time::now_ms;

/// Whether a node is alive.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// Registered and sending heartbeats.
    Alive,
    /// Shut down or declared dead.
    Dead,
}

/// A node's record.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node.
    pub node_id: NodeId,
    /// Alive or dead.
    pub state: NodeState,
    /// Whether the node runs the GCS.
    pub is_head: bool,
    /// Whether the node is a driver: a program that leaves when it ends (no detached actor is
    /// placed there).
    pub is_driver: bool,
    /// Host name of the machine.
    pub hostname: String,
    /// Addresses other nodes reach it on.
    pub addresses: Vec<String>,
    /// Total resources.
    pub resources_total: ResourceSet,
    /// Resources free at the last report.
    pub resources_available: ResourceSet,
    /// Tasks queued at the last report.
    pub queued_tasks: u64,
    /// Resource shapes of queued tasks at the last report, with counts (pending demand).
    pub pending_demand: Vec<(ResourceSet, u64)>,
    /// When it registered (ms since the epoch).
    pub start_time_ms: u64,
    /// When it was declared dead.
    pub end_time_ms: Option<u64>,
    /// Last heartbeat received.
    pub last_heartbeat_ms: u64,
    /// Why it died.
    pub death_reason: Option<String>,
    /// Its labels (`raya start --labels`), which label selectors of tasks and actors match.
    pub labels: raya_common::labels::NodeLabels,
}

/// Registers a node (or a restart of a node with the same id) as alive.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct RegisterNode(pub NodeInfo);

/// A node's periodic heartbeat with its resource availability and queue.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct NodeHeartbeat {
    /// The reporting node.
    pub node: NodeId,
    /// Free resources.
    pub available: ResourceSet,
    /// Queued tasks.
    pub queued_tasks: u64,
    /// Resource shapes of queued tasks, with counts.
    pub pending_demand: Vec<(ResourceSet, u64)>,
}

/// Declares a node dead (a clean shutdown, or a failure another component observed).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct UnregisterNode {
    /// The node.
    pub node: NodeId,
    /// Why.
    pub reason: String,
}

/// Every node record, alive and dead.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<NodeInfo>, GcsError>")]
pub struct GetAllNodes;

/// One node's record (a node checks its own: was it declared dead while it could not reach
/// the head?).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<NodeInfo>, GcsError>")]
pub struct GetNode(pub NodeId);

/// Subscribes a local recipient to node changes. Not a wire message: remote nodes learn changes
/// by gossip.
#[derive(Message)]
#[rtype(result = "Result<Vec<NodeInfo>, GcsError>")]
pub struct SubscribeNodes(pub Recipient<GcsEvent>);

gcs_requests! {
    NodeTable, nodes:
    RegisterNode => () as "gcs/RegisterNode", access = Join,
        where |m, from| {
            from.is(m.0.node_id, "a registration")?;
            check_text(&m.0.hostname, "a hostname", MAX_HOSTNAME)?;
            if m.0.addresses.len() > MAX_ADDRESSES {
                return Err(format!(
                    "a registration with {} addresses, more than {MAX_ADDRESSES}",
                    m.0.addresses.len()
                ));
            }
            m.0.addresses.iter().try_for_each(|a| check_text(a, "an address", MAX_ADDRESS))?;
            raya_common::labels::check_node_labels(&m.0.labels)?;
            check_resources(
                [&m.0.resources_total, &m.0.resources_available]
                    .into_iter()
                    .chain(m.0.pending_demand.iter().map(|(r, _)| r)),
            )
        };
    NodeHeartbeat => () as "gcs/NodeHeartbeat", gossip = super::HEARTBEAT_TOPIC,
        where |m, from| {
            from.is(m.node, "a heartbeat")?;
            check_resources(
                std::iter::once(&m.available).chain(m.pending_demand.iter().map(|(r, _)| r)),
            )
        };
    UnregisterNode => () as "gcs/UnregisterNode",
        where |m, from| from.is(m.node, "a node leaving");
    GetAllNodes => Vec<NodeInfo> as "gcs/GetAllNodes", access = Read;
    GetNode => Option<NodeInfo> as "gcs/GetNode", access = Read;
}

/// Bytes of a node's hostname, at most (the longest a DNS name can be).
pub const MAX_HOSTNAME: usize = 255;
/// Addresses a node registers, at most, and bytes of each.
pub const MAX_ADDRESSES: usize = 32;
/// Bytes of one registered address, at most.
pub const MAX_ADDRESS: usize = 256;
/// Records of dead nodes the table keeps, at most (the oldest deaths are let go).
pub const MAX_DEAD_NODES: usize = 1024;

/// Refuses `text` longer than `max` bytes.
pub(crate) fn check_text(text: &str, what: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{what} of {} bytes, more than {max}", text.len()));
    }
    Ok(())
}

/// Resource sets a node reports must be ones a node could have built (positive amounts within
/// bounds, sorted unique names): the global scheduler adds and compares them.
fn check_resources<'a>(sets: impl IntoIterator<Item = &'a ResourceSet>) -> Result<(), String> {
    sets.into_iter().try_for_each(|s| {
        s.check_request()
            .map_err(|e| format!("a malformed resource report: {e}"))
    })
}

/// The nodes the node table counts alive, shared with the routes that serve the GCS: only they
/// may change the tables (a node declared dead is no longer one, until it registers again).
/// Holds one entry per alive node.
#[derive(Debug, Clone, Default)]
pub struct Members(std::sync::Arc<std::sync::RwLock<std::collections::HashSet<NodeId>>>);

impl Members {
    /// Whether `node` is registered and alive.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(node)
    }

    fn set(&self, node: NodeId, alive: bool) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        if alive {
            m.insert(node);
        } else {
            m.remove(&node);
        }
    }
}

/// The node table actor.
pub struct NodeTable {
    nodes: Persisted<NodeId, NodeInfo>,
    timeout: Duration,
    subscribers: Vec<Recipient<GcsEvent>>,
    members: Members,
    /// The node running this GCS (see `GcsConfig::head`).
    head: Option<NodeId>,
}

impl NodeTable {
    pub(crate) fn load(
        db: &sled::Db,
        timeout: Duration,
        members: Members,
        head: Option<NodeId>,
    ) -> Result<Self, GcsError> {
        let mut nodes = Persisted::open(db, "nodes")?;
        // Records reloaded as alive get a fresh heartbeat clock, with a grace of two more
        // timeouts: a node that is really still running must first notice the head is back,
        // dial it again and rejoin its gossip mesh before its heartbeats arrive. The others are
        // declared dead.
        let now = now_ms().saturating_add(2 * timeout.as_millis() as u64);
        let alive: Vec<NodeInfo> = nodes
            .values()
            .filter(|n: &&NodeInfo| n.state == NodeState::Alive)
            .cloned()
            .collect();
        for mut n in alive {
            n.last_heartbeat_ms = now;
            members.set(n.node_id, true);
            nodes.insert(n.node_id, n)?;
        }
        Ok(NodeTable {
            nodes,
            timeout,
            subscribers: Vec::new(),
            members,
            head,
        })
    }

    pub(crate) fn subscribe(&mut self, r: Recipient<GcsEvent>) {
        self.subscribers.push(r);
    }

    fn publish(&mut self, ev: GcsEvent) {
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            s.do_send(ev.clone());
        }
    }

    fn mark_dead(&mut self, node: NodeId, reason: String) -> Result<(), GcsError> {
        let Some(mut info) = self.nodes.get(&node).cloned() else {
            return Err(GcsError::NotFound(format!("node {node}")));
        };
        if info.state == NodeState::Dead {
            return Ok(());
        }
        info.state = NodeState::Dead;
        info.end_time_ms = Some(now_ms());
        info.death_reason = Some(reason.clone());
        info.resources_available = ResourceSet::new();
        self.members.set(node, false);
        self.nodes.insert(node, info)?;
        tracing::info!(%node, %reason, "node declared dead");
        self.publish(GcsEvent::NodeDead { node, reason });
        self.forget_oldest_dead()
    }

    /// Lets go the records of the nodes that died first, past [`MAX_DEAD_NODES`].
    fn forget_oldest_dead(&mut self) -> Result<(), GcsError> {
        let mut dead: Vec<(u64, NodeId)> = self
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Dead)
            .map(|n| (n.end_time_ms.unwrap_or(0), n.node_id))
            .collect();
        if dead.len() <= MAX_DEAD_NODES {
            return Ok(());
        }
        dead.sort_unstable();
        let excess = dead.len() - MAX_DEAD_NODES;
        for (_, node) in dead.into_iter().take(excess) {
            self.nodes.remove(&node)?;
        }
        Ok(())
    }

    fn check_timeouts(&mut self) {
        let deadline = now_ms().saturating_sub(self.timeout.as_millis() as u64);
        let late: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Alive && n.last_heartbeat_ms < deadline)
            // The head is alive while its GCS runs: a busy control thread delaying its own
            // heartbeats does not make it dead to itself.
            .filter(|n| Some(n.node_id) != self.head)
            .map(|n| n.node_id)
            .collect();
        for node in late {
            let reason = format!("no heartbeat for {:?}", self.timeout);
            if let Err(e) = self.mark_dead(node, reason) {
                tracing::warn!(%node, error = %e, "could not record node death");
            }
        }
    }
}

impl Actor for NodeTable {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let period = (self.timeout / 4).max(Duration::from_millis(50));
        ctx.run_interval(period, |this, _| this.check_timeouts());
    }
}

impl Handler<RegisterNode> for NodeTable {
    type Result = Result<(), GcsError>;
    fn handle(
        &mut self,
        RegisterNode(mut info): RegisterNode,
        _: &mut Context<Self>,
    ) -> Self::Result {
        // Ids carry their maker's 32-bit tag: two nodes with one tag would make each other's
        // ids (and a key ground to a member's tag could speak for that member's objects).
        let tag = info.node_id.tag();
        if let Some(other) = self
            .nodes
            .values()
            .find(|n| n.node_id != info.node_id && n.node_id.tag() == tag)
        {
            return Err(GcsError::Invalid(format!(
                "node {}'s id tag {tag:08x} is node {}'s already: start it with a new node key",
                info.node_id, other.node_id
            )));
        }
        if let Some(old) = self.nodes.get(&info.node_id)
            && old.state == NodeState::Alive
            && old.start_time_ms != info.start_time_ms
        {
            // The same identity restarted: its previous incarnation (and its actors and
            // objects) is gone.
            self.mark_dead(info.node_id, "node restarted".into())?;
        }
        if self.head.is_some_and(|h| h != info.node_id) {
            // Only the node running this GCS is the head: a member saying otherwise would
            // pass for a restarted head to every node.
            info.is_head = false;
        }
        info.state = NodeState::Alive;
        info.last_heartbeat_ms = now_ms();
        info.end_time_ms = None;
        info.death_reason = None;
        self.nodes.insert(info.node_id, info.clone())?;
        self.members.set(info.node_id, true);
        tracing::info!(node = %info.node_id, resources = %info.resources_total, "node registered");
        self.publish(GcsEvent::NodeAlive(info));
        Ok(())
    }
}

impl Handler<NodeHeartbeat> for NodeTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, hb: NodeHeartbeat, _: &mut Context<Self>) -> Self::Result {
        let Some(mut info) = self.nodes.get(&hb.node).cloned() else {
            return Err(GcsError::NotFound(format!("node {}", hb.node)));
        };
        if info.state == NodeState::Dead {
            return Err(GcsError::Invalid(format!(
                "node {} was declared dead",
                hb.node
            )));
        }
        let changed = info.resources_available != hb.available
            || info.queued_tasks != hb.queued_tasks
            || info.pending_demand != hb.pending_demand;
        info.resources_available = hb.available;
        info.queued_tasks = hb.queued_tasks;
        info.pending_demand = hb.pending_demand;
        info.last_heartbeat_ms = now_ms();
        if changed {
            self.publish(GcsEvent::NodeResources(info.clone()));
        }
        // Heartbeats change the in-memory record only: membership changes are what is persisted.
        self.nodes.set_in_memory(hb.node, info);
        Ok(())
    }
}

impl Handler<UnregisterNode> for NodeTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: UnregisterNode, _: &mut Context<Self>) -> Self::Result {
        self.mark_dead(m.node, m.reason)
    }
}

impl Handler<GetNode> for NodeTable {
    type Result = Result<Option<NodeInfo>, GcsError>;
    fn handle(&mut self, GetNode(node): GetNode, _: &mut Context<Self>) -> Self::Result {
        Ok(self.nodes.get(&node).cloned())
    }
}

impl Handler<GetAllNodes> for NodeTable {
    type Result = Result<Vec<NodeInfo>, GcsError>;
    fn handle(&mut self, _: GetAllNodes, _: &mut Context<Self>) -> Self::Result {
        Ok(self.nodes.values().cloned().collect())
    }
}

impl Handler<SubscribeNodes> for NodeTable {
    type Result = Result<Vec<NodeInfo>, GcsError>;
    fn handle(&mut self, SubscribeNodes(r): SubscribeNodes, _: &mut Context<Self>) -> Self::Result {
        self.subscribers.push(r);
        Ok(self.nodes.values().cloned().collect())
    }
}

impl std::fmt::Debug for NodeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTable").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SubscribeNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeNodes").finish_non_exhaustive()
    }
}
