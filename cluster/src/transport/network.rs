//! [`Network`]: the handle every component uses to reach other nodes, and the thread that owns
//! the swarm.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};

use super::inflight::keeping;
use super::link::{Lane, Links, OrderedReply};
use super::swarm::{Command, EventLoop, Shared, build_swarm};
use super::{Frame, NetConfig, NetError, NetEvent, Role, Router, Target, WireMessage, route_id};

/// A handle to the node's network. Cloning shares it; [`Network::shutdown`] stops the swarm.
#[derive(Clone)]
pub struct Network {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Command>,
    control: libp2p_stream::Control,
    router: Router,
    io: tokio::runtime::Handle,
    links: Arc<Links>,
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
            mismatch: watch::channel(None).0,
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue.max(16));
        let links = Arc::new(Links::new(config.delivery_timeout, config.max_request));
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
            links,
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

    /// Why this node last refused a peer of another wire version (see
    /// [`super::WireIdentity`]), if it did.
    pub fn version_refusal(&self) -> Option<String> {
        self.shared
            .mismatch
            .borrow()
            .as_ref()
            .map(|(_, r)| r.clone())
    }

    /// Waits until the head is known, at most `timeout`, and fails at once when a head (or any
    /// peer) of another wire version was found: the error says which versions.
    pub async fn join_head(&self, timeout: Duration) -> Result<PeerId, String> {
        let mut mismatch = self.shared.mismatch.subscribe();
        let refused = async {
            loop {
                if let Some((true, reason)) = mismatch.borrow_and_update().clone() {
                    return reason;
                }
                if mismatch.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            head = self.wait_for_head(timeout) => {
                head.ok_or_else(|| format!("no cluster head answered within {timeout:?}"))
            }
            reason = refused => Err(reason),
        }
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
        // The references the message names stay alive until the far node answered.
        let (body, _kept) = keeping(|| msg.encode());
        let body = body.map_err(|e| NetError::Codec(e.to_string()))?;
        let frame = Frame {
            route: route_id::<M>(),
            target,
            body,
        };
        let bytes = self.ask_frame(peer, frame).await?;
        M::decode_result(&bytes).map_err(|e| NetError::Codec(e.to_string()))
    }

    /// Sends `msg` to the actor serving it on `peer` through the ordered, reliable link to that
    /// peer (see [`super::link`]): handled there once, after the messages sent this way before
    /// it, or failed after the delivery bound. The reply resolves when it was handled (await
    /// it, or drop it: a message that fails unawaited is logged).
    pub fn send_ordered<M: WireMessage>(&self, peer: PeerId, msg: M) -> OrderedReply<M> {
        self.send_ordered_on(Lane::Main, peer, msg)
    }

    /// [`Network::send_ordered`] on one of the peer's two links: ordered with the messages
    /// sent on the same `lane`, not with the other's.
    pub fn send_ordered_on<M: WireMessage>(
        &self,
        lane: Lane,
        peer: PeerId,
        msg: M,
    ) -> OrderedReply<M> {
        let (tx, rx) = oneshot::channel();
        match self.ordered_frame(&msg) {
            Ok((frame, kept)) => self
                .links
                .send(self, peer, lane, frame, M::NAME, Some(tx), kept),
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
        OrderedReply::new(rx, peer)
    }

    /// [`Network::send_ordered`] without a reply: a failure is logged as a warning.
    pub fn tell_ordered<M: WireMessage>(&self, peer: PeerId, msg: M) {
        self.tell_ordered_on(Lane::Main, peer, msg)
    }

    /// [`Network::send_ordered_on`] without a reply: a failure is logged as a warning.
    pub fn tell_ordered_on<M: WireMessage>(&self, lane: Lane, peer: PeerId, msg: M) {
        match self.ordered_frame(&msg) {
            Ok((frame, kept)) => self
                .links
                .send(self, peer, lane, frame, M::NAME, None, kept),
            Err(e) => tracing::error!(message = M::NAME, error = %e, "message not encoded"),
        }
    }

    /// Encodes `msg` for an ordered link, with the references it names.
    fn ordered_frame<M: WireMessage>(
        &self,
        msg: &M,
    ) -> Result<(Frame, Vec<super::inflight::Kept>), NetError> {
        let (body, kept) = keeping(|| msg.encode());
        let body = body.map_err(|e| NetError::Encode(e.to_string()))?;
        let frame = Frame {
            route: route_id::<M>(),
            target: Target::System,
            body,
        };
        Ok((frame, kept))
    }

    /// Fails at once what is queued for `peer` on its ordered links (the peer was declared
    /// dead), and what is queued for it later, until [`Network::peer_alive`] says it is back.
    pub fn peer_dead(&self, peer: PeerId, reason: impl Into<String>) {
        self.links.peer_dead(peer, reason.into());
        self.router.delivered().forget(peer);
    }

    /// `peer` registered with the cluster again (the same identity restarted): ordered
    /// messages to it are sent again.
    pub fn peer_alive(&self, peer: PeerId) {
        self.links.peer_alive(peer);
    }

    /// Publishes `data` on gossip topic `topic`.
    pub fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        self.command(Command::Publish {
            topic: topic.to_string(),
            data,
        })
    }

    /// Records where `peer` listens, so that requests and streams to it dial it there when no
    /// link is open (the GCS node table is how a node learns the others' addresses).
    pub fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), NetError> {
        if addrs.is_empty() {
            return Ok(());
        }
        self.command(Command::AddAddresses { peer, addrs })
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
