//! Task specifications: everything needed to run a task anywhere in the cluster, the form in which
//! a task travels from its submitter through the schedulers to the worker that runs it.

use std::fmt;
use std::sync::Arc;

use raya_common::{ActorId, JobId, NodeId, ObjectId, ResourceSet, TaskFrame, TaskId, Value};
use raya_store::{RawRef, WireValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A task argument: a value passed directly, or a reference to an object the task waits for.
#[derive(Clone, Debug)]
pub enum TaskArg {
    /// A value (live on this node; encoded only if the task leaves the node).
    Value(Value),
    /// An object in the store.
    Ref(RawRef),
}

/// A task argument as it crosses nodes: a value travels with the references it contains, which
/// the receiving node counts at once (see `raya_store::wire_value`).
#[derive(Serialize, Deserialize)]
enum WireArg {
    Value(WireValue),
    Ref(RawRef),
}

impl Serialize for TaskArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            TaskArg::Value(v) => {
                WireArg::Value(WireValue::encode(v).map_err(S::Error::custom)?).serialize(s)
            }
            TaskArg::Ref(r) => WireArg::Ref(r.clone()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TaskArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WireArg::deserialize(d)? {
            WireArg::Value(v) => TaskArg::Value(v.into_value()),
            WireArg::Ref(r) => TaskArg::Ref(r),
        })
    }
}

/// Names the function a task runs. Only the name travels; each node resolves it in its own
/// registry.
#[derive(Clone, Serialize, Deserialize)]
pub struct FunctionDescriptor {
    /// The registered name.
    pub name: Arc<str>,
    /// Position in the submitting node's registry: lets that node skip the name lookup.
    #[serde(skip)]
    pub local_index: Option<u32>,
}

impl fmt::Debug for FunctionDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Where a task may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulingStrategy {
    /// Prefer the submitting node, else the least loaded feasible node.
    #[default]
    Default,
    /// Spread tasks over the feasible nodes.
    Spread,
    /// Run on `node`; when `soft`, fall back to another node if it cannot.
    NodeAffinity {
        /// The node.
        node: NodeId,
        /// Allow another node when that one cannot run it.
        soft: bool,
    },
}

/// What a task does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// Runs a remote function on a worker.
    Normal,
    /// Constructs an actor; holds `placement` resources while constructing and `lifetime`
    /// resources while the actor lives.
    ActorCreation {
        /// The actor.
        actor: ActorId,
        /// Resources held for the actor's whole life.
        lifetime: ResourceSet,
        /// How the actor runs, for a node that starts its host from this task alone.
        options: CreationOptions,
    },
}

/// The options of an actor that travel with its creation task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationOptions {
    /// Calls run at once.
    pub max_concurrency: u32,
    /// Restarts allowed (-1: unlimited).
    pub max_restarts: i64,
    /// Retries of a call interrupted by a crash (-1: unlimited).
    pub max_task_retries: i64,
    /// Whether the actor is detached: it belongs to the cluster, not to its creator, and is
    /// never placed on a driver.
    pub detached: bool,
    /// The actor's restarts, this creation included: 0 for the first creation, more when the
    /// head places the actor again because its node died (the new host counts on from there).
    pub restarts: u64,
}

/// Everything needed to run a task anywhere in the cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task.
    pub task_id: TaskId,
    /// Its job.
    pub job: JobId,
    /// The task (or driver pseudo-task) that submitted it.
    pub parent: TaskId,
    /// The node it was submitted on.
    pub origin: NodeId,
    /// Function (or actor type) to run.
    pub function: FunctionDescriptor,
    /// Arguments.
    pub args: Vec<TaskArg>,
    /// Number of return objects (`ObjectId::for_return(task_id, 0..n)`).
    pub num_returns: u32,
    /// Resources needed to run (for an actor: to be placed).
    pub resources: ResourceSet,
    /// Placement constraint.
    pub strategy: SchedulingStrategy,
    /// Labels the node it runs on must have (empty: any node).
    pub label_selector: raya_common::labels::LabelSelector,
    /// Retries allowed.
    pub max_retries: u32,
    /// Whether application errors (an `Err` or a panic) are retried too.
    pub retry_exceptions: bool,
    /// Which attempt this is (0 first).
    pub attempt: u32,
    /// Normal task or actor creation.
    pub kind: TaskKind,
}

/// The most return objects a task placed by another node may ask for: each costs the node a
/// reference and an entry, made before the task is queued.
pub const MAX_RETURNS_FROM_WIRE: u32 = 1 << 16;

impl TaskSpec {
    /// Checks a task that arrived from another node before it drives any allocation or
    /// accounting: its id is its origin's (ids carry their maker's tag), its resource requests
    /// ([`ResourceSet::check_request`]: the task's, and an actor's lifetime resources) and its
    /// number of returns (at most [`MAX_RETURNS_FROM_WIRE`]).
    pub fn check_from_wire(&self) -> Result<(), String> {
        if self.task_id.node_tag() != self.origin.tag() {
            return Err("a task whose id was not made by its origin".into());
        }
        if let TaskKind::ActorCreation {
            actor, lifetime, ..
        } = &self.kind
        {
            if actor.node_tag() != self.origin.tag() {
                return Err("an actor whose id was not made by its creator".into());
            }
            lifetime
                .check_request()
                .map_err(|e| format!("malformed lifetime resources: {e}"))?;
        }
        if self.num_returns > MAX_RETURNS_FROM_WIRE {
            return Err(format!(
                "{} return objects asked for, more than the {MAX_RETURNS_FROM_WIRE} a node accepts",
                self.num_returns
            ));
        }
        self.label_selector
            .check()
            .map_err(|e| format!("malformed label selector: {e}"))?;
        self.resources
            .check_request()
            .map_err(|e| format!("malformed resource request: {e}"))
    }

    /// Id of return object `i`.
    pub fn return_id(&self, i: u32) -> ObjectId {
        ObjectId::for_return(self.task_id, i)
    }

    /// The arguments passed by reference, in order.
    pub fn ref_args(&self) -> impl Iterator<Item = &RawRef> + '_ {
        self.args.iter().filter_map(|a| match a {
            TaskArg::Ref(r) => Some(r),
            TaskArg::Value(_) => None,
        })
    }

    /// Ids of all return objects.
    pub fn return_ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        (0..self.num_returns).map(|i| self.return_id(i))
    }

    /// The frame this task adds to an error chain.
    pub fn frame(&self, node: Option<NodeId>) -> TaskFrame {
        TaskFrame {
            task: self.task_id,
            function: self.function.name.to_string(),
            node,
        }
    }

    /// Whether the task creates a detached actor.
    pub fn creates_detached_actor(&self) -> bool {
        matches!(&self.kind, TaskKind::ActorCreation { options, .. } if options.detached)
    }

    /// The actor this task places again after its node died (a restart's creation task), if
    /// it is one.
    pub fn restarted_actor(&self) -> Option<raya_common::ActorId> {
        match &self.kind {
            TaskKind::ActorCreation { actor, options, .. } if options.restarts > 0 => Some(*actor),
            _ => None,
        }
    }

    /// Whether a failed attempt may be retried.
    pub fn may_retry(&self, application_error: bool) -> bool {
        self.attempt < self.max_retries && (!application_error || self.retry_exceptions)
    }
}

/// A one-CPU task of `test::f` with id `task`, for the crate's tests.
#[cfg(test)]
pub(crate) fn test_spec(task: TaskId) -> TaskSpec {
    TaskSpec {
        task_id: task,
        job: JobId(1),
        parent: TaskId::driver(JobId(1), 1),
        origin: NodeId::random(),
        function: FunctionDescriptor {
            name: "test::f".into(),
            local_index: None,
        },
        args: Vec::new(),
        num_returns: 1,
        resources: ResourceSet::cpus(1.0).unwrap(),
        strategy: SchedulingStrategy::Default,
        label_selector: Default::default(),
        max_retries: 0,
        retry_exceptions: false,
        attempt: 0,
        kind: TaskKind::Normal,
    }
}
