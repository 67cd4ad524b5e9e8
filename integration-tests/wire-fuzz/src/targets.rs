//! The fuzz targets: each takes any bytes and must return without panicking.

use std::sync::{Arc, OnceLock};

use libp2p_identity::PeerId;
use raya_cluster::transport::checks::check_frame;
use raya_cluster::transport::codec::{FrameCodec, RPC_PROTOCOL};
use raya_cluster::transport::{Caller, Frame, Router, WireCheck};
use raya_common::NodeId;
use raya_store::object_store::{StoreConfig, StoreCore};

/// Peers frames are checked as coming from: a head, a node, and another node. The same in
/// every run, so that seeds naming them stay valid.
pub fn peers() -> &'static [PeerId; 3] {
    static PEERS: OnceLock<[PeerId; 3]> = OnceLock::new();
    PEERS.get_or_init(|| {
        [1u8, 2, 3].map(|i| {
            libp2p_identity::Keypair::ed25519_from_bytes([i; 32])
                .expect("a 32-byte ed25519 secret")
                .public()
                .to_peer_id()
        })
    })
}

/// The caller picked by `b`: the head for one value in three.
pub fn caller(b: u8) -> Caller {
    let peer = peers()[b as usize % 3];
    Caller {
        peer,
        head: b.is_multiple_of(3),
        tag_taken: b % 5 == 4,
    }
}

/// Every route's check (see `raya::wire_checks`).
pub fn checks() -> &'static [WireCheck] {
    static CHECKS: OnceLock<Vec<WireCheck>> = OnceLock::new();
    CHECKS.get_or_init(raya::wire_checks)
}

/// A store for the references decoded messages name (they attach to the process's store).
pub fn ensure_store() {
    static STORE: OnceLock<Arc<StoreCore>> = OnceLock::new();
    let store = STORE.get_or_init(|| {
        StoreCore::new(StoreConfig {
            node: NodeId::from_peer_id(peers()[1]),
            memory_budget: 1 << 30,
            spilling: false,
            spill_dir: std::env::temp_dir().join("raya-wire-fuzz-spill"),
        })
    });
    if raya_store::current_store().is_none() {
        raya_store::set_current_store(Some(Arc::clone(store)));
    }
}

/// Frames as the node's codec reads them from a stream, then checked as the router checks
/// them. The first byte picks the caller; the rest is the stream's bytes.
pub fn frame(data: &[u8]) {
    use libp2p::request_response::Codec;
    let Some((&who, stream)) = data.split_first() else {
        return;
    };
    ensure_store();
    let mut codec = FrameCodec {
        max_request: 16 << 20,
        max_reply: 64 << 20,
    };
    futures::executor::block_on(async {
        let mut input = stream;
        if let Ok(f) = codec.read_request(&RPC_PROTOCOL, &mut input).await {
            let _ = check_frame(checks(), &f, &caller(who));
        }
        let mut input = stream;
        let _ = codec.read_response(&RPC_PROTOCOL, &mut input).await;
    });
}

/// One route's check on a body: two bytes pick the route, one the caller, the rest is the body.
pub fn route(data: &[u8]) {
    let [a, b, who, body @ ..] = data else {
        return;
    };
    ensure_store();
    let checks = checks();
    let (_, check) = checks[u16::from_le_bytes([*a, *b]) as usize % checks.len()];
    let _ = check(body, &caller(*who));
}

/// Live GCS tables in this process, served on a router, on their own Actix system.
struct LiveGcs {
    router: Router,
}

fn live_gcs() -> &'static LiveGcs {
    static LIVE: OnceLock<LiveGcs> = OnceLock::new();
    LIVE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                // In memory when it can (sled flushes on every durable write).
                let base = ["/dev/shm", "/tmp"]
                    .iter()
                    .map(std::path::Path::new)
                    .find(|p| p.is_dir())
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(std::env::temp_dir);
                let dir = base.join(format!("raya-wire-fuzz-gcs-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let config = raya_cluster::GcsConfig {
                    dir,
                    node_timeout: std::time::Duration::from_secs(3600),
                    max_task_events: 10_000,
                    max_kv_bytes: 64 << 20,
                    head: None,
                };
                let tables = raya_cluster::GcsTables::start(&config, &actix_rt::Arbiter::current())
                    .expect("GCS tables");
                let router = Router::new();
                tables.serve(&router);
                router.set_head(peers()[0]);
                let _ = tx.send(router);
            });
            system.run().expect("the GCS system");
        });
        LiveGcs {
            router: rx.recv().expect("the GCS started"),
        }
    })
}

/// The GCS requests a node serves as requests (not those that travel by gossip).
pub fn gcs_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        raya_cluster::gcs::wire_checks()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| *n != "gcs/VersionedEvent" && *n != "gcs/NodeHeartbeat")
            .collect()
    })
}

/// A GCS request handed to live tables, handlers and all: two bytes pick the request among
/// the GCS's, one the caller, the rest is the body.
pub fn gcs_live(data: &[u8]) {
    let [a, b, who, body @ ..] = data else {
        return;
    };
    ensure_store();
    let live = live_gcs();
    let names = gcs_names();
    let name = names[u16::from_le_bytes([*a, *b]) as usize % names.len()];
    let frame = Frame {
        route: raya_cluster::transport::route_of(name),
        target: raya_cluster::transport::Target::System,
        body: body.to_vec(),
    };
    let reply = live.router.dispatch(caller(*who).peer, frame);
    let _ = futures::executor::block_on(reply);
}
