//! Starting and stopping the node: `raya::init` and `raya::shutdown`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle, System};
use raya_cluster::gcs::jobs::AddJob;
use raya_cluster::gcs::task_events::TaskEventBuffer;
use raya_cluster::{GcsConfig, GcsHandle, GcsTables, identity};
use raya_common::{IdGenerator, JobId, NodeId, ResourceSet, TaskId};
use raya_scheduler::{
    CancelFlags, GlobalScheduler, LocalScheduler, LocalSchedulerConfig, RegisterLocalScheduler,
    SubmitTask, TaskSpec,
};
use raya_store::{ObjectStore, StoreConfig, StoreCore};

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
    tables: GcsTables,
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
    let rt = start(config)?;
    raya_store::set_current_store(Some(Arc::clone(&rt.shared.store)));
    tracing::info!(node = %rt.shared.node, job = %rt.shared.job, session = %rt.session.dir.display(), "Raya started");
    *RUNTIME.write().unwrap_or_else(|p| p.into_inner()) = Some(rt);
    Ok(())
}

struct Started {
    shared: Arc<NodeShared>,
    node_manager: Addr<NodeManager>,
    system: System,
    gcs_arbiter: Arbiter,
    actor_arbiters: Vec<Arbiter>,
    tables: GcsTables,
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
    let dir = session.dir.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Result<Started>>();
    let control = std::thread::Builder::new()
        .name("raya-control".into())
        .spawn(move || {
            let system = System::new();
            let started = system.block_on(setup(config, dir, node, total));
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
        gcs_arbiter: Some(started.gcs_arbiter),
        actor_arbiters: started.actor_arbiters,
        tables: started.tables,
        session,
    })
}

async fn setup(config: Config, dir: PathBuf, node: NodeId, total: ResourceSet) -> Result<Started> {
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
    let global = GlobalScheduler::new(gcs.clone()).start();
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
        Some(global.clone().recipient()),
        Some(gcs),
        shared.events.clone(),
        Arc::clone(&shared.queued),
        shared.cancel_flags.clone(),
    )
    .start();
    global.do_send(RegisterLocalScheduler {
        node,
        place: scheduler.clone().recipient(),
        unschedulable: scheduler.clone().recipient(),
    });
    if shared.scheduler.set(scheduler).is_err() {
        return Err(Error::Node("scheduler set twice".into()));
    }
    node_manager
        .send(JoinCluster {
            total: shared_total,
        })
        .await
        .map_err(|_| Error::Node("node manager stopped".into()))??;
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
        tracing::warn!("the GCS did not acknowledge the shutdown in time");
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
    if let Err(e) = rt.tables.flush() {
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

/// The session directory of the running node.
pub fn session_dir() -> Result<PathBuf> {
    RUNTIME
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|r| r.session.dir.clone())
        .ok_or(Error::NotInitialized)
}
