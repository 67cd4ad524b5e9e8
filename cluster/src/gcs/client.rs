//! A node's handle to the GCS.
//!
//! On the head the client forwards requests to the table actors in this process. On every other
//! node it sends the same typed requests to the head over the network, and keeps its node-table
//! cache current from the head's numbered gossip ([`VersionedEvent`]), reloading the table when
//! it notices a gap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use libp2p::PeerId;
use raya_common::NodeId;

use super::nodes::{GetAllNodes, NodeInfo, NodeState, SubscribeNodes};
use super::{GCS_TOPIC, GcsError, GcsEvent, GcsRequest, GcsTables, VersionedEvent};
use crate::transport::{NetEvent, Network, Target};

enum Backend {
    /// The tables run in this process (the head); `net` when it is part of a cluster.
    Local {
        tables: GcsTables,
        net: Option<Network>,
    },
    Remote {
        net: Network,
        head: PeerId,
    },
}

/// The node's GCS client actor: forwards every [`GcsRequest`] to its table and keeps a cache of
/// the node table.
pub struct GcsClient {
    backend: Backend,
    nodes: BTreeMap<NodeId, NodeInfo>,
    /// The last numbered change applied (remote clients).
    version: Option<(u64, u64)>,
    reloading: bool,
    subscribers: Vec<Recipient<GcsEvent>>,
}

impl GcsClient {
    fn with_backend(backend: Backend) -> Self {
        GcsClient {
            backend,
            nodes: BTreeMap::new(),
            version: None,
            reloading: false,
            subscribers: Vec::new(),
        }
    }

    /// A client of the GCS whose tables run in this process (an embedded node, or the head of a
    /// cluster when `net` is given: it tells the network where the nodes listen).
    pub fn local(tables: GcsTables, net: Option<Network>) -> Self {
        GcsClient::with_backend(Backend::Local { tables, net })
    }

    fn network(&self) -> Option<&Network> {
        match &self.backend {
            Backend::Local { net, .. } => net.as_ref(),
            Backend::Remote { net, .. } => Some(net),
        }
    }

    /// Tells the network where an alive node listens, so that any node reaches any other by
    /// its peer id (not only those it happens to have a link to).
    fn learn_addresses(&self, n: &NodeInfo) {
        let Some(net) = self.network() else {
            return;
        };
        if n.state != NodeState::Alive {
            return;
        }
        let addrs: Vec<libp2p::Multiaddr> = n
            .addresses
            .iter()
            .filter_map(|a| crate::transport::parse_address(a).ok())
            .collect();
        if let Err(e) = net.add_addresses(n.node_id.peer_id(), addrs) {
            tracing::debug!(node = %n.node_id, error = %e, "node addresses not recorded");
        }
    }

    /// A client of the GCS on node `head`, reached through `net`.
    pub fn remote(net: Network, head: PeerId) -> Self {
        GcsClient::with_backend(Backend::Remote { net, head })
    }

    pub(super) fn apply(&mut self, ev: GcsEvent) {
        if let Some(net) = self.network() {
            // Whatever its state, a node the table knows keeps its id tag.
            net.router().know_node(match &ev {
                GcsEvent::NodeAlive(n) | GcsEvent::NodeResources(n) => n.node_id,
                GcsEvent::NodeDead { node, .. } => *node,
            });
        }
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            s.do_send(ev.clone());
        }
        match ev {
            GcsEvent::NodeAlive(n) => {
                self.learn_addresses(&n);
                self.nodes.insert(n.node_id, n);
            }
            GcsEvent::NodeResources(n) => {
                // A node may first be seen through a resource update (gossip that overtook
                // the table's reload): its addresses are learned then, not only on NodeAlive.
                let known = self
                    .nodes
                    .get(&n.node_id)
                    .is_some_and(|o| o.state == NodeState::Alive && o.addresses == n.addresses);
                if !known {
                    self.learn_addresses(&n);
                }
                self.nodes.insert(n.node_id, n);
            }
            GcsEvent::NodeDead { node, reason } => {
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.state = super::nodes::NodeState::Dead;
                    n.death_reason = Some(reason);
                }
            }
        }
    }

    fn reload(&mut self, ctx: &mut Context<Self>) {
        let Backend::Remote { net, head } = &self.backend else {
            return;
        };
        if self.reloading {
            return;
        }
        self.reloading = true;
        let (net, head) = (net.clone(), *head);
        ctx.spawn(
            async move { net.ask(head, Target::System, GetAllNodes).await }
                .into_actor(self)
                .map(|res, this, _| {
                    this.reloading = false;
                    match res {
                        Ok(Ok(nodes)) => {
                            // Tell subscribers what the gap hid.
                            for n in nodes {
                                let old = this.nodes.get(&n.node_id);
                                let was = old.map(|o| o.state);
                                if old.is_some_and(|o| {
                                    o.state == NodeState::Alive
                                        && n.state == NodeState::Alive
                                        && o.start_time_ms != n.start_time_ms
                                }) {
                                    // Restarted under its identity within the gap: the old
                                    // incarnation died.
                                    this.apply(GcsEvent::NodeDead {
                                        node: n.node_id,
                                        reason: "node restarted".into(),
                                    });
                                    this.apply(GcsEvent::NodeAlive(n.clone()));
                                    this.nodes.insert(n.node_id, n);
                                    continue;
                                }
                                let ev = match (was, n.state) {
                                    (Some(NodeState::Alive) | None, NodeState::Dead) => {
                                        GcsEvent::NodeDead {
                                            node: n.node_id,
                                            reason: n.death_reason.clone().unwrap_or_default(),
                                        }
                                    }
                                    (Some(NodeState::Dead) | None, NodeState::Alive) => {
                                        GcsEvent::NodeAlive(n.clone())
                                    }
                                    _ => GcsEvent::NodeResources(n.clone()),
                                };
                                this.apply(ev);
                                this.nodes.insert(n.node_id, n);
                            }
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "could not reload the node table"),
                        Err(e) => tracing::warn!(error = %e, "could not reload the node table"),
                    }
                }),
        );
    }
}

impl Actor for GcsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match &self.backend {
            Backend::Local { tables, .. } => {
                let me = ctx.address().recipient::<GcsEvent>();
                let sub = tables.nodes.send(SubscribeNodes(me));
                ctx.wait(actix::fut::wrap_future(sub).map(
                    |res, this: &mut GcsClient, _| match res {
                        Ok(Ok(nodes)) => {
                            for n in &nodes {
                                if let Some(net) = this.network() {
                                    net.router().know_node(n.node_id);
                                }
                                this.learn_addresses(n);
                            }
                            this.nodes = nodes.into_iter().map(|n| (n.node_id, n)).collect()
                        }
                        _ => tracing::warn!("GCS client could not subscribe to the node table"),
                    },
                ));
            }
            Backend::Remote { net, .. } => {
                net.subscribe(ctx.address().recipient());
                self.reload(ctx);
            }
        }
    }
}

impl<M> Handler<M> for GcsClient
where
    M: GcsRequest,
    <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
{
    type Result = ResponseFuture<Result<M::Reply, GcsError>>;

    fn handle(&mut self, msg: M, _: &mut Context<Self>) -> Self::Result {
        match &self.backend {
            Backend::Local { tables, .. } => {
                let req = M::table(tables).send(msg);
                Box::pin(async move { req.await.unwrap_or(Err(GcsError::Unavailable)) })
            }
            Backend::Remote { net, head } => {
                let (net, head) = (net.clone(), *head);
                Box::pin(async move {
                    net.ask(head, Target::System, msg)
                        .await
                        .unwrap_or_else(|e| Err(GcsError::from_network(e)))
                })
            }
        }
    }
}

impl Handler<GcsEvent> for GcsClient {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        self.apply(ev);
    }
}

impl Handler<NetEvent> for GcsClient {
    type Result = ();
    fn handle(&mut self, ev: NetEvent, ctx: &mut Context<Self>) {
        let Some((topic, source, data)) = ev.into_gossip() else {
            return;
        };
        let Backend::Remote { head, .. } = &self.backend else {
            return;
        };
        if topic != GCS_TOPIC || source != Some(*head) {
            return;
        }
        let v: VersionedEvent = match crate::transport::archive::Archived::from_archive(&data) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "malformed GCS gossip ignored");
                return;
            }
        };
        let in_order = self
            .version
            .is_some_and(|(epoch, seq)| epoch == v.epoch && v.seq == seq + 1);
        let stale = self
            .version
            .is_some_and(|(epoch, seq)| epoch == v.epoch && v.seq <= seq);
        if stale {
            return;
        }
        self.version = Some((v.epoch, v.seq));
        if in_order {
            self.apply(v.event);
        } else {
            // A gap (or a restarted GCS): the table is the truth.
            self.apply(v.event);
            self.reload(ctx);
        }
    }
}

/// The answer to a request queued for the head ([`GcsHandle::notify`]).
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), GcsError>> + Send>>;

/// Awaits a notification's reply, logging a failure.
struct AwaitReply {
    what: &'static str,
    /// Sent to the head's own tables: their mailbox gone means the node is stopping.
    local: bool,
    reply: Pending,
}

impl Message for AwaitReply {
    type Result = ();
}

impl Handler<AwaitReply> for GcsClient {
    type Result = ResponseFuture<()>;

    fn handle(
        &mut self,
        AwaitReply { what, local, reply }: AwaitReply,
        _: &mut Context<Self>,
    ) -> Self::Result {
        Box::pin(async move {
            match reply.await {
                Ok(()) => {}
                Err(GcsError::Unavailable) if local => {
                    tracing::debug!(request = what, "GCS gone before a request was delivered")
                }
                Err(e) => tracing::warn!(request = what, error = %e, "GCS request failed"),
            }
        })
    }
}

/// Subscribes a recipient to the node-table changes the client sees (node alive, resources,
/// dead), on the head and on every other node alike.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeEvents(pub Recipient<GcsEvent>);

impl Handler<SubscribeEvents> for GcsClient {
    type Result = ();
    fn handle(&mut self, SubscribeEvents(r): SubscribeEvents, _: &mut Context<Self>) {
        self.subscribers.push(r);
    }
}

/// Reads the client's cached node table (no round trip to the GCS).
#[derive(Message)]
#[rtype(result = "Vec<NodeInfo>")]
pub struct CachedNodes;

impl Handler<CachedNodes> for GcsClient {
    type Result = MessageResult<CachedNodes>;
    fn handle(&mut self, _: CachedNodes, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.nodes.values().cloned().collect())
    }
}

/// Where a handle's notifications go: enqueued by the caller itself, so that a notification
/// is ordered before whatever the caller sends after it (an actor's registration before its
/// creation task, which another node answers with a state update).
#[derive(Clone)]
enum Route {
    Local(GcsTables),
    Remote { net: Network, head: PeerId },
}

/// A cloneable handle to a [`GcsClient`], usable from any thread or runtime.
#[derive(Clone)]
pub struct GcsHandle {
    addr: Addr<GcsClient>,
    route: Route,
    /// Set once the node is leaving the cluster ([`GcsHandle::leave`]).
    left: Arc<AtomicBool>,
}

impl std::fmt::Debug for GcsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsHandle")
            .field("connected", &self.addr.connected())
            .finish()
    }
}

impl GcsHandle {
    /// Starts a client for `tables` on `arbiter` (an embedded node, or tests).
    pub fn start(tables: GcsTables, arbiter: &actix_rt::ArbiterHandle) -> GcsHandle {
        let route = Route::Local(tables.clone());
        GcsHandle {
            addr: GcsClient::start_in_arbiter(arbiter, move |_| GcsClient::local(tables, None)),
            route,
            left: Arc::default(),
        }
    }

    /// Starts a client for a head's `tables` on `arbiter`, telling `net` where nodes listen.
    pub fn start_head(
        tables: GcsTables,
        net: Network,
        arbiter: &actix_rt::ArbiterHandle,
    ) -> GcsHandle {
        let route = Route::Local(tables.clone());
        GcsHandle {
            addr: GcsClient::start_in_arbiter(arbiter, move |_| {
                GcsClient::local(tables, Some(net))
            }),
            route,
            left: Arc::default(),
        }
    }

    /// Starts a client of the GCS on node `head` on `arbiter`.
    pub fn start_remote(
        net: Network,
        head: PeerId,
        arbiter: &actix_rt::ArbiterHandle,
    ) -> GcsHandle {
        let route = Route::Remote {
            net: net.clone(),
            head,
        };
        GcsHandle {
            addr: GcsClient::start_in_arbiter(arbiter, move |_| GcsClient::remote(net, head)),
            route,
            left: Arc::default(),
        }
    }

    /// The client actor's address.
    pub fn addr(&self) -> &Addr<GcsClient> {
        &self.addr
    }

    /// Sends a request to its table and waits for the reply.
    pub async fn request<M>(&self, msg: M) -> Result<M::Reply, GcsError>
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        self.addr
            .send(msg)
            .await
            .unwrap_or(Err(GcsError::Unavailable))
    }

    /// Sends a request behind every request this node sent before with [`GcsHandle::notify`]
    /// (on the ordered link to the head, where `notify` queues them) and waits for its reply:
    /// a node leaving the cluster sends its goodbye this way, so the head has the state
    /// changes it reported first, while the node was still a member.
    pub async fn request_ordered<M>(&self, msg: M) -> Result<M::Reply, GcsError>
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        match &self.route {
            Route::Local(_) => self.request(msg).await,
            Route::Remote { net, head } => net
                .send_ordered(*head, msg)
                .await
                .unwrap_or_else(|e| Err(GcsError::from_network(e))),
        }
    }

    /// The node is leaving the cluster: from now on [`GcsHandle::notify`] sends nothing (the
    /// head, which is told next that the node left, would refuse table changes from a node that
    /// is no longer a member, and drops the node's records itself). What was notified before
    /// is ahead of the goodbye on the ordered link.
    pub fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
    }

    /// Whether this node left the cluster ([`GcsHandle::leave`]): nothing it sends the head
    /// would be taken any more.
    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// Sends a request without waiting; a failure is logged. Callable from any thread.
    ///
    /// The request is queued before this returns (on the ordered link to the head, or in the
    /// table's mailbox on the head), so it is handled before anything this thread sends the
    /// head after it.
    pub fn notify<M>(&self, msg: M)
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        let local = matches!(self.route, Route::Local(_));
        let reply = self.queue(msg);
        self.addr.do_send(AwaitReply {
            what: M::NAME,
            local,
            reply,
        });
    }

    /// Like [`GcsHandle::notify`] (queued, in order, before this returns), but the caller
    /// awaits the head's answer: `Ok` once the head handled the request, its refusal or error
    /// as such, and [`GcsError::Unavailable`] when it could not be delivered (within the
    /// link's delivery bound), for the caller to send it again or act on. A request the
    /// cluster gossips (heartbeats, resources) is answered `Ok` once published.
    pub fn notify_acknowledged<M>(
        &self,
        msg: M,
    ) -> impl std::future::Future<Output = Result<(), GcsError>> + Send + 'static
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        self.queue(msg)
    }

    /// Queues `msg` for the head; the future is its answer.
    fn queue<M>(&self, msg: M) -> Pending
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        if self.left.load(Ordering::SeqCst) && matches!(self.route, Route::Remote { .. }) {
            tracing::debug!(request = M::NAME, "not sent: this node left the cluster");
            return Box::pin(std::future::ready(Err(GcsError::Unavailable)));
        }
        match &self.route {
            Route::Local(tables) => {
                let req = M::table(tables).send(msg);
                Box::pin(async move {
                    match req.await {
                        Ok(r) => r.map(|_| ()),
                        Err(_) => Err(GcsError::Unavailable),
                    }
                })
            }
            Route::Remote { net, head } => match M::GOSSIP_TOPIC {
                Some(topic) => {
                    let r = msg
                        .encode()
                        .map_err(|e| GcsError::Invalid(e.to_string()))
                        .and_then(|b| {
                            net.publish(topic, b).map_err(|e| {
                                tracing::debug!(request = M::NAME, error = %e, "not published");
                                GcsError::Unavailable
                            })
                        });
                    Box::pin(std::future::ready(r))
                }
                None => {
                    let reply = net.send_ordered(*head, msg);
                    Box::pin(async move {
                        match reply.await {
                            Ok(r) => r.map(|_| ()),
                            Err(e) => {
                                // The caller sees what the head's absence means for it; how
                                // the network failed is told here.
                                tracing::debug!(request = M::NAME, error = %e, "not delivered to the head");
                                Err(GcsError::from_network(e))
                            }
                        }
                    })
                }
            },
        }
    }

    /// The node table as this client last saw it.
    pub async fn cached_nodes(&self) -> Result<Vec<NodeInfo>, GcsError> {
        self.addr
            .send(CachedNodes)
            .await
            .map_err(|_| GcsError::Unavailable)
    }

    /// Subscribes `to` to node-table changes.
    pub fn subscribe(&self, to: Recipient<GcsEvent>) {
        self.addr.do_send(SubscribeEvents(to));
    }

    /// The node table as the GCS has it now.
    pub async fn all_nodes(&self) -> Result<Vec<NodeInfo>, GcsError> {
        self.request(GetAllNodes).await
    }
}

impl std::fmt::Debug for GcsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsClient").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SubscribeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeEvents").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CachedNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedNodes").finish_non_exhaustive()
    }
}
