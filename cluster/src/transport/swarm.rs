//! The swarm's event loop: the libp2p behaviours a node runs, and the loop on the network
//! thread that turns commands from [`super::Network`] into requests, gossip and dials, and
//! swarm events into replies, [`NetEvent`]s and frames for the [`Router`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, connection_limits, identify, mdns, noise, ping,
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::codec::{self, Frame, RPC_PROTOCOL, Reply};
use super::link::Sequenced;
use super::router::route_id;
use super::{NetConfig, NetError, NetEvent, Role, Router, WireIdentity};

/// The protocols every node runs.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossip: gossipsub::Behaviour,
    rpc: request_response::Behaviour<codec::FrameCodec>,
    pub(super) streams: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

pub(super) enum Command {
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
    /// Addresses where `peer` listens (from the GCS node table), for dials by peer id.
    AddAddresses {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    Shutdown,
}

/// What the [`super::Network`] handles and the event loop share.
pub(super) struct Shared {
    pub(super) me: PeerId,
    pub(super) listen: Mutex<Vec<Multiaddr>>,
    pub(super) subscribers: Mutex<Vec<Recipient<NetEvent>>>,
    pub(super) head: watch::Sender<Option<PeerId>>,
    /// Why the last peer of another wire version was refused, and whether it was a head (a
    /// node that cannot join its head says so instead of waiting).
    pub(super) mismatch: watch::Sender<Option<(bool, String)>>,
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

/// TCP, wrapped with the cluster key's private network when there is one, then Noise and
/// yamux. Connections that fail the key's handshake never reach Noise.
fn transport(
    key: &Keypair,
    cluster_key: Option<super::ClusterKey>,
) -> Result<
    libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>,
    noise::Error,
> {
    use libp2p::Transport;
    use libp2p::core::upgrade::Version;
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(key)?;
    let upgraded = match cluster_key {
        Some(k) => {
            let psk = k.psk();
            tcp.and_then(move |socket, _| libp2p::pnet::PnetConfig::new(psk).handshake(socket))
                .upgrade(Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .timeout(Duration::from_secs(20))
                .boxed()
        }
        None => tcp
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(20))
            .boxed(),
    };
    Ok(upgraded)
}

pub(super) fn build_swarm(key: Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
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
    let wire = config.wire;
    let max_connections = config.max_connections;
    let cluster_key = config.cluster_key;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            transport(key, cluster_key)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
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
                        .with_max_established_per_peer(Some(4))
                        .with_max_established(Some(max_connections)),
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
                    identify::Config::new(wire.protocol_version(), key.public())
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

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    config: NetConfig,
    shared: Arc<Shared>,
    router: Router,
    cmd_tx: mpsc::Sender<Command>,
    /// Requests in flight: to whom, where the reply goes, and whether it holds one of the
    /// peer's [`MAX_IN_FLIGHT`] slots.
    pending: HashMap<OutboundRequestId, (PeerId, ReplyTx, bool)>,
    /// Requests in flight per peer, and those waiting for a free slot: yamux refuses streams
    /// past its limit, so requests to one peer are bounded here. The batches of ordered links
    /// take no slot: a link has one batch in flight at most, and a peer two links, and were
    /// they queued behind requests the far node holds (a request whose handler waits for
    /// something, as an early result waits for its owner's record), the borrow registrations
    /// that something waits for would wait too.
    in_flight: HashMap<PeerId, usize>,
    waiting: HashMap<PeerId, std::collections::VecDeque<(Frame, ReplyTx)>>,
    identified: HashSet<PeerId>,
    /// Peers this node reached by dialing one of its bootstrap addresses: given its head's
    /// address (and no discovery), a node follows only a head found there, never a key holder
    /// that connected to it announcing itself as head.
    bootstrapped: HashSet<PeerId>,
    /// Peers blocked for malformed frames.
    blocked: BlockList,
}

/// `addr` without its `/p2p/<peer id>` part, if any.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

/// Peers a node keeps blocked at once; past it the one blocked longest is let back (a key
/// holder can make new identities, so the list is bounded by the node, not by them).
const MAX_BLOCKED: usize = 4096;

/// The peers blocked for malformed frames, oldest first, at most `max`.
pub(super) struct BlockList {
    order: std::collections::VecDeque<PeerId>,
    max: usize,
}

impl BlockList {
    pub(super) fn new(max: usize) -> Self {
        BlockList {
            order: std::collections::VecDeque::new(),
            max,
        }
    }

    /// Records `peer` as blocked: `false` when it already was; with the peer to let back when
    /// the list was full.
    pub(super) fn add(&mut self, peer: PeerId) -> (bool, Option<PeerId>) {
        if self.order.contains(&peer) {
            return (false, None);
        }
        self.order.push_back(peer);
        let evicted = if self.order.len() > self.max {
            self.order.pop_front()
        } else {
            None
        };
        (true, evicted)
    }
}

/// Where a request's reply goes.
type ReplyTx = oneshot::Sender<Result<Reply, NetError>>;

/// Requests in flight to one peer (yamux allows 512 streams per connection; the rest are for
/// object transfers, gossip and the other protocols).
const MAX_IN_FLIGHT: usize = 256;
/// Requests waiting for a slot to one peer; past it a request fails with [`NetError::Busy`].
const MAX_WAITING: usize = 1 << 20;

impl EventLoop {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        config: NetConfig,
        shared: Arc<Shared>,
        router: Router,
        cmd_tx: mpsc::Sender<Command>,
    ) -> Self {
        if config.role == Role::Head {
            router.set_head(shared.me);
        }
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
            bootstrapped: HashSet::new(),
            blocked: BlockList::new(MAX_BLOCKED),
        }
    }

    /// Starts listening and waits until every listen address is bound.
    pub(super) async fn listen(&mut self) -> Result<(), NetError> {
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

    pub(super) async fn run(&mut self, mut cmds: mpsc::Receiver<Command>) {
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
        for (_, (_, tx, _)) in self.pending.drain() {
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
                    let fut = self.router.dispatch(self.shared.me, frame);
                    tokio::spawn(async move {
                        let _ = reply.send(Ok(fut.await));
                    });
                    return;
                }
                if frame.route == route_id::<Sequenced>() {
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                    self.pending.insert(id, (peer, reply, false));
                    return;
                }
                let n = self.in_flight.entry(peer).or_default();
                if *n < MAX_IN_FLIGHT {
                    *n += 1;
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                    self.pending.insert(id, (peer, reply, true));
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
            Command::AddAddresses { peer, addrs } => {
                if peer != self.shared.me {
                    for a in addrs {
                        self.swarm.add_peer_address(peer, a);
                    }
                }
            }
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
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint: libp2p::core::ConnectedPoint::Dialer { address, .. },
                ..
            } => {
                let dialed = without_peer(&address);
                // At most one entry per peer linked now (dropped with its last connection).
                if self
                    .config
                    .bootstrap
                    .iter()
                    .any(|b| without_peer(b) == dialed)
                {
                    self.bootstrapped.insert(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "link closed");
                self.bootstrapped.remove(&peer_id);
                if self.identified.remove(&peer_id) {
                    self.shared.publish(NetEvent::PeerGone { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, left = num_established, ?cause, "a connection closed");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, error = %error, "could not connect");
            }
            _ => {}
        }
    }

    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let Some(theirs) = WireIdentity::parse(&info.protocol_version) else {
            tracing::info!(%peer, version = %info.protocol_version, "not a Raya peer: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        let Some(role) = Role::from_agent(&info.agent_version) else {
            tracing::info!(%peer, agent = %info.agent_version, "peer without a Raya role: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        let ours = self.config.wire;
        if theirs != ours {
            let (who, here) = match (role, self.config.role) {
                (Role::Head, _) => ("the head", "this node runs"),
                (_, Role::Head) => ("node", "this cluster runs"),
                _ => ("node", "this node runs"),
            };
            let reason = format!(
                "{who} {peer} runs Raya {} {theirs}, {here} Raya {} {ours}: they cannot talk; \
                 run the same Raya release on every node",
                Role::release_of(&info.agent_version),
                env!("CARGO_PKG_VERSION"),
            );
            tracing::error!("{reason}");
            self.shared
                .mismatch
                .send_replace(Some((role == Role::Head, reason)));
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
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
        // Given its head's address and no discovery, a node follows the head found there only.
        let pinned = !self.config.mdns && !self.config.bootstrap.is_empty();
        if role == Role::Head
            && self.config.role != Role::Head
            && pinned
            && own_head != Some(peer)
            && !self.bootstrapped.contains(&peer)
        {
            tracing::warn!(%peer, "a peer not at the head's address announced itself as head: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        if role == Role::Head && self.config.role != Role::Head {
            self.router.set_head(peer);
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

    /// Drops and blocks a peer that sent a malformed frame, letting back the one blocked
    /// longest when the list is full.
    fn block(&mut self, peer: PeerId) {
        let (new, evicted) = self.blocked.add(peer);
        if new {
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
        if let Some(oldest) = evicted {
            self.swarm.behaviour_mut().blocked.unblock_peer(oldest);
        }
    }

    /// A request to `peer` ended: start the next one waiting for it.
    fn request_done(&mut self, peer: PeerId) {
        let next = self.waiting.get_mut(&peer).and_then(|q| q.pop_front());
        match next {
            Some((frame, reply)) => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                self.pending.insert(id, (peer, reply, true));
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
                        self.block(peer);
                        return;
                    }
                    let fut = self.router.dispatch(peer, request);
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
                    if let Some((p, tx, slot)) = self.pending.remove(&request_id) {
                        let _ = tx.send(Ok(response));
                        if slot {
                            self.request_done(p);
                        }
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
                if let Some((p, tx, slot)) = self.pending.remove(&request_id) {
                    let _ = tx.send(Err(err));
                    if slot {
                        self.request_done(p);
                    }
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
mod tests {
    use super::*;

    #[test]
    fn the_blocked_list_is_bounded_and_lets_back_the_oldest() {
        let mut list = BlockList::new(3);
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        assert_eq!(list.add(peers[0]), (true, None));
        assert_eq!(list.add(peers[0]), (false, None));
        assert_eq!(list.add(peers[1]), (true, None));
        assert_eq!(list.add(peers[2]), (true, None));
        assert_eq!(list.add(peers[3]), (true, Some(peers[0])));
        assert_eq!(list.add(peers[4]), (true, Some(peers[1])));
        assert_eq!(list.order.len(), 3);
    }
}
