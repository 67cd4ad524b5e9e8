//! The node's libp2p network: one swarm per node, on its own thread.
//!
//! - **TCP + Noise + Yamux** links, authenticated by each node's ed25519 identity;
//! - **request-response** ([`codec::RPC_PROTOCOL`]) carries typed messages to actors on other
//!   nodes and their replies, through one [`Router`] per node;
//! - **gossipsub** carries what every node must learn (membership, heartbeats, table changes);
//! - **streams** ([`OBJECT_PROTOCOL`]) carry objects in chunks, off the request path;
//! - **mDNS** (optional) and a bootstrap list find the cluster; **identify** tells each side the
//!   other's role and listen addresses; **ping** closes links that stop answering.
//!
//! The swarm runs on a dedicated tokio runtime and is driven through a bounded command queue,
//! so no Actix arbiter ever polls it and a slow consumer never blocks it.
//!
//! ```no_run
//! # fn demo() -> Result<(), raya_cluster::net::NetError> {
//! use raya_cluster::net::{NetConfig, Network, Role};
//! let key = libp2p::identity::Keypair::generate_ed25519();
//! let net = Network::start(key, NetConfig::new(Role::Head), raya_cluster::net::Router::new())?;
//! println!("others join with {:?}", net.listen_addrs());
//! # Ok(()) }
//! ```

pub mod codec;
pub mod forward;
pub mod router;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Message, Recipient};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identify, mdns,
    noise, ping, tcp, yamux,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use codec::{Frame, MALFORMED_ROUTE, RPC_PROTOCOL, Reply, Target, WireError};
pub use forward::{Forward, remote_recipient};
pub use router::{OrderedFrames, Router, WireMessage, decode_body, encode_body, route_id};

/// The protocol name of object transfer streams.
pub const OBJECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/raya/object/1");

/// The identify protocol version every Raya node announces; peers announcing another are
/// disconnected.
pub const PROTOCOL_VERSION: &str = "/raya/0.1";

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
    /// Requests in flight per connection.
    pub max_streams: usize,
}

impl NetConfig {
    /// Defaults for `role`: listen on a free TCP port of every interface, no bootstrap, mDNS
    /// off, 16 MiB requests, 64 MiB replies, 1 MiB gossip, 30 s request timeout, 1 s pings with a
    /// 3 s timeout.
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

/// Parses `host:port` (an IPv4 or IPv6 address) or a multiaddr.
///
/// ```
/// let a = raya_cluster::net::parse_address("127.0.0.1:6379").unwrap();
/// assert_eq!(a.to_string(), "/ip4/127.0.0.1/tcp/6379");
/// assert!(raya_cluster::net::parse_address("nonsense").is_err());
/// ```
pub fn parse_address(s: &str) -> Result<Multiaddr, NetError> {
    let s = s.trim();
    if s.starts_with('/') {
        return s.parse().map_err(|_| NetError::Address(s.into()));
    }
    let sock: std::net::SocketAddr = s.parse().map_err(|_| NetError::Address(s.into()))?;
    let ip = match sock.ip() {
        std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
        std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Ok(Multiaddr::empty().with(ip).with(Protocol::Tcp(sock.port())))
}

/// The `host:port` forms of `addrs`, addresses other machines can reach first (loopback last).
///
/// ```
/// let addrs = ["/ip4/127.0.0.1/tcp/7".parse().unwrap(), "/ip4/10.0.0.2/tcp/7".parse().unwrap()];
/// let s = raya_cluster::net::sockets_reachable_first(&addrs);
/// assert_eq!(s[0].to_string(), "10.0.0.2:7");
/// ```
pub fn sockets_reachable_first(addrs: &[Multiaddr]) -> Vec<std::net::SocketAddr> {
    let mut v: Vec<std::net::SocketAddr> = addrs.iter().filter_map(socket_of).collect();
    v.sort_by_key(|a| a.ip().is_loopback());
    v
}

/// `host:port` of a TCP multiaddr, when it has that form.
pub fn socket_of(addr: &Multiaddr) -> Option<std::net::SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    Some(std::net::SocketAddr::new(ip?, port?))
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossip: gossipsub::Behaviour,
    rpc: request_response::Behaviour<codec::FrameCodec>,
    streams: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

enum Command {
    Ask {
        peer: PeerId,
        frame: Frame,
        reply: oneshot::Sender<Result<Reply, NetError>>,
    },
    Respond {
        channel: ResponseChannel<Reply>,
        reply: Reply,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    Dial(Multiaddr),
    Peers(oneshot::Sender<Vec<PeerId>>),
    Shutdown,
}

struct Shared {
    me: PeerId,
    listen: Mutex<Vec<Multiaddr>>,
    subscribers: Mutex<Vec<Recipient<NetEvent>>>,
    head: watch::Sender<Option<PeerId>>,
}

impl Shared {
    fn publish(&self, ev: NetEvent) {
        let subs = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for s in subs {
            s.do_send(ev.clone());
        }
    }
}

/// A handle to the node's network. Cloning shares it; [`Network::shutdown`] stops the swarm.
#[derive(Clone)]
pub struct Network {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Command>,
    control: libp2p_stream::Control,
    router: Router,
    io: tokio::runtime::Handle,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("me", &self.shared.me)
            .finish()
    }
}

impl Network {
    /// Starts the swarm with identity `key` on its own thread, listening on `config.listen`,
    /// and serving inbound requests with `router`. Returns once it listens.
    pub fn start(key: Keypair, config: NetConfig, router: Router) -> Result<Network, NetError> {
        let me = key.public().to_peer_id();
        let (head, _) = watch::channel(if config.role == Role::Head {
            Some(me)
        } else {
            None
        });
        let shared = Arc::new(Shared {
            me,
            listen: Mutex::new(Vec::new()),
            subscribers: Mutex::new(Vec::new()),
            head,
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue.max(16));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let shared = Arc::clone(&shared);
            let router = router.clone();
            let cmd_tx = cmd_tx.clone();
            std::thread::Builder::new()
                .name("raya-net".into())
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("raya-net-io")
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready_tx.send(Err(NetError::Start(e.to_string())));
                            return;
                        }
                    };
                    rt.block_on(async move {
                        let swarm = match build_swarm(key, &config) {
                            Ok(s) => s,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let mut lp = EventLoop::new(swarm, config, shared, router, cmd_tx);
                        match lp.listen().await {
                            Ok(()) => {
                                let _ = ready_tx.send(Ok((
                                    lp.swarm.behaviour().streams.new_control(),
                                    tokio::runtime::Handle::current(),
                                )));
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        }
                        lp.run(cmd_rx).await;
                    });
                })
                .map_err(|e| NetError::Start(e.to_string()))?
        };
        let (control, io) = match ready_rx.recv() {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(NetError::Start("the network thread died".into()));
            }
        };
        Ok(Network {
            shared,
            cmd: cmd_tx,
            control,
            router,
            io,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.me
    }

    /// The addresses this node listens on (with its peer id appended).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The routes this node serves.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// A handle to open and accept raw streams (object transfer).
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// Runs `fut` on the network's I/O runtime (for stream transfers, which must not occupy an
    /// actor's event loop).
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.io.spawn(fut);
    }

    /// Subscribes `to` to the network's events.
    pub fn subscribe(&self, to: Recipient<NetEvent>) {
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(to);
    }

    /// The head's peer id, once known.
    pub fn head(&self) -> Option<PeerId> {
        *self.shared.head.borrow()
    }

    /// Waits until the head is known, at most `timeout`.
    pub async fn wait_for_head(&self, timeout: Duration) -> Option<PeerId> {
        let mut rx = self.shared.head.subscribe();
        let wait = async {
            loop {
                if let Some(h) = *rx.borrow_and_update() {
                    return Some(h);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    fn command(&self, c: Command) -> Result<(), NetError> {
        self.cmd.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetError::Busy,
            mpsc::error::TrySendError::Closed(_) => NetError::Stopped,
        })
    }

    /// Sends a raw frame to `peer` and waits for its reply.
    pub async fn ask_frame(&self, peer: PeerId, frame: Frame) -> Result<Vec<u8>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Ask {
            peer,
            frame,
            reply: tx,
        })?;
        match rx.await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(error))) => Err(NetError::Remote { peer, error }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError::Stopped),
        }
    }

    /// Sends typed message `msg` to the actor serving it (`target`) on node `peer` and waits for
    /// the actor's reply: the remote form of `Addr::send`.
    pub async fn ask<M: WireMessage>(
        &self,
        peer: PeerId,
        target: Target,
        msg: M,
    ) -> Result<M::Result, NetError> {
        let body = encode_body(&msg).map_err(|e| NetError::Codec(e.to_string()))?;
        let frame = Frame {
            route: route_id::<M>(),
            target,
            body,
        };
        let bytes = self.ask_frame(peer, frame).await?;
        decode_body(&bytes).map_err(|e| NetError::Codec(e.to_string()))
    }

    /// Publishes `data` on gossip topic `topic`.
    pub fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        self.command(Command::Publish {
            topic: topic.to_string(),
            data,
        })
    }

    /// Dials `addr`.
    pub fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.command(Command::Dial(addr))
    }

    /// The peers this node has a link to.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Peers(tx))?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Stops the swarm and waits for its thread. Further calls fail with [`NetError::Stopped`].
    pub fn shutdown(&self) {
        let _ = self.cmd.try_send(Command::Shutdown);
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

fn build_swarm(key: Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let start = |e: &dyn std::fmt::Display| NetError::Start(e.to_string());
    let max_gossip = config.max_gossip;
    let codec = codec::FrameCodec {
        max_request: config.max_request,
        max_reply: config.max_reply,
    };
    let rr_config = request_response::Config::default()
        .with_request_timeout(config.request_timeout)
        .with_max_concurrent_streams(config.max_streams);
    let (ping_interval, ping_timeout) = (config.ping_interval, config.ping_timeout);
    let mdns_on = config.mdns;
    let role = config.role;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| start(&e))?
        .with_behaviour(|key| {
            let me = key.public().to_peer_id();
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(max_gossip)
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(ValidationMode::Strict)
                .build()?;
            let mdns = if mdns_on {
                match mdns::tokio::Behaviour::new(mdns::Config::default(), me) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(error = %e, "mDNS unavailable: discovery by address only");
                        None
                    }
                }
            } else {
                None
            };
            Ok(Behaviour {
                blocked: allow_block_list::Behaviour::default(),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_pending_incoming(Some(256))
                        .with_max_established_per_peer(Some(4)),
                ),
                gossip: gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?,
                rpc: request_response::Behaviour::with_codec(
                    codec,
                    [(RPC_PROTOCOL, ProtocolSupport::Full)],
                    rr_config,
                ),
                streams: libp2p_stream::Behaviour::new(),
                identify: identify::Behaviour::new(
                    identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(role.agent()),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(ping_interval)
                        .with_timeout(ping_timeout),
                ),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| start(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: NetConfig,
    shared: Arc<Shared>,
    router: Router,
    cmd_tx: mpsc::Sender<Command>,
    pending: HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<Reply, NetError>>)>,
    /// Requests in flight per peer, and those waiting for a free slot: yamux refuses streams
    /// past its limit, so requests to one peer are bounded here.
    in_flight: HashMap<PeerId, usize>,
    waiting: HashMap<PeerId, std::collections::VecDeque<(Frame, ReplyTx)>>,
    identified: HashSet<PeerId>,
}

/// Where a request's reply goes.
type ReplyTx = oneshot::Sender<Result<Reply, NetError>>;

/// Requests in flight to one peer (yamux allows 512 streams per connection; the rest are for
/// object transfers, gossip and the other protocols).
const MAX_IN_FLIGHT: usize = 256;
/// Requests waiting for a slot to one peer; past it a request fails with [`NetError::Busy`].
const MAX_WAITING: usize = 1 << 20;

impl EventLoop {
    fn new(
        swarm: Swarm<Behaviour>,
        config: NetConfig,
        shared: Arc<Shared>,
        router: Router,
        cmd_tx: mpsc::Sender<Command>,
    ) -> Self {
        EventLoop {
            swarm,
            config,
            shared,
            router,
            cmd_tx,
            pending: HashMap::new(),
            in_flight: HashMap::new(),
            waiting: HashMap::new(),
            identified: HashSet::new(),
        }
    }

    /// Starts listening and waits until every listen address is bound.
    async fn listen(&mut self) -> Result<(), NetError> {
        for t in &self.config.topics {
            self.swarm
                .behaviour_mut()
                .gossip
                .subscribe(&IdentTopic::new(t.clone()))
                .map_err(|e| NetError::Start(format!("gossip topic {t}: {e}")))?;
        }
        let wanted = self.config.listen.len();
        for a in self.config.listen.clone() {
            self.swarm
                .listen_on(a.clone())
                .map_err(|e| NetError::Start(format!("listen on {a}: {e}")))?;
        }
        let mut bound = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while bound < wanted {
            let ev = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| NetError::Start("listening timed out".into()))?;
            match ev {
                SwarmEvent::NewListenAddr { address, .. } => {
                    self.add_listen(address);
                    bound += 1;
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(NetError::Start(error.to_string()));
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(NetError::Start(format!("listener closed: {reason:?}")));
                }
                other => self.on_swarm_event(other),
            }
        }
        for a in self.config.bootstrap.clone() {
            self.dial(a);
        }
        Ok(())
    }

    fn add_listen(&mut self, address: Multiaddr) {
        let me = self.shared.me;
        let full = address.with_p2p(me).unwrap_or_else(|a| a);
        tracing::info!(address = %full, "listening");
        let mut l = self.shared.listen.lock().unwrap_or_else(|p| p.into_inner());
        if !l.contains(&full) {
            l.push(full);
        }
    }

    fn dial(&mut self, addr: Multiaddr) {
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::debug!(%addr, error = %e, "dial failed");
        }
    }

    async fn run(&mut self, mut cmds: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(Duration::from_secs(2));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.on_command(c),
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = redial.tick() => self.redial(),
            }
        }
        for (_, (_, tx)) in self.pending.drain() {
            let _ = tx.send(Err(NetError::Stopped));
        }
        for (_, q) in self.waiting.drain() {
            for (_, tx) in q {
                let _ = tx.send(Err(NetError::Stopped));
            }
        }
    }

    fn redial(&mut self) {
        let head = *self.shared.head.borrow();
        let connected = head.is_some_and(|h| self.swarm.is_connected(&h));
        if !connected && self.config.role != Role::Head {
            for a in self.config.bootstrap.clone() {
                self.dial(a);
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Ask { peer, frame, reply } => {
                if peer == self.shared.me {
                    // A request to this node itself: serve it without the network.
                    let fut = self.router.dispatch(frame);
                    tokio::spawn(async move {
                        let _ = reply.send(Ok(fut.await));
                    });
                    return;
                }
                let n = self.in_flight.entry(peer).or_default();
                if *n < MAX_IN_FLIGHT {
                    *n += 1;
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                    self.pending.insert(id, (peer, reply));
                } else {
                    let q = self.waiting.entry(peer).or_default();
                    if q.len() >= MAX_WAITING {
                        let _ = reply.send(Err(NetError::Busy));
                    } else {
                        q.push_back((frame, reply));
                    }
                }
            }
            Command::Respond { channel, reply } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, reply)
                    .is_err()
                {
                    tracing::debug!("reply dropped: the requester's link closed");
                }
            }
            Command::Publish { topic, data } => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(IdentTopic::new(topic.clone()), data)
                {
                    tracing::trace!(%topic, error = %e, "gossip not published");
                }
            }
            Command::Dial(addr) => self.dial(addr),
            Command::Peers(tx) => {
                let _ = tx.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(e)) => self.on_rpc(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                message,
                ..
            })) => {
                self.shared.publish(NetEvent::Gossip {
                    topic: message.topic.into_string(),
                    source: message.source,
                    data: message.data,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(e),
            })) => {
                tracing::info!(%peer, error = %e, "ping failed: closing the link");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                // Only a node still looking for its cluster dials what mDNS finds; a head and a
                // node that has its head merely answer.
                if self.config.role == Role::Head || self.shared.head.borrow().is_some() {
                    return;
                }
                for (peer, addr) in list {
                    if peer != self.shared.me && !self.swarm.is_connected(&peer) {
                        tracing::debug!(%peer, %addr, "found by mDNS");
                        self.swarm.add_peer_address(peer, addr.clone());
                        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .build();
                        if let Err(e) = self.swarm.dial(opts) {
                            tracing::debug!(%peer, error = %e, "dial failed");
                        }
                    }
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => self.add_listen(address),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "link closed");
                if self.identified.remove(&peer_id) {
                    self.shared.publish(NetEvent::PeerGone { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, error = %error, "could not connect");
            }
            _ => {}
        }
    }

    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        if info.protocol_version != PROTOCOL_VERSION {
            tracing::info!(%peer, version = %info.protocol_version, "not a Raya peer: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        let Some(role) = Role::from_agent(&info.agent_version) else {
            tracing::info!(%peer, agent = %info.agent_version, "peer without a Raya role: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        // Clusters stay apart: a head links to no other head, a node to no head but its own.
        let own_head = *self.shared.head.borrow();
        if role == Role::Head && own_head.is_some_and(|h| h != peer) {
            tracing::debug!(%peer, "another cluster's head: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        for a in &info.listen_addrs {
            self.swarm.add_peer_address(peer, a.clone());
        }
        if role == Role::Head && self.config.role != Role::Head {
            self.shared.head.send_if_modified(|h| {
                if *h == Some(peer) {
                    false
                } else {
                    tracing::info!(head = %peer, "found the head");
                    *h = Some(peer);
                    true
                }
            });
        }
        self.identified.insert(peer);
        self.shared.publish(NetEvent::PeerIdentified {
            peer,
            role,
            addrs: info.listen_addrs,
        });
    }

    /// A request to `peer` ended: start the next one waiting for it.
    fn request_done(&mut self, peer: PeerId) {
        let next = self.waiting.get_mut(&peer).and_then(|q| q.pop_front());
        match next {
            Some((frame, reply)) => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                self.pending.insert(id, (peer, reply));
            }
            None => {
                self.waiting.remove(&peer);
                if let Some(n) = self.in_flight.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.in_flight.remove(&peer);
                    }
                }
            }
        }
    }

    fn on_rpc(&mut self, e: request_response::Event<Frame, Reply>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if request.route == codec::MALFORMED_ROUTE {
                        tracing::warn!(
                            %peer,
                            reason = %String::from_utf8_lossy(&request.body),
                            "malformed frame: dropping the peer"
                        );
                        drop(channel);
                        self.swarm.behaviour_mut().blocked.block_peer(peer);
                        return;
                    }
                    let fut = self.router.dispatch(request);
                    let tx = self.cmd_tx.clone();
                    tokio::spawn(async move {
                        let reply = fut.await;
                        let _ = tx.send(Command::Respond { channel, reply }).await;
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((p, tx)) = self.pending.remove(&request_id) {
                        let _ = tx.send(Ok(response));
                        self.request_done(p);
                    } else {
                        tracing::trace!(%peer, "reply to a forgotten request");
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let err = match error {
                    request_response::OutboundFailure::Timeout => NetError::Timeout { peer },
                    other => NetError::Unreachable {
                        peer,
                        reason: other.to_string(),
                    },
                };
                if let Some((p, tx)) = self.pending.remove(&request_id) {
                    let _ = tx.send(Err(err));
                    self.request_done(p);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests;
