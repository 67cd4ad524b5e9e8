//! A node's handle to the GCS.

use std::collections::BTreeMap;

use actix::prelude::*;
use raya_common::NodeId;

use super::nodes::{GetAllNodes, NodeInfo, SubscribeNodes};
use super::{GcsError, GcsEvent, GcsRequest, GcsTables};

/// The node's GCS client actor: forwards every [`GcsRequest`] to its table and keeps a cache of
/// the node table, which it subscribes to.
pub struct GcsClient {
    tables: GcsTables,
    nodes: BTreeMap<NodeId, NodeInfo>,
}

impl GcsClient {
    /// A client of the GCS whose tables run in this process (the head node).
    pub fn local(tables: GcsTables) -> Self {
        GcsClient {
            tables,
            nodes: BTreeMap::new(),
        }
    }
}

impl Actor for GcsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let me = ctx.address().recipient::<GcsEvent>();
        let sub = self.tables.nodes.send(SubscribeNodes(me));
        ctx.wait(
            actix::fut::wrap_future(sub).map(|res, this: &mut GcsClient, _| match res {
                Ok(Ok(nodes)) => this.nodes = nodes.into_iter().map(|n| (n.node_id, n)).collect(),
                _ => tracing::warn!("GCS client could not subscribe to the node table"),
            }),
        );
    }
}

impl<M> Handler<M> for GcsClient
where
    M: GcsRequest,
    <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
{
    type Result = ResponseFuture<Result<M::Reply, GcsError>>;

    fn handle(&mut self, msg: M, _: &mut Context<Self>) -> Self::Result {
        let req = M::table(&self.tables).send(msg);
        Box::pin(async move { req.await.unwrap_or(Err(GcsError::Unavailable)) })
    }
}

impl Handler<GcsEvent> for GcsClient {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        match ev {
            GcsEvent::NodeAlive(n) | GcsEvent::NodeResources(n) => {
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
}

/// Forwards a request whose reply nobody waits for, logging a failure.
struct Notify<M>(M);

impl<M: GcsRequest> Message for Notify<M> {
    type Result = ();
}

impl<M> Handler<Notify<M>> for GcsClient
where
    M: GcsRequest,
    <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
{
    type Result = ResponseFuture<()>;

    fn handle(&mut self, Notify(msg): Notify<M>, _: &mut Context<Self>) -> Self::Result {
        let req = M::table(&self.tables).send(msg);
        let what = std::any::type_name::<M>();
        Box::pin(async move {
            match req.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(request = what, error = %e, "GCS request failed"),
                Err(_) => {
                    tracing::debug!(request = what, "GCS gone before a request was delivered")
                }
            }
        })
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

/// A cloneable handle to a [`GcsClient`], usable from any thread or runtime.
#[derive(Clone)]
pub struct GcsHandle {
    addr: Addr<GcsClient>,
}

impl GcsHandle {
    /// Starts a client for `tables` on `arbiter`.
    pub fn start(tables: GcsTables, arbiter: &actix_rt::ArbiterHandle) -> GcsHandle {
        GcsHandle {
            addr: GcsClient::start_in_arbiter(arbiter, move |_| GcsClient::local(tables)),
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

    /// Sends a request without waiting; a failure is logged. Callable from any thread.
    pub fn notify<M>(&self, msg: M)
    where
        M: GcsRequest,
        <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
    {
        self.addr.do_send(Notify(msg));
    }

    /// The node table as this client last saw it.
    pub async fn cached_nodes(&self) -> Result<Vec<NodeInfo>, GcsError> {
        self.addr
            .send(CachedNodes)
            .await
            .map_err(|_| GcsError::Unavailable)
    }

    /// The node table as the GCS has it now.
    pub async fn all_nodes(&self) -> Result<Vec<NodeInfo>, GcsError> {
        self.request(GetAllNodes).await
    }
}
