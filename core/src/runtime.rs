//! Starting and stopping the node: `raya::init` and `raya::shutdown`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle, System};
use raya_cluster::gcs::client::GcsPublisher;
use raya_cluster::gcs::jobs::AddJob;
use raya_cluster::gcs::task_events::TaskEventBuffer;
use raya_cluster::net::{self, NetConfig, Network, Role, Target, remote_recipient};
use raya_cluster::{GcsConfig, GcsHandle, GcsTables, identity};
use raya_common::{IdGenerator, JobId, NodeId, ResourceSet, TaskId};
use raya_scheduler::{
    CancelFlags, GlobalScheduler, LocalScheduler, LocalSchedulerConfig, PlaceTask,
    RegisterLocalScheduler, ScheduleTask, SubmitTask, TaskSpec, TaskUnschedulable,
};
use raya_store::{ObjectManager, ObjectStore, StoreConfig, StoreCore};

use crate::actor::directory::ActorDirectory;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::node::{JoinCluster, LeaveCluster, NodeManager};
use crate::pool::ExecPool;
use crate::registry::registry;
use crate::worker::ThreadWorkers;

/// Everything the node's threads share.
pub(crate) struct NodeShared {
    pub(crate) node: NodeId,
    pub(crate) job: JobId,
    pub(crate) namespace: String,
    pub(crate) ids: IdGenerator,
    pub(crate) driver_task: TaskId,
    pub(crate) store: Arc<StoreCore>,
    pub(crate) events: TaskEventBuffer,
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) cancel_flags: CancelFlags,
    pub(crate) config: Config,
    pub(crate) pool: ExecPool,
    pub(crate) actors: ActorDirectory,
    /// The node's network, when it is part of a cluster.
    pub(crate) net: Option<Network>,
    /// This node's senders of calls to actors on other nodes, by actor.
    pub(crate) call_senders: Mutex<
        std::collections::HashMap<raya_common::ActorId, Addr<crate::actor::remote::CallSender>>,
    >,
    /// The node's object manager, when it is part of a cluster.
    pub(crate) objects: Option<Addr<ObjectManager>>,
    /// Whether this node runs the GCS.
    pub(crate) is_head: bool,
    gcs: GcsHandle,
    scheduler: OnceLock<Addr<LocalScheduler>>,
    actor_arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
}

impl NodeShared {
    pub(crate) fn gcs(&self) -> &GcsHandle {
        &self.gcs
    }

    pub(crate) fn scheduler(&self) -> &Addr<LocalScheduler> {
        self.scheduler
            .get()
            .expect("the scheduler is set before the node is used")
    }

    /// The event loop the next actor host runs on (round robin).
    pub(crate) fn next_actor_arbiter(&self) -> ArbiterHandle {
        let i = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.actor_arbiters.len();
        self.actor_arbiters[i].clone()
    }

    /// Hands a task to the local scheduler, within the queue bound.
    pub(crate) fn submit_spec(&self, spec: TaskSpec) -> Result<()> {
        let queued = self.queued.fetch_add(1, Ordering::Relaxed);
        if queued >= self.config.max_pending_tasks {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::QueueFull(format!(
                "{queued} tasks are queued on this node (max_pending_tasks = {})",
                self.config.max_pending_tasks
            )));
        }
        self.scheduler().do_send(SubmitTask(spec));
        Ok(())
    }
}

struct Session {
    dir: PathBuf,
    temporary: bool,
}

impl Session {
    fn open(config: &Config) -> Result<Session> {
        let (dir, temporary) = match &config.session_dir {
            Some(d) => (d.clone(), false),
            None => {
                let stamp = raya_cluster::time::now_ms();
                let tag: u32 = rand::random();
                (
                    std::env::temp_dir()
                        .join("raya")
                        .join(format!("session_{stamp}_{}_{tag:08x}", std::process::id())),
                    true,
                )
            }
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Node(format!("session directory {}: {e}", dir.display())))?;
        Ok(Session { dir, temporary })
    }
}

/// The running node of this process.
struct Runtime {
    shared: Arc<NodeShared>,
    node_manager: Addr<NodeManager>,
    system: System,
    control: Option<std::thread::JoinHandle<()>>,
    gcs_arbiter: Option<Arbiter>,
    actor_arbiters: Vec<Arbiter>,
    tables: Option<GcsTables>,
    net: Option<Network>,
    /// This node's entry in [`crate::nodes_dir`].
    pid_file: Option<PathBuf>,
    session: Session,
}

static RUNTIME: RwLock<Option<Runtime>> = RwLock::new(None);
static LIFECYCLE: Mutex<()> = Mutex::new(());

/// The running node, or [`Error::NotInitialized`].
pub(crate) fn runtime() -> Result<Arc<NodeShared>> {
    RUNTIME
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|r| Arc::clone(&r.shared))
        .ok_or(Error::NotInitialized)
}

/// The running node, starting one with the default configuration when the caller is a plain
/// program thread (as Ray starts itself on first use).
pub(crate) fn runtime_or_start() -> Result<Arc<NodeShared>> {
    match runtime() {
        Ok(rt) => Ok(rt),
        Err(Error::NotInitialized) if crate::context::current().is_none() => {
            match init(Config::default()) {
                Ok(()) | Err(Error::AlreadyInitialized) => runtime(),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Whether Raya is running in this process.
pub fn is_initialized() -> bool {
    RUNTIME.read().unwrap_or_else(|p| p.into_inner()).is_some()
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
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    if is_initialized() {
        return Err(Error::AlreadyInitialized);
    }
    registry()?;
    let mut rt = start(config)?;
    raya_store::set_current_store(Some(Arc::clone(&rt.shared.store)));
    tracing::info!(node = %rt.shared.node, job = %rt.shared.job, session = %rt.session.dir.display(), "Raya started");
    if let Some(net) = &rt.net {
        let addr = net::sockets_reachable_first(&net.listen_addrs())
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let role = if rt.shared.is_head { "head" } else { "node" };
        rt.pid_file = crate::serve::register_process(role, &addr);
        if rt.shared.is_head {
            let file = crate::serve::current_cluster_file();
            if let Err(e) = std::fs::write(&file, &addr) {
                tracing::warn!(file = %file.display(), error = %e, "cannot record the cluster address");
            }
        }
    }
    *RUNTIME.write().unwrap_or_else(|p| p.into_inner()) = Some(rt);
    drop(_life);
    if std::env::var("RAYA_ROLE").is_ok_and(|r| r == "worker") {
        // The user's binary started as a worker node: serve the cluster, never return to `main`.
        let code = match crate::serve::serve() {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "worker node failed");
                1
            }
        };
        std::process::exit(code);
    }
    Ok(())
}

struct Started {
    shared: Arc<NodeShared>,
    node_manager: Addr<NodeManager>,
    system: System,
    gcs_arbiter: Option<Arbiter>,
    actor_arbiters: Vec<Arbiter>,
    tables: Option<GcsTables>,
}

/// How the node takes part in a cluster.
#[derive(Clone)]
enum Mode {
    /// A one-node cluster in this process; no network.
    Embedded,
    /// The head: runs the GCS and the global scheduler, listens for nodes.
    Head(Network),
    /// A node joining the head it finds through the network.
    Join(Network),
}

impl Mode {
    fn net(&self) -> Option<&Network> {
        match self {
            Mode::Embedded => None,
            Mode::Head(n) | Mode::Join(n) => Some(n),
        }
    }
}

/// Starts the network when `config` asks for a cluster (a head, or an address to join, from the
/// config or `RAYA_ADDRESS`).
fn start_network(config: &Config, key: &libp2p_identity::Keypair) -> Result<Mode> {
    let address = config.address.clone().or_else(|| {
        std::env::var("RAYA_ADDRESS")
            .ok()
            .filter(|a| !a.trim().is_empty())
    });
    if !config.head && address.is_none() {
        return Ok(Mode::Embedded);
    }
    let host = net::parse_address(&format!("{}:{}", config.host, config.port))
        .or_else(|_| net::parse_address(&format!("[{}]:{}", config.host, config.port)))
        .map_err(|e| Error::Node(e.to_string()))?;
    let mut nc = NetConfig::new(if config.head { Role::Head } else { Role::Node });
    nc.listen = vec![host];
    nc.topics = raya_cluster::gcs::TOPICS
        .iter()
        .map(|t| t.to_string())
        .collect();
    nc.mdns = config.mdns;
    if !config.head
        && let Some(a) = &address
    {
        // `auto`: the head this machine started last, else whatever mDNS finds.
        let a = if a == "auto" {
            std::fs::read_to_string(crate::serve::current_cluster_file())
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        } else {
            a.clone()
        };
        if !a.is_empty() {
            nc.bootstrap = vec![net::parse_address(&a).map_err(|e| Error::Node(e.to_string()))?];
        }
        // A node given its head's address needs no discovery; with `auto`, the recorded head
        // may be gone, so mDNS stays on.
        if address.as_deref() != Some("auto") {
            nc.mdns = false;
        }
    }
    let network = Network::start(key.clone(), nc, net::Router::new())
        .map_err(|e| Error::Node(e.to_string()))?;
    Ok(if config.head {
        Mode::Head(network)
    } else {
        Mode::Join(network)
    })
}

fn start(config: Config) -> Result<Runtime> {
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
    let mode = match start_network(&config, &key) {
        Ok(m) => m,
        Err(e) => {
            if session.temporary {
                let _ = std::fs::remove_dir_all(&session.dir);
            }
            return Err(e);
        }
    };
    let net = mode.net().cloned();
    let dir = session.dir.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Result<Started>>();
    let control = std::thread::Builder::new()
        .name("raya-control".into())
        .spawn(move || {
            let system = System::new();
            let started = system.block_on(setup(config, dir, node, total, mode));
            let ok = started.is_ok();
            let _ = tx.send(started);
            if ok {
                let _ = system.run();
            }
        })
        .map_err(|e| Error::Node(format!("cannot start the control thread: {e}")))?;
    let started = match rx.recv() {
        Ok(s) => s,
        Err(_) => Err(Error::Node(
            "the control thread stopped during start-up".into(),
        )),
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = control.join();
            if let Some(n) = &net {
                n.shutdown();
            }
            if session.temporary {
                let _ = std::fs::remove_dir_all(&session.dir);
            }
            return Err(e);
        }
    };
    Ok(Runtime {
        shared: started.shared,
        node_manager: started.node_manager,
        system: started.system,
        control: Some(control),
        gcs_arbiter: started.gcs_arbiter,
        actor_arbiters: started.actor_arbiters,
        tables: started.tables,
        pid_file: None,
        net,
        session,
    })
}

async fn setup(
    config: Config,
    dir: PathBuf,
    node: NodeId,
    total: ResourceSet,
    mode: Mode,
) -> Result<Started> {
    let (gcs_arbiter, tables, gcs) = match &mode {
        Mode::Embedded | Mode::Head(_) => {
            let gcs_arbiter = Arbiter::new();
            let tables = GcsTables::start(
                &GcsConfig {
                    dir: dir.join("gcs"),
                    node_timeout: config.node_timeout,
                    max_task_events: config.max_task_events,
                },
                &gcs_arbiter.handle(),
            )?;
            let gcs = GcsHandle::start(tables.clone(), &Arbiter::current());
            if let Mode::Head(net) = &mode {
                tables.serve(net.router());
                let (t, n) = (tables.clone(), net.clone());
                GcsPublisher::start_in_arbiter(&gcs_arbiter.handle(), move |_| {
                    GcsPublisher::new(t, n)
                });
            }
            (Some(gcs_arbiter), Some(tables), gcs)
        }
        Mode::Join(net) => {
            let head = net
                .wait_for_head(config.join_timeout)
                .await
                .ok_or_else(|| {
                    Error::Node(format!(
                        "no cluster head answered within {:?} (address {})",
                        config.join_timeout,
                        config
                            .address
                            .clone()
                            .or_else(|| std::env::var("RAYA_ADDRESS").ok())
                            .unwrap_or_else(|| "found by mDNS".into())
                    ))
                })?;
            tracing::info!(%head, "joining the cluster");
            (
                None,
                None,
                GcsHandle::start_remote(net.clone(), head, &Arbiter::current()),
            )
        }
    };
    let store = StoreCore::new(StoreConfig {
        node,
        memory_budget: config.store_budget(),
        spilling: config.spilling,
        spill_dir: dir.join("spill"),
    });
    ObjectStore::new(
        Arc::clone(&store),
        Some(gcs.clone()),
        Duration::from_millis(100),
    )
    .start();
    // Its own event loop: transfers and their bookkeeping never hold up the scheduler.
    let objects_arbiter = mode.net().map(|_| Arbiter::new());
    let objects = match (mode.net(), &objects_arbiter) {
        (Some(n), Some(a)) => Some(ObjectManager::start(
            Arc::clone(&store),
            n.clone(),
            &a.handle(),
        )),
        _ => None,
    };
    let job = gcs
        .request(AddJob {
            driver_node: node,
            namespace: config.namespace.clone().unwrap_or_default(),
        })
        .await?;
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| format!("anonymous-job-{}", job.job_id.0));
    // The head (or the embedded node) runs the global scheduler; a joining node reaches the
    // head's through the network.
    let global: Option<Addr<GlobalScheduler>> = match &mode {
        Mode::Embedded => Some(GlobalScheduler::new(gcs.clone(), None).start()),
        Mode::Head(net) => {
            let g = GlobalScheduler::new(gcs.clone(), Some(net.clone())).start();
            net.router().serve::<ScheduleTask, _>(g.clone());
            Some(g)
        }
        Mode::Join(_) => None,
    };
    let global_recipient: Recipient<ScheduleTask> = match (&global, &mode) {
        (Some(g), _) => g.clone().recipient(),
        (None, Mode::Join(net)) => {
            let head = net
                .head()
                .ok_or_else(|| Error::Node("the head is unknown".into()))?;
            remote_recipient(net.clone(), head, Target::System)
        }
        (None, _) => return Err(Error::Node("no global scheduler".into())),
    };
    let n_arbiters = config.cpus().clamp(1, 8);
    let actor_arbiters: Vec<Arbiter> = (0..n_arbiters)
        .map(|_| {
            let a = Arbiter::new();
            a.spawn_fn(crate::context::mark_event_loop);
            a
        })
        .collect();
    let cpus = config.cpus();
    let idle = config.idle_thread_timeout;
    let shared = Arc::new(NodeShared {
        node,
        job: job.job_id,
        namespace,
        ids: IdGenerator::new(job.job_id, node.tag()),
        driver_task: TaskId::driver(job.job_id, node.tag()),
        store: Arc::clone(&store),
        events: TaskEventBuffer::new(config.max_task_events),
        queued: Arc::new(AtomicUsize::new(0)),
        cancel_flags: CancelFlags::default(),
        pool: ExecPool::new(config.max_actor_threads, idle),
        actors: ActorDirectory::default(),
        net: mode.net().cloned(),
        objects: objects.clone(),
        call_senders: Mutex::new(std::collections::HashMap::new()),
        is_head: !matches!(mode, Mode::Join(_)),
        gcs: gcs.clone(),
        scheduler: OnceLock::new(),
        actor_arbiters: actor_arbiters.iter().map(|a| a.handle()).collect(),
        next_arbiter: AtomicUsize::new(0),
        config,
    });
    let node_manager = NodeManager {
        rt: Arc::clone(&shared),
    }
    .start();
    let shared_total = total.clone();
    let scheduler = LocalScheduler::new(
        LocalSchedulerConfig {
            node,
            total,
            min_workers: cpus,
            max_workers: shared.config.max_workers.max(cpus),
            worker_idle_timeout: idle,
            report_interval: Duration::from_millis(100),
            event_flush_interval: Duration::from_secs(1),
        },
        store,
        Box::new(ThreadWorkers {
            rt: Arc::clone(&shared),
        }),
        node_manager.clone().recipient(),
        Some(global_recipient),
        Some(gcs.clone()),
        shared.events.clone(),
        Arc::clone(&shared.queued),
        shared.cancel_flags.clone(),
    );
    let scheduler = match &objects {
        Some(o) => {
            let linked: std::collections::HashSet<&'static str> = crate::registry::REMOTE_FUNCTIONS
                .iter()
                .map(|f| f.name)
                .chain(crate::registry::ACTOR_CLASSES.iter().map(|c| c.name))
                .collect();
            scheduler.clustered(raya_scheduler::ClusterHooks {
                links: Arc::new(move |name: &str| linked.contains(name)),
                returns: o.clone().recipient(),
            })
        }
        None => scheduler,
    }
    .start();
    if let Some(global) = &global {
        global.do_send(RegisterLocalScheduler {
            node,
            place: scheduler.clone().recipient(),
            unschedulable: scheduler.clone().recipient(),
        });
    }
    if mode.net().is_some() {
        gcs.subscribe(node_manager.clone().recipient());
    }
    if let Some(net) = mode.net() {
        net.router()
            .serve::<crate::actor::remote::DeliverCalls, _>(node_manager.clone());
        net.router()
            .serve::<crate::actor::remote::ControlActor, _>(node_manager.clone());
        net.router().serve::<PlaceTask, _>(scheduler.clone());
        net.router()
            .serve::<TaskUnschedulable, _>(scheduler.clone());
    }
    if shared.scheduler.set(scheduler).is_err() {
        return Err(Error::Node("scheduler set twice".into()));
    }
    node_manager
        .send(JoinCluster {
            total: shared_total,
        })
        .await
        .map_err(|_| Error::Node("node manager stopped".into()))??;
    // Stopped and joined at shutdown with the actor event loops.
    let mut actor_arbiters = actor_arbiters;
    actor_arbiters.extend(objects_arbiter);
    Ok(Started {
        shared,
        node_manager,
        system: System::current(),
        gcs_arbiter,
        actor_arbiters,
        tables,
    })
}

/// Stops Raya in this process: the node unregisters, every worker, actor and object is
/// dropped, and a temporary session directory is deleted. A no-op when Raya is not running.
/// `raya::init` may be called again afterwards.
pub fn shutdown() {
    let _life = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut rt) = RUNTIME.write().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    raya_store::set_current_store(None);
    let shared = Arc::clone(&rt.shared);
    let goodbye = rt.node_manager.send(LeaveCluster);
    let (tx, rx) = std::sync::mpsc::channel();
    rt.system.arbiter().spawn(async move {
        let _ = goodbye.await;
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(5)).is_err() {
        // In-process the GCS goes away with the node anyway; a remote head will declare the
        // node dead when its heartbeats stop.
        if shared.is_head {
            tracing::debug!("the GCS did not acknowledge the shutdown in time");
        } else {
            tracing::warn!("the head did not acknowledge the shutdown in time");
        }
    }
    shared.pool.shutdown();
    rt.system.stop();
    if let Some(c) = rt.control.take() {
        let _ = c.join();
    }
    for a in rt.actor_arbiters.drain(..) {
        a.stop();
        let _ = a.join();
    }
    if let Some(g) = rt.gcs_arbiter.take() {
        g.stop();
        let _ = g.join();
    }
    if let Some(n) = rt.net.take() {
        n.shutdown();
    }
    if let Some(f) = rt.pid_file.take() {
        let _ = std::fs::remove_file(f);
    }
    if let Some(t) = &rt.tables
        && let Err(e) = t.flush()
    {
        tracing::warn!(error = %e, "could not flush the GCS");
    }
    let session = std::mem::replace(
        &mut rt.session,
        Session {
            dir: PathBuf::new(),
            temporary: false,
        },
    );
    drop(rt);
    drop(shared);
    if session.temporary
        && let Err(e) = std::fs::remove_dir_all(&session.dir)
    {
        tracing::warn!(dir = %session.dir.display(), error = %e, "could not remove the session directory");
    }
    tracing::info!("Raya stopped");
}

/// The address other nodes join this cluster with (`host:port` of the head), when this node is
/// part of a cluster; `None` for an embedded one-node cluster.
pub fn cluster_address() -> Result<Option<String>> {
    let rt = runtime()?;
    let Some(net) = &rt.net else {
        return Ok(None);
    };
    if rt.is_head {
        return Ok(net::sockets_reachable_first(&net.listen_addrs())
            .first()
            .map(|a| a.to_string()));
    }
    let head = net.head();
    let nodes =
        crate::block_on::block_on(async { Ok::<_, Error>(rt.gcs().cached_nodes().await?) })?;
    Ok(nodes
        .iter()
        .find(|n| Some(n.node_id.peer_id()) == head)
        .and_then(|n| n.addresses.first().cloned()))
}

/// The session directory of the running node.
pub fn session_dir() -> Result<PathBuf> {
    RUNTIME
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|r| r.session.dir.clone())
        .ok_or(Error::NotInitialized)
}
