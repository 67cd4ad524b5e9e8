//! Tests of the transport on loopback: typed messages between nodes, gossip, departures, and a
//! peer sending malformed frames.

use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::AsyncWriteExt;
use serde::{Deserialize, Serialize};

use libp2p::Multiaddr;
use libp2p::identity::Keypair;

use super::*;

struct Echo;
impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Shout(String);

crate::wire_message!(Shout => "test/Shout");

impl Handler<Shout> for Echo {
    type Result = String;
    fn handle(&mut self, m: Shout, _: &mut Context<Self>) -> String {
        m.0.to_uppercase()
    }
}

struct Collect(std::sync::mpsc::Sender<NetEvent>);
impl Actor for Collect {
    type Context = Context<Self>;
}
impl Handler<NetEvent> for Collect {
    type Result = ();
    fn handle(&mut self, e: NetEvent, _: &mut Context<Self>) {
        let _ = self.0.send(e);
    }
}

fn loopback(role: Role) -> NetConfig {
    let mut c = NetConfig::new(role);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.topics = vec!["test".into()];
    c
}

fn start(role: Role, bootstrap: Vec<Multiaddr>, router: Router) -> Network {
    let mut c = loopback(role);
    c.bootstrap = bootstrap;
    Network::start(Keypair::generate_ed25519(), c, router).unwrap()
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    actix_rt::System::new().block_on(f)
}

#[test]
fn a_node_finds_the_head_and_typed_messages_cross() {
    run(async {
        let router = Router::new();
        router.serve::<Shout, _>(Echo.start());
        let head = start(Role::Head, vec![], router);
        let node = start(Role::Node, head.listen_addrs(), Router::new());
        let found = node.wait_for_head(Duration::from_secs(10)).await;
        assert_eq!(found, Some(head.local_peer_id()));
        let reply = node
            .ask(head.local_peer_id(), Target::System, Shout("hello".into()))
            .await
            .unwrap();
        assert_eq!(reply, "HELLO");
        // A message type the head does not serve is a clear error, not a hang.
        let err = head
            .ask(node.local_peer_id(), Target::System, Shout("x".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                NetError::Remote {
                    error: WireError::UnknownRoute(_),
                    ..
                }
            ),
            "{err}"
        );
        // A request to itself is served without the network.
        let own = head
            .ask(head.local_peer_id(), Target::System, Shout("me".into()))
            .await
            .unwrap();
        assert_eq!(own, "ME");
        node.shutdown();
        head.shutdown();
        assert_eq!(node.publish("test", vec![1]), Err(NetError::Stopped));
    });
}

#[test]
fn gossip_reaches_every_subscriber_and_departures_are_reported() {
    run(async {
        let head = start(Role::Head, vec![], Router::new());
        let (tx, rx) = std::sync::mpsc::channel();
        head.subscribe(Collect(tx).start().recipient());
        let node = start(Role::Node, head.listen_addrs(), Router::new());
        assert!(node.wait_for_head(Duration::from_secs(10)).await.is_some());
        // The mesh forms within a few gossip heartbeats; publish until the head hears it.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut heard = false;
        while !heard && Instant::now() < deadline {
            node.publish("test", b"ping".to_vec()).unwrap();
            actix_rt::time::sleep(Duration::from_millis(200)).await;
            while let Ok(e) = rx.try_recv() {
                if let NetEvent::Gossip {
                    topic,
                    data,
                    source,
                } = e
                {
                    assert_eq!(topic, "test");
                    assert_eq!(data, b"ping");
                    assert_eq!(source, Some(node.local_peer_id()));
                    heard = true;
                }
            }
        }
        assert!(heard, "gossip never arrived");
        let gone = node.local_peer_id();
        node.shutdown();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut reported = false;
        while !reported && Instant::now() < deadline {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            while let Ok(e) = rx.try_recv() {
                if matches!(e, NetEvent::PeerGone { peer } if peer == gone) {
                    reported = true;
                }
            }
        }
        assert!(reported, "the departure was not reported");
        head.shutdown();
    });
}

#[test]
fn a_peer_sending_malformed_frames_is_dropped_and_the_node_keeps_serving() {
    run(async {
        let router = Router::new();
        router.serve::<Shout, _>(Echo.start());
        let head = start(Role::Head, vec![], router);
        let bad = start(Role::Node, head.listen_addrs(), Router::new());
        let good = start(Role::Node, head.listen_addrs(), Router::new());
        assert!(bad.wait_for_head(Duration::from_secs(10)).await.is_some());
        assert!(good.wait_for_head(Duration::from_secs(10)).await.is_some());
        // A length prefix far over the limit, then junk.
        let mut control = bad.stream_control();
        let mut s = control
            .open_stream(head.local_peer_id(), RPC_PROTOCOL)
            .await
            .unwrap();
        let _ = s.write_all(&u32::MAX.to_le_bytes()).await;
        let _ = s.write_all(&[0xAB; 64]).await;
        let _ = s.close().await;
        // The head drops the bad peer ...
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let peers = head.connected_peers().await.unwrap();
            if !peers.contains(&bad.local_peer_id()) {
                break;
            }
            assert!(Instant::now() < deadline, "the bad peer is still connected");
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        // ... and answers the others.
        let reply = good
            .ask(
                head.local_peer_id(),
                Target::System,
                Shout("still here".into()),
            )
            .await
            .unwrap();
        assert_eq!(reply, "STILL HERE");
        // A well-formed frame whose body is not the message it names is an error reply.
        let frame = Frame {
            route: route_id::<Shout>(),
            target: Target::System,
            body: vec![0xff; 8],
        };
        let err = good
            .ask_frame(head.local_peer_id(), frame)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            NetError::Remote {
                error: WireError::Decode(_),
                ..
            }
        ));
        for n in [good, bad, head] {
            n.shutdown();
        }
    });
}

#[test]
fn addresses_parse_from_host_port_and_multiaddr() {
    let a = parse_address("127.0.0.1:7000").unwrap();
    assert_eq!(socket_of(&a), Some("127.0.0.1:7000".parse().unwrap()));
    let m = parse_address("/ip4/10.0.0.1/tcp/9").unwrap();
    assert_eq!(socket_of(&m), Some("10.0.0.1:9".parse().unwrap()));
    assert!(matches!(
        parse_address("localhost"),
        Err(NetError::Address(_))
    ));
    assert!(parse_address("[::1]:80").is_ok());
}

/// Records the numbers it is sent, in order.
struct Recorder(Vec<u64>);
impl Actor for Recorder {
    type Context = Context<Self>;
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
struct Record(u64);

crate::wire_message!(Record => "test/Record");

impl Handler<Record> for Recorder {
    type Result = usize;
    fn handle(&mut self, m: Record, _: &mut Context<Self>) -> usize {
        self.0.push(m.0);
        self.0.len()
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Vec<u64>")]
struct Recorded;

crate::wire_message!(Recorded => "test/Recorded");

impl Handler<Recorded> for Recorder {
    type Result = Vec<u64>;
    fn handle(&mut self, _: Recorded, _: &mut Context<Self>) -> Vec<u64> {
        self.0.clone()
    }
}

#[test]
fn ordered_messages_arrive_once_and_in_order() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Record, _>(recorder.clone());
        router.serve::<Recorded, _>(recorder);
        let head = start(Role::Head, vec![], router);
        let node = start(Role::Node, head.listen_addrs(), Router::new());
        assert!(node.wait_for_head(Duration::from_secs(10)).await.is_some());
        let to = head.local_peer_id();
        for i in 0..2000 {
            node.tell_ordered(to, Record(i));
        }
        let n = node.send_ordered(to, Record(2000)).await.unwrap();
        assert_eq!(n, 2001, "every message before it was handled first");
        let seen = node.ask(to, Target::System, Recorded).await.unwrap();
        assert_eq!(seen, (0..=2000).collect::<Vec<u64>>());
        node.shutdown();
        head.shutdown();
    });
}

#[test]
fn a_batch_delivered_twice_is_handled_once_and_an_older_one_is_refused() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Record, _>(recorder.clone());
        router.serve::<Recorded, _>(recorder.clone());
        let peer = libp2p::PeerId::random();
        let record = |n| Frame {
            route: route_id::<Record>(),
            target: Target::System,
            body: encode_body(&Record(n)).unwrap(),
        };
        let batch = |seq, frames| Frame {
            route: route_id::<Sequenced>(),
            target: Target::System,
            body: Sequenced {
                epoch: 7,
                seq,
                lane: 0,
                frames,
            }
            .encode()
            .unwrap(),
        };
        let first = router
            .dispatch(peer, batch(1, vec![record(1), record(2)]))
            .await
            .unwrap();
        // The same batch again (its reply was lost): the same replies, nothing handled.
        let again = router
            .dispatch(peer, batch(1, vec![record(1), record(2)]))
            .await
            .unwrap();
        assert_eq!(first, again);
        router
            .dispatch(peer, batch(2, vec![record(3)]))
            .await
            .unwrap();
        // A late copy of batch 1 after batch 2: refused.
        assert!(
            router
                .dispatch(peer, batch(1, vec![record(1), record(2)]))
                .await
                .is_err()
        );
        // Another sender's batch 1 is its own.
        router
            .dispatch(libp2p::PeerId::random(), batch(1, vec![record(4)]))
            .await
            .unwrap();
        assert_eq!(recorder.send(Recorded).await.unwrap(), vec![1, 2, 3, 4]);
    });
}

#[test]
fn an_ordered_message_to_a_peer_nobody_can_reach_fails_after_the_bound() {
    run(async {
        let mut c = loopback(Role::Node);
        c.delivery_timeout = Duration::from_millis(500);
        let node = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        let nobody = libp2p::PeerId::random();
        let started = Instant::now();
        let err = node.send_ordered(nobody, Record(1)).await.unwrap_err();
        assert!(matches!(err, NetError::Unreachable { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        // Declared dead: what is queued fails at once.
        let reply = node.send_ordered(nobody, Record(2));
        node.peer_dead(nobody, "declared dead");
        assert!(reply.await.is_err());
        node.shutdown();
    });
}

/// The networks of the tests below, by peer id: what a message decoded on a node uses to reach
/// the node that sent it.
static NETS: std::sync::Mutex<Vec<(libp2p::PeerId, Network)>> = std::sync::Mutex::new(Vec::new());

fn net_of(peer: libp2p::PeerId) -> Option<Network> {
    let nets = NETS.lock().unwrap();
    nets.iter()
        .find(|(p, _)| *p == peer)
        .map(|(_, n)| n.clone())
}

/// A message naming an object its sender owns: decoding it on the receiver registers a borrow
/// with the sender (on the borrows' link), and the message is handled only once that is counted,
/// as a message carrying an `ObjectRef` is.
#[derive(Message, Deserialize)]
#[rtype(result = "usize")]
#[serde(from = "NamingWire")]
struct Naming {
    receiver: Vec<u8>,
    owner: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct NamingWire {
    receiver: Vec<u8>,
    owner: Vec<u8>,
}

impl From<NamingWire> for Naming {
    fn from(w: NamingWire) -> Naming {
        let receiver = libp2p::PeerId::from_bytes(&w.receiver).unwrap();
        let owner = libp2p::PeerId::from_bytes(&w.owner).unwrap();
        let net = net_of(receiver).expect("the receiver's network");
        let borrow = net.send_ordered_on(Lane::Refs, owner, Record(0));
        let counted: inflight::Settle = Box::pin(async move {
            borrow.await.expect("borrow counted");
        });
        assert!(
            inflight::settle_later(counted).is_none(),
            "decoded by a router"
        );
        Naming {
            receiver: w.receiver,
            owner: w.owner,
        }
    }
}

impl Serialize for Naming {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NamingWire {
            receiver: self.receiver.clone(),
            owner: self.owner.clone(),
        }
        .serialize(s)
    }
}

crate::wire_message!(Naming => "test/Naming");

impl Handler<Naming> for Recorder {
    type Result = usize;
    fn handle(&mut self, _: Naming, _: &mut Context<Self>) -> usize {
        self.0.len()
    }
}

/// Opens when the test below lets the borrows of its batch be counted.
static GATE: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::Sender::new(false));

/// A message whose decoding starts a borrow registration that is counted only once [`GATE`]
/// opens, as one naming an object of a slow owner.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
#[serde(from = "GatedWire")]
struct Gated(u64);

#[derive(Serialize, Deserialize)]
struct GatedWire(u64);

impl From<GatedWire> for Gated {
    fn from(w: GatedWire) -> Gated {
        let mut open = GATE.subscribe();
        let counted: inflight::Settle = Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
        });
        assert!(
            inflight::settle_later(counted).is_none(),
            "decoded by a router"
        );
        Gated(w.0)
    }
}

crate::wire_message!(Gated => "test/Gated");

impl Handler<Gated> for Recorder {
    type Result = usize;
    fn handle(&mut self, m: Gated, _: &mut Context<Self>) -> usize {
        self.0.push(m.0);
        self.0.len()
    }
}

#[test]
fn a_batchs_frames_are_handled_in_order_while_their_borrows_are_counted_and_answered_after() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Gated, _>(recorder.clone());
        let frames: Vec<Frame> = (0..8)
            .map(|i| Frame {
                route: router::route_id::<Gated>(),
                target: Target::System,
                body: router::encode_body(&GatedWire(i)).unwrap(),
            })
            .collect();
        let from = Caller {
            peer: libp2p::PeerId::random(),
            head: false,
            tag_taken: false,
        };
        let r = router.clone();
        let batch = actix_rt::spawn(async move { r.dispatch_in_order(from, frames).await });
        // Every frame is handled, in order, although no borrow is counted yet (handled one
        // borrow at a time, a batch of a thousand would take a thousand round trips).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let handled = recorder.send(Recorded).await.unwrap();
            if handled.len() == 8 {
                assert_eq!(handled, (0..8).collect::<Vec<u64>>());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {handled:?} handled while the borrows wait"
            );
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        // The sender keeps its references until the batch is answered: not before every
        // borrow is counted.
        assert!(
            !batch.is_finished(),
            "answered before its borrows were counted"
        );
        GATE.send_replace(true);
        let replies = batch.await.unwrap();
        assert_eq!(replies.len(), 8);
        assert!(replies.iter().all(|r| r.is_ok()), "{replies:?}");
    });
}

#[test]
fn two_nodes_sending_each_other_references_at_once_both_get_through() {
    run(async {
        let served = || {
            let router = Router::new();
            let recorder = Recorder(Vec::new()).start();
            router.serve::<Record, _>(recorder.clone());
            router.serve::<Naming, _>(recorder);
            router
        };
        let mut c = loopback(Role::Head);
        // Were the borrows behind the messages they hold up, both would fail after this.
        c.delivery_timeout = Duration::from_secs(5);
        let a = Network::start(Keypair::generate_ed25519(), c.clone(), served()).unwrap();
        c.role = Role::Node;
        c.bootstrap = a.listen_addrs();
        let b = Network::start(Keypair::generate_ed25519(), c, served()).unwrap();
        assert!(b.wait_for_head(Duration::from_secs(10)).await.is_some());
        let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
        NETS.lock()
            .unwrap()
            .extend([(pa, a.clone()), (pb, b.clone())]);
        for round in 0..20 {
            let to_b = a.send_ordered(
                pb,
                Naming {
                    receiver: pb.to_bytes(),
                    owner: pa.to_bytes(),
                },
            );
            let to_a = b.send_ordered(
                pa,
                Naming {
                    receiver: pa.to_bytes(),
                    owner: pb.to_bytes(),
                },
            );
            let (x, y) = futures::join!(to_b, to_a);
            assert!(x.is_ok() && y.is_ok(), "round {round}: {x:?} {y:?}");
        }
        NETS.lock().unwrap().retain(|(p, _)| *p != pa && *p != pb);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_batch_from_a_replaced_link_or_an_unknown_lane_is_refused() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Record, _>(recorder.clone());
        let peer = libp2p::PeerId::random();
        let batch = |epoch, seq, lane, n| Frame {
            route: route_id::<Sequenced>(),
            target: Target::System,
            body: Sequenced {
                epoch,
                seq,
                lane,
                frames: vec![Frame {
                    route: route_id::<Record>(),
                    target: Target::System,
                    body: encode_body(&Record(n)).unwrap(),
                }],
            }
            .encode()
            .unwrap(),
        };
        router.dispatch(peer, batch(7, 1, 0, 1)).await.unwrap();
        // The sender replaced its link (its peer was declared dead): epoch 8 from 1.
        router.dispatch(peer, batch(8, 1, 0, 2)).await.unwrap();
        // A late batch of the old link is not handled.
        assert!(router.dispatch(peer, batch(7, 2, 0, 3)).await.is_err());
        // The borrows' link of the same sender counts on its own.
        router.dispatch(peer, batch(7, 1, 1, 4)).await.unwrap();
        assert!(router.dispatch(peer, batch(7, 2, 9, 5)).await.is_err());
        assert_eq!(recorder.send(Recorded).await.unwrap(), vec![1, 2, 4]);
    });
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
struct Blob(Vec<u8>);

crate::wire_message!(Blob => "test/Blob");

impl Handler<Blob> for Recorder {
    type Result = usize;
    fn handle(&mut self, m: Blob, _: &mut Context<Self>) -> usize {
        m.0.len()
    }
}

#[test]
fn an_ordered_message_over_the_frame_limit_fails_at_once_and_the_link_goes_on() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Record, _>(recorder.clone());
        router.serve::<Blob, _>(recorder);
        let mut c = loopback(Role::Head);
        c.max_request = 1 << 20;
        c.delivery_timeout = Duration::from_secs(60);
        let head = Network::start(Keypair::generate_ed25519(), c.clone(), router).unwrap();
        c.role = Role::Node;
        c.bootstrap = head.listen_addrs();
        let node = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        assert!(node.wait_for_head(Duration::from_secs(10)).await.is_some());
        let to = head.local_peer_id();
        let err = node
            .send_ordered(to, Blob(vec![7; 2 << 20]))
            .await
            .unwrap_err();
        assert!(matches!(err, NetError::TooLarge { .. }), "{err}");
        // What fits goes through, on the same link, right after.
        assert_eq!(
            node.send_ordered(to, Blob(vec![7; 1000])).await.unwrap(),
            1000
        );
        assert_eq!(node.send_ordered(to, Record(1)).await.unwrap(), 1);
        node.shutdown();
        head.shutdown();
    });
}

#[test]
fn a_batch_nested_in_a_batch_is_refused_and_the_rest_is_handled() {
    run(async {
        let router = Router::new();
        let recorder = Recorder(Vec::new()).start();
        router.serve::<Record, _>(recorder.clone());
        let peer = libp2p::PeerId::random();
        let record = |n| Frame {
            route: route_id::<Record>(),
            target: Target::System,
            body: encode_body(&Record(n)).unwrap(),
        };
        let batch = |seq, lane, frames| Frame {
            route: route_id::<Sequenced>(),
            target: Target::System,
            body: Sequenced {
                epoch: 3,
                seq,
                lane,
                frames,
            }
            .encode()
            .unwrap(),
        };
        // Deeply nested batches, on the same lane and the other one.
        let mut deep = batch(1, 1, vec![record(9)]);
        for i in 0..2000 {
            deep = batch(1, (i % 2) as u8, vec![deep]);
        }
        let outer = batch(
            1,
            0,
            vec![record(1), batch(2, 0, vec![record(2)]), deep, record(3)],
        );
        let replies: Vec<Reply> =
            Sequenced::decode_result(&router.dispatch(peer, outer).await.unwrap()).unwrap();
        assert_eq!(replies.len(), 4);
        assert!(replies[0].is_ok() && replies[3].is_ok());
        assert!(replies[1].is_err() && replies[2].is_err());
        assert_eq!(recorder.send(Recorded).await.unwrap(), vec![1, 3]);
    });
}

#[test]
fn only_hosts_with_the_cluster_key_can_connect() {
    run(async {
        let key = ClusterKey::generate();
        let keyed = |role: Role, bootstrap: Vec<Multiaddr>, k: Option<ClusterKey>| {
            let router = Router::new();
            router.serve::<Shout, _>(Echo.start());
            let mut c = loopback(role);
            c.bootstrap = bootstrap;
            c.cluster_key = k;
            Network::start(Keypair::generate_ed25519(), c, router).unwrap()
        };
        let head = keyed(Role::Head, vec![], Some(key));
        let member = keyed(Role::Node, head.listen_addrs(), Some(key));
        assert_eq!(
            member.wait_for_head(Duration::from_secs(10)).await,
            Some(head.local_peer_id())
        );
        // A stranger with another key, and one with none, never finish a handshake: they do
        // not learn the head's peer id, and a dial by its address fails.
        let other = keyed(
            Role::Node,
            head.listen_addrs(),
            Some(ClusterKey::generate()),
        );
        let open = keyed(Role::Node, head.listen_addrs(), None);
        for stranger in [&other, &open] {
            assert_eq!(stranger.wait_for_head(Duration::from_secs(3)).await, None);
            stranger
                .add_addresses(head.local_peer_id(), head.listen_addrs())
                .unwrap();
            let err = stranger
                .ask(head.local_peer_id(), Target::System, Shout("in?".into()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, NetError::Unreachable { .. } | NetError::Timeout { .. }),
                "{err:?}"
            );
        }
        // The head goes on serving its member.
        let reply = member
            .ask(head.local_peer_id(), Target::System, Shout("still".into()))
            .await
            .unwrap();
        assert_eq!(reply, "STILL");
        for n in [other, open, member, head] {
            n.shutdown();
        }
    });
}

/// Served by every node: only the head may send it.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct FromHead(String);

/// Speaks for node `0`: only that node may send it.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Claim(raya_common::NodeId);

/// Speaks for an id made by the node with tag `.0`.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Made(u32);

crate::wire_message!(
    FromHead => "test/FromHead" where |_, from| from.is_head(),
    Claim => "test/Claim" where |m, from| from.is(m.0, "a claim"),
    Made => "test/Made" where |m, from| from.made(m.0, "an id"),
);

impl Handler<Made> for Echo {
    type Result = String;
    fn handle(&mut self, m: Made, _: &mut Context<Self>) -> String {
        format!("{:08x}", m.0)
    }
}

impl Handler<FromHead> for Echo {
    type Result = String;
    fn handle(&mut self, m: FromHead, _: &mut Context<Self>) -> String {
        m.0
    }
}

impl Handler<Claim> for Echo {
    type Result = String;
    fn handle(&mut self, m: Claim, _: &mut Context<Self>) -> String {
        m.0.to_string()
    }
}

#[test]
fn a_message_is_refused_unless_it_comes_from_whom_it_names() {
    run(async {
        let served = || {
            let r = Router::new();
            let echo = Echo.start();
            r.serve::<FromHead, _>(echo.clone());
            r.serve::<Claim, _>(echo.clone());
            r.serve::<Made, _>(echo);
            r
        };
        let head = start(Role::Head, vec![], served());
        let a = start(Role::Node, head.listen_addrs(), served());
        let b = start(Role::Node, head.listen_addrs(), served());
        for n in [&a, &b] {
            n.wait_for_head(Duration::from_secs(10)).await.unwrap();
        }
        let refused = |r: Result<String, NetError>| {
            matches!(
                r,
                Err(NetError::Remote {
                    error: WireError::Refused(_),
                    ..
                })
            )
        };
        // The head may order a node; another node may not, even on the ordered link.
        let to_b = b.local_peer_id();
        a.add_addresses(to_b, b.listen_addrs()).unwrap();
        head.add_addresses(to_b, b.listen_addrs()).unwrap();
        let ok = head.ask(to_b, Target::System, FromHead("go".into())).await;
        assert_eq!(ok.unwrap(), "go");
        assert!(refused(
            a.ask(to_b, Target::System, FromHead("go".into())).await
        ));
        assert!(refused(a.send_ordered(to_b, FromHead("go".into())).await));
        // A node may speak for itself, never for another.
        let me = raya_common::NodeId::from_peer_id(a.local_peer_id());
        let other = raya_common::NodeId::from_peer_id(head.local_peer_id());
        assert_eq!(
            a.ask(to_b, Target::System, Claim(me)).await.unwrap(),
            me.to_string()
        );
        assert!(refused(a.ask(to_b, Target::System, Claim(other)).await));
        assert_eq!(b.router().refused(), 3);
        // Ids: a node speaks for those carrying its tag, not another's.
        let ok = a.ask(to_b, Target::System, Made(me.tag())).await;
        assert_eq!(ok.unwrap(), format!("{:08x}", me.tag()));
        assert!(refused(
            a.ask(to_b, Target::System, Made(other.tag())).await
        ));
        // Once the cluster registered another node with its tag (a key ground until its tag
        // matched), ids carrying that tag are no longer its to speak for; the first node known
        // with a tag keeps it.
        b.router().know_node(other);
        let ground = crate::tag_collision::node_with_tag(other.tag());
        b.router().know_node(ground);
        assert!(
            b.router()
                .caller(head.local_peer_id())
                .made(other.tag(), "an id")
                .is_ok()
        );
        b.router()
            .know_node(crate::tag_collision::node_with_tag(me.tag()));
        assert!(refused(a.ask(to_b, Target::System, Made(me.tag())).await));
        assert_eq!(b.router().refused(), 5);
        // And the node goes on serving.
        assert_eq!(
            head.ask(to_b, Target::System, FromHead("still".into()))
                .await
                .unwrap(),
            "still"
        );
        for n in [a, b, head] {
            n.shutdown();
        }
    });
}

#[test]
fn a_node_of_another_wire_version_is_refused_on_both_sides_with_the_versions() {
    run(async {
        let router = Router::new();
        router.serve::<Shout, _>(Echo.start());
        let head = start(Role::Head, vec![], router);
        let mut c = loopback(Role::Node);
        c.bootstrap = head.listen_addrs();
        c.wire = WireIdentity {
            version: WIRE_VERSION - 1,
            ..WireIdentity::current()
        };
        let old = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        let err = old.join_head(Duration::from_secs(30)).await.unwrap_err();
        let theirs = format!("wire {}", WIRE_VERSION - 1);
        assert!(
            err.starts_with("the head ")
                && err.contains(&format!(
                    "this node runs Raya {}",
                    env!("CARGO_PKG_VERSION")
                ))
                && err.contains(&format!("wire {WIRE_VERSION}"))
                && err.contains(&theirs),
            "{err}"
        );
        // The head refused it too, saying which versions.
        let deadline = Instant::now() + Duration::from_secs(10);
        let on_head = loop {
            if let Some(r) = head.version_refusal() {
                break r;
            }
            assert!(Instant::now() < deadline, "the head never refused the node");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(
            on_head.starts_with(&format!("node {}", old.local_peer_id()))
                && on_head.contains("this cluster runs Raya")
                && on_head.contains(&theirs),
            "{on_head}"
        );
        // A node with another set of wire names is refused the same way; one like the head joins.
        let mut c = loopback(Role::Node);
        c.bootstrap = head.listen_addrs();
        c.wire = WireIdentity {
            names: WireIdentity::current().names ^ 1,
            ..WireIdentity::current()
        };
        let other = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        assert!(other.join_head(Duration::from_secs(30)).await.is_err());
        let same = start(Role::Node, head.listen_addrs(), Router::new());
        assert_eq!(
            same.join_head(Duration::from_secs(30)).await,
            Ok(head.local_peer_id())
        );
        for n in [old, other, same, head] {
            n.shutdown();
        }
    });
}

#[test]
fn wire_identities_round_trip_and_strangers_do_not_parse() {
    let w = WireIdentity::current();
    assert_eq!(WireIdentity::parse(&w.protocol_version()), Some(w));
    assert_eq!(WireIdentity::parse("/ipfs/0.1.0"), None);
    assert_eq!(WireIdentity::parse("/raya/wire/x/00"), None);
    assert_eq!(WireIdentity::parse("/raya/0.1"), None);
}

#[test]
fn a_node_given_its_heads_address_follows_no_other_peer_announcing_itself_head() {
    run(async {
        // The head's address is known before the head listens there (a port reserved now).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let at: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let node = start(Role::Node, vec![at.clone()], Router::new());
        // A key holder reaches the node first and announces itself as head: the node drops it.
        let impostor = start(Role::Head, vec![], Router::new());
        let to_node = node.local_peer_id();
        impostor.dial(node.listen_addrs()[0].clone()).unwrap();
        let dropped = async {
            let mut linked = false;
            loop {
                let peers = impostor.connected_peers().await.unwrap();
                match (linked, peers.contains(&to_node)) {
                    (false, true) => linked = true,
                    (true, false) => return,
                    _ => {}
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), dropped)
            .await
            .expect("the node dropped the peer posing as its head");
        assert_eq!(node.head(), None);
        // The head at the address it was given is its head.
        let mut c = loopback(Role::Head);
        c.listen = vec![at];
        let head = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        let found = node.wait_for_head(Duration::from_secs(30)).await;
        assert_eq!(found, Some(head.local_peer_id()));
        for n in [node, impostor, head] {
            n.shutdown();
        }
    });
}

/// Answers with `.0` bytes, counting the messages it handled.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Vec<u8>")]
struct Bytes(u32);

crate::wire_message!(Bytes => "test/Bytes");

struct Handed(std::sync::Arc<std::sync::atomic::AtomicUsize>);
impl Actor for Handed {
    type Context = Context<Self>;
}
impl Handler<Bytes> for Handed {
    type Result = Vec<u8>;
    fn handle(&mut self, m: Bytes, _: &mut Context<Self>) -> Vec<u8> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vec![7; m.0 as usize]
    }
}

#[test]
fn the_replies_of_one_ordered_batch_are_bounded_together() {
    run(async {
        let handled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let router = Router::new();
        router.serve::<Bytes, _>(Handed(std::sync::Arc::clone(&handled)).start());
        let head = start(Role::Head, vec![], router);
        let node = start(Role::Node, head.listen_addrs(), Router::new());
        let to_head = node.wait_for_head(Duration::from_secs(10)).await.unwrap();
        // Four reads of 20 MiB in one batch: every one is handled, in order, but only the
        // replies within the batch's bound come back; the others are refused, saying why.
        let read = Frame {
            route: route_of(Bytes::NAME),
            target: Target::System,
            body: Bytes(20 << 20).encode().unwrap(),
        };
        let batch = Sequenced {
            epoch: 1,
            seq: 1,
            lane: 0,
            frames: vec![read; 4],
        };
        let replies = node.ask(to_head, Target::System, batch).await.unwrap();
        assert_eq!(handled.load(std::sync::atomic::Ordering::Relaxed), 4);
        assert_eq!(replies.len(), 4);
        for r in &replies[..2] {
            assert_eq!(r.as_ref().map(|b| b.len()).unwrap(), (20 << 20) + 4);
        }
        for r in &replies[2..] {
            assert!(
                matches!(r, Err(WireError::Refused(m)) if m.contains("ordered batch")),
                "{r:?}"
            );
        }
        assert_eq!(head.router().refused(), 2);
        for n in [node, head] {
            n.shutdown();
        }
    });
}

/// A message its handler never answers, as a node stalled before it is declared dead.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
struct Stall;

crate::wire_message!(Stall => "test/Stall");

struct Staller(std::sync::mpsc::Sender<()>);
impl Actor for Staller {
    type Context = Context<Self>;
}
impl Handler<Stall> for Staller {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, _: Stall, _: &mut Context<Self>) -> Self::Result {
        let _ = self.0.send(());
        Box::pin(std::future::pending())
    }
}

/// A head serving `router` and a node joined to it (with the head's peer id), neither of
/// whose request or delivery bounds ends a wait within a test.
async fn patient_pair(router: Router) -> (Network, Network, libp2p::PeerId) {
    let patient = |role| {
        let mut c = loopback(role);
        c.request_timeout = Duration::from_secs(3600);
        c.delivery_timeout = Duration::from_secs(3600);
        c
    };
    let head = Network::start(Keypair::generate_ed25519(), patient(Role::Head), router).unwrap();
    let mut c = patient(Role::Node);
    c.bootstrap = head.listen_addrs();
    let node = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
    let to = node.wait_for_head(Duration::from_secs(10)).await.unwrap();
    (head, node, to)
}

#[test]
fn a_batch_on_its_way_to_a_peer_declared_dead_fails_at_once() {
    run(async {
        let (entered, handling) = std::sync::mpsc::channel();
        let router = Router::new();
        router.serve::<Stall, _>(Staller(entered).start());
        // Neither side's request bound nor the delivery bound ends the wait within the test.
        let (head, node, to) = patient_pair(router).await;
        let reply = actix_rt::spawn({
            let node = node.clone();
            async move { node.send_ordered(to, Stall).await }
        });
        // The batch is on the far node, unanswered, when its node is declared dead.
        actix_rt::task::spawn_blocking(move || handling.recv().unwrap())
            .await
            .unwrap();
        node.peer_dead(to, "declared dead by the test");
        let outcome = tokio::time::timeout(Duration::from_secs(60), reply)
            .await
            .expect("the send still waits on a peer declared dead")
            .unwrap();
        match outcome {
            Err(NetError::Unreachable { peer, reason }) => {
                assert_eq!(peer, to);
                assert!(reason.contains("declared dead by the test"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        for n in [node, head] {
            n.shutdown();
        }
    });
}

#[test]
fn an_ordered_message_to_a_peer_declared_dead_before_fails_at_once() {
    run(async {
        let mut c = loopback(Role::Node);
        c.delivery_timeout = Duration::from_secs(3600);
        let node = Network::start(Keypair::generate_ed25519(), c, Router::new()).unwrap();
        let dead = libp2p::PeerId::random();
        node.peer_dead(dead, "declared dead by the test");
        // Sent after the death: no link would ever reach it, and nobody fails it later.
        for lane in [Lane::Main, Lane::Refs] {
            let sent = node.send_ordered_on(lane, dead, Record(1));
            let outcome = tokio::time::timeout(Duration::from_secs(60), sent)
                .await
                .expect("the send waits on a peer declared dead");
            match outcome {
                Err(NetError::NotSent { peer, reason }) => {
                    assert_eq!(peer, dead);
                    assert!(reason.contains("declared dead by the test"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Registered again (the same identity restarted), or another peer: retried, not
        // refused.
        node.peer_alive(dead);
        for peer in [dead, libp2p::PeerId::random()] {
            let mut pending = std::pin::pin!(node.send_ordered(peer, Record(2)));
            assert!(
                tokio::time::timeout(Duration::from_millis(200), &mut pending)
                    .await
                    .is_err(),
                "a live peer's message is retried, not refused"
            );
        }
        node.shutdown();
    });
}

#[test]
fn an_ordered_batch_is_not_queued_behind_requests_the_far_node_holds() {
    run(async {
        let (entered, held) = std::sync::mpsc::channel();
        let router = Router::new();
        router.serve::<Stall, _>(Staller(entered).start());
        router.serve::<Record, _>(Recorder(Vec::new()).start());
        let (head, node, to) = patient_pair(router).await;
        // As many requests as the node has in flight to one peer, each held by the far node
        // (as a handler that waits for something holds its request) ...
        let asks: Vec<_> = (0..256)
            .map(|_| {
                let node = node.clone();
                actix_rt::spawn(async move { node.ask(to, Target::System, Stall).await })
            })
            .collect();
        actix_rt::task::spawn_blocking(move || {
            for _ in 0..256 {
                held.recv().unwrap();
            }
        })
        .await
        .unwrap();
        // ... and an ordered message (a borrow registration that object's making waits for)
        // still gets through.
        let n = tokio::time::timeout(Duration::from_secs(60), node.send_ordered(to, Record(1)))
            .await
            .expect("the ordered message waits behind the held requests")
            .unwrap();
        assert_eq!(n, 1);
        for a in asks {
            a.abort();
        }
        for n in [node, head] {
            n.shutdown();
        }
    });
}
