//! `raya microbenchmark --two-nodes`: the same method across two nodes on this machine (this
//! process is the head and the driver; a second `raya` process joins it over loopback), and the
//! loopback floors those figures sit on.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raya::prelude::*;

use crate::microbenchmark::{Bench, Report, Small, Timing, small_value};

/// The custom resource only the second node has: work that asks for it runs there.
pub(crate) const REMOTE: &str = "bench_remote";

/// The cross-node workloads and floors, in the order they run.
pub(crate) const WORKLOADS: &[&str] = &[
    "loopback floor: TCP 64-byte round trips",
    "loopback floor: TCP gigabytes",
    "cross-node tasks sync",
    "cross-node tasks async",
    "cross-node 1:1 actor calls sync",
    "cross-node 1:1 actor calls async",
    "cross-node object transfer 1 MiB gigabytes",
    "cross-node object transfer 1 GiB gigabytes",
];

#[raya::remote]
fn byte_len(data: Vec<u8>) -> u64 {
    data.len() as u64
}

#[raya::actor(num_cpus = 0)]
pub(crate) struct RemoteEcho;

#[raya::actor]
impl RemoteEcho {
    fn new() -> Self {
        RemoteEcho
    }
    fn small_value(&self) -> Small {
        *b"ok"
    }
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tcp_round_trips(n: usize) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        for _ in 0..n {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut buf = [7u8; 64];
    for _ in 0..n {
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
    }
    server
        .join()
        .map_err(|_| std::io::Error::other("server panicked"))?
}

fn tcp_transfer(bytes: usize) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("closed early"));
            }
            left -= n.min(left);
        }
        s.write_all(b"k")
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    let chunk = vec![1u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = chunk.len().min(left);
        c.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut ack = [0u8; 1];
    c.read_exact(&mut ack)?;
    server
        .join()
        .map_err(|_| std::io::Error::other("server panicked"))?
}

fn io(e: std::io::Error) -> raya::Error {
    raya::Error::Node(format!("loopback floor: {e}"))
}

/// Starts the second node and runs the cross-node workloads.
pub(crate) fn run(
    timing: Timing,
    filter: Option<String>,
    skip: Option<String>,
) -> raya::Result<Report> {
    let address = raya::cluster_address()?
        .ok_or_else(|| raya::Error::Node("this node is not a cluster head".into()))?;
    let exe = std::env::current_exe().map_err(|e| raya::Error::Node(e.to_string()))?;
    let mut cmd = Command::new(exe);
    if let Some(key) = raya::cluster_key()? {
        cmd.env("RAYA_CLUSTER_KEY", key.to_hex());
    }
    let child = cmd
        .args([
            "start",
            "--block",
            "--no-mdns",
            "--host",
            "127.0.0.1",
            "--address",
            &address,
            "--num-cpus",
            "1",
            "--resource",
            &format!("{REMOTE}=1000000"),
        ])
        .env("RAYA_BENCH_WORKER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("RAYA_BENCH_WORKER_LOG") {
            Some(p) => std::fs::File::create(p)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            None => Stdio::null(),
        })
        .spawn()
        .map_err(|e| raya::Error::Node(format!("cannot start the second node: {e}")))?;
    let _worker = Worker(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while raya::nodes()?
        .iter()
        .filter(|n| n.state == raya::NodeState::Alive)
        .count()
        < 2
    {
        if Instant::now() > deadline {
            return Err(raya::Error::Node("the second node did not join".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = Bench {
        timing: timing.clone(),
        filter,
        skip,
        results: Vec::new(),
    };
    b.timeit(
        WORKLOADS[0],
        1000.0,
        Some("std TcpStream ping-pong, 1000 per call"),
        || tcp_round_trips(1000).map_err(io),
    )?;
    b.timeit(
        WORKLOADS[1],
        1.0,
        Some("1 GB through one std TcpStream"),
        || tcp_transfer(1_000_000_000).map_err(io),
    )?;
    let remote = || small_value::options().resource(REMOTE, 1.0);
    b.timeit(WORKLOADS[2], 1.0, None, || {
        raya::get(&remote().remote()).map(drop)
    })?;
    b.timeit(WORKLOADS[3], 1000.0, None, || {
        let refs: Vec<_> = (0..1000).map(|_| remote().remote()).collect();
        raya::get_all(&refs).map(drop)
    })?;
    if b.wanted(WORKLOADS[4]) || b.wanted(WORKLOADS[5]) {
        let a = RemoteEcho::options().resource(REMOTE, 1.0).remote()?;
        raya::get(&a.ready())?;
        b.timeit(WORKLOADS[4], 1.0, None, || {
            raya::get(&a.small_value()).map(drop)
        })?;
        b.timeit(WORKLOADS[5], 1000.0, None, || {
            let refs: Vec<_> = (0..1000).map(|_| a.small_value()).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    for (name, len) in [(WORKLOADS[6], 1usize << 20), (WORKLOADS[7], 1 << 30)] {
        if !b.wanted(name) {
            continue;
        }
        // Put here once; each call has a task on the other node pull it (its copy there is
        // freed when the task ends, so the next call pulls it again).
        let data = raya::put(vec![5u8; len])?;
        b.timeit(
            name,
            len as f64 / 1e9,
            Some("a task on the other node pulls an object put here (one task per pull)"),
            || {
                let n = raya::get(&byte_len::options().resource(REMOTE, 1.0).remote(&data))?;
                debug_assert_eq!(n as usize, len);
                Ok(())
            },
        )?;
    }
    Ok(Report {
        cpus: 1,
        n_actors: 1,
        timing,
        results: b.results,
    })
}
