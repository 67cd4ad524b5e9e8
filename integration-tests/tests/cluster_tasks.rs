//! Tasks and objects across real node processes on loopback: this test process is the head
//! and the driver; worker nodes are this same binary started again as `RAYA_ROLE=worker`
//! nodes (so they link the same remote functions), and are killed when a test ends.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raya::prelude::*;
use raya::{NodeInfo, NodeState, TaskErrorKind, TaskState};
use raya_integration_tests::{eventually, with_raya};

#[raya::remote]
fn node_of(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    raya::runtime_context().unwrap().node_id.to_string()
}

#[raya::remote]
fn make_bytes(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[raya::remote]
fn checksum(data: Vec<u8>) -> (u64, u64) {
    let sum = data
        .iter()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(*b)));
    (data.len() as u64, sum)
}

/// Bytes in the object store of the node the task runs on.
#[raya::remote]
fn store_bytes() -> u64 {
    raya::object_store_stats().unwrap().bytes_in_memory
}

fn local_checksum(data: &[u8]) -> (u64, u64) {
    let sum = data
        .iter()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(*b)));
    (data.len() as u64, sum)
}

#[raya::actor]
struct Log {
    items: Vec<u64>,
}

#[raya::actor(handles(Append))]
impl Log {
    fn new() -> Self {
        Log { items: Vec::new() }
    }
    fn push(&mut self, x: u64) -> usize {
        self.items.push(x);
        self.items.len()
    }
    fn items(&self) -> Vec<u64> {
        self.items.clone()
    }
    fn node(&self) -> String {
        raya::runtime_context().unwrap().node_id.to_string()
    }
    fn slow(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}

/// An actix-native message: a type with a `Handler` impl, sent through the handle.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Append(u64);

impl raya::Message for Append {
    type Result = usize;
}

/// An actix-native message the actor handles but does not list in `handles(..)`: it can only be
/// sent to a `Log` on the same node.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Clear;

impl raya::Message for Clear {
    type Result = ();
}

impl raya::Handler<Clear> for Log {
    fn handle(&mut self, _: Clear, _ctx: &mut raya::Context<Self>) {
        self.items.clear();
    }
}

impl raya::Handler<Append> for Log {
    fn handle(&mut self, msg: Append, _ctx: &mut raya::Context<Self>) -> usize {
        self.items.push(msg.0);
        self.items.len()
    }
}

/// Pushes `x` to `log` from inside a task (the handle travelled into the task).
#[raya::remote]
fn push_from_task(log: ActorHandle<Log>, x: u64) -> usize {
    raya::get(&log.push(x)).unwrap()
}

/// The key of the head running in this process, which its worker nodes and drivers join with
/// (the machine's recorded key may belong to another test's head).
fn head_key() -> String {
    raya::cluster_key()
        .unwrap()
        .expect("the head has a cluster key")
        .to_hex()
}

/// The entry point of a second driver process: joins the cluster (`RAYA_ADDRESS`), finds the
/// named actor and pushes to it.
#[test]
#[ignore = "entry point of the second driver the named-actor test starts"]
fn second_driver_entry() {
    let Ok(name) = std::env::var("TEST_ACTOR_NAME") else {
        return;
    };
    raya::init(
        raya::Config::default()
            .num_cpus(1)
            .host("127.0.0.1")
            .mdns(false)
            .namespace("shared"),
    )
    .unwrap();
    let log = raya::get_actor::<Log>(&name).expect("the named actor is found from another driver");
    let refs: Vec<_> = (0..10).map(|i| log.push(1000 + i)).collect();
    let lens = raya::get_all(&refs).unwrap();
    assert_eq!(lens.len(), 10);
    assert!(lens.windows(2).all(|w| w[1] == w[0] + 1), "{lens:?}");
    raya::shutdown();
}

/// The entry point of worker node processes: `raya::init` serves the cluster and exits the
/// process when stopped (it never returns here). Run directly, it does nothing.
#[test]
#[ignore = "entry point of the worker nodes the other tests start"]
fn worker_node_entry() {
    if std::env::var("RAYA_ROLE").as_deref() != Ok("worker") {
        return;
    }
    let cpus: usize = std::env::var("TEST_NODE_CPUS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut config = raya::Config::default()
        .num_cpus(cpus)
        .host("127.0.0.1")
        .mdns(false)
        .object_store_memory(4 << 30);
    if let Ok(r) = std::env::var("TEST_NODE_RESOURCE") {
        config = config.resource(r, 1.0);
    }
    raya::init(config).expect("worker node failed to start");
}

/// Worker node processes, killed on drop (also when the test fails).
struct Workers(Vec<Child>);

impl Workers {
    fn start(address: &str, nodes: &[(usize, Option<&str>)]) -> Workers {
        let exe = std::env::current_exe().unwrap();
        let mut children = Vec::new();
        for (cpus, resource) in nodes {
            let mut c = Command::new(&exe);
            c.args(["worker_node_entry", "--exact", "--ignored", "--nocapture"])
                .env("RAYA_ADDRESS", address)
                .env("RAYA_CLUSTER_KEY", head_key())
                .env("RAYA_ROLE", "worker")
                .env("TEST_NODE_CPUS", cpus.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            if let Some(r) = resource {
                c.env("TEST_NODE_RESOURCE", r);
            }
            children.push(c.spawn().expect("start a worker node"));
        }
        Workers(children)
    }

    fn kill(&mut self, i: usize) {
        let _ = self.0[i].kill();
        let _ = self.0[i].wait();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether the task making `r` runs on another node, as the GCS's task records say (nodes
/// flush their records every second).
fn running_elsewhere(r: raya::ObjectId) -> bool {
    let me = raya::runtime_context().unwrap().node_id;
    raya::list_tasks(100_000).is_ok_and(|tasks| {
        tasks.iter().any(|t| {
            t.task_id == r.task && t.state == TaskState::Running && t.node.is_some_and(|n| n != me)
        })
    })
}

fn head_config() -> raya::Config {
    raya::Config::default()
        .head(0)
        .host("127.0.0.1")
        .mdns(false)
        .num_cpus(1)
        .object_store_memory(4 << 30)
        .node_timeout(Duration::from_secs(4))
}

fn alive_nodes() -> Vec<NodeInfo> {
    raya::nodes()
        .unwrap()
        .into_iter()
        .filter(|n| n.state == NodeState::Alive)
        .collect()
}

/// Starts worker nodes and waits until the head sees them all.
fn join(nodes: &[(usize, Option<&str>)]) -> Workers {
    let address = raya::cluster_address()
        .unwrap()
        .expect("the head has an address");
    let workers = Workers::start(&address, nodes);
    assert!(
        eventually(Duration::from_secs(60), || alive_nodes().len()
            == nodes.len() + 1),
        "the worker nodes did not join: {:?}",
        raya::nodes().unwrap()
    );
    workers
}

#[test]
fn tasks_spread_over_the_cluster() {
    with_raya(head_config(), || {
        let _w = join(&[(1, None), (1, None)]);
        let refs: Vec<_> = (0..9).map(|_| node_of::remote(400)).collect();
        let ran_on: std::collections::HashSet<String> =
            raya::get_all(&refs).unwrap().into_iter().collect();
        assert!(
            ran_on.len() >= 2,
            "nine 0.4 s tasks on a 1-CPU head stayed on {ran_on:?}"
        );
    });
}

#[test]
fn a_task_needing_a_custom_resource_runs_on_the_node_that_has_it() {
    with_raya(head_config(), || {
        let _w = join(&[(1, None), (1, Some("sensor"))]);
        let sensor_node = alive_nodes()
            .into_iter()
            .find(|n| n.resources_total.get("sensor") > 0.0)
            .expect("a node has the sensor")
            .node_id
            .to_string();
        for _ in 0..3 {
            let r = node_of::options().resource("sensor", 1.0).remote(0);
            assert_eq!(raya::get(&r).unwrap(), sensor_node);
        }
        // No node has this: an infeasible error, not a hang.
        let r = node_of::options().resource("no-such-thing", 1.0).remote(0);
        let err = raya::get(&r).unwrap_err();
        assert!(err.to_string().contains("no-such-thing"), "{err}");
    });
}

#[test]
fn objects_made_on_one_node_are_read_on_another() {
    with_raya(head_config(), || {
        let _w = join(&[(1, Some("remote"))]);
        // A result too large to travel inline, made on the worker node, read by the driver.
        let made = make_bytes::options()
            .resource("remote", 1.0)
            .remote(3 << 20, 7);
        let bytes = raya::get(&made).unwrap();
        assert_eq!(bytes.len(), 3 << 20);
        assert_eq!(bytes[..4], [7, 38, 69, 100]);
        // An object put by the driver, read by a task on the worker node.
        let data: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
        let expected = local_checksum(&data);
        let put = raya::put(data).unwrap();
        let sum = checksum::options().resource("remote", 1.0).remote(&put);
        assert_eq!(raya::get(&sum).unwrap(), expected);
        // A result made remotely, passed by reference to another remote task.
        let sum = checksum::options().resource("remote", 1.0).remote(&made);
        assert_eq!(raya::get(&sum).unwrap(), local_checksum(&bytes));
    });
}

#[test]
fn a_gigabyte_object_crosses_nodes_intact() {
    with_raya(head_config(), || {
        let _w = join(&[(1, Some("remote"))]);
        let len = 1u64 << 30;
        let made = make_bytes::options().resource("remote", 1.0).remote(len, 3);
        let remote_sum = checksum::options().resource("remote", 1.0).remote(&made);
        let start = Instant::now();
        let bytes = raya::get(&made).unwrap();
        let took = start.elapsed();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(local_checksum(&bytes), raya::get(&remote_sum).unwrap());
        eprintln!("1 GiB crossed nodes in {took:?}");
    });
}

#[test]
fn waits_on_a_killed_node_fail_cleanly() {
    with_raya(head_config(), || {
        let mut w = join(&[(1, Some("victim"))]);
        let r = node_of::options().resource("victim", 1.0).remote(600_000);
        // Once it runs on that node, kill the node.
        assert!(eventually(Duration::from_secs(30), || running_elsewhere(
            r.id()
        )));
        w.kill(0);
        // It runs again (max_retries allows), but no other node has the resource: it fails
        // as infeasible, saying why it was to run again.
        let err = raya::get_timeout(&r, Duration::from_secs(60)).unwrap_err();
        let text = err.to_string();
        assert_eq!(
            err.task_error_kind(),
            Some(TaskErrorKind::Infeasible),
            "{text}"
        );
        assert!(text.contains("died"), "{text}");
        assert!(eventually(Duration::from_secs(30), || alive_nodes().len() == 1));
    });
}

#[test]
fn a_remote_actor_keeps_its_state_and_the_order_of_calls() {
    with_raya(head_config(), || {
        let _w = join(&[(1, Some("remote"))]);
        let log = Log::options().resource("remote", 1.0).remote().unwrap();
        let here = raya::runtime_context().unwrap().node_id.to_string();
        let there = raya::get(&log.node()).unwrap();
        assert_ne!(
            there, here,
            "the actor was placed on the node with the resource"
        );
        let refs: Vec<_> = (0..500u64).map(|i| log.push(i)).collect();
        let lens = raya::get_all(&refs).unwrap();
        assert_eq!(lens, (1..=500).collect::<Vec<usize>>());
        // The handle travels into a task (here on the head), which calls the actor too.
        let n = raya::get(&push_from_task::remote(log.clone(), 999)).unwrap();
        assert_eq!(n, 501);
        let items = raya::get(&log.items()).unwrap();
        assert_eq!(items.len(), 501);
        assert_eq!(items[..500], (0..500).collect::<Vec<u64>>()[..]);
        assert_eq!(items[500], 999);
        // The actix-native form crosses nodes too: the same typed message, serialized.
        assert_eq!(raya::get(&log.send(Append(7))).unwrap(), 502);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let asked = rt.block_on(log.ask(Append(8)));
        assert_eq!(asked.unwrap(), 503);
        log.tell(Append(9));
        assert_eq!(raya::get(&log.items()).unwrap()[501..], [7, 8, 9]);
        // A message not listed in `handles(..)` has no name another node knows: refused here,
        // saying what to add, and the actor is untouched.
        let e = raya::get(&log.send(Clear)).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(raya::TaskErrorKind::UnknownFunction),
            "{e}"
        );
        assert!(e.to_string().contains("handles(..)"), "{e}");
        assert_eq!(raya::get(&log.items()).unwrap().len(), 504);
    });
}

#[test]
fn a_named_actor_made_by_one_driver_is_used_by_another() {
    let config = head_config().namespace("shared").num_cpus(2);
    with_raya(config, || {
        let log = Log::options().name("shared-log").remote().unwrap();
        assert_eq!(raya::get(&log.push(1)).unwrap(), 1);
        let address = raya::cluster_address().unwrap().unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["second_driver_entry", "--exact", "--ignored", "--nocapture"])
            .env("RAYA_ADDRESS", &address)
            .env("RAYA_CLUSTER_KEY", head_key())
            .env("TEST_ACTOR_NAME", "shared-log")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the second driver failed");
        let items = raya::get(&log.items()).unwrap();
        assert_eq!(
            items,
            [1].into_iter().chain(1000..1010).collect::<Vec<u64>>()
        );
    });
}

#[test]
fn calls_to_an_actor_on_a_killed_node_fail_cleanly() {
    with_raya(head_config(), || {
        let mut w = join(&[(1, Some("victim"))]);
        let log = Log::options().resource("victim", 1.0).remote().unwrap();
        assert_eq!(raya::get(&log.push(1)).unwrap(), 1);
        let pending = log.slow(600_000);
        assert!(eventually(Duration::from_secs(30), || running_elsewhere(
            pending.id()
        )));
        w.kill(0);
        let err = raya::get_timeout(&pending, Duration::from_secs(60)).unwrap_err();
        assert!(err.to_string().contains("died"), "{err}");
        // Later calls fail too, at once or when the death is known.
        let err = raya::get_timeout(&log.push(2), Duration::from_secs(60)).unwrap_err();
        assert!(
            err.to_string().contains("died") || err.to_string().contains("unreachable"),
            "{err}"
        );
    });
}

#[test]
fn dropping_the_last_reference_frees_the_object_on_every_node() {
    with_raya(head_config(), || {
        let _w = join(&[(1, Some("remote"))]);
        let remote_bytes =
            || raya::get(&store_bytes::options().resource("remote", 1.0).remote()).unwrap();
        let before = remote_bytes();
        // Made there (too large to travel inline), owned here, read here: a copy on each node.
        let made = make_bytes::options()
            .resource("remote", 1.0)
            .remote(8 << 20, 1);
        assert_eq!(raya::get(&made).unwrap().len(), 8 << 20);
        assert!(
            remote_bytes() >= before + (8 << 20),
            "the maker keeps its copy while referenced"
        );
        let here = raya::object_store_stats().unwrap().bytes_in_memory;
        assert!(here >= 8 << 20);
        drop(made);
        assert!(
            eventually(Duration::from_secs(30), || remote_bytes()
                < before + (1 << 20)),
            "the copy on the other node was not freed"
        );
        assert!(raya::object_store_stats().unwrap().bytes_in_memory < here - (4 << 20));
        // An object put here and borrowed there (an argument): freed there when the task ends,
        // and here when the last reference goes.
        let put = raya::put(vec![3u8; 8 << 20]).unwrap();
        let sum = checksum::options().resource("remote", 1.0).remote(&put);
        raya::get(&sum).unwrap();
        drop(sum);
        assert!(
            eventually(Duration::from_secs(30), || remote_bytes()
                < before + (1 << 20)),
            "the borrowed copy on the other node was not freed"
        );
    });
}
