//! A member holding the cluster key turns hostile: a live head (a real `raya start --head`
//! process with a worker node) gets thousands of random and mutated frames over a real
//! connection, batches nested in batches, messages speaking for other nodes, counts and lengths
//! far over their bounds, lying frame lengths and trickled streams. Afterwards the head still
//! answers a valid request from a new peer and the cluster is whole. Every process is killed
//! when the test ends, pass or fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use rand::SeedableRng;
use raya_cluster::gcs::nodes::{GetAllNodes, NodeState};
use raya_cluster::transport::{
    ClusterKey, Frame, NetConfig, Network, Role, Router, Sequenced, Target, WireError, WireMessage,
    route_of,
};
use raya_wire_fuzz::seeds::{FuzzTarget, seeds};

/// The processes of the test, killed on drop.
struct Procs {
    tmp: PathBuf,
    children: Vec<Child>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

impl Procs {
    /// Starts `raya start <args> --block` and returns the address it announces.
    fn start(&mut self, args: &[&str], log: &Path) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raya"))
            .env("TMPDIR", &self.tmp)
            .env_remove("RAYA_ADDRESS")
            .env("RUST_LOG", "warn,raya_cluster=info")
            .arg("start")
            .args(args)
            .args(["--block", "--host", "127.0.0.1", "--no-mdns"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the node announced its address");
            if let Some(rest) = line
                .strip_prefix("Raya head started at ")
                .or_else(|| line.strip_prefix("Raya node started; it joined the cluster at "))
            {
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return rest.trim_end_matches('.').to_string();
            }
        }
    }
}

/// A peer holding the cluster key, joined to the head at `addr`.
async fn peer(addr: &str, key: ClusterKey) -> Network {
    let mut c = NetConfig::new(Role::Client);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.bootstrap = vec![raya_cluster::transport::parse_address(addr).unwrap()];
    c.cluster_key = Some(key);
    let net = Network::start(
        libp2p_identity::Keypair::generate_ed25519(),
        c,
        Router::new(),
    )
    .unwrap();
    net.join_head(Duration::from_secs(30)).await.unwrap();
    net
}

/// The frames of the seed corpus that are whole frames, decoded.
fn seed_frames() -> Vec<Frame> {
    let checks = raya::wire_checks();
    seeds()
        .into_iter()
        .filter(|(t, _)| *t == FuzzTarget::Route)
        .map(|(_, input)| {
            let (name, _) = checks[u16::from_le_bytes([input[0], input[1]]) as usize];
            Frame {
                route: route_of(name),
                target: Target::System,
                body: input[3..].to_vec(),
            }
        })
        .collect()
}

#[test]
fn a_hostile_member_cannot_take_the_head_down() {
    let tmp = std::env::temp_dir().join(format!("raya-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let mut procs = Procs {
        tmp: tmp.clone(),
        children: Vec::new(),
    };
    let session = tmp.join("head");
    let head_log = tmp.join("head.log");
    let addr = procs.start(
        &[
            "--head",
            "--port",
            "0",
            "--session-dir",
            session.to_str().unwrap(),
        ],
        &head_log,
    );
    procs.start(&["--address", &addr], &tmp.join("node.log"));
    let key = ClusterKey::read(&session.join("cluster_key")).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let hostile = peer(&addr, key).await;
        let head = hostile.head().unwrap();
        let inputs: usize = std::env::var("RAYA_HOSTILE_INPUTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000);
        // Random and mutated frames, 64 at a time; each is answered (an error is an answer).
        let corpus = seed_frames();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut frames = Vec::with_capacity(inputs);
        for i in 0..inputs {
            let base = &corpus[i % corpus.len()];
            let other = &corpus[(i * 5 + 1) % corpus.len()];
            let body = raya_wire_fuzz::mutate::mutate(&mut rng, &base.body, &other.body);
            let route = if i % 10 == 9 {
                // A route nobody serves.
                route_of(&format!("nobody/{i}"))
            } else {
                base.route
            };
            frames.push(Frame {
                route,
                target: Target::System,
                body,
            });
        }
        // Batches nested a thousand deep, and a batch of far more frames than a batch holds.
        let mut nested = Sequenced {
            epoch: 1,
            seq: 1,
            lane: 0,
            frames: vec![],
        }
        .encode()
        .unwrap();
        for _ in 0..1000 {
            nested = Sequenced {
                epoch: 1,
                seq: 1,
                lane: 0,
                frames: vec![Frame {
                    route: route_of(Sequenced::NAME),
                    target: Target::System,
                    body: nested,
                }],
            }
            .encode()
            .unwrap();
        }
        let big_batch = Sequenced {
            epoch: 2,
            seq: 1,
            lane: 0,
            frames: vec![corpus[0].clone(); 5000],
        }
        .encode()
        .unwrap();
        // The nested batch goes first, alone: a later batch of the same link (the mutated ones
        // carry any epoch) would make the node refuse it as stale before looking inside.
        let batch_frame = |body| Frame {
            route: route_of(Sequenced::NAME),
            target: Target::System,
            body,
        };
        let replies = hostile
            .ask_frame(head, batch_frame(nested))
            .await
            .expect("the nested batch is answered");
        let replies = Sequenced::decode_result(&replies).expect("one reply per frame");
        assert!(
            matches!(&replies[..], [Err(WireError::Decode(r))] if r.contains("a batch inside a batch")),
            "{replies:?}"
        );
        frames.push(batch_frame(big_batch));
        let answered = futures::stream::iter(frames)
            .map(|f| {
                let net = hostile.clone();
                async move {
                    tokio::time::timeout(Duration::from_secs(60), net.ask_frame(head, f))
                        .await
                        .is_ok()
                }
            })
            .buffer_unordered(64)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        assert_eq!(answered, inputs + 1, "every frame is answered in time");

        // Raw streams: a frame length past the limit (its sender is dropped), and lengths at
        // the limit whose bytes trickle in or never come, on both protocols.
        let liar = peer(&addr, key).await;
        let mut control = liar.stream_control();
        let mut held = Vec::new();
        for (i, proto) in [
            raya_cluster::transport::RPC_PROTOCOL,
            raya_cluster::transport::OBJECT_PROTOCOL,
        ]
        .into_iter()
        .cycle()
        .take(40)
        .enumerate()
        {
            let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_secs(10), control.open_stream(head, proto))
                    .await
            else {
                continue;
            };
            let claim: u32 = if i == 39 { u32::MAX } else { (16 << 20) - 1 };
            let _ = s.write_all(&claim.to_le_bytes()).await;
            let _ = s.write_all(&[0xab; 100]).await;
            let _ = s.flush().await;
            held.push(s);
        }
        // The liar's lies take nothing from anyone else: a new peer is served at once, and
        // the cluster is whole.
        let fresh = peer(&addr, key).await;
        let nodes = tokio::time::timeout(
            Duration::from_secs(30),
            fresh.ask(head, Target::System, GetAllNodes),
        )
        .await
        .expect("the head answers in time")
        .expect("the head answers")
        .expect("the node table");
        let alive = nodes.iter().filter(|n| n.state == NodeState::Alive).count();
        assert_eq!(alive, 2, "{nodes:?}");
        drop(held);
        for n in [hostile, liar, fresh] {
            n.shutdown();
        }
    });
    // The head kept running, and said what it refused.
    for c in &mut procs.children {
        assert!(c.try_wait().unwrap().is_none(), "a node died");
    }
    let log = std::fs::read_to_string(&head_log).unwrap();
    // Messages speaking for another node (the seeds' node, not the sender) and orders only
    // the head gives were refused, with the peer.
    assert!(log.contains("message refused"), "{log}");
    assert!(log.contains("names node"), "{log}");
    assert!(log.contains("only the head sends this"), "{log}");
    assert!(log.contains("nested in another: refused"), "{log}");
}
