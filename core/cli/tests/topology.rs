//! Clusters in the shapes users run, each node its own process on loopback with mDNS off: a head
//! started by `raya start --head`, worker nodes and drivers that are this test binary started
//! again (so they link the functions and actors below), and the test process itself no node at
//! all. A driver runs one scenario and exits 0 when every check in it held; every process is
//! killed when the test ends, pass or fail.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raya::prelude::*;

// ---------------------------------------------------------------------------------------------
// The user's code: what worker nodes and drivers link.

#[raya::remote]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[raya::remote]
fn node_id() -> String {
    raya::runtime_context().unwrap().node_id.to_string()
}

#[raya::remote]
fn make_bytes(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[raya::remote]
fn checksum(data: Vec<u8>) -> (u64, String) {
    (
        sum(&data),
        raya::runtime_context().unwrap().node_id.to_string(),
    )
}

fn sum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(*b)))
}

/// Objects in the store of the node this runs on, but for this task's own result.
#[raya::remote]
fn objects_here() -> u64 {
    raya::object_store_stats().unwrap().num_objects - 1
}

#[raya::actor]
struct Tally {
    items: Vec<u64>,
}

#[raya::actor]
impl Tally {
    fn new() -> Self {
        Tally { items: Vec::new() }
    }
    fn add(&mut self, x: u64) -> usize {
        self.items.push(x);
        self.items.len()
    }
    fn items(&self) -> Vec<u64> {
        self.items.clone()
    }
    fn node(&self) -> String {
        raya::runtime_context().unwrap().node_id.to_string()
    }
}

/// Submits `n` tasks (on this node) and returns the references to their results, which this
/// node owns: the wordcount pattern.
#[raya::remote]
fn fan_out(n: u64) -> Vec<ObjectRef<Vec<u8>>> {
    (0..n)
        .map(|i| {
            make_bytes::options()
                .resource("a", 0.001)
                .remote(1000 + i, i as u8)
        })
        .collect()
}

/// Reads every object the references point at, wherever this task runs.
#[raya::remote]
fn sum_all(refs: Vec<ObjectRef<Vec<u8>>>) -> u64 {
    refs.iter()
        .map(|r| sum(&raya::get(r).unwrap()))
        .fold(0, u64::wrapping_add)
}

#[raya::actor]
impl Summer {
    fn new() -> Self {
        Summer
    }
    fn sum_all(&self, refs: Vec<ObjectRef<Vec<u8>>>) -> u64 {
        refs.iter()
            .map(|r| sum(&raya::get(r).unwrap()))
            .fold(0, u64::wrapping_add)
    }
}

#[raya::actor]
struct Summer;

/// Calls `tally` from wherever this task runs; returns the call's result and this node.
#[raya::remote]
fn add_from_task(tally: ActorHandle<Tally>, x: u64) -> (usize, String) {
    let n = raya::get(&tally.add(x)).unwrap();
    (n, raya::runtime_context().unwrap().node_id.to_string())
}

// ---------------------------------------------------------------------------------------------
// Scenarios, run by a driver process.

/// 200 tasks of 5 ms from a driver with one CPU: most go to the cluster (some to the head's
/// global scheduler, which may place them back on the driver), and every one finishes.
fn many_short_tasks() {
    let refs: Vec<ObjectRef<u64>> = (0..200).map(|_| sleep_ms::remote(5)).collect();
    for (i, r) in refs.iter().enumerate() {
        match raya::get_timeout(r, Duration::from_secs(60)) {
            Ok(v) => assert_eq!(v, 5),
            Err(e) => panic!("task {i} of 200 did not finish: {e}"),
        }
    }
}

/// The node a task asking for one unit of `resource` runs on.
fn node_with(resource: &str) -> String {
    raya::get_timeout(
        &node_id::options().resource(resource, 1.0).remote(),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// Waits until the store of the node with `resource` holds no object but the probe's own
/// result, and this driver's holds none: every reference the scenario made was dropped, and
/// every copy freed.
fn no_objects_left(resources: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let here = raya::object_store_stats().unwrap().num_objects;
        let there: Vec<u64> = resources
            .iter()
            .map(|r| {
                let probe = objects_here::options().resource(*r, 1.0).remote();
                raya::get_timeout(&probe, Duration::from_secs(30)).unwrap()
            })
            .collect();
        if here == 0 && there.iter().all(|n| *n == 0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "objects left: {here} on the driver, {there:?} on the nodes with {resources:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An object made on the node with `b` is the argument of a task on the node with `a`, and
/// this driver reads the result and the object: every node pulls from the one that has it.
fn argument_made_on_one_worker_used_on_another() {
    let (a, b) = (node_with("a"), node_with("b"));
    assert_ne!(a, b);
    let len = 4u64 << 20;
    let x = make_bytes::options().resource("b", 1.0).remote(len, 7);
    let r = checksum::options().resource("a", 1.0).remote(&x);
    let (sum_there, ran_on) = raya::get_timeout(&r, Duration::from_secs(60)).unwrap();
    assert_eq!(ran_on, a);
    let data = raya::get_timeout(&x, Duration::from_secs(60)).unwrap();
    assert_eq!(data.len() as u64, len);
    assert_eq!(sum_there, sum(&data));
    drop((x, r, data));
    no_objects_left(&["a", "b"]);
}

/// An actor on the node with `a` is called from a task on the node with `b` (the handle
/// travels there), and from this driver.
fn actor_called_from_a_task_on_another_worker() {
    let (a, b) = (node_with("a"), node_with("b"));
    // The actor holds the node's one unit of `a` while it lives.
    let tally = Tally::options().resource("a", 1.0).remote().unwrap();
    let on = raya::get_timeout(&tally.node(), Duration::from_secs(60)).unwrap();
    assert_eq!(on, a);
    assert_eq!(raya::get(&tally.add(1)).unwrap(), 1);
    let (n, ran_on) = raya::get_timeout(
        &add_from_task::options()
            .resource("b", 1.0)
            .remote(tally.clone(), 2),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((n, ran_on), (2, b));
    assert_eq!(raya::get(&tally.add(3)).unwrap(), 3);
    assert_eq!(raya::get(&tally.items()).unwrap(), vec![1, 2, 3]);
    drop(tally);
    no_objects_left(&["a", "b"]);
}

/// A task on the node with `a` returns references to objects it made there; the driver reads
/// them after that task's own result is gone, and so does a task on the node with `b`.
fn nested_refs_in_a_result() {
    let outer = fan_out::options().resource("a", 0.5).remote(20);
    let inner = raya::get_timeout(&outer, Duration::from_secs(60)).unwrap();
    drop(outer);
    let expected: Vec<u64> = (0..20u64)
        .map(|i| {
            let data: Vec<u8> = (0..1000 + i)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            sum(&data)
        })
        .collect();
    for (i, r) in inner.iter().enumerate() {
        let data = raya::get_timeout(r, Duration::from_secs(60)).unwrap();
        assert_eq!(sum(&data), expected[i], "object {i}");
    }
    let there = sum_all::options().resource("b", 1.0).remote(inner.clone());
    let total = raya::get_timeout(&there, Duration::from_secs(60)).unwrap();
    assert_eq!(total, expected.iter().copied().fold(0, u64::wrapping_add));
    drop((inner, there));
    no_objects_left(&["a", "b"]);
}

/// References inside a by-value argument, and inside an actor call's argument, keep their
/// objects alive while the task or call travels, though the driver dropped its own at once.
fn nested_refs_in_arguments() {
    let expect = |len: u64, seed: u8| {
        let data: Vec<u8> = (0..len)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        sum(&data)
    };
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..10u64)
        .map(|i| {
            make_bytes::options()
                .resource("a", 0.5)
                .remote(5000 + i, i as u8)
        })
        .collect();
    raya::wait(&refs, refs.len(), Some(Duration::from_secs(60))).unwrap();
    let total: u64 = (0..10u64)
        .map(|i| expect(5000 + i, i as u8))
        .fold(0, u64::wrapping_add);
    // The only references left travel inside the argument.
    let task = sum_all::options().resource("b", 1.0).remote(refs.clone());
    let summer = Summer::options().resource("b", 0.0).remote().unwrap();
    let call = summer.sum_all(refs);
    assert_eq!(
        raya::get_timeout(&task, Duration::from_secs(60)).unwrap(),
        total
    );
    assert_eq!(
        raya::get_timeout(&call, Duration::from_secs(60)).unwrap(),
        total
    );
    drop((task, call, summer));
    no_objects_left(&["a", "b"]);
}

fn run_scenario(name: &str) {
    match name {
        "many_short_tasks" => many_short_tasks(),
        "argument_made_on_one_worker_used_on_another" => {
            argument_made_on_one_worker_used_on_another()
        }
        "actor_called_from_a_task_on_another_worker" => {
            actor_called_from_a_task_on_another_worker()
        }
        "nested_refs_in_a_result" => nested_refs_in_a_result(),
        "nested_refs_in_arguments" => nested_refs_in_arguments(),
        other => panic!("no scenario {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points of the processes a test starts (ignored when the suite runs them directly).

/// A worker node: `raya::init` serves the cluster until the process is killed.
#[test]
#[ignore = "entry point of the worker nodes the tests start"]
fn worker_entry() {
    if std::env::var("RAYA_ROLE").as_deref() != Ok("worker") {
        return;
    }
    init_logs();
    let cpus = env_usize("TEST_NODE_CPUS", 1);
    let mut config = raya::Config::default()
        .num_cpus(cpus)
        .host("127.0.0.1")
        .mdns(false)
        .object_store_memory(2 << 30);
    if let Ok(r) = std::env::var("TEST_NODE_RESOURCE") {
        config = config.resource(r, 1.0);
    }
    raya::init(config).expect("worker node failed to start");
}

/// A driver: joins `RAYA_ADDRESS`, runs `TEST_SCENARIO`, leaves.
#[test]
#[ignore = "entry point of the drivers the tests start"]
fn driver_entry() {
    let Ok(scenario) = std::env::var("TEST_SCENARIO") else {
        return;
    };
    init_logs();
    let cpus = env_usize("TEST_NODE_CPUS", 1);
    raya::init(
        raya::Config::default()
            .num_cpus(cpus)
            .host("127.0.0.1")
            .mdns(false)
            .object_store_memory(2 << 30),
    )
    .expect("the driver joins the cluster");
    run_scenario(&scenario);
    raya::shutdown();
}

/// Logs to standard error when `RUST_LOG` is set (the harness keeps each process's log in the
/// test's directory when `RAYA_KEEP_TEST_DIRS` is set).
fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// The processes of one test's cluster, killed on drop.
struct Cluster {
    tmp: PathBuf,
    head: String,
    children: Vec<Child>,
}

impl Cluster {
    /// A head started by `raya start --head` (mDNS off), listening on a free loopback port.
    fn with_head(name: &str, head_cpus: usize) -> Cluster {
        let tmp = std::env::temp_dir().join(format!(
            "raya-topology-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&tmp).unwrap();
        let mut c = Cluster {
            tmp,
            head: String::new(),
            children: Vec::new(),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raya"));
        cmd.env("TMPDIR", &c.tmp)
            .env_remove("RAYA_ADDRESS")
            .args([
                "start",
                "--head",
                "--block",
                "--no-mdns",
                "--host",
                "127.0.0.1",
            ])
            .args(["--port", "0", "--num-cpus", &head_cpus.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(c.log("head"));
        let mut child = cmd.spawn().expect("start the head");
        let stdout = child.stdout.take().unwrap();
        c.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the head never said where it listens");
            if let Some(rest) = line.strip_prefix("Raya head started at ") {
                c.head = rest.trim_end_matches('.').to_string();
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return c;
            }
        }
    }

    /// Waits until `raya status` shows `n` alive nodes (the head included).
    fn wait_alive(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(env!("CARGO_BIN_EXE_raya"))
                .env("TMPDIR", &self.tmp)
                .args(["status", "--address", &self.head])
                .output()
                .expect("raya status");
            let text = String::from_utf8_lossy(&out.stdout);
            let alive = text.lines().filter(|l| l.starts_with("ALIVE")).count();
            if alive >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} nodes never showed alive:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node_process(&self, entry: &str) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([entry, "--exact", "--ignored", "--nocapture"])
            .env("TMPDIR", &self.tmp)
            .env("RAYA_ADDRESS", &self.head)
            .env_remove("RAYA_ROLE")
            .stdin(Stdio::null());
        cmd
    }

    /// Where a process's standard error goes: a file in the test's directory when the directory
    /// is kept (`RAYA_KEEP_TEST_DIRS`), else nowhere.
    fn log(&self, name: &str) -> Stdio {
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_some() {
            let path = self.tmp.join(format!("{name}-{}.log", self.children.len()));
            std::fs::File::create(path).map_or(Stdio::null(), Stdio::from)
        } else {
            Stdio::null()
        }
    }

    /// A worker node with `cpus` CPUs and, when given, one unit of custom resource `resource`.
    fn worker(&mut self, cpus: usize, resource: Option<&str>) {
        let mut cmd = self.node_process("worker_entry");
        cmd.env("RAYA_ROLE", "worker")
            .env("TEST_NODE_CPUS", cpus.to_string())
            .stdout(Stdio::null())
            .stderr(self.log("worker"));
        if let Some(r) = resource {
            cmd.env("TEST_NODE_RESOURCE", r);
        }
        self.children
            .push(cmd.spawn().expect("start a worker node"));
    }

    /// Runs `scenario` in a driver with `cpus` CPUs, and fails the test (with the driver's
    /// output) unless it exits cleanly within `limit`.
    fn drive(&mut self, scenario: &str, cpus: usize, limit: Duration) {
        let mut cmd = self.node_process("driver_entry");
        cmd.env("TEST_SCENARIO", scenario)
            .env("TEST_NODE_CPUS", cpus.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the driver");
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let collect = |r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                BufReader::new(r)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        };
        let (out, err) = (collect(Box::new(out)), collect(Box::new(err)));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("scenario {scenario} failed ({s}):\n{out}\n{err}"),
            None => panic!("scenario {scenario} did not end within {limit:?}:\n{out}\n{err}"),
        }
    }
}

impl Drop for Cluster {
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

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_driver_that_is_not_the_head_gets_every_result_of_many_short_tasks() {
    let mut c = Cluster::with_head("many-short", 1);
    c.worker(2, None);
    c.wait_alive(2);
    c.drive("many_short_tasks", 1, Duration::from_secs(120));
}

/// Head, two workers and a driver, each its own process: nodes that have no link yet reach each
/// other through the addresses the GCS records.
fn two_workers(name: &str) -> Cluster {
    let mut c = Cluster::with_head(name, 1);
    c.worker(1, Some("a"));
    c.worker(1, Some("b"));
    c.wait_alive(3);
    c
}

#[test]
fn an_argument_made_on_one_worker_reaches_a_task_on_another_and_the_driver() {
    let mut c = two_workers("arg-a-b");
    c.drive(
        "argument_made_on_one_worker_used_on_another",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn an_actor_on_one_worker_is_called_from_a_task_on_another() {
    let mut c = two_workers("actor-a-b");
    c.drive(
        "actor_called_from_a_task_on_another_worker",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn references_inside_a_result_keep_their_objects_alive_across_nodes() {
    let mut c = two_workers("nested-result");
    c.drive("nested_refs_in_a_result", 1, Duration::from_secs(120));
}

#[test]
fn references_inside_arguments_keep_their_objects_alive_across_nodes() {
    let mut c = two_workers("nested-args");
    c.drive("nested_refs_in_arguments", 1, Duration::from_secs(120));
}
