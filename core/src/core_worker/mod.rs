//! The core worker (Ray's `CoreWorker`): the part of the process that user code calls into. It
//! submits tasks and owns their results ([`task_submitter`]), sends actor calls — to hosts on
//! this node directly, to actors on other nodes through one ordered, batching
//! [`CallSender`](call_sender::CallSender) per actor ([`actor_submitter`], [`call_sender`]) — and
//! waits for objects ([`wait`]). Creating an actor (registering it, starting its host,
//! submitting its placement) is the actor host's `create`, called with the core worker.
//!
//! Owning spans nodes: the references to results a node owns live in its object store, and the
//! object manager (`raya_store::object_manager`) announces, locates, counts borrowers and frees
//! copies across nodes.
//!
//! There is one [`CoreWorker`] per process, started by `raya::init`; every API call finds it
//! with [`crate::runtime::current`].

pub(crate) mod actor_submitter;
pub(crate) mod call_sender;
pub(crate) mod task_submitter;
pub(crate) mod wait;

use std::sync::Arc;

use raya_cluster::GcsHandle;
use raya_common::{IdGenerator, JobId, NodeId, TaskId};
use raya_store::StoreCore;

use crate::actor_host::env::HostEnv;
use crate::execution::context;
use task_submitter::TaskSubmitter;

/// What the process's API calls use.
#[derive(Debug)]
pub(crate) struct CoreWorker {
    pub(crate) node: NodeId,
    pub(crate) job: JobId,
    /// The namespace named actors are created and looked up in.
    pub(crate) namespace: String,
    /// Fresh task, actor and object ids.
    pub(crate) ids: IdGenerator,
    /// The pseudo-task of the driver: the parent of what the driver submits.
    pub(crate) driver_task: TaskId,
    pub(crate) store: Arc<StoreCore>,
    pub(crate) gcs: GcsHandle,
    pub(crate) tasks: TaskSubmitter,
    /// The node's actor hosts and what they share: actors created here get a host from it,
    /// and handles find hosts (or the senders to remote actors) through it.
    pub(crate) host_env: Arc<HostEnv>,
}

impl CoreWorker {
    /// The task running on this thread, or the driver's pseudo-task.
    pub(crate) fn current_task(&self) -> TaskId {
        context::current_task_or(self.driver_task)
    }

    /// Whether this node is part of a cluster (actors and objects may live elsewhere).
    pub(crate) fn clustered(&self) -> bool {
        self.host_env.remote.clustered()
    }
}
