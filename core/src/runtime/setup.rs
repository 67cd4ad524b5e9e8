//! Wiring a node: each component started with what it uses, in dependency order, on the
//! node's control thread. Each component defines the wire messages it serves and registers them
//! as it starts (`launch`, `ObjectManager::start`), the GCS tables with `GcsTables::serve`.
//!
//! 1. The GCS: its tables on their own arbiter (head or embedded node, with the publisher of
//!    node-table changes on a head), or a client of the head's GCS (a joining node).
//! 2. The object store and its mailbox; on a cluster node the object manager, on its own
//!    arbiter.
//! 3. The job, registered with the GCS.
//! 4. The global scheduler (head or embedded node), or the way to the head's.
//! 5. The actor event loops and threads, and the senders to actors on other nodes.
//! 6. The local scheduler, whose actor creations go to the node manager, and the node manager
//!    itself; then the core worker, the API's way into all of it.
//! 7. The node joins: its functions and its record go to the GCS.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::{Arbiter, System};
use raya_cluster::gcs::jobs::AddJob;
use raya_cluster::gcs::task_events::TaskEventBuffer;
use raya_cluster::gcs::{GcsConfig, GcsPublisher};
use raya_cluster::{GcsHandle, GcsTables};
use raya_common::{IdGenerator, NodeId, ResourceSet, TaskId};
use raya_scheduler::{
    CancelFlags, ClusterHooks, GlobalRoute, GlobalScheduler, LocalScheduler, LocalSchedulerConfig,
    LocalSchedulerParts, RegisterLocalScheduler,
};
use raya_store::{ObjectManager, ObjectStore, StoreConfig, StoreCore};

use super::network::{Mode, join_address};
use crate::actor_host::directory::ActorDirectory;
use crate::actor_host::env::{ActorLoops, HostEnv};
use crate::actor_host::thread_pool::ActorThreadPool;
use crate::config::Config;
use crate::core_worker::CoreWorker;
use crate::core_worker::call_sender::{LostCalls, RemoteActors};
use crate::core_worker::task_submitter::TaskSubmitter;
use crate::error::{Error, Result};
use crate::execution::context;
use crate::raylet::node_manager::{JoinCluster, NodeManager};
use crate::raylet::worker::{ThreadWorkerFactory, WorkerEnv};
use crate::registry::{ACTOR_CLASSES, REMOTE_FUNCTIONS};
use raya_cluster::gcs::actors::SetActorRestarter;

/// What a started node hands back to the runtime, for its shutdown.
pub(super) struct Started {
    pub(super) core: Arc<CoreWorker>,
    pub(super) node_manager: Addr<NodeManager>,
    pub(super) system: System,
    pub(super) gcs_arbiter: Option<Arbiter>,
    /// Actor event loops and the object manager's arbiter.
    pub(super) arbiters: Vec<Arbiter>,
    pub(super) tables: Option<GcsTables>,
    pub(super) threads: ActorThreadPool,
    pub(super) is_head: bool,
}

/// Step 1: the GCS, in this process or reached through the network.
async fn start_gcs(
    config: &Config,
    dir: &std::path::Path,
    mode: &Mode,
    node: NodeId,
) -> Result<(Option<Arbiter>, Option<GcsTables>, GcsHandle)> {
    match mode {
        Mode::Embedded | Mode::Head(_) => {
            let gcs_arbiter = Arbiter::new();
            let tables = GcsTables::start(
                &GcsConfig {
                    dir: dir.join("gcs"),
                    node_timeout: config.node_timeout,
                    max_task_events: config.max_task_events,
                    max_kv_bytes: raya_cluster::gcs::kv::DEFAULT_MAX_BYTES,
                    head: Some(node),
                },
                &gcs_arbiter.handle(),
            )?;
            let gcs = match mode {
                Mode::Head(net) => {
                    GcsHandle::start_head(tables.clone(), net.clone(), &Arbiter::current())
                }
                _ => GcsHandle::start(tables.clone(), &Arbiter::current()),
            };
            if let Mode::Head(net) = mode {
                tables.serve(net.router());
                let (t, n) = (tables.clone(), net.clone());
                GcsPublisher::start_in_arbiter(&gcs_arbiter.handle(), move |_| {
                    GcsPublisher::new(t, n)
                });
            }
            Ok((Some(gcs_arbiter), Some(tables), gcs))
        }
        Mode::Join(net) => {
            let head = net.join_head(config.join_timeout).await.map_err(|reason| {
                Error::Node(format!(
                    "{reason} (address {})",
                    join_address(config).unwrap_or_else(|| "found by mDNS".into())
                ))
            })?;
            tracing::info!(%head, "joining the cluster");
            Ok((
                None,
                None,
                GcsHandle::start_remote(net.clone(), head, &Arbiter::current()),
            ))
        }
    }
}

/// Step 4: the global scheduler this node's tasks go to when it cannot run them.
fn global_scheduler(
    mode: &Mode,
    gcs: &GcsHandle,
    tables: Option<&GcsTables>,
) -> Result<(Option<Addr<GlobalScheduler>>, GlobalRoute)> {
    match mode {
        Mode::Embedded => {
            let g = GlobalScheduler::new(gcs.clone(), None).launch();
            Ok((Some(g.clone()), GlobalRoute::Here(g)))
        }
        Mode::Head(net) => {
            let mut g = GlobalScheduler::new(gcs.clone(), Some(net.clone()));
            if let Some(t) = tables {
                g = g.with_placements(t.placements.clone());
            }
            let g = g.launch();
            Ok((Some(g.clone()), GlobalRoute::Here(g)))
        }
        Mode::Join(net) => {
            if net.head().is_none() {
                return Err(Error::Node("the head is unknown".into()));
            }
            Ok((None, GlobalRoute::Head(net.clone())))
        }
    }
}

/// Starts every component of the node on the current (control) arbiter.
pub(super) async fn setup(
    config: Config,
    dir: PathBuf,
    node: NodeId,
    total: ResourceSet,
    mode: Mode,
) -> Result<Started> {
    let net = mode.net().cloned();
    let (gcs_arbiter, tables, gcs) = start_gcs(&config, &dir, &mode, node).await?;

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
    let objects_arbiter = net.as_ref().map(|_| Arbiter::new());
    let objects = match (&net, &objects_arbiter) {
        (Some(n), Some(a)) => Some(ObjectManager::start(
            Arc::clone(&store),
            n.clone(),
            &a.handle(),
            config.object_lease,
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

    let (global, global_recipient) = global_scheduler(&mode, &gcs, tables.as_ref())?;

    let actor_arbiters: Vec<Arbiter> = (0..config.cpus().clamp(1, 8))
        .map(|_| {
            let a = Arbiter::new();
            a.spawn_fn(context::mark_event_loop);
            a
        })
        .collect();
    let loops = Arc::new(ActorLoops::new(
        actor_arbiters.iter().map(|a| a.handle()).collect(),
    ));
    let threads = ActorThreadPool::new(config.max_actor_threads, config.idle_thread_timeout);
    let directory = Arc::new(ActorDirectory::default());
    let remote = Arc::new(RemoteActors::new(
        Arc::clone(&store),
        net.clone(),
        objects.clone(),
        Arc::clone(&loops),
        gcs.clone(),
        Arc::clone(&directory),
    ));

    let events = TaskEventBuffer::new(config.max_task_events);
    let queued = Arc::new(AtomicUsize::new(0));
    let cancel_flags = CancelFlags::default();
    let cpus = config.cpus();
    let node_manager_ctx = Context::<NodeManager>::new();
    let scheduler = LocalScheduler::new(
        LocalSchedulerConfig {
            node,
            total: total.clone(),
            min_workers: cpus,
            max_workers: config.max_workers.max(cpus),
            worker_idle_timeout: config.idle_thread_timeout,
            report_interval: Duration::from_millis(100),
            event_flush_interval: Duration::from_secs(1),
            // The head tries up to MAX_PLACEMENTS nodes, each for a delivery bound, and the
            // task's own hand-over takes one more: the lease outlasts all of them.
            placement_lease: config
                .object_lease
                .max(config.delivery_timeout * (raya_scheduler::global::MAX_PLACEMENTS as u32 + 1)),
            max_lineage_bytes: config.max_lineage_bytes,
            is_driver: net.is_some() && config.is_driver(),
            labels: config.labels.clone(),
        },
        LocalSchedulerParts {
            store: Arc::clone(&store),
            workers: Box::new(ThreadWorkerFactory {
                env: WorkerEnv {
                    node,
                    store: Arc::clone(&store),
                    events: events.clone(),
                    cancel_flags: cancel_flags.clone(),
                },
            }),
            actor_creator: node_manager_ctx.address().recipient(),
            global: Some(global_recipient),
            gcs: Some(gcs.clone()),
            events: events.clone(),
            queued: Arc::clone(&queued),
            cancel_flags,
        },
    );
    let scheduler = match (&objects, &net) {
        (Some(o), Some(n)) => {
            let linked: std::collections::HashSet<&'static str> = REMOTE_FUNCTIONS
                .iter()
                .map(|f| f.name)
                .chain(ACTOR_CLASSES.iter().map(|c| c.name))
                .collect();
            scheduler.clustered(ClusterHooks {
                links: Arc::new(move |name: &str| linked.contains(name)),
                returns: o.clone().recipient(),
                expected: o.clone().recipient(),
                going: o.clone().recipient(),
                net: n.clone(),
            })
        }
        _ => scheduler,
    }
    .launch();
    if let Some(o) = &objects {
        // Objects a dead node lost are made again from the lineage the scheduler keeps; actor
        // calls are sent again by their senders.
        o.do_send(raya_store::RecoverWith(scheduler.clone().recipient()));
        let lost_calls = LostCalls {
            remote: Arc::clone(&remote),
        }
        .start();
        o.do_send(raya_store::RecoverWith(lost_calls.recipient()));
    }
    if let (Some(t), Some(g)) = (&tables, &global) {
        // Actors whose node dies are placed again by the head.
        t.actors.do_send(SetActorRestarter(g.clone().recipient()));
    }
    if let Some(global) = &global {
        global.do_send(RegisterLocalScheduler {
            node,
            place: scheduler.clone().recipient(),
            unschedulable: scheduler.clone().recipient(),
            placed: scheduler.clone().recipient(),
            going: scheduler.clone().recipient(),
        });
    }

    let host_env = Arc::new(HostEnv {
        node,
        job: job.job_id,
        store: Arc::clone(&store),
        events: events.clone(),
        threads: threads.clone(),
        loops,
        gcs: gcs.clone(),
        scheduler: scheduler.clone(),
        directory,
        remote: Arc::clone(&remote),
        max_pending_calls: config.max_pending_calls,
        objects: objects.clone(),
    });
    let is_head = !matches!(mode, Mode::Join(_));
    let node_manager = NodeManager {
        node,
        job: job.job_id,
        is_head,
        is_driver: config.is_driver(),
        labels: config.labels.clone(),
        net: net.clone(),
        gcs: gcs.clone(),
        events,
        host_env: Arc::clone(&host_env),
        objects,
        fencing: Default::default(),
    }
    .launch(node_manager_ctx);
    let core = Arc::new(CoreWorker {
        node,
        job: job.job_id,
        namespace,
        ids: IdGenerator::new(job.job_id, node.tag()),
        driver_task: TaskId::driver(job.job_id, node.tag()),
        store,
        gcs,
        tasks: TaskSubmitter::new(scheduler, queued, config.max_pending_tasks),
        host_env,
    });

    // Once joined, tasks may arrive before `start_node` returns: they find the node here.
    super::publish_core(Some(Arc::clone(&core)));
    node_manager
        .send(JoinCluster { total })
        .await
        .map_err(|_| Error::Node("node manager stopped".into()))??;
    // Stopped and joined at shutdown with the actor event loops.
    let mut arbiters = actor_arbiters;
    arbiters.extend(objects_arbiter);
    Ok(Started {
        core,
        node_manager,
        system: System::current(),
        gcs_arbiter,
        arbiters,
        tables,
        threads,
        is_head,
    })
}
