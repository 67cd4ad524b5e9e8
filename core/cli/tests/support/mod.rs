//! What the multi-process tests share: the harness that starts a cluster's processes (a head
//! from `raya start --head`, worker nodes and drivers that are the test binary started again)
//! and kills them when the test ends, pass or fail; and what a driver's scenario uses to talk
//! back to its test (steps, signals to other nodes) and to configure its node.
//!
//! Each test binary includes it (`mod support;`) and defines the `worker_entry` and
//! `driver_entry` tests the harness starts with [`entry_points!`]; not every binary uses every
//! item.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tells the test that the scenario reached `name`, and waits until the test lets it go on.
pub(crate) fn step(name: &str) {
    let dir = PathBuf::from(std::env::var("TEST_STEPS").expect("TEST_STEPS"));
    std::fs::write(dir.join(format!("{name}.reached")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.join(format!("{name}.go")).exists() {
        assert!(
            Instant::now() < deadline,
            "the test never let step {name} go on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to the process of node `name` (as the harness named
/// it in `TEST_PIDS`).
pub(crate) fn signal(name: &str, signal: &str) {
    let pids = std::env::var("TEST_PIDS").expect("TEST_PIDS");
    let pid = pids
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no process {name} in {pids}"));
    let ok = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{signal} {name} ({pid})");
}

/// Logs to standard error when `RUST_LOG` is set (the harness keeps each process's log in the
/// test's directory when `RAYA_KEEP_TEST_DIRS` is set).
pub(crate) fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// A node on loopback with mDNS off; its delivery bound, object lease and store size from
/// `TEST_DELIVERY_MS`, `TEST_LEASE_MS` and `TEST_STORE_BYTES` when set.
pub(crate) fn node_config(cpus: usize) -> raya::Config {
    let mut config = raya::Config::default()
        .num_cpus(cpus)
        .host(std::env::var("TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into()))
        .mdns(false)
        .object_store_memory(env_u64("TEST_STORE_BYTES").unwrap_or(2 << 30));
    if let Some(ms) = env_u64("TEST_DELIVERY_MS") {
        config = config.delivery_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = env_u64("TEST_LEASE_MS") {
        config = config.object_lease(Duration::from_millis(ms));
    }
    config
}

pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a binary's `worker_entry` runs: when started as a worker (`RAYA_ROLE=worker`), a node
/// with `TEST_NODE_CPUS` CPUs and one unit of each resource in `TEST_NODE_RESOURCES`, serving
/// the cluster until the process is killed.
///
/// With `TEST_NODE_SERVES` set instead of `RAYA_ROLE=worker`, the node is a program's own that
/// serves the cluster (`Config::serves`) without calling `raya::serve`: the program parks its
/// thread until it is killed.
pub(crate) fn serve_as_worker() {
    let embedded = std::env::var_os("TEST_NODE_SERVES").is_some();
    if std::env::var("RAYA_ROLE").as_deref() != Ok("worker") && !embedded {
        return;
    }
    init_logs();
    let cpus = env_usize("TEST_NODE_CPUS", 1);
    let mut config = node_config(cpus).serves(embedded);
    if let Ok(list) = std::env::var("TEST_NODE_RESOURCES") {
        for r in list.split(',').filter(|r| !r.is_empty()) {
            config = config.resource(r, 1.0);
        }
    }
    if let Ok(list) = std::env::var("TEST_NODE_LABELS") {
        for (k, v) in list.split(',').filter_map(|kv| kv.split_once('=')) {
            config = config.label(k, v);
        }
    }
    raya::init(config).expect("worker node failed to start");
    // Killed by the test: nothing to wait for but that.
    loop {
        std::thread::park();
    }
}

/// Defines the two ignored tests the harness starts this binary as: `worker_entry` (a worker
/// node: `raya::init` serves the cluster until the process is killed) and `driver_entry` (a
/// driver: joins `RAYA_ADDRESS`, runs the scenario `TEST_SCENARIO` names with `$run`, leaves).
#[allow(unused_macros)] // not every binary starts nodes of its own
macro_rules! entry_points {
    ($run:path) => {
        /// A worker node: `raya::init` serves the cluster until the process is killed.
        #[test]
        #[ignore = "entry point of the worker nodes the tests start"]
        fn worker_entry() {
            support::serve_as_worker();
        }

        /// A driver: joins `RAYA_ADDRESS`, runs `TEST_SCENARIO`, leaves.
        #[test]
        #[ignore = "entry point of the drivers the tests start"]
        fn driver_entry() {
            support::drive_scenario($run);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use entry_points;

/// What a binary's `driver_entry` runs: when started as a driver (`TEST_SCENARIO` set), joins
/// `RAYA_ADDRESS`, runs the scenario with `run`, and leaves.
pub(crate) fn drive_scenario(run: fn(&str)) {
    let Ok(scenario) = std::env::var("TEST_SCENARIO") else {
        return;
    };
    init_logs();
    let cpus = env_usize("TEST_NODE_CPUS", 1);
    raya::init(node_config(cpus)).expect("the driver joins the cluster");
    run(&scenario);
    raya::shutdown();
}

/// A new directory of its own for test `name` (under the system's temporary directory).
pub(crate) fn test_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Lines of a `raya status` text starting with `state`.
fn count_in(status: &str, state: &str) -> usize {
    status.lines().filter(|l| l.starts_with(state)).count()
}

/// The lines a child process writes to `out`, as they come (read on a thread of their own).
pub(crate) fn lines_of(
    out: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// The processes of one test's cluster, killed on drop.
pub(crate) struct Cluster {
    pub(crate) tmp: PathBuf,
    pub(crate) head: String,
    pub(crate) children: Vec<Child>,
    /// The processes by name (`head`, and each worker's), for scenarios that signal them.
    pub(crate) pids: Vec<(String, u32)>,
    /// Settings every node and driver started later gets (`TEST_DELIVERY_MS`, ...).
    pub(crate) env: Vec<(String, String)>,
    /// What the head was started with: its CPUs and extra `raya start` arguments.
    pub(crate) head_args: (usize, Vec<String>),
    /// Hosts of their own (network namespaces), when the test asked for them: the head on
    /// host 0, each worker and driver on the next.
    pub(crate) netns: Option<Netns>,
    /// The host of each process by name, and the host the next one goes to.
    pub(crate) hosts: Vec<(String, usize)>,
    pub(crate) next_host: usize,
}

impl Cluster {
    /// A head started by `raya start --head` (mDNS off), listening on a free loopback port.
    pub(crate) fn with_head(name: &str, head_cpus: usize) -> Cluster {
        Cluster::with_head_args(name, head_cpus, &[])
    }

    /// [`Cluster::with_head`], with more arguments for `raya start`.
    pub(crate) fn with_head_args(name: &str, head_cpus: usize, extra: &[&str]) -> Cluster {
        Cluster::start(name, head_cpus, extra, None)
    }

    /// [`Cluster::with_head_args`] on `hosts` hosts of their own (network namespaces on one
    /// bridge, 10.77.0.1.. : see [`Netns`]): the head on the first, every worker and driver
    /// started later on the next. Needs root (`ip netns`).
    pub(crate) fn in_netns(name: &str, head_cpus: usize, extra: &[&str], hosts: usize) -> Cluster {
        let tag = format!("rf{}", std::process::id() % 100_000);
        Cluster::start(name, head_cpus, extra, Some(Netns::new(&tag, hosts)))
    }

    fn start(name: &str, head_cpus: usize, extra: &[&str], netns: Option<Netns>) -> Cluster {
        let tmp = test_dir("raya-topology", name);
        let mut c = Cluster {
            tmp,
            head: String::new(),
            children: Vec::new(),
            pids: Vec::new(),
            env: Vec::new(),
            head_args: (head_cpus, extra.iter().map(|a| a.to_string()).collect()),
            netns,
            hosts: vec![("head".into(), 0)],
            next_host: 1,
        };
        c.start_head("0");
        c
    }

    /// The address of host `host` (loopback without namespaces).
    fn address_of(&self, host: usize) -> String {
        match &self.netns {
            Some(_) => Netns::address(host),
            None => "127.0.0.1".into(),
        }
    }

    /// `program`, to run on host `host` (in its namespace, if the cluster has them).
    fn on_host(&self, host: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.host(host)]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.env("TEST_HOST", self.address_of(host));
        cmd
    }

    /// The host the next worker or driver goes to (namespaces only; all share loopback else).
    fn take_host(&mut self, name: &str) -> usize {
        let host = if self.netns.is_some() {
            self.next_host
        } else {
            0
        };
        if self.netns.is_some() {
            self.next_host += 1;
        }
        self.hosts.retain(|(n, _)| n != name);
        self.hosts.push((name.into(), host));
        host
    }

    /// Cuts the host of process `name` off the network (`cut`), or connects it again.
    pub(crate) fn partition(&self, name: &str, cut: bool) {
        let (_, host) = self
            .hosts
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        self.netns
            .as_ref()
            .expect("a partition needs hosts of their own (Cluster::in_netns)")
            .link(*host, !cut);
    }

    /// Starts the head on `port` (its state in the test's directory) and waits until it says
    /// where it listens.
    pub(crate) fn start_head(&mut self, port: &str) {
        let session = self.tmp.join("head-session");
        let host = self.address_of(0);
        let mut cmd = self.on_host(0, env!("CARGO_BIN_EXE_raya"));
        cmd.env("TMPDIR", &self.tmp)
            .env_remove("RAYA_ADDRESS")
            .args(["start", "--head", "--block", "--no-mdns", "--host", &host])
            .args(["--port", port, "--num-cpus", &self.head_args.0.to_string()])
            .arg("--session-dir")
            .arg(&session)
            .args(&self.head_args.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.log("head"));
        let mut child = cmd.spawn().expect("start the head");
        let stdout = child.stdout.take().unwrap();
        self.pids.retain(|(n, _)| n != "head");
        self.pids.push(("head".into(), child.id()));
        self.children.push(child);
        let rx = lines_of(stdout);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the head never said where it listens");
            if let Some(rest) = line.strip_prefix("Raya head started at ") {
                self.head = rest.trim_end_matches('.').to_string();
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return;
            }
        }
    }

    /// Kills the process called `name` (`kill -9`) and waits for it to go.
    pub(crate) fn kill(&mut self, name: &str) {
        let Some(pos) = self.pids.iter().position(|(n, _)| n == name) else {
            panic!("no process {name}");
        };
        let (_, pid) = self.pids.remove(pos);
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the head (`kill -9`) and starts it again on the same port and state directory.
    pub(crate) fn restart_head(&mut self) {
        let port = self.head.rsplit(':').next().expect("host:port").to_string();
        self.kill("head");
        self.start_head(&port);
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the process called `name`.
    pub(crate) fn signal(&self, name: &str, signal: &str) {
        let (_, pid) = self
            .pids
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        let ok = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} {name} ({pid})");
    }

    /// Whether the process called `name` is still running.
    pub(crate) fn running(&mut self, name: &str) -> bool {
        let Some((_, pid)) = self.pids.iter().find(|(n, _)| n == name) else {
            return false;
        };
        let pid = *pid;
        self.children
            .iter_mut()
            .find(|c| c.id() == pid)
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// What `raya status` prints about the cluster.
    pub(crate) fn status(&self) -> String {
        let out = self
            .on_host(0, env!("CARGO_BIN_EXE_raya"))
            .env("TMPDIR", &self.tmp)
            .args(["status", "--address", &self.head])
            .output()
            .expect("raya status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Lines of `raya status` starting with `state` (`ALIVE`, `DEAD`).
    pub(crate) fn nodes_in(&self, state: &str) -> usize {
        count_in(&self.status(), state)
    }

    /// Waits until `raya status` shows at least `n` nodes in `state`, at most 60 s.
    pub(crate) fn wait_for(&self, state: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.nodes_in(state) < n {
            assert!(Instant::now() < deadline, "{n} nodes never showed {state}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Checks that worker `name`, declared dead, was fenced and joined again as a new node:
    /// `alive` nodes are alive (the head and the new incarnation included), its old
    /// incarnation stays dead, and its process never exited.
    pub(crate) fn assert_rejoined(&mut self, name: &str, alive: usize) {
        self.wait_alive(alive);
        assert!(
            self.running(name),
            "the fenced node exited instead of rejoining"
        );
        assert!(
            self.nodes_in("DEAD") >= 2,
            "the old incarnation of {name} is not dead"
        );
    }

    /// Waits until `raya status` shows `n` alive nodes (the head included).
    pub(crate) fn wait_alive(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.status();
            if count_in(&text, "ALIVE") >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} nodes never showed alive:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// This test binary started again as process `name`, running `entry`, on its host.
    pub(crate) fn node_process(&mut self, name: &str, entry: &str) -> Command {
        let host = self.take_host(name);
        let mut cmd = self.on_host(host, std::env::current_exe().unwrap());
        cmd.args([entry, "--exact", "--ignored", "--nocapture"])
            .env("TMPDIR", &self.tmp)
            .env("RAYA_ADDRESS", &self.head)
            .env_remove("RAYA_ROLE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    /// Gives every node and driver started from now on the setting `key=value`.
    pub(crate) fn setting(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// Where a process's standard error goes: a file in the test's directory when the directory
    /// is kept (`RAYA_KEEP_TEST_DIRS`), else nowhere.
    pub(crate) fn log(&self, name: &str) -> Stdio {
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_some() {
            let path = self.tmp.join(format!("{name}-{}.log", self.children.len()));
            std::fs::File::create(path).map_or(Stdio::null(), Stdio::from)
        } else {
            Stdio::null()
        }
    }

    /// A worker node with `cpus` CPUs and, when given, one unit of custom resource `resource`
    /// (also the name scenarios signal it by).
    pub(crate) fn worker(&mut self, cpus: usize, resource: Option<&str>) {
        self.named_worker(resource.unwrap_or("worker"), cpus, resource.unwrap_or(""));
    }

    /// A worker node called `name` with `cpus` CPUs and one unit of each custom resource in
    /// the comma-separated `resources`.
    pub(crate) fn named_worker(&mut self, name: &str, cpus: usize, resources: &str) {
        self.worker_process(name, cpus, resources, true);
    }

    /// [`Cluster::named_worker`] with labels (`k=v,k2=v2`).
    pub(crate) fn labelled_worker(
        &mut self,
        name: &str,
        cpus: usize,
        resources: &str,
        labels: &str,
    ) {
        self.setting("TEST_NODE_LABELS", labels);
        self.worker_process(name, cpus, resources, true);
        self.env.retain(|(k, _)| k != "TEST_NODE_LABELS");
    }

    /// [`Cluster::named_worker`], in a program that serves the cluster without calling
    /// `raya::serve` (`TEST_NODE_SERVES`).
    pub(crate) fn embedded_worker(&mut self, name: &str, cpus: usize, resources: &str) {
        self.worker_process(name, cpus, resources, false);
    }

    fn worker_process(&mut self, name: &str, cpus: usize, resources: &str, serve: bool) {
        let mut cmd = self.node_process(name, "worker_entry");
        if serve {
            cmd.env("RAYA_ROLE", "worker");
        } else {
            cmd.env("TEST_NODE_SERVES", "1");
        }
        cmd.env("TEST_NODE_NAME", name)
            .env("TEST_NODE_CPUS", cpus.to_string())
            .env("TEST_NODE_RESOURCES", resources)
            .stdout(Stdio::null())
            .stderr(self.log(name));
        let child = cmd.spawn().expect("start a worker node");
        self.pids.push((name.into(), child.id()));
        self.children.push(child);
    }

    /// Runs `scenario` in a driver with `cpus` CPUs, and fails the test (with the driver's
    /// output) unless it exits cleanly within `limit`.
    pub(crate) fn drive(&mut self, scenario: &str, cpus: usize, limit: Duration) {
        self.start_driver(scenario, cpus).finish(limit);
    }

    /// Starts `scenario` in a driver with `cpus` CPUs, for the test to act while it runs.
    pub(crate) fn start_driver(&mut self, scenario: &str, cpus: usize) -> Driver {
        let mut cmd = self.node_process("driver", "driver_entry");
        let pids: Vec<String> = self.pids.iter().map(|(n, p)| format!("{n}={p}")).collect();
        cmd.env("TEST_SCENARIO", scenario)
            .env("TEST_NODE_CPUS", cpus.to_string())
            .env("TEST_PIDS", pids.join(","))
            .env("TEST_STEPS", &self.tmp)
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
        Driver {
            scenario: scenario.to_string(),
            steps: self.tmp.clone(),
            child,
            out: Some((collect(Box::new(out)), collect(Box::new(err)))),
        }
    }
}

/// Output collectors of a driver process: standard output and error.
pub(crate) type Collected = (
    std::thread::JoinHandle<String>,
    std::thread::JoinHandle<String>,
);

/// A driver running a scenario; killed on drop.
pub(crate) struct Driver {
    scenario: String,
    steps: PathBuf,
    child: Child,
    out: Option<Collected>,
}

impl Driver {
    /// Waits until the scenario reaches `step` (it called `step(step)`), at most 120 s.
    pub(crate) fn reached(&mut self, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.steps.join(format!("{step}.reached")).exists() {
            if let Some(s) = self.child.try_wait().unwrap() {
                let (out, err) = self.output();
                panic!(
                    "scenario {} ended ({s}) before step {step}:\n{out}\n{err}",
                    self.scenario
                );
            }
            assert!(Instant::now() < deadline, "step {step} never reached");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the driver (`kill -9`) and waits for it to go.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lets the scenario go on past `step`.
    pub(crate) fn go(&self, step: &str) {
        std::fs::write(self.steps.join(format!("{step}.go")), b"").unwrap();
    }

    pub(crate) fn output(&mut self) -> (String, String) {
        match self.out.take() {
            Some((out, err)) => (out.join().unwrap(), err.join().unwrap()),
            None => Default::default(),
        }
    }

    /// Fails the test (with the driver's output) unless the scenario exits cleanly within
    /// `limit`.
    pub(crate) fn finish(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = self.output();
        let scenario = &self.scenario;
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_some() {
            let _ = std::fs::write(self.steps.join("driver.log"), &err);
        }
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("scenario {scenario} failed ({s}):\n{out}\n{err}"),
            None => panic!("scenario {scenario} did not end within {limit:?}:\n{out}\n{err}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            // A stopped process dies of SIGKILL too.
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hosts of their own: network namespaces.

/// Network namespaces for one test, joined by a bridge; removed on drop.
pub(crate) struct Netns {
    pub(crate) names: Vec<String>,
    /// The namespace holding the bridge.
    bridge: String,
}

pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// Namespaces `<tag>0` .. `<tag>{n-1}` with addresses 10.77.<k>.1.. on a bridge in `<tag>br`.
    pub(crate) fn new(tag: &str, n: usize) -> Netns {
        // Built up as a guard: whatever was made is removed if a step fails.
        let br = format!("{tag}br");
        let mut me = Netns {
            names: Vec::new(),
            bridge: br.clone(),
        };
        ip(&["netns", "add", &br]);
        me.names.push(br.clone());
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{tag}{i}");
            ip(&["netns", "add", &ns]);
            me.names.push(ns.clone());
            let (inner, outer) = (format!("v{i}"), format!("p{i}"));
            ip(&[
                "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns",
                &br,
            ]);
            ip(&["-n", &br, "link", "set", &outer, "master", "br0"]);
            ip(&["-n", &br, "link", "set", &outer, "up"]);
            let addr = format!("10.77.0.{}/24", i + 1);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // Multicast (mDNS) needs a route out of the interface.
            ip(&["-n", &ns, "route", "add", "default", "dev", &inner]);
        }
        // Let the links come up before anything looks at them: each host's end has carrier and
        // each bridge port forwards.
        let deadline = Instant::now() + Duration::from_secs(10);
        let shows = |ns: &str, dev: &str, what: &str| {
            let out = Command::new("ip")
                .args(["-n", ns, "-d", "-o", "link", "show", dev])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).contains(what)
        };
        for i in 0..n {
            let ns = format!("{tag}{i}");
            while !(shows(&ns, &format!("v{i}"), "state UP")
                && shows(&br, &format!("p{i}"), "bridge_slave state forwarding"))
            {
                assert!(Instant::now() < deadline, "link v{i} in {ns} never came up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        me
    }

    /// The namespace of host `i` (`names[i + 1]`: the bridge's comes first).
    pub(crate) fn host(&self, i: usize) -> &str {
        &self.names[i + 1]
    }

    /// Host `i`'s address.
    pub(crate) fn address(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Cuts host `i` off the bridge (`up: false`) or connects it again: a partition.
    pub(crate) fn link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge, "link", "set", &format!("p{i}"), state]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
