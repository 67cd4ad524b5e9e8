//! The transport: how a node reaches the others. One libp2p swarm per node, on its own thread.
//!
//! - **TCP + Noise + Yamux** links, authenticated by each node's ed25519 [`identity`];
//! - **request-response** ([`RPC_PROTOCOL`]) carries typed messages to actors on other nodes and
//!   their replies: a node serves a [`WireMessage`] by naming the actor that handles it in its
//!   [`Router`], and callers use [`Network::ask`] with the same message they would send locally;
//! - **gossipsub** carries what every node must learn (membership, heartbeats, table changes);
//! - **streams** ([`OBJECT_PROTOCOL`]) carry objects in chunks, off the request path;
//! - **mDNS** (optional) and a bootstrap list find the cluster; **identify** tells each side the
//!   other's role and listen addresses; **ping** closes links that stop answering.
//!
//! Every message that crosses nodes has a stable name and is listed, with its sender, receiver,
//! transport, reply and limits, in the [`protocol`] catalogue.
//!
//! The swarm runs on a dedicated tokio runtime (its event loop is the private `swarm` module) and
//! is driven through a bounded command queue, so no Actix arbiter ever polls it and a slow
//! consumer never blocks it.
//!
//! ```no_run
//! # fn demo() -> Result<(), raya_cluster::transport::NetError> {
//! use raya_cluster::transport::{NetConfig, Network, Role, Router};
//! let key = libp2p::identity::Keypair::generate_ed25519();
//! let net = Network::start(key, NetConfig::new(Role::Head), Router::new())?;
//! println!("others join with {:?}", net.listen_addrs());
//! # Ok(()) }
//! ```

mod address;
pub mod archive;
pub mod checks;
pub mod cluster_key;
pub mod codec;
pub mod forward;
pub mod identity;
pub mod inflight;
pub mod link;
mod network;
pub mod protocol;
pub mod router;
mod swarm;

use std::time::Duration;

use actix::Message;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

pub use address::{parse_address, socket_of, sockets_reachable_first};
pub use cluster_key::{ClusterKey, ClusterKeyError};
pub use codec::{Frame, MALFORMED_ROUTE, RPC_PROTOCOL, Reply, Target, WireError};
pub use forward::{Forward, remote_recipient};
pub use link::{Lane, OrderedReply, Sequenced};
pub use network::Network;
pub use router::{
    BodyCheck, Caller, Received, Router, WireCheck, WireMessage, check_body, decode_body,
    encode_body, route_id, route_of,
};

/// The protocol name of object transfer streams.
pub const OBJECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/raya/object/1");

/// The version of the wire protocol: it changes whenever a message's encoding or meaning does.
/// Nodes of different wire versions refuse each other.
pub const WIRE_VERSION: u32 = 10;

/// What a node announces in identify: its wire version and the fingerprint of the wire names
/// it knows (the catalogue's, [`protocol::catalogue`]), as `/raya/wire/<version>/<names>`.
/// A peer announcing another refuses and is refused, with the versions in both logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireIdentity {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// 64-bit FNV-1a hash of the catalogue's sorted names.
    pub names: u64,
}

impl WireIdentity {
    /// This build's.
    pub fn current() -> WireIdentity {
        static NAMES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let names = *NAMES.get_or_init(|| {
            let mut names: Vec<String> =
                protocol::catalogue().into_iter().map(|e| e.name).collect();
            names.sort_unstable();
            route_of(&names.join("\n"))
        });
        WireIdentity {
            version: WIRE_VERSION,
            names,
        }
    }

    /// The identify protocol version string.
    pub fn protocol_version(&self) -> String {
        format!("/raya/wire/{}/{:016x}", self.version, self.names)
    }

    /// Parses [`WireIdentity::protocol_version`]; `None` for a peer that is not Raya.
    pub fn parse(s: &str) -> Option<WireIdentity> {
        let rest = s.strip_prefix("/raya/wire/")?;
        let (version, names) = rest.split_once('/')?;
        Some(WireIdentity {
            version: version.parse().ok()?,
            names: u64::from_str_radix(names, 16).ok()?,
        })
    }
}

impl std::fmt::Display for WireIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wire {} (names {:016x})", self.version, self.names)
    }
}

/// A node's role in the cluster, announced to its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Runs the GCS and the global scheduler.
    Head,
    /// Joins a head and runs tasks.
    Node,
    /// Talks to a head without being a node (`raya status`).
    Client,
}

impl Role {
    fn agent(self) -> String {
        let role = match self {
            Role::Head => "head",
            Role::Node => "node",
            Role::Client => "client",
        };
        format!("raya/{}/{role}", env!("CARGO_PKG_VERSION"))
    }

    /// The Raya release in an agent string (`raya/<release>/<role>`).
    fn release_of(agent: &str) -> &str {
        agent.split('/').nth(1).unwrap_or("?")
    }

    fn from_agent(agent: &str) -> Option<Role> {
        match agent.rsplit('/').next()? {
            "head" => Some(Role::Head),
            "node" => Some(Role::Node),
            "client" => Some(Role::Client),
            _ => None,
        }
    }
}

/// How the network is set up.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on (`/ip4/0.0.0.0/tcp/0` picks a free port).
    pub listen: Vec<Multiaddr>,
    /// Addresses dialed at start and re-dialed while the head is not connected.
    pub bootstrap: Vec<Multiaddr>,
    /// Whether to discover peers on the LAN with mDNS (it ignores loopback).
    pub mdns: bool,
    /// The role announced to peers.
    pub role: Role,
    /// Gossip topics to subscribe to.
    pub topics: Vec<String>,
    /// Largest request frame, in bytes.
    pub max_request: usize,
    /// Largest reply frame, in bytes.
    pub max_reply: usize,
    /// Largest gossip message, in bytes (the same on every node).
    pub max_gossip: usize,
    /// How long a request may wait for its reply.
    pub request_timeout: Duration,
    /// Ping interval; a peer that misses a ping for `ping_timeout` is disconnected.
    pub ping_interval: Duration,
    /// See `ping_interval`.
    pub ping_timeout: Duration,
    /// Capacity of the command queue into the swarm.
    pub command_queue: usize,
    /// Request-response streams per connection (libp2p's limit; requests to one peer are held
    /// to 256 in flight below it, the rest queue; the batches of ordered links, at most two per
    /// peer, take none of those).
    pub max_streams: usize,
    /// How long a message sent with [`Network::send_ordered`] is retried before it fails.
    pub delivery_timeout: Duration,
    /// The cluster's pre-shared key: every connection is wrapped with it (libp2p `pnet`)
    /// before Noise, so only hosts holding it can connect. `None` runs an open network, which
    /// anyone who can reach the port may join.
    pub cluster_key: Option<ClusterKey>,
    /// Connections established with all peers at most (libp2p's connection limits; each peer
    /// has at most 4, and at most 256 incoming ones may be in their handshake at once).
    pub max_connections: u32,
    /// The wire identity announced ([`WireIdentity::current`]; another only in tests).
    pub(crate) wire: WireIdentity,
}

impl NetConfig {
    /// Defaults for `role`: listen on a free TCP port of every interface, no bootstrap, mDNS
    /// off, 16 MiB requests, 64 MiB replies, 1 MiB gossip, 30 s request timeout, 1 s pings with a
    /// 3 s timeout, no cluster key, at most 4,096 connections.
    pub fn new(role: Role) -> Self {
        NetConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
            bootstrap: Vec::new(),
            mdns: false,
            role,
            topics: Vec::new(),
            max_request: 16 << 20,
            max_reply: 64 << 20,
            max_gossip: 1 << 20,
            request_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(3),
            command_queue: 65_536,
            max_streams: 512,
            delivery_timeout: Duration::from_secs(30),
            cluster_key: None,
            max_connections: 4096,
            wire: WireIdentity::current(),
        }
    }
}

/// A network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The network is shut down.
    #[error("the network is stopped")]
    Stopped,
    /// The command queue is full.
    #[error("the network's command queue is full")]
    Busy,
    /// The peer could not be reached or the link broke.
    #[error("node {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("node {peer} did not answer in time")]
    Timeout {
        /// The peer.
        peer: PeerId,
    },
    /// The far node answered with an error.
    #[error("node {peer}: {error}")]
    Remote {
        /// The peer.
        peer: PeerId,
        /// Its error.
        error: WireError,
    },
    /// The message was never sent to the peer (it failed while queued: the peer was declared
    /// dead, the delivery bound ran out before its turn, or the link was full): it cannot have
    /// been handled there.
    #[error("not sent to node {peer}: {reason}")]
    NotSent {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The message could not be encoded: it was never sent.
    #[error("the message cannot be encoded: {0}")]
    Encode(String),
    /// The message is larger than any frame the network carries: it can never be sent.
    #[error("a message of {size} bytes is over the {max}-byte frame limit")]
    TooLarge {
        /// The message's encoded size.
        size: usize,
        /// The largest a frame may carry.
        max: usize,
    },
    /// The message could not be encoded or its reply decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// The network could not start.
    #[error("could not start the network: {0}")]
    Start(String),
    /// An address could not be parsed.
    #[error("bad address {0:?}: expected host:port or a multiaddr")]
    Address(String),
}

/// What the network tells its subscribers.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum NetEvent {
    /// A Raya peer connected and said who it is.
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// Its role.
        role: Role,
        /// The addresses it listens on.
        addrs: Vec<Multiaddr>,
    },
    /// The last link to a peer closed.
    PeerGone {
        /// The peer.
        peer: PeerId,
    },
    /// A gossip message arrived.
    Gossip {
        /// Its topic.
        topic: String,
        /// The node that published it.
        source: Option<PeerId>,
        /// Its payload.
        data: Vec<u8>,
    },
}

impl NetEvent {
    /// The topic, publisher and payload of a gossip message; `None` for other events.
    pub fn into_gossip(self) -> Option<(String, Option<PeerId>, Vec<u8>)> {
        match self {
            NetEvent::Gossip {
                topic,
                source,
                data,
            } => Some((topic, source, data)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
