//! What actor hosts use: the node's store, task records, threads, event loops, the GCS, the
//! local scheduler, the directory of hosts and the senders to actors on other nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::Addr;
use actix_rt::ArbiterHandle;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::task_events::TaskEventBuffer;
use raya_common::{JobId, NodeId};
use raya_scheduler::LocalScheduler;
use raya_store::{ObjectManager, StoreCore};

use super::directory::ActorDirectory;
use super::thread_pool::ActorThreadPool;
use crate::core_worker::call_sender::RemoteActors;

/// The event loops actor hosts (and call senders) run on, handed out round robin.
#[derive(Debug)]
pub(crate) struct ActorLoops {
    loops: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl ActorLoops {
    pub(crate) fn new(loops: Vec<ArbiterHandle>) -> Self {
        assert!(!loops.is_empty(), "at least one actor event loop");
        ActorLoops {
            loops,
            next: AtomicUsize::new(0),
        }
    }

    /// The loop the next actor runs on.
    pub(crate) fn next(&self) -> ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        self.loops[i].clone()
    }
}

/// Everything the node's actor hosts share.
pub(crate) struct HostEnv {
    pub(crate) node: NodeId,
    pub(crate) job: JobId,
    pub(crate) store: Arc<StoreCore>,
    pub(crate) events: TaskEventBuffer,
    /// Threads for synchronous methods and constructors.
    pub(crate) threads: ActorThreadPool,
    pub(crate) loops: Arc<ActorLoops>,
    pub(crate) gcs: GcsHandle,
    /// Placement results, lifetime resources, cancelled placements.
    pub(crate) scheduler: Addr<LocalScheduler>,
    /// The hosts of the actors living on this node.
    pub(crate) directory: Arc<ActorDirectory>,
    /// A host whose actor was built elsewhere forwards through these.
    pub(crate) remote: Arc<RemoteActors>,
    /// Calls queued on one actor at most.
    pub(crate) max_pending_calls: usize,
    /// The node's object manager (cluster nodes): told about results of calls run here for
    /// other nodes.
    pub(crate) objects: Option<Addr<ObjectManager>>,
}

impl std::fmt::Debug for HostEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostEnv")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}
