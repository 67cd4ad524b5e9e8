//! What the object manager's tests share: nodes of their own over real loopback connections
//! (network, store, object manager), and waiting for an object to settle.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use raya_cluster::transport::{NetConfig, Network, Role, Router};
use raya_common::{NodeId, ObjectId, TaskId};
use raya_store::{ObjectManager, StoreConfig, StoreCore};

/// A node of the test: its network, store and object manager.
pub(crate) struct TestNode {
    pub(crate) net: Network,
    pub(crate) store: Arc<StoreCore>,
    pub(crate) objects: actix::Addr<ObjectManager>,
}

impl TestNode {
    pub(crate) fn id(&self) -> NodeId {
        NodeId::from_peer_id(self.net.local_peer_id())
    }
}

pub(crate) fn start(
    role: Role,
    bootstrap: Vec<libp2p::Multiaddr>,
    dir: &std::path::Path,
) -> TestNode {
    start_with_lease(role, bootstrap, dir, Duration::from_secs(30))
}

pub(crate) fn start_with_lease(
    role: Role,
    bootstrap: Vec<libp2p::Multiaddr>,
    dir: &std::path::Path,
    lease: Duration,
) -> TestNode {
    let mut c = NetConfig::new(role);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.bootstrap = bootstrap;
    let net = Network::start(
        libp2p::identity::Keypair::generate_ed25519(),
        c,
        Router::new(),
    )
    .unwrap();
    let node = NodeId::from_peer_id(net.local_peer_id());
    let store = StoreCore::new(StoreConfig {
        node,
        memory_budget: 64 << 20,
        spilling: false,
        spill_dir: dir.join(node.to_string()),
    });
    let objects = ObjectManager::start(
        Arc::clone(&store),
        net.clone(),
        &actix_rt::Arbiter::current(),
        lease,
    );
    TestNode {
        net,
        store,
        objects,
    }
}

/// Return 0 of task `seq` made by node `maker` (ids carry their maker's tag).
pub(crate) fn object_of(maker: &TestNode, seq: u64) -> ObjectId {
    let task = TaskId(((1u128) << 96) | ((maker.id().tag() as u128) << 64) | seq as u128);
    ObjectId::for_return(task, 0)
}

/// Waits (bounded) until `id` is no longer pending in `store`.
pub(crate) async fn settled(store: &Arc<StoreCore>, id: ObjectId) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.on_ready(
        id,
        Box::new(move || {
            let _ = tx.send(());
        }),
    );
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("the object settled in time")
        .ok();
}
