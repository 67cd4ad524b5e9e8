//! Starting and stopping the node: `raya::init` and `raya::shutdown`, and the process's one
//! running node ([`current`]), which every API call goes through.
//!
//! `init` opens the [session](mod@session) directory, loads the node's identity, starts the
//! [network](mod@network) when the node is part of a cluster, then [sets up](mod@setup) every
//! component on the node's control thread (an Actix system of its own, so a program need not
//! run one). `shutdown` leaves the cluster and stops it all in reverse.

pub(crate) mod cluster_key;
mod network;
pub(crate) mod node_files;
pub(crate) mod serve;
mod session;
mod setup;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::prelude::*;
use actix_rt::{Arbiter, System};
use raya_cluster::GcsTables;
use raya_cluster::transport::{self, Network, identity};
use raya_common::{NodeId, ResourceSet};

use crate::actor_host::thread_pool::ActorThreadPool;
use crate::config::Config;
use crate::core_worker::CoreWorker;
use crate::error::{Error, Result};
use crate::raylet::node_manager::{LeaveCluster, NodeManager};
use crate::registry::registry;
use network::start_network;
use session::Session;
use setup::{Started, setup};

/// The running node of this process.
struct RunningNode {
    core: Arc<CoreWorker>,
    node_manager: Addr<NodeManager>,
    system: System,
    control: Option<std::thread::JoinHandle<()>>,
    gcs_arbiter: Option<Arbiter>,
    /// Actor event loops and the object manager's arbiter.
    arbiters: Vec<Arbiter>,
    tables: Option<GcsTables>,
    threads: ActorThreadPool,
    is_head: bool,
    net: Option<Network>,
    /// The key of its cluster's private network.
    cluster_key: Option<raya_cluster::transport::ClusterKey>,
    /// This node's entry in [`crate::nodes_dir`].
    pid_file: Option<PathBuf>,
    session: Session,
    /// What it was started with (a fenced node starts again from it).
    config: Config,
}

static NODE: RwLock<Option<RunningNode>> = RwLock::new(None);

/// The core worker of the node being started or running. Published by `setup` before the node
/// joins its cluster, since from then on other nodes may place tasks here whose code asks for
/// its runtime (`runtime_context`, `put`, nested tasks) while `start_node` is still finishing;
/// withdrawn when the node stops or fails to start.
static CORE: RwLock<Option<Arc<CoreWorker>>> = RwLock::new(None);

/// Makes `core` (or nothing) the core worker tasks of this process reach, with its store.
pub(super) fn publish_core(core: Option<Arc<CoreWorker>>) {
    raya_store::set_current_store(core.as_ref().map(|c| Arc::clone(&c.store)));
    *CORE.write().unwrap_or_else(|p| p.into_inner()) = core;
}

/// A node started by a test of this crate: tests take turns (a process runs one node at a time)
/// and the node stops when the test ends, even when it fails.
#[cfg(test)]
pub(crate) struct TestNode(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

#[cfg(test)]
impl TestNode {
    pub(crate) fn start(config: Config) -> TestNode {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        init(config).expect("raya::init");
        TestNode(turn)
    }
}

/// The GCS tables of the running head (a test's view of what the head records).
#[cfg(test)]
pub(crate) fn test_tables() -> raya_cluster::gcs::GcsTables {
    NODE.read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|n| n.tables.clone())
        .expect("a running head")
}

#[cfg(test)]
impl Drop for TestNode {
    fn drop(&mut self) {
        shutdown();
    }
}

/// Held while the node starts, stops or rejoins, so those never interleave.
static LIFECYCLE: Mutex<()> = Mutex::new(());

/// The core worker of the running node, or [`Error::NotInitialized`].
pub(crate) fn current() -> Result<Arc<CoreWorker>> {
    CORE.read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or(Error::NotInitialized)
}

/// The running node, starting one with the default configuration when the caller is a plain
/// program thread (as Ray starts itself on first use).
///
/// Not after the cluster ended this process's node (fenced and stopped, or fenced and unable to
/// rejoin): a one-node cluster of its own would quietly stand in for the cluster the program
/// runs in, so the call fails until the program calls [`init`] again.
pub(crate) fn current_or_start() -> Result<Arc<CoreWorker>> {
    match current() {
        Ok(core) => Ok(core),
        Err(Error::NotInitialized) if crate::execution::context::current().is_none() => {
            auto_start()
        }
        Err(e) => Err(e),
    }
}

/// Why the cluster ended this process's node, when it did; cleared by [`init`].
static ENDED: Mutex<Option<String>> = Mutex::new(None);

/// Program threads waiting in [`auto_start`] for the lifecycle lock (a test's view).
#[cfg(test)]
static AUTO_STARTS_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`current_or_start`]'s start: under the lifecycle lock, so it never runs in a rejoin's gap
/// nor after the node was ended.
fn auto_start() -> Result<Arc<CoreWorker>> {
    #[cfg(test)]
    AUTO_STARTS_WAITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    #[cfg(test)]
    AUTO_STARTS_WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    if let Some(why) = ENDED.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Err(Error::Node(format!(
            "this process's node was {why}; it does not start again by itself: call raya::init"
        )));
    }
    let started = match start_locked(Config::default()) {
        Ok(()) => true,
        Err(Error::AlreadyInitialized) => false,
        Err(e) => return Err(e),
    };
    drop(life);
    if started {
        serve_if_worker();
    }
    current()
}

/// Stops the node because the cluster declared it dead and it may not rejoin (`why`): later
/// program calls fail instead of starting a node of their own.
pub(crate) fn end(why: String) {
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    stop_locked();
    *ENDED.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
}

/// Whether Raya is running in this process.
pub fn is_initialized() -> bool {
    NODE.read().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Starts Raya in this process: an embedded one-node cluster (GCS, schedulers, object store,
/// one worker thread per CPU) on its own threads, so it works from a plain `fn main` as well as
/// from inside any async runtime.
///
/// Fails with [`Error::AlreadyInitialized`] when Raya is already running, and with
/// [`Error::DuplicateFunction`] when two remote functions or actor types of the binary share a
/// name.
///
/// ```
/// raya::init(raya::Config::default().num_cpus(2)).unwrap();
/// assert!(raya::is_initialized());
/// raya::shutdown();
/// ```
pub fn init(config: Config) -> Result<()> {
    start_node(config)?;
    serve_if_worker();
    Ok(())
}

/// When the user's binary was started as a worker node, serves the cluster and never returns.
fn serve_if_worker() {
    if std::env::var("RAYA_ROLE").is_ok_and(|r| r == "worker") {
        // The user's binary started as a worker node: serve the cluster, never return to `main`.
        let code = match serve::serve() {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "worker node failed");
                1
            }
        };
        std::process::exit(code);
    }
}

/// Starts this process's node (what `init` does, short of serving as a worker).
fn start_node(config: Config) -> Result<()> {
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    start_locked(config)?;
    *ENDED.lock().unwrap_or_else(|p| p.into_inner()) = None;
    Ok(())
}

/// [`start_node`], for a caller holding [`LIFECYCLE`].
fn start_locked(config: Config) -> Result<()> {
    if is_initialized() {
        return Err(Error::AlreadyInitialized);
    }
    registry()?;
    let mut node = start(config)?;
    tracing::info!(node = %node.core.node, job = %node.core.job, session = %node.session.dir.display(), "Raya started");
    if let Some(net) = &node.net {
        let addr = transport::sockets_reachable_first(&net.listen_addrs())
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let role = if node.is_head { "head" } else { "node" };
        node.pid_file = node_files::register_process(role, &addr);
        if node.is_head {
            let file = node_files::current_cluster_file();
            if let Err(e) = raya_common::private_fs::write(&file, addr.as_bytes()) {
                tracing::warn!(file = %file.display(), error = %e, "cannot record the cluster address");
            }
            let key_file = cluster_key::current_cluster_key_file();
            match node.cluster_key {
                Some(k) => {
                    if let Err(e) = k.write(&key_file) {
                        tracing::warn!(error = %e, "cannot record the cluster key");
                    }
                }
                None => {
                    let _ = std::fs::remove_file(&key_file);
                }
            }
        }
    }
    *NODE.write().unwrap_or_else(|p| p.into_inner()) = Some(node);
    Ok(())
}

/// Why this node was fenced, once it learnt it was declared dead (taken by `serve`).
static FENCED: Mutex<Option<String>> = Mutex::new(None);

/// Wakes `serve` when the node is fenced.
static FENCE: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Whether `serve` waits for this node to be fenced (else `fence` acts itself).
static SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks that `serve` waits for the fence while the guard lives.
pub(crate) struct Serving;

impl Serving {
    pub(crate) fn start() -> Serving {
        SERVING.store(true, std::sync::atomic::Ordering::SeqCst);
        Serving
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        SERVING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The node learnt that the head declared it dead (`reason`): what it answered for has moved
/// elsewhere, so it must not go on as it is. A serving node is woken in `serve`, which drops
/// everything and rejoins as a new node or stops ([`Config::fenced`]); one that serves without
/// `serve` (`Config::serves` in a program of its own) does the same on a thread of its own; a
/// driver exits (code 1), since its objects and actors are gone from the cluster.
pub(crate) fn fence(reason: String) {
    let driver = NODE
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|n| n.config.is_driver());
    if driver {
        tracing::error!(%reason, "this driver was declared dead by the cluster, which failed its objects and actors: exiting");
        std::process::exit(1);
    }
    tracing::warn!(%reason, "this node was declared dead by the cluster: dropping what it held");
    if !SERVING.load(std::sync::atomic::Ordering::SeqCst) {
        // Nobody waits in `serve`: not on this (the node's own) thread, which shutting the
        // node down stops.
        let spawned = std::thread::Builder::new()
            .name("raya-fenced".into())
            .spawn(move || match fenced_policy() {
                crate::config::Fenced::Stop => {
                    end(format!("declared dead by the cluster ({reason}) and stopped"));
                    tracing::error!(%reason, "this node was declared dead by the cluster and stopped");
                }
                crate::config::Fenced::Rejoin => match rejoin() {
                    Ok(()) => tracing::info!("rejoined the cluster as a new node"),
                    Err(e) => tracing::error!(error = %e, "this node was declared dead and could not join again"),
                },
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "this node was declared dead and cannot stop: exiting");
            std::process::exit(1);
        }
        return;
    }
    *FENCED.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    FENCE.notify_one();
}

/// What the running node does once fenced ([`Config::fenced`]).
pub(crate) fn fenced_policy() -> crate::config::Fenced {
    NODE.read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|n| n.config.fenced)
        .unwrap_or_default()
}

/// Waits until the node is fenced; the reason.
pub(crate) async fn fenced() -> String {
    loop {
        FENCE.notified().await;
        if let Some(r) = FENCED.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return r;
        }
    }
}

/// Starts the node again after it was fenced: a new identity and a fresh session directory.
///
/// Stopping and starting happen under one hold of the lifecycle lock, so the program's own
/// threads never see the gap: a call that needs the node meanwhile (a `remote()`, which would
/// start a node of its own when none runs) waits and gets the rejoined one.
pub(crate) fn rejoin() -> Result<()> {
    rejoin_with(|_| {})
}

/// [`rejoin`], running `between` once the old node is stopped and before the new one starts
/// (with the configuration it will start with).
fn rejoin_with(between: impl FnOnce(&mut Config)) -> Result<()> {
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    let mut config = NODE
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|n| n.config.clone())
        .ok_or(Error::NotInitialized)?;
    stop_locked();
    between(&mut config);
    config.session_dir = None;
    start_locked(config).inspect_err(|e| {
        *ENDED.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
            "declared dead by the cluster and could not join it again ({e})"
        ));
    })
}

fn start(config: Config) -> Result<RunningNode> {
    raya_common::labels::check_node_labels(&config.labels).map_err(Error::InvalidArgument)?;
    if config.namespace.as_deref() == Some("") {
        return Err(Error::InvalidArgument(
            "the job's namespace must not be empty (leave it unset for one of its own)".into(),
        ));
    }
    if config.delivery_timeout.is_zero() || config.object_lease < config.delivery_timeout {
        // A result announced just before its maker is asked about it may take the whole
        // delivery bound to arrive: the lease must outlast it.
        return Err(Error::InvalidArgument(format!(
            "object_lease ({:?}) must be at least delivery_timeout ({:?}), which must not be zero",
            config.object_lease, config.delivery_timeout
        )));
    }
    let session = Session::open(&config)?;
    let key = identity::load_or_create(&session.dir).map_err(|e| Error::Node(e.to_string()))?;
    let node = NodeId::from_peer_id(key.public().to_peer_id());
    let mut total = ResourceSet::new();
    total.set_capacity(ResourceSet::CPU, config.cpus() as f64)?;
    if config.gpus() > 0 {
        total.set_capacity(ResourceSet::GPU, config.gpus() as f64)?;
    }
    total.set_capacity(ResourceSet::MEMORY, config.memory_resource() as f64)?;
    total.set_capacity(
        ResourceSet::OBJECT_STORE_MEMORY,
        config.store_budget() as f64,
    )?;
    for (name, amount) in &config.resources {
        total.set_capacity(name, *amount)?;
    }
    let (mode, cluster_key) = match start_network(&config, &key, &session.dir) {
        Ok(m) => m,
        Err(e) => {
            session.remove_if_temporary();
            return Err(e);
        }
    };
    let net = mode.net().cloned();
    let dir = session.dir.clone();
    let config_for_setup = config.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Result<Started>>();
    let control = std::thread::Builder::new()
        .name("raya-control".into())
        .spawn(move || {
            let system = System::new();
            let started = system.block_on(setup(config_for_setup, dir, node, total, mode));
            let ok = started.is_ok();
            let _ = tx.send(started);
            if ok {
                let _ = system.run();
            }
        })
        .map_err(|e| Error::Node(format!("cannot start the control thread: {e}")))?;
    let started: Result<Started> = match rx.recv() {
        Ok(s) => s,
        Err(_) => Err(Error::Node(
            "the control thread stopped during start-up".into(),
        )),
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            publish_core(None);
            let _ = control.join();
            if let Some(n) = &net {
                n.shutdown();
            }
            session.remove_if_temporary();
            return Err(e);
        }
    };
    Ok(RunningNode {
        core: started.core,
        node_manager: started.node_manager,
        system: started.system,
        control: Some(control),
        gcs_arbiter: started.gcs_arbiter,
        arbiters: started.arbiters,
        tables: started.tables,
        threads: started.threads,
        is_head: started.is_head,
        pid_file: None,
        net,
        cluster_key,
        session,
        config,
    })
}

/// Stops Raya in this process: the node unregisters, every worker, actor and object is
/// dropped, and a temporary session directory is deleted. A no-op when Raya is not running.
/// `raya::init` may be called again afterwards. A `get` another thread is waiting in fails
/// with a [`TaskErrorKind::System`](crate::TaskErrorKind::System) error: the object will not
/// be made.
pub fn shutdown() {
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    stop_locked();
}

/// [`shutdown`], for a caller holding [`LIFECYCLE`].
fn stop_locked() {
    let Some(mut node) = NODE.write().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    publish_core(None);
    let goodbye = node.node_manager.send(LeaveCluster);
    let (tx, rx) = std::sync::mpsc::channel();
    node.system.arbiter().spawn(async move {
        let _ = goodbye.await;
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(5)).is_err() {
        // In-process the GCS goes away with the node anyway; a remote head will declare the
        // node dead when its heartbeats stop.
        if node.is_head {
            tracing::debug!("the GCS did not acknowledge the shutdown in time");
        } else {
            tracing::warn!("the head did not acknowledge the shutdown in time");
        }
    }
    node.threads.shutdown();
    node.system.stop();
    if let Some(c) = node.control.take() {
        let _ = c.join();
    }
    for a in node.arbiters.drain(..) {
        a.stop();
        let _ = a.join();
    }
    if let Some(g) = node.gcs_arbiter.take() {
        g.stop();
        let _ = g.join();
    }
    if let Some(n) = node.net.take() {
        n.shutdown();
    }
    // Nothing completes what is still pending now: whoever waits for it (a `get` on another
    // thread, a call kept until it settles) is told, instead of waiting on a stopped node.
    let stopped = raya_common::TaskError::new(
        raya_common::TaskErrorKind::System,
        "the node stopped (raya::shutdown, or it was fenced) before this object was made",
    );
    node.core.store.fail_all_pending(Arc::new(stopped));
    if let Some(f) = node.pid_file.take() {
        let _ = std::fs::remove_file(f);
    }
    if let Some(t) = &node.tables
        && let Err(e) = t.flush()
    {
        tracing::warn!(error = %e, "could not flush the GCS");
    }
    let session = std::mem::replace(
        &mut node.session,
        Session {
            dir: PathBuf::new(),
            temporary: false,
        },
    );
    drop(node);
    session.remove_if_temporary();
    tracing::info!("Raya stopped");
}

/// The address other nodes join this cluster with (`host:port` of the head), when this node is
/// part of a cluster; `None` for an embedded one-node cluster.
pub fn cluster_address() -> Result<Option<String>> {
    let (net, is_head, core) = {
        let guard = NODE.read().unwrap_or_else(|p| p.into_inner());
        let node = guard.as_ref().ok_or(Error::NotInitialized)?;
        (node.net.clone(), node.is_head, Arc::clone(&node.core))
    };
    let Some(net) = net else {
        return Ok(None);
    };
    if is_head {
        return Ok(transport::sockets_reachable_first(&net.listen_addrs())
            .first()
            .map(|a| a.to_string()));
    }
    let head = net.head();
    let nodes =
        crate::block_on::block_on(async { Ok::<_, Error>(core.gcs.cached_nodes().await?) })?;
    Ok(nodes
        .iter()
        .find(|n| Some(n.node_id.peer_id()) == head)
        .and_then(|n| n.addresses.first().cloned()))
}

/// The key of the cluster this node is part of (others join with it), or `None` for an
/// embedded node and for a node run without one.
///
/// ```
/// raya::init(raya::Config::default().num_cpus(1)).unwrap();
/// assert_eq!(raya::cluster_key().unwrap(), None);
/// raya::shutdown();
/// ```
pub fn cluster_key() -> Result<Option<raya_cluster::transport::ClusterKey>> {
    NODE.read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|n| n.cluster_key)
        .ok_or(Error::NotInitialized)
}

/// The session directory of the running node.
pub fn session_dir() -> Result<PathBuf> {
    NODE.read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|n| n.session.dir.clone())
        .ok_or(Error::NotInitialized)
}

#[cfg(test)]
mod tests {
    use raya_cluster::transport::protocol::catalogue;

    use super::*;

    /// The wire names the running node serves.
    fn served() -> Vec<&'static str> {
        let guard = NODE.read().unwrap_or_else(|p| p.into_inner());
        let net = guard
            .as_ref()
            .and_then(|n| n.net.clone())
            .expect("a cluster node");
        net.router().names()
    }

    #[test]
    fn a_program_call_during_a_rejoin_gets_the_rejoined_node_not_one_of_its_own() {
        let node = TestNode::start(Config::default().num_cpus(1).namespace("rejoining"));
        let old = current().unwrap().node;
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut early, mut reached) = (None, false);
        let rejoined = rejoin_with(|_| {
            // A program thread needs the node while it is away; a node of its own started in
            // the gap would take the rejoining node's place. It reaches the start, which
            // waits for the lifecycle lock this rejoin holds.
            std::thread::spawn(move || {
                let _ = tx.send(current_or_start().map(|c| c.node));
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while AUTO_STARTS_WAITING.load(std::sync::atomic::Ordering::SeqCst) == 0
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            reached = AUTO_STARTS_WAITING.load(std::sync::atomic::Ordering::SeqCst) == 1;
            early = rx.try_recv().ok();
        });
        assert!(reached, "the program's call never reached the node's start");
        assert!(
            early.is_none(),
            "the program's call went on while the node was away: {early:?}"
        );
        rejoined.expect("the node rejoins");
        let new = current().unwrap().node;
        assert_ne!(new, old, "a rejoined node has a new identity");
        let namespace = NODE
            .read()
            .unwrap()
            .as_ref()
            .and_then(|n| n.config.namespace.clone());
        assert_eq!(
            namespace.as_deref(),
            Some("rejoining"),
            "the node runs the configuration it had"
        );
        let seen = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the program's call returns");
        assert_eq!(
            seen.unwrap(),
            new,
            "the program's call got the rejoined node"
        );
        drop(node);
    }

    #[test]
    fn a_node_that_could_not_rejoin_is_not_replaced_by_a_one_node_cluster_of_its_own() {
        let node = TestNode::start(Config::default().num_cpus(1));
        // Whatever happens here, later tests may start nodes of their own.
        struct Clear;
        impl Drop for Clear {
            fn drop(&mut self) {
                *ENDED.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        let _clear = Clear;
        // The new node cannot start (as when the head is gone for good).
        let rejoined = rejoin_with(|c| c.namespace = Some(String::new()));
        assert!(rejoined.is_err(), "the broken configuration started");
        assert!(!is_initialized());
        match current_or_start() {
            Err(Error::Node(m)) => assert!(m.contains("could not join it again"), "{m}"),
            other => panic!(
                "a program call after a failed rejoin got {:?}, not an error",
                other.map(|c| c.node)
            ),
        }
        assert!(!is_initialized(), "a node of its own started");
        // The program may start again on purpose.
        init(Config::default().num_cpus(1)).expect("an explicit init starts again");
        assert!(current_or_start().is_ok());
        drop(node);
        assert!(
            ENDED.lock().unwrap().is_none(),
            "an explicit init clears the ended state"
        );
    }

    #[test]
    fn a_head_serves_exactly_the_requests_the_protocol_catalogue_lists() {
        let node = TestNode::start(
            Config::default()
                .num_cpus(1)
                .head(0)
                .host("127.0.0.1")
                .mdns(false),
        );
        let served = served();
        drop(node);
        let mut listed: Vec<String> = catalogue()
            .into_iter()
            .filter(|e| e.served)
            .map(|e| e.name)
            .collect();
        listed.sort_unstable();
        assert_eq!(served, listed, "the head's routes and protocol.md disagree");
    }
}
