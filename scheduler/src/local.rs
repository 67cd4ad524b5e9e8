//! The local scheduler of a node.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::nodes::NodeHeartbeat;
use raya_cluster::gcs::task_events::{
    AddTaskEvents, TaskEvent, TaskEventBuffer, TaskKind as EventKind, TaskState,
};
use raya_common::{FastHashMap, NodeId, ResourceSet, TaskError, TaskErrorKind, TaskId, WorkerId};
use raya_store::{Lookup, Status, StoreCore};
use serde::{Deserialize, Serialize};

use crate::global::{PlaceTask, ScheduleTask};
use crate::task::{SchedulingStrategy, TaskArg, TaskKind, TaskSpec};

/// How a local scheduler is set up.
#[derive(Debug, Clone)]
pub struct LocalSchedulerConfig {
    /// The node.
    pub node: NodeId,
    /// The node's total resources.
    pub total: ResourceSet,
    /// Workers kept even when idle (one per CPU).
    pub min_workers: usize,
    /// Most workers at once (extra workers start when running ones block in `get`).
    pub max_workers: usize,
    /// Extra workers idle this long are stopped.
    pub worker_idle_timeout: Duration,
    /// How often the node's load is reported to the GCS.
    pub report_interval: Duration,
    /// How often task events are flushed to the GCS.
    pub event_flush_interval: Duration,
}

/// What a scheduler needs when its node is part of a cluster.
#[derive(Clone)]
pub struct ClusterHooks {
    /// Whether this node links a function or actor type (by registered name).
    pub links: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// The object manager, told about results of tasks run here for other nodes.
    pub returns: Recipient<raya_store::ExpectReturns>,
}

/// Starts worker actors for the scheduler (the node manager knows how).
pub trait WorkerFactory: Send {
    /// Starts worker `id`, which reports to `scheduler`, and returns its mailbox.
    fn start_worker(
        &mut self,
        id: WorkerId,
        scheduler: Addr<LocalScheduler>,
    ) -> Recipient<WorkerCommand>;
}

/// A command to a worker (or to the node's actor creator).
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum WorkerCommand {
    /// Run a task.
    Execute(Box<TaskSpec>),
    /// Cancel the task it runs: async tasks are dropped at their next await point when `force`;
    /// every task sees [`WorkerCommand::Cancel`] through its cancellation flag.
    Cancel {
        /// The task.
        task_id: TaskId,
        /// Stop it as soon as possible.
        force: bool,
    },
    /// Finish the current task, then exit.
    Stop,
}

/// The cancellation flags of the tasks running on a node, shared by the scheduler (which sets
/// them) and the workers (which register them and whose tasks read them). A flag is set from the
/// scheduler's thread because a worker busy in a synchronous task cannot read its mailbox.
#[derive(Clone, Default)]
pub struct CancelFlags(
    Arc<std::sync::Mutex<FastHashMap<TaskId, Arc<std::sync::atomic::AtomicBool>>>>,
);

impl CancelFlags {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, FastHashMap<TaskId, Arc<std::sync::atomic::AtomicBool>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the flag of a task that starts running.
    pub fn register(&self, task: TaskId, flag: Arc<std::sync::atomic::AtomicBool>) {
        self.lock().insert(task, flag);
    }

    /// Forgets a task that stopped running.
    pub fn unregister(&self, task: TaskId) {
        self.lock().remove(&task);
    }

    /// Sets the flag of a running task; returns whether it was running.
    pub fn cancel(&self, task: TaskId) -> bool {
        match self.lock().get(&task) {
            Some(f) => {
                f.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// Submits a task on this node.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct SubmitTask(pub TaskSpec);

/// How a dispatched task ended.
#[derive(Debug, Serialize, Deserialize)]
pub enum TaskOutcome {
    /// Results stored.
    Finished,
    /// Error stored in place of the results.
    Failed,
    /// The attempt failed and may be retried: here is the spec of the next attempt.
    Retry(Box<TaskSpec>),
    /// The actor was constructed and keeps `keep` for its lifetime.
    ActorCreated {
        /// Resources the actor holds until it dies.
        keep: ResourceSet,
    },
}

/// A dispatched task ended.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct TaskDone {
    /// The worker that ran it (`None` for actor creations).
    pub worker: Option<WorkerId>,
    /// The task.
    pub task_id: TaskId,
    /// How it ended.
    pub outcome: TaskOutcome,
}

/// A worker's task blocked in `get`: its CPU is lent back until [`WorkerUnblocked`].
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct WorkerBlocked(pub WorkerId);

/// A worker's task stopped waiting and takes its resources back.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct WorkerUnblocked(pub WorkerId);

/// A worker exited.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct WorkerStopped(pub WorkerId);

/// Cancels a queued or running task (and, when `recursive`, the tasks it submitted). Replies
/// whether the task was found here.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct CancelTask {
    /// The task.
    pub task_id: TaskId,
    /// Stop a running task as soon as possible.
    pub force: bool,
    /// Cancel its children too.
    pub recursive: bool,
}

/// Gives back resources an actor held for its lifetime.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ReleaseResources(pub ResourceSet);

/// The global scheduler found no node for a task.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct TaskUnschedulable {
    /// The task.
    pub spec: TaskSpec,
    /// Why.
    pub reason: String,
}

/// A snapshot of the scheduler's queues and accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Total resources.
    pub total: ResourceSet,
    /// Free resources.
    pub available: ResourceSet,
    /// Tasks waiting for arguments.
    pub waiting_for_args: usize,
    /// Tasks waiting for resources or a worker.
    pub queued: usize,
    /// Tasks running.
    pub running: usize,
    /// Running tasks blocked in `get`.
    pub blocked: usize,
    /// Workers started.
    pub workers: usize,
    /// Idle workers.
    pub idle_workers: usize,
}

/// Reads [`SchedulerState`].
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "SchedulerState")]
pub struct GetSchedulerState;

#[derive(Message)]
#[rtype(result = "()")]
struct ArgReady(TaskId);

struct Class {
    shape: ResourceSet,
    tasks: VecDeque<TaskSpec>,
}

struct WorkerSlot {
    mailbox: Recipient<WorkerCommand>,
    /// The task it runs.
    task: Option<TaskId>,
    idle_since: Instant,
}

struct Running {
    worker: Option<WorkerId>,
    held: ResourceSet,
    blocked: bool,
    cancelled: bool,
    num_returns: u32,
    function: Arc<str>,
    attempt: u32,
}

/// The local scheduler actor (see the crate docs).
pub struct LocalScheduler {
    cfg: LocalSchedulerConfig,
    store: Arc<StoreCore>,
    available: ResourceSet,
    waiting: FastHashMap<TaskId, (TaskSpec, u32)>,
    classes: Vec<Class>,
    class_of: HashMap<ResourceSet, usize>,
    workers: FastHashMap<WorkerId, WorkerSlot>,
    idle: Vec<WorkerId>,
    next_worker: u32,
    running: FastHashMap<TaskId, Running>,
    children: FastHashMap<TaskId, Vec<TaskId>>,
    factory: Box<dyn WorkerFactory>,
    actor_creator: Recipient<WorkerCommand>,
    global: Option<Recipient<ScheduleTask>>,
    gcs: Option<GcsHandle>,
    events: TaskEventBuffer,
    queued: Arc<AtomicUsize>,
    cancel_flags: CancelFlags,
    last_report: Option<(ResourceSet, usize, Instant)>,
    cluster: Option<ClusterHooks>,
    /// Other alive nodes and their free resources, as last heard (cluster only).
    peers: Vec<(NodeId, ResourceSet)>,
    /// Tasks the global scheduler placed here: they are not spilled again.
    placed: std::collections::HashSet<TaskId>,
    /// Arguments of tasks handed to other nodes, kept until the task's first result is back.
    pinned: FastHashMap<TaskId, Vec<raya_store::RawRef>>,
}

/// Releases the arguments pinned for a task that went to another node.
#[derive(Message)]
#[rtype(result = "()")]
struct Unpin(TaskId);

impl LocalScheduler {
    /// Makes the scheduler a cluster node's: tasks for functions this node does not link go to
    /// the global scheduler, tasks this node is too busy for spill to nodes with free
    /// resources, and results of tasks run here for other nodes are announced to their owners.
    pub fn clustered(mut self, hooks: ClusterHooks) -> Self {
        self.cluster = Some(hooks);
        self
    }

    /// Hands `spec` to the global scheduler, keeping its reference arguments alive until its
    /// first result is back here.
    fn send_to_global(&mut self, spec: TaskSpec, ctx: &mut Context<Self>) {
        let Some(global) = &self.global else {
            return;
        };
        let args: Vec<raya_store::RawRef> = spec
            .args
            .iter()
            .filter_map(|a| match a {
                TaskArg::Ref(r) => Some(r.clone()),
                TaskArg::Value(_) => None,
            })
            .collect();
        if !args.is_empty()
            && let Some(first) = spec.return_ids().next()
        {
            let me = ctx.address();
            let task = spec.task_id;
            self.pinned.insert(task, args);
            self.store
                .on_ready(first, Box::new(move || me.do_send(Unpin(task))));
        }
        global.do_send(ScheduleTask { spec });
    }

    /// Sends queued tasks this node cannot start now to other nodes with free resources.
    fn spill(&mut self, ctx: &mut Context<Self>) {
        if self.cluster.is_none() || self.global.is_none() || self.peers.is_empty() {
            return;
        }
        for ci in 0..self.classes.len() {
            if self.classes[ci].tasks.is_empty() {
                continue;
            }
            let shape = self.classes[ci].shape.clone();
            let mut keep = VecDeque::new();
            let mut out = Vec::new();
            while let Some(spec) = self.classes[ci].tasks.pop_back() {
                if self.placed.contains(&spec.task_id) {
                    keep.push_front(spec);
                    continue;
                }
                match self.peers.iter_mut().find(|(_, a)| shape.fits_in(a)) {
                    Some((_, a)) => {
                        a.subtract(&shape);
                        out.push(spec);
                    }
                    None => {
                        keep.push_front(spec);
                        break;
                    }
                }
            }
            self.classes[ci].tasks.extend(keep);
            for spec in out {
                self.dequeued();
                self.send_to_global(spec, ctx);
            }
        }
    }

    /// Refreshes the view of the other nodes' free resources.
    fn refresh_peers(&mut self, ctx: &mut Context<Self>) {
        if self.cluster.is_none() {
            return;
        }
        let Some(gcs) = self.gcs.clone() else { return };
        let me = self.cfg.node;
        ctx.spawn(
            async move { gcs.cached_nodes().await.unwrap_or_default() }
                .into_actor(self)
                .map(move |nodes, this, ctx| {
                    this.peers = nodes
                        .into_iter()
                        .filter(|n| {
                            n.node_id != me && n.state == raya_cluster::gcs::nodes::NodeState::Alive
                        })
                        .map(|n| (n.node_id, n.resources_available))
                        .collect();
                    this.spill(ctx);
                }),
        );
    }
    /// A scheduler for the node described by `cfg`.
    ///
    /// `queued` counts tasks submitted and not yet dispatched: submitters increment it, the
    /// scheduler decrements it, so a submitter can enforce a queue bound without a round trip.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: LocalSchedulerConfig,
        store: Arc<StoreCore>,
        factory: Box<dyn WorkerFactory>,
        actor_creator: Recipient<WorkerCommand>,
        global: Option<Recipient<ScheduleTask>>,
        gcs: Option<GcsHandle>,
        events: TaskEventBuffer,
        queued: Arc<AtomicUsize>,
        cancel_flags: CancelFlags,
    ) -> Self {
        LocalScheduler {
            available: cfg.total.clone(),
            cfg,
            store,
            waiting: Default::default(),
            classes: Vec::new(),
            class_of: HashMap::new(),
            workers: Default::default(),
            idle: Vec::new(),
            next_worker: 0,
            running: Default::default(),
            children: Default::default(),
            factory,
            actor_creator,
            global,
            gcs,
            events,
            queued,
            cancel_flags,
            last_report: None,
            cluster: None,
            peers: Vec::new(),
            placed: Default::default(),
            pinned: Default::default(),
        }
    }

    fn record(&self, spec: &TaskSpec, state: TaskState) {
        record_event(&self.events, spec, self.cfg.node, state);
    }

    fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Stores `error` (with this task's frame) as every result of `spec`.
    fn fail_task(&self, spec: &TaskSpec, error: TaskError) {
        let state = if error.is_cancelled() {
            TaskState::Cancelled
        } else {
            TaskState::Failed
        };
        let error = Arc::new(error.with_frame(spec.frame(Some(self.cfg.node))));
        for id in spec.return_ids() {
            self.store.fail(id, Arc::clone(&error));
        }
        self.record(spec, state);
        let msg = error.to_string();
        self.events
            .update(spec.task_id, spec.attempt, |e| e.error = Some(msg));
    }

    fn needs_global(&self, spec: &TaskSpec) -> bool {
        if let Some(c) = &self.cluster
            && !(c.links)(&spec.function.name)
        {
            return true;
        }
        match &spec.strategy {
            SchedulingStrategy::NodeAffinity { node, soft } if *node != self.cfg.node => {
                !*soft || !spec.resources.fits_in(&self.cfg.total)
            }
            _ => !spec.resources.fits_in(&self.cfg.total),
        }
    }

    fn submit(&mut self, spec: TaskSpec, ctx: &mut Context<Self>, from_global: bool) {
        if self.needs_global(&spec) {
            match (&self.global, from_global) {
                (Some(_), false) => {
                    self.dequeued();
                    self.send_to_global(spec, ctx);
                    return;
                }
                _ if self
                    .cluster
                    .as_ref()
                    .is_some_and(|c| !(c.links)(&spec.function.name)) =>
                {
                    self.dequeued();
                    let reason = format!(
                        "node {} was given `{}`, which its binary does not link",
                        self.cfg.node, spec.function.name
                    );
                    self.fail_task(
                        &spec,
                        TaskError::new(TaskErrorKind::UnknownFunction, reason),
                    );
                    return;
                }
                _ => {
                    let reason =
                        infeasible_reason(&spec, &[(self.cfg.node, self.cfg.total.clone())]);
                    self.dequeued();
                    self.fail_task(&spec, TaskError::new(TaskErrorKind::Infeasible, reason));
                    return;
                }
            }
        }
        if let Some(parent) = self.running.get(&spec.parent) {
            if parent.cancelled {
                self.dequeued();
                self.fail_task(
                    &spec,
                    TaskError::new(TaskErrorKind::Cancelled, "its parent task was cancelled"),
                );
                return;
            }
            self.children
                .entry(spec.parent)
                .or_default()
                .push(spec.task_id);
        }
        let mut missing = 0;
        for arg in &spec.args {
            if let TaskArg::Ref(r) = arg
                && self.store.status(r.id()) == Status::Pending
            {
                let me = ctx.address();
                let task = spec.task_id;
                if self
                    .store
                    .on_ready(r.id(), Box::new(move || me.do_send(ArgReady(task))))
                {
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            self.enqueue(spec);
        } else {
            self.record(&spec, TaskState::PendingArgs);
            self.waiting.insert(spec.task_id, (spec, missing));
        }
    }

    /// Queues a task whose arguments are all ready, unless one of them failed.
    fn enqueue(&mut self, spec: TaskSpec) {
        for arg in &spec.args {
            if let TaskArg::Ref(r) = arg
                && let Lookup::Failed(err) = self.store.get(r.id())
            {
                self.dequeued();
                self.fail_task(&spec, (*err).clone());
                return;
            }
        }
        self.record(&spec, TaskState::PendingNodeAssignment);
        let ci = match self.class_of.get(&spec.resources) {
            Some(&i) => i,
            None => {
                self.classes.push(Class {
                    shape: spec.resources.clone(),
                    tasks: VecDeque::new(),
                });
                self.class_of
                    .insert(spec.resources.clone(), self.classes.len() - 1);
                self.classes.len() - 1
            }
        };
        self.classes[ci].tasks.push_back(spec);
    }

    fn take_worker(&mut self, ctx: &mut Context<Self>) -> Option<WorkerId> {
        if let Some(w) = self.idle.pop() {
            return Some(w);
        }
        if self.workers.len() >= self.cfg.max_workers {
            return None;
        }
        let id = WorkerId(self.next_worker);
        self.next_worker += 1;
        let mailbox = self.factory.start_worker(id, ctx.address());
        self.workers.insert(
            id,
            WorkerSlot {
                mailbox,
                task: None,
                idle_since: Instant::now(),
            },
        );
        tracing::debug!(worker = %id, total = self.workers.len(), "started worker");
        Some(id)
    }

    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        'classes: for ci in 0..self.classes.len() {
            loop {
                let class = &self.classes[ci];
                let Some(front) = class.tasks.front() else {
                    break;
                };
                if !class.shape.fits_in(&self.available) {
                    break;
                }
                let creation = matches!(front.kind, TaskKind::ActorCreation { .. });
                let worker = if creation {
                    None
                } else {
                    match self.take_worker(ctx) {
                        Some(w) => Some(w),
                        None => break 'classes,
                    }
                };
                let Some(spec) = self.classes[ci].tasks.pop_front() else {
                    break;
                };
                self.placed.remove(&spec.task_id);
                self.dequeued();
                self.available.subtract(&spec.resources);
                self.record(&spec, TaskState::Running);
                self.running.insert(
                    spec.task_id,
                    Running {
                        worker,
                        held: spec.resources.clone(),
                        blocked: false,
                        cancelled: false,
                        num_returns: spec.num_returns,
                        function: Arc::clone(&spec.function.name),
                        attempt: spec.attempt,
                    },
                );
                match worker {
                    Some(w) => {
                        self.events
                            .update(spec.task_id, spec.attempt, |e| e.worker = Some(w));
                        let slot = self.workers.get_mut(&w).expect("taken worker exists");
                        slot.task = Some(spec.task_id);
                        slot.mailbox.do_send(WorkerCommand::Execute(Box::new(spec)));
                    }
                    None => self
                        .actor_creator
                        .do_send(WorkerCommand::Execute(Box::new(spec))),
                }
            }
        }
    }

    fn cancel(&mut self, task_id: TaskId, force: bool, recursive: bool) -> bool {
        let cancelled = TaskError::new(TaskErrorKind::Cancelled, "the task was cancelled");
        if let Some((spec, _)) = self.waiting.remove(&task_id) {
            self.dequeued();
            self.fail_task(&spec, cancelled);
            return true;
        }
        for class in &mut self.classes {
            if let Some(pos) = class.tasks.iter().position(|t| t.task_id == task_id) {
                let spec = class.tasks.remove(pos).expect("position is in range");
                self.dequeued();
                self.fail_task(&spec, cancelled);
                return true;
            }
        }
        let Some(run) = self.running.get_mut(&task_id) else {
            return false;
        };
        if !run.cancelled {
            run.cancelled = true;
            let error = Arc::new(cancelled.with_frame(raya_common::TaskFrame {
                task: task_id,
                function: run.function.to_string(),
                node: Some(self.cfg.node),
            }));
            let msg = error.to_string();
            self.events.update(task_id, run.attempt, |e| {
                e.state = TaskState::Cancelled;
                e.error = Some(msg);
            });
            for i in 0..run.num_returns {
                self.store.fail(
                    raya_common::ObjectId::for_return(task_id, i),
                    Arc::clone(&error),
                );
            }
            self.cancel_flags.cancel(task_id);
            if let Some(w) = run.worker.and_then(|w| self.workers.get(&w)) {
                w.mailbox.do_send(WorkerCommand::Cancel { task_id, force });
            }
        }
        if recursive {
            for child in self.children.get(&task_id).cloned().unwrap_or_default() {
                self.cancel(child, force, true);
            }
        }
        true
    }

    fn report(&mut self) {
        let Some(gcs) = &self.gcs else { return };
        let queued = self.waiting.len() + self.classes.iter().map(|c| c.tasks.len()).sum::<usize>();
        let now = Instant::now();
        if let Some((avail, q, at)) = &self.last_report
            && *avail == self.available
            && *q == queued
            && now.duration_since(*at) < Duration::from_secs(1)
        {
            return;
        }
        let pending_demand = self
            .classes
            .iter()
            .filter(|c| !c.tasks.is_empty())
            .map(|c| (c.shape.clone(), c.tasks.len() as u64))
            .collect();
        gcs.notify(NodeHeartbeat {
            node: self.cfg.node,
            available: self.available.clone(),
            queued_tasks: queued as u64,
            pending_demand,
        });
        self.last_report = Some((self.available.clone(), queued, now));
    }

    fn flush_events(&self) {
        // As Ray does, at most this many records go to the GCS per flush; the buffer keeps the
        // rest (and drops new ones past its bound), so a burst of tasks cannot flood the GCS.
        const BATCH: usize = 10_000;
        let (events, dropped) = self.events.drain_at_most(BATCH);
        if dropped > 0 {
            tracing::debug!(dropped, "task event buffer full: reports dropped");
        }
        if let (Some(gcs), false) = (&self.gcs, events.is_empty()) {
            gcs.notify(AddTaskEvents(events));
        }
    }

    fn retire_idle_workers(&mut self) {
        let now = Instant::now();
        while self.workers.len() > self.cfg.min_workers {
            // The oldest idle worker is at the front (`idle` is used as a stack).
            let Some(&w) = self.idle.first() else { break };
            let slot = &self.workers[&w];
            if now.duration_since(slot.idle_since) < self.cfg.worker_idle_timeout {
                break;
            }
            self.idle.remove(0);
            if let Some(slot) = self.workers.remove(&w) {
                slot.mailbox.do_send(WorkerCommand::Stop);
            }
            tracing::debug!(worker = %w, total = self.workers.len(), "stopped idle worker");
        }
    }
}

/// Records that `spec` (running or to run on `node`) entered `state`.
pub fn record_event(events: &TaskEventBuffer, spec: &TaskSpec, node: NodeId, state: TaskState) {
    events.record(spec.task_id, spec.attempt, state, || TaskEvent {
        task_id: spec.task_id,
        attempt: spec.attempt,
        job: spec.job,
        name: spec.function.name.to_string(),
        kind: match spec.kind {
            TaskKind::Normal => EventKind::Normal,
            TaskKind::ActorCreation { .. } => EventKind::ActorCreation,
        },
        state,
        node: Some(node),
        worker: None,
        actor: match &spec.kind {
            TaskKind::ActorCreation { actor, .. } => Some(*actor),
            TaskKind::Normal => None,
        },
        parent: (!spec.parent.is_driver()).then_some(spec.parent),
        error: None,
        times: Vec::new(),
    });
}

/// Explains why no node can run `spec`, from the nodes' totals.
pub(crate) fn infeasible_reason(spec: &TaskSpec, nodes: &[(NodeId, ResourceSet)]) -> String {
    let mut s = format!(
        "{} requires {} but no node of the cluster can ever provide it",
        spec.function.name, spec.resources
    );
    if let SchedulingStrategy::NodeAffinity { node, soft: false } = &spec.strategy {
        s = format!("{} must run on node {node}, which", spec.function.name);
        match nodes.iter().find(|(n, _)| n == node) {
            Some((_, total)) => s.push_str(&format!(" has {total}, not {}", spec.resources)),
            None => s.push_str(" is not an alive node of the cluster"),
        }
        return s;
    }
    for (node, total) in nodes {
        let short: Vec<String> = spec
            .resources
            .shortfall(total)
            .into_iter()
            .map(|(n, a)| format!("{n} short by {a}"))
            .collect();
        s.push_str(&format!("; node {node} has {total} ({})", short.join(", ")));
    }
    s
}

impl Actor for LocalScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for _ in 0..self.cfg.min_workers {
            if let Some(w) = self.take_worker(ctx) {
                self.idle.push(w);
            }
        }
        ctx.run_interval(self.cfg.report_interval, |this, ctx| {
            this.report();
            this.refresh_peers(ctx);
        });
        ctx.run_interval(self.cfg.event_flush_interval, |this, _| this.flush_events());
        let idle_check = (self.cfg.worker_idle_timeout / 2).max(Duration::from_millis(10));
        ctx.run_interval(idle_check, |this, _| this.retire_idle_workers());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.flush_events();
        for (_, w) in self.workers.drain() {
            w.mailbox.do_send(WorkerCommand::Stop);
        }
    }
}

impl Handler<SubmitTask> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, SubmitTask(spec): SubmitTask, ctx: &mut Context<Self>) {
        self.submit(spec, ctx, false);
        self.dispatch(ctx);
    }
}

impl Handler<PlaceTask> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, PlaceTask(spec): PlaceTask, ctx: &mut Context<Self>) {
        // Counted again: the global scheduler's pick is queued here now.
        self.queued.fetch_add(1, Ordering::Relaxed);
        if spec.origin != self.cfg.node
            && let Some(c) = &self.cluster
        {
            // Run for another node: its results are announced to their owner.
            c.returns.do_send(raya_store::ExpectReturns {
                refs: spec.return_ids().map(|id| self.store.add_ref(id)).collect(),
                owner: spec.origin,
            });
        }
        self.placed.insert(spec.task_id);
        self.submit(spec, ctx, true);
        self.dispatch(ctx);
    }
}

impl Handler<Unpin> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, Unpin(task): Unpin, _: &mut Context<Self>) {
        self.pinned.remove(&task);
    }
}

impl Handler<ArgReady> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, ArgReady(task): ArgReady, ctx: &mut Context<Self>) {
        let ready = match self.waiting.get_mut(&task) {
            Some((_, missing)) => {
                *missing -= 1;
                *missing == 0
            }
            None => false,
        };
        if ready && let Some((spec, _)) = self.waiting.remove(&task) {
            self.enqueue(spec);
            self.dispatch(ctx);
        }
    }
}

impl Handler<TaskDone> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, m: TaskDone, ctx: &mut Context<Self>) {
        let run = self.running.remove(&m.task_id);
        if let Some(run) = &run
            && !run.blocked
        {
            self.available.add(&run.held);
        }
        self.children.remove(&m.task_id);
        if let Some(w) = m.worker
            && let Some(slot) = self.workers.get_mut(&w)
            && slot.task.is_some()
        {
            slot.task = None;
            slot.idle_since = Instant::now();
            self.idle.push(w);
        }
        let cancelled = run.as_ref().is_some_and(|r| r.cancelled);
        match m.outcome {
            TaskOutcome::Retry(spec) if !cancelled => {
                tracing::debug!(task = %spec.task_id, attempt = spec.attempt, "retrying task");
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.submit(*spec, ctx, false);
            }
            TaskOutcome::ActorCreated { keep } => {
                self.available.subtract(&keep);
            }
            _ => {}
        }
        self.dispatch(ctx);
    }
}

impl LocalScheduler {
    /// The running task of worker `w`.
    fn task_of(&mut self, w: WorkerId) -> Option<&mut Running> {
        let task = self.workers.get(&w)?.task?;
        self.running.get_mut(&task)
    }
}

impl Handler<WorkerBlocked> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, WorkerBlocked(w): WorkerBlocked, ctx: &mut Context<Self>) {
        if let Some(run) = self.task_of(w)
            && !run.blocked
        {
            run.blocked = true;
            let held = run.held.clone();
            self.available.add(&held);
            self.dispatch(ctx);
        }
    }
}

impl Handler<WorkerUnblocked> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, WorkerUnblocked(w): WorkerUnblocked, _: &mut Context<Self>) {
        if let Some(run) = self.task_of(w)
            && run.blocked
        {
            run.blocked = false;
            let held = run.held.clone();
            self.available.subtract(&held);
        }
    }
}

impl Handler<WorkerStopped> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, WorkerStopped(w): WorkerStopped, ctx: &mut Context<Self>) {
        self.idle.retain(|i| *i != w);
        if self.workers.remove(&w).is_some() {
            tracing::warn!(worker = %w, "worker exited unexpectedly");
            self.dispatch(ctx);
        }
    }
}

impl Handler<CancelTask> for LocalScheduler {
    type Result = bool;
    fn handle(&mut self, m: CancelTask, _: &mut Context<Self>) -> bool {
        self.cancel(m.task_id, m.force, m.recursive)
    }
}

impl Handler<ReleaseResources> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, ReleaseResources(r): ReleaseResources, ctx: &mut Context<Self>) {
        self.available.add(&r);
        self.dispatch(ctx);
    }
}

impl Handler<TaskUnschedulable> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, m: TaskUnschedulable, _: &mut Context<Self>) {
        self.fail_task(&m.spec, TaskError::new(TaskErrorKind::Infeasible, m.reason));
    }
}

impl Handler<GetSchedulerState> for LocalScheduler {
    type Result = MessageResult<GetSchedulerState>;
    fn handle(&mut self, _: GetSchedulerState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(SchedulerState {
            total: self.cfg.total.clone(),
            available: self.available.clone(),
            waiting_for_args: self.waiting.len(),
            queued: self.classes.iter().map(|c| c.tasks.len()).sum(),
            running: self.running.len(),
            blocked: self.running.values().filter(|r| r.blocked).count(),
            workers: self.workers.len(),
            idle_workers: self.idle.len(),
        })
    }
}

#[cfg(test)]
mod tests;
