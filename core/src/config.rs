//! Node configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How `raya::init` sets up the node. Every field has a working default: `Config::default()`
/// starts an embedded one-node cluster using every core of the machine, a temporary session
/// directory and an object store of 30% of RAM.
///
/// ```
/// let config = raya::Config::default()
///     .num_cpus(4)
///     .resource("sensor", 1.0)
///     .object_store_memory(256 << 20);
/// assert_eq!(config.num_cpus, Some(4));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Logical CPUs of the node (default: the machine's cores). One worker thread is started per
    /// CPU.
    pub num_cpus: Option<usize>,
    /// GPUs of the node (default: counted from `CUDA_VISIBLE_DEVICES` or the NVIDIA driver).
    pub num_gpus: Option<usize>,
    /// The logical `memory` resource in bytes (default: 70% of RAM not given to the object store).
    pub memory: Option<u64>,
    /// Custom resources of the node.
    pub resources: BTreeMap<String, f64>,
    /// The node's labels, which the label selectors of tasks and actors match (see
    /// [`Config::label`]).
    pub labels: BTreeMap<String, String>,
    /// The object store's memory budget in bytes (default: 30% of RAM).
    pub object_store_memory: Option<u64>,
    /// Whether objects past the budget are spilled to disk (default: on). When off, a `put` that
    /// does not fit fails with a store-full error.
    pub spilling: bool,
    /// The session directory: node identity, GCS tables and spilled objects. Default: a fresh
    /// temporary directory, deleted at shutdown. A given directory is kept, and a node started on
    /// it again reloads its GCS tables.
    pub session_dir: Option<PathBuf>,
    /// The namespace named actors are created and looked up in (default: one per job).
    pub namespace: Option<String>,
    /// The most worker threads at once (extra workers start when tasks block in `get`).
    pub max_workers: usize,
    /// The most threads running synchronous actor methods at once.
    pub max_actor_threads: usize,
    /// The most tasks queued on the node; past it submissions fail with a queue-full error.
    pub max_pending_tasks: usize,
    /// The most calls queued on one actor; past it calls fail with a queue-full error.
    pub max_pending_calls: usize,
    /// Extra workers and actor threads idle this long are stopped.
    pub idle_thread_timeout: Duration,
    /// A node without heartbeats for this long is declared dead.
    pub node_timeout: Duration,
    /// How long a message to another node is sent again before it fails, and whoever waits on
    /// it sees the error (default 30 s): a task handed to the head, a placement, a batch of
    /// actor calls, an announced result.
    pub delivery_timeout: Duration,
    /// How long an object may wait on a node that cannot be reached — its owner, the node
    /// making it, the node holding it — before a `get` of it fails (default 60 s; at least
    /// `delivery_timeout`). A task handed to the head may go unplaced for this long, or for
    /// four delivery bounds (the head tries up to three nodes) when that is longer.
    pub object_lease: Duration,
    /// How many task records the GCS keeps.
    pub max_task_events: usize,
    /// How many bytes of by-value arguments the lineage of the tasks this node hands to other
    /// nodes keeps, so they can run again when a node dies with them or with their results
    /// (default 1 GiB, Ray's `max_lineage_bytes`). Past it, the oldest placed tasks let their
    /// arguments go, and a result of theirs lost later fails as `ReconstructionFailed`.
    pub max_lineage_bytes: u64,
    /// Join the cluster whose head listens at this address (`host:port` or a multiaddr).
    /// Default: the `RAYA_ADDRESS` environment variable when set, else none (an embedded
    /// one-node cluster that opens no port).
    pub address: Option<String>,
    /// Run the cluster's GCS and global scheduler in this node and accept nodes on `port`.
    pub head: bool,
    /// Whether this node serves the cluster until it is stopped (a worker node: `raya start`,
    /// or a binary started with `RAYA_ROLE=worker`) rather than being a driver, a program that
    /// leaves when it ends. Detached actors are never placed on a driver. Default: `false`,
    /// but a head and a `RAYA_ROLE=worker` node always serve. A serving node declared dead by
    /// the cluster acts as [`Config::fenced`] says whether or not the program waits in
    /// [`crate::serve`].
    pub serves: bool,
    /// What a node that serves the cluster does when it learns the head declared it dead (it
    /// stalled or was cut off for longer than the node timeout, and the cluster moved its work
    /// elsewhere): rejoin as a new node (default) or stop. A driver always exits then (code 1):
    /// its objects and actors are gone from the cluster.
    pub fenced: Fenced,
    /// The host a cluster node listens on (default `0.0.0.0`, every interface).
    pub host: String,
    /// The port a cluster node listens on (default 0: any free port; `raya start --head` uses
    /// 6379).
    pub port: u16,
    /// Whether a cluster node finds peers on the LAN with mDNS (default on).
    pub mdns: bool,
    /// How long a joining node waits to reach the head.
    pub join_timeout: Duration,
    /// The cluster's pre-shared key (see [`Config::cluster_key`]). Default: the key file,
    /// `RAYA_CLUSTER_KEY`, then for a head the key in its session directory (created there
    /// the first time) and for a joining node the key of the head this machine started last.
    pub cluster_key: Option<raya_cluster::transport::ClusterKey>,
    /// A file holding the cluster key (`swarm.key` format, or 64 hexadecimal digits).
    pub cluster_key_file: Option<PathBuf>,
    /// Run a cluster node without a key (see [`Config::insecure_no_cluster_key`]).
    pub insecure_no_cluster_key: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            num_cpus: None,
            num_gpus: None,
            memory: None,
            resources: BTreeMap::new(),
            labels: BTreeMap::new(),
            object_store_memory: None,
            spilling: true,
            session_dir: None,
            namespace: None,
            max_workers: 4096,
            max_actor_threads: 8192,
            max_pending_tasks: 4_000_000,
            max_pending_calls: 1_000_000,
            idle_thread_timeout: Duration::from_secs(1),
            node_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(30),
            object_lease: Duration::from_secs(60),
            max_task_events: 100_000,
            max_lineage_bytes: 1 << 30,
            address: None,
            head: false,
            serves: false,
            fenced: Fenced::Rejoin,
            host: "0.0.0.0".into(),
            port: 0,
            mdns: true,
            join_timeout: Duration::from_secs(30),
            cluster_key: None,
            cluster_key_file: None,
            insecure_no_cluster_key: false,
        }
    }
}

impl Config {
    /// Sets the number of logical CPUs.
    pub fn num_cpus(mut self, n: usize) -> Self {
        self.num_cpus = Some(n);
        self
    }
    /// Sets the number of GPUs.
    pub fn num_gpus(mut self, n: usize) -> Self {
        self.num_gpus = Some(n);
        self
    }
    /// Sets the logical `memory` resource (bytes).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// Adds a custom resource.
    pub fn resource(mut self, name: impl Into<String>, amount: f64) -> Self {
        self.resources.insert(name.into(), amount);
        self
    }
    /// Adds a label to the node (`key=value`, as `raya start --labels` does): tasks and actors
    /// with a label selector run only on nodes whose labels match it. Keys and values are
    /// checked when the node starts.
    ///
    /// ```
    /// let config = raya::Config::default().label("region", "us-west");
    /// assert_eq!(config.labels["region"], "us-west");
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    /// Sets the object store's memory budget (bytes).
    pub fn object_store_memory(mut self, bytes: u64) -> Self {
        self.object_store_memory = Some(bytes);
        self
    }
    /// Turns spilling to disk on or off.
    pub fn spilling(mut self, on: bool) -> Self {
        self.spilling = on;
        self
    }
    /// Uses (and keeps) `dir` as the session directory.
    pub fn session_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.session_dir = Some(dir.into());
        self
    }
    /// Sets the job's namespace for named actors.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }
    /// Sets the bound on queued tasks.
    pub fn max_pending_tasks(mut self, n: usize) -> Self {
        self.max_pending_tasks = n;
        self
    }
    /// Sets the bound on calls queued per actor.
    pub fn max_pending_calls(mut self, n: usize) -> Self {
        self.max_pending_calls = n;
        self
    }
    /// Joins the cluster whose head listens at `address` (`host:port` or a multiaddr).
    ///
    /// ```no_run
    /// raya::init(raya::Config::default().address("10.0.0.1:6379")).unwrap();
    /// ```
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }
    /// Makes this node a cluster head listening on `port` (0 picks a free one): it runs the GCS
    /// and the global scheduler, and other nodes join it.
    ///
    /// ```
    /// raya::init(raya::Config::default().head(0).host("127.0.0.1").num_cpus(1)).unwrap();
    /// let addr = raya::cluster_address().unwrap().unwrap();
    /// assert!(addr.starts_with("127.0.0.1:"));
    /// raya::shutdown();
    /// ```
    pub fn head(mut self, port: u16) -> Self {
        self.head = true;
        self.port = port;
        self
    }
    /// Makes this node one that serves the cluster until stopped rather than a driver (see
    /// [`Config::serves`]).
    pub fn serves(mut self, on: bool) -> Self {
        self.serves = on;
        self
    }
    /// Sets what a serving node does once declared dead (see [`Config::fenced`]).
    pub fn fenced(mut self, then: Fenced) -> Self {
        self.fenced = then;
        self
    }
    /// Whether this node is a driver: it neither runs the GCS nor serves the cluster (see
    /// [`Config::serves`]).
    pub fn is_driver(&self) -> bool {
        !self.head && !self.serves && std::env::var("RAYA_ROLE").as_deref() != Ok("worker")
    }
    /// Sets the host a cluster node listens on.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }
    /// Sets the port a cluster node listens on.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Turns mDNS discovery on or off.
    pub fn mdns(mut self, on: bool) -> Self {
        self.mdns = on;
        self
    }
    /// Sets the cluster's pre-shared key. Every connection between nodes is wrapped with it
    /// (libp2p's private network, before the Noise handshake), so a host without it cannot
    /// connect to any node. An embedded node opens no port and needs none.
    ///
    /// ```
    /// let key = raya::ClusterKey::generate();
    /// let config = raya::Config::default().head(0).cluster_key(key);
    /// assert_eq!(config.cluster_key, Some(key));
    /// ```
    pub fn cluster_key(mut self, key: raya_cluster::transport::ClusterKey) -> Self {
        self.cluster_key = Some(key);
        self
    }
    /// Reads the cluster key from `path` (a head's session directory holds it as
    /// `cluster_key`).
    pub fn cluster_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cluster_key_file = Some(path.into());
        self
    }
    /// Runs without a cluster key: any host that can reach the node's port can join the
    /// cluster and act as any node. Logged as a warning at start.
    pub fn insecure_no_cluster_key(mut self) -> Self {
        self.insecure_no_cluster_key = true;
        self
    }
    /// Sets how long a node without heartbeats lives before it is declared dead.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }
    /// Sets how long a message to another node is sent again before it fails.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }
    /// Sets how long an object may wait on a node that cannot be reached before it fails.
    pub fn object_lease(mut self, lease: Duration) -> Self {
        self.object_lease = lease;
        self
    }
    /// Sets how many bytes of by-value arguments the lineage of tasks handed to other nodes
    /// keeps (see [`Config::max_lineage_bytes`]).
    pub fn max_lineage_bytes(mut self, bytes: u64) -> Self {
        self.max_lineage_bytes = bytes;
        self
    }
    /// Sets the bound on worker threads.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }

    pub(crate) fn cpus(&self) -> usize {
        self.num_cpus
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub(crate) fn gpus(&self) -> usize {
        if let Some(n) = self.num_gpus {
            return n;
        }
        if let Ok(v) = std::env::var("CUDA_VISIBLE_DEVICES") {
            return v.split(',').filter(|s| !s.trim().is_empty()).count();
        }
        std::fs::read_dir("/proc/driver/nvidia/gpus").map_or(0, |d| d.count())
    }

    pub(crate) fn store_budget(&self) -> u64 {
        self.object_store_memory
            .unwrap_or_else(|| (total_memory() as f64 * 0.3) as u64)
            .max(1 << 20)
    }

    pub(crate) fn memory_resource(&self) -> u64 {
        self.memory.unwrap_or_else(|| {
            (total_memory().saturating_sub(self.store_budget()) as f64 * 0.7) as u64
        })
    }
}

/// Total RAM in bytes (from /proc/meminfo; 8 GiB when unknown).
pub(crate) fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024)
}

/// What a node that serves the cluster does when it learns it was declared dead
/// ([`Config::fenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fenced {
    /// Drop everything it held and join again as a new node (a new identity and a fresh
    /// session directory), so nothing it answered for before can be mistaken for the cluster's.
    #[default]
    Rejoin,
    /// Drop everything and stop: `raya::serve` returns an error (a worker binary exits 1).
    Stop,
}
