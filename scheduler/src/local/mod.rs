//! The local scheduler of a node (in Ray, the raylet's cluster and local task managers for one
//! node): it queues the tasks submitted on the node, waits for their arguments, keeps the node's
//! resource accounting and dispatches tasks to the [`worker_pool`]'s workers.
//!
//! A task moves through it like this:
//!
//! 1. **Submitted**: [`SubmitTask`] from the node's core worker, or [`PlaceTask`] from the global
//!    scheduler. A task this node can never run — a function its binary does not link, a hard
//!    node affinity to another node, resources past the node's total — goes to the global
//!    scheduler ([`ScheduleTask`], see `spillback`); one the global scheduler sent here fails
//!    instead (infeasible, or unknown function).
//! 2. **Waiting for arguments** (`queue::ArgWait`): each `ObjectRef` argument still pending gets
//!    a store callback (`ArgReady`); when the last arrives the task moves on. A task whose
//!    parent was cancelled fails as cancelled.
//! 3. **Ready** (`queue::ReadyQueue`): one FIFO per resource shape. A task with a failed
//!    argument fails here with that error, one frame longer.
//! 4. **Dispatched**: when its shape fits the free resources and a worker is idle (or the pool
//!    may start one), the task takes its resources and goes to the worker
//!    ([`WorkerCommand::Execute`]); an actor creation goes to the node manager ([`CreateActor`]).
//! 5. **Running**: a task blocked in `get` lends its resources back ([`WorkerBlocked`]) until it
//!    resumes ([`WorkerUnblocked`]), so that nested tasks can run on a fixed pool.
//! 6. **Done** ([`TaskDone`]): resources come back (an actor keeps its lifetime resources until
//!    [`ReleaseResources`]), the worker is idle again, and a retry re-enters at step 1.
//!
//! A task handed to the global scheduler is followed until its results are here or freed
//! (`away`, kept whole as `lineage`): it fails here if the head never took it or did not place
//! it within the placement lease, cancelling it reaches the node that has it, and when the node
//! running it or holding the only copy of a result dies, it runs again while its `max_retries`
//! allow (`recover`).
//!
//! [`CancelTask`] takes a task out of any step (a running one is flagged, see [`CancelFlags`]),
//! and its children with it. Every report interval the scheduler reports its free resources and
//! queue ([`NodeHeartbeat`]: gossiped to the head, at least once a second) and spills what it
//! cannot start now to nodes with free resources; every flush interval it sends its task
//! records to the GCS.

mod away;
mod cancel;
mod hybrid;
mod lineage;
mod messages;
mod queue;
mod records;
mod recover;
mod spillback;
pub mod worker_pool;

pub use cancel::CancelFlags;
pub use messages::{
    CancelTask, CreateActor, Dispatched, GetSchedulerState, HeadRestarted, PlaceTask,
    ReleaseResources, SchedulerState, SubmitTask, TaskDone, TaskGoing, TaskOutcome, TaskPlaced,
    TaskUnschedulable, WorkerBlocked, WorkerCommand, WorkerStopped, WorkerUnblocked,
};
pub(crate) use records::infeasible_reason;
pub use records::record_event;
pub use worker_pool::WorkerFactory;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::GcsHandle;
use raya_cluster::gcs::nodes::NodeHeartbeat;
use raya_cluster::gcs::task_events::{AddTaskEvents, TaskEventBuffer, TaskState};
use raya_cluster::transport::Network;
use raya_common::{
    FastHashMap, NodeId, ObjectId, ResourceSet, TaskError, TaskErrorKind, TaskFrame, TaskId,
    WorkerId,
};
use raya_store::{ObjectsExpected, Status, StoreCore};

use crate::global::GlobalRoute;
use crate::task_spec::{SchedulingStrategy, TaskArg, TaskKind, TaskSpec};
use queue::{ArgWait, ReadyQueue};
use worker_pool::WorkerPool;

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
    /// How long a task handed to the global scheduler may go unplaced before it fails.
    pub placement_lease: Duration,
    /// By-value argument bytes the lineage of tasks handed over keeps, at most (see
    /// `lineage`).
    pub max_lineage_bytes: u64,
    /// Whether the node is a cluster's driver: a detached actor created here is placed on a
    /// node that serves the cluster (it must outlive the program).
    pub is_driver: bool,
    /// The node's labels: a task whose label selector they do not match goes to the head.
    pub labels: raya_common::labels::NodeLabels,
}

/// What the scheduler works with: the node's store, how to start workers, where actor
/// creations and tasks for other nodes go, and the counters it shares with submitters.
pub struct LocalSchedulerParts {
    /// The node's object store (argument readiness, results of failed tasks).
    pub store: Arc<StoreCore>,
    /// Starts the node's workers.
    pub workers: Box<dyn WorkerFactory>,
    /// The node manager, which hands placed actor creations to their hosts.
    pub actor_creator: Recipient<CreateActor>,
    /// The global scheduler (on this node, or the head's through the network).
    pub global: Option<GlobalRoute>,
    /// The GCS: heartbeats, task records, the other nodes' free resources.
    pub gcs: Option<GcsHandle>,
    /// The node's task records.
    pub events: TaskEventBuffer,
    /// Tasks submitted and not yet dispatched: submitters increment it, the scheduler
    /// decrements it, so a submitter can enforce a queue bound without a round trip.
    pub queued: Arc<AtomicUsize>,
    /// The cancellation flags of running tasks.
    pub cancel_flags: CancelFlags,
}

impl std::fmt::Debug for LocalSchedulerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSchedulerParts")
            .field("node", &self.store.node())
            .field("global", &self.global.is_some())
            .finish_non_exhaustive()
    }
}

/// What a scheduler needs when its node is part of a cluster.
#[derive(Clone)]
pub struct ClusterHooks {
    /// Whether this node links a function or actor type (by registered name).
    pub links: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// The object manager, told about results of tasks run here for other nodes.
    pub returns: Recipient<raya_store::ExpectReturns>,
    /// The object manager, told which node makes the results of tasks handed over (once the
    /// node has the task).
    pub expected: Recipient<ObjectsExpected>,
    /// The object manager, told which node the results of a task handed over may come from
    /// (as the head sends it there).
    pub going: Recipient<raya_store::MakerGoing>,
    /// The node's network: the scheduler serves [`PlaceTask`], [`TaskPlaced`],
    /// [`TaskUnschedulable`] and [`CancelTask`] on its router, and sends cancellations.
    pub net: Network,
}

impl std::fmt::Debug for ClusterHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHooks").finish_non_exhaustive()
    }
}

/// A task dispatched here and not yet done.
struct Running {
    worker: Option<WorkerId>,
    held: ResourceSet,
    /// Blocked in `get`: its resources are lent back.
    blocked: bool,
    cancelled: bool,
    num_returns: u32,
    function: Arc<str>,
    attempt: u32,
}

/// An argument of a waiting task became ready.
#[derive(Message)]
#[rtype(result = "()")]
struct ArgReady(TaskId);

/// The local scheduler actor (see the module docs).
pub struct LocalScheduler {
    cfg: LocalSchedulerConfig,
    store: Arc<StoreCore>,
    /// Free resources (negative briefly when blocked tasks resume).
    available: ResourceSet,
    /// Step 2: tasks waiting for arguments.
    waiting: ArgWait,
    /// Step 3: ready tasks by resource shape.
    ready: ReadyQueue,
    workers: WorkerPool,
    /// Steps 4–5: dispatched tasks.
    running: FastHashMap<TaskId, Running>,
    /// Tasks submitted by each running task, for recursive cancellation.
    children: FastHashMap<TaskId, Vec<TaskId>>,
    actor_creator: Recipient<CreateActor>,
    global: Option<GlobalRoute>,
    gcs: Option<GcsHandle>,
    events: TaskEventBuffer,
    queued: Arc<AtomicUsize>,
    cancel_flags: CancelFlags,
    /// Free resources and queue length last reported, and when.
    last_report: Option<(ResourceSet, usize, Instant)>,
    cluster: Option<ClusterHooks>,
    /// Other alive nodes, their resources and labels, as last heard (cluster only).
    peers: Vec<hybrid::Peer>,
    /// Tasks the global scheduler placed here: they are not spilled again.
    placed: HashSet<TaskId>,
    /// Tasks handed to the global scheduler, until their results are here or freed.
    away: lineage::Lineage,
    /// Cancellations that came before their task.
    early_cancels: away::EarlyCancels,
}

impl std::fmt::Debug for LocalScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalScheduler")
            .field("node", &self.cfg.node)
            .field("available", &self.available)
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl LocalScheduler {
    /// A scheduler for the node described by `cfg`, working with `parts`.
    pub fn new(cfg: LocalSchedulerConfig, parts: LocalSchedulerParts) -> Self {
        LocalScheduler {
            away: lineage::Lineage::new(cfg.max_lineage_bytes),
            available: cfg.total.clone(),
            workers: WorkerPool::new(
                parts.workers,
                cfg.min_workers,
                cfg.max_workers,
                cfg.worker_idle_timeout,
            ),
            cfg,
            store: parts.store,
            waiting: ArgWait::default(),
            ready: ReadyQueue::default(),
            running: Default::default(),
            children: Default::default(),
            actor_creator: parts.actor_creator,
            global: parts.global,
            gcs: parts.gcs,
            events: parts.events,
            queued: parts.queued,
            cancel_flags: parts.cancel_flags,
            last_report: None,
            cluster: None,
            peers: Vec::new(),
            placed: Default::default(),
            early_cancels: Default::default(),
        }
    }

    /// Makes the scheduler a cluster node's: tasks for functions this node does not link go to
    /// the global scheduler, tasks this node is too busy for spill to nodes with free
    /// resources, and results of tasks run here for other nodes are announced to their owners.
    pub fn clustered(mut self, hooks: ClusterHooks) -> Self {
        self.cluster = Some(hooks);
        self
    }

    /// Starts the scheduler on the current arbiter and, on a cluster node, serves what other
    /// nodes send it: `local_scheduler/PlaceTask`, `TaskPlaced`, `TaskUnschedulable` and
    /// `CancelTask`.
    pub fn launch(self) -> Addr<LocalScheduler> {
        let router = self.cluster.as_ref().map(|c| c.net.router().clone());
        let addr = self.start();
        if let Some(router) = router {
            router.serve::<PlaceTask, _>(addr.clone());
            router.serve::<TaskPlaced, _>(addr.clone());
            router.serve::<TaskGoing, _>(addr.clone());
            router.serve::<TaskUnschedulable, _>(addr.clone());
            router.serve::<CancelTask, _>(addr.clone());
        }
        addr
    }

    fn record(&self, spec: &TaskSpec, state: TaskState) {
        record_event(&self.events, spec, self.cfg.node, state);
    }

    fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Stores `error` (with this task's frame) as every result of `spec`.
    fn fail_task(&mut self, spec: &TaskSpec, error: TaskError) {
        // Whichever way a task placed here leaves, it is no longer the head's placement.
        self.placed.remove(&spec.task_id);
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

    /// Whether this node can never run `spec` itself (step 1).
    fn needs_global(&self, spec: &TaskSpec) -> bool {
        if let Some(c) = &self.cluster
            && !(c.links)(&spec.function.name)
        {
            return true;
        }
        if self.cfg.is_driver && spec.creates_detached_actor() {
            return true;
        }
        if !spec.label_selector.matches(&self.cfg.labels) {
            return true;
        }
        match &spec.strategy {
            SchedulingStrategy::NodeAffinity { node, soft } if *node != self.cfg.node => {
                !*soft || !spec.resources.fits_in(&self.cfg.total)
            }
            _ => !spec.resources.fits_in(&self.cfg.total),
        }
    }

    /// Step 1 and 2: takes a task in, sends it on when this node cannot run it (or, for a
    /// `Spread` task in a cluster, to let the head pick its node), and waits for its pending
    /// arguments.
    fn submit(&mut self, spec: TaskSpec, ctx: &mut Context<Self>, from_global: bool) {
        // The head picks the node of a `Spread` task, and of one with an affinity to another
        // node (soft too: it goes there when that node can take it, as in Ray).
        let for_the_head = match &spec.strategy {
            SchedulingStrategy::Spread => true,
            SchedulingStrategy::NodeAffinity { node, .. } => *node != self.cfg.node,
            SchedulingStrategy::Default => false,
        };
        if for_the_head && !from_global && self.cluster.is_some() && self.global.is_some() {
            self.dequeued();
            self.send_to_global(spec, ctx);
            return;
        }
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
                    let kind = match spec.strategy {
                        SchedulingStrategy::NodeAffinity { soft: false, .. } => {
                            TaskErrorKind::Unschedulable
                        }
                        _ => TaskErrorKind::Infeasible,
                    };
                    self.dequeued();
                    self.fail_task(&spec, TaskError::new(kind, reason));
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
            self.waiting.park(spec, missing);
        }
    }

    /// Step 3: queues a task whose arguments are all ready, unless one of them failed.
    fn enqueue(&mut self, spec: TaskSpec) {
        for arg in &spec.args {
            // The state only: reading a spilled argument would block the scheduler on disk.
            if let TaskArg::Ref(r) = arg
                && let Some(err) = self.store.failure(r.id())
            {
                self.dequeued();
                self.fail_task(&spec, (*err).clone());
                return;
            }
        }
        self.record(&spec, TaskState::PendingNodeAssignment);
        self.ready.push(spec);
    }

    /// Step 4: dispatches ready tasks while their resources are free and workers are available.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let me = ctx.address();
        'shapes: for qi in 0..self.ready.shapes.len() {
            loop {
                let queue = &self.ready.shapes[qi];
                let Some(front) = queue.tasks.front() else {
                    break;
                };
                if !queue.shape.fits_in(&self.available) {
                    break;
                }
                let clustered = self.cluster.is_some() && self.global.is_some();
                let placed_here = self.placed.contains(&front.task_id);
                if hybrid::spreads_elsewhere(
                    &mut self.peers,
                    &self.cfg.total,
                    &self.available,
                    clustered,
                    placed_here,
                    front,
                ) {
                    if let Some(spec) = self.ready.shapes[qi].tasks.pop_front() {
                        self.dequeued();
                        self.send_to_global(spec, ctx);
                    }
                    continue;
                }
                let creation = matches!(front.kind, TaskKind::ActorCreation { .. });
                let worker = if creation {
                    None
                } else {
                    match self.workers.take(&me) {
                        Some(w) => Some(w),
                        None => break 'shapes,
                    }
                };
                let Some(spec) = self.ready.shapes[qi].tasks.pop_front() else {
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
                        let task = spec.task_id;
                        self.workers.execute(
                            w,
                            task,
                            WorkerCommand::Execute(Dispatched::new(Box::new(spec), w, me.clone())),
                        );
                    }
                    None => self.actor_creator.do_send(CreateActor(Box::new(spec))),
                }
            }
        }
    }

    /// Takes `task_id` out of whichever step it is in; returns whether it was found.
    fn cancel(&mut self, task_id: TaskId, force: bool, recursive: bool) -> bool {
        let cancelled = TaskError::new(TaskErrorKind::Cancelled, "the task was cancelled");
        if let Some(spec) = self
            .waiting
            .remove(task_id)
            .or_else(|| self.ready.remove(task_id))
        {
            self.dequeued();
            self.fail_task(&spec, cancelled);
            return true;
        }
        let Some(run) = self.running.get_mut(&task_id) else {
            return false;
        };
        if !run.cancelled {
            run.cancelled = true;
            let error = Arc::new(cancelled.with_frame(TaskFrame {
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
                self.store
                    .fail(ObjectId::for_return(task_id, i), Arc::clone(&error));
            }
            self.cancel_flags.cancel(task_id);
            if let Some(w) = run.worker {
                self.workers
                    .send(w, WorkerCommand::Cancel { task_id, force });
            }
        }
        if recursive {
            for child in self.children.get(&task_id).cloned().unwrap_or_default() {
                if !self.cancel(child, force, true) {
                    self.cancel_away(child, force);
                }
            }
        }
        true
    }

    /// Gossips the node's free resources and queue when they changed, or a second passed.
    fn report(&mut self) {
        let Some(gcs) = &self.gcs else { return };
        let queued = self.waiting.len() + self.ready.len();
        let now = Instant::now();
        if let Some((avail, q, at)) = &self.last_report
            && *avail == self.available
            && *q == queued
            && now.duration_since(*at) < Duration::from_secs(1)
        {
            return;
        }
        gcs.notify(NodeHeartbeat {
            node: self.cfg.node,
            // Over-committed for a moment (blocked tasks resumed): nothing is free.
            available: self.available.free_part(),
            queued_tasks: queued as u64,
            pending_demand: self.ready.demand(),
        });
        self.last_report = Some((self.available.clone(), queued, now));
    }

    fn flush_events(&self) {
        // As Ray does, at most this many records go to the GCS per flush; the buffer keeps the
        // rest (and drops new ones past its bound), so a burst of tasks cannot flood the GCS.
        const BATCH: usize = raya_cluster::gcs::task_events::MAX_EVENTS_A_REQUEST;
        let (events, dropped) = self.events.drain_at_most(BATCH);
        if dropped > 0 {
            tracing::debug!(dropped, "task event buffer full: reports dropped");
        }
        if let (Some(gcs), false) = (&self.gcs, events.is_empty()) {
            gcs.notify(AddTaskEvents(events));
        }
    }

    /// The running task of worker `w`.
    fn task_of(&mut self, w: WorkerId) -> Option<&mut Running> {
        let task = self.workers.task_of(w)?;
        self.running.get_mut(&task)
    }
}

impl Actor for LocalScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.workers.start_minimum(&ctx.address());
        ctx.run_interval(self.cfg.report_interval, |this, ctx| {
            this.report();
            this.refresh_peers(ctx);
            this.expire_placements();
        });
        ctx.run_interval(self.cfg.event_flush_interval, |this, _| this.flush_events());
        ctx.run_interval(self.workers.retire_check_interval(), |this, _| {
            this.workers.retire_idle()
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.flush_events();
        self.workers.stop_all();
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
    fn handle(&mut self, PlaceTask(mut spec): PlaceTask, ctx: &mut Context<Self>) {
        // Counted again: the global scheduler's pick is queued here now.
        self.queued.fetch_add(1, Ordering::Relaxed);
        // Handed over from here and placed back: a local task now.
        self.away.remove(spec.task_id);
        let refused = spec.check_from_wire().err();
        if refused.is_some() {
            // Only its first return is failed: the count is not to be trusted.
            spec.num_returns = spec.num_returns.min(1);
        }
        if spec.origin != self.cfg.node
            && spec.restarted_actor().is_none()
            && let Some(c) = &self.cluster
        {
            // Run for another node: its results are announced to their owner (an actor's
            // restart makes none: its creator has the creation object already).
            c.returns.do_send(raya_store::ExpectReturns {
                refs: spec.return_ids().map(|id| self.store.add_ref(id)).collect(),
                owner: spec.origin,
            });
        }
        if let Some(e) = refused {
            tracing::warn!(task = %spec.task_id, origin = %spec.origin, error = %e, "placement refused");
            self.dequeued();
            self.fail_task(&spec, TaskError::new(TaskErrorKind::InvalidOptions, e));
            return;
        }
        if self.early_cancels.take(spec.task_id) {
            self.dequeued();
            self.fail_task(
                &spec,
                TaskError::new(TaskErrorKind::Cancelled, "the task was cancelled"),
            );
            return;
        }
        self.placed.insert(spec.task_id);
        self.submit(spec, ctx, true);
        self.dispatch(ctx);
    }
}

impl Handler<ArgReady> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, ArgReady(task): ArgReady, ctx: &mut Context<Self>) {
        if let Some(spec) = self.waiting.arrived(task) {
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
        if let Some(w) = m.worker {
            self.workers.finished(w);
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
    fn handle(&mut self, m: WorkerStopped, ctx: &mut Context<Self>) {
        let w = m.worker;
        tracing::debug!(worker = %w, task = ?m.task.as_ref().map(|s| s.task_id), "worker stopped");
        if self.workers.remove(w) {
            tracing::warn!(worker = %w, "worker thread died: starting another");
            self.workers.start_minimum(&ctx.address());
        }
        if let Some(spec) = m.task
            && let Some(run) = self.running.remove(&spec.task_id)
        {
            let task = spec.task_id;
            if !run.blocked {
                self.available.add(&run.held);
            }
            self.children.remove(&task);
            self.cancel_flags.unregister(task);
            if run.cancelled {
                // Its results already report the cancellation.
            } else if spec.may_retry(false) {
                let mut next = *spec;
                next.attempt += 1;
                tracing::debug!(%task, attempt = next.attempt, "retrying the task of a dead worker");
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.submit(next, ctx, false);
            } else {
                let reason = format!(
                    "worker {w}, which ran it, died: a panic outside the task itself (in a \
                     value's `Drop`, or in Raya)"
                );
                self.fail_task(&spec, TaskError::new(TaskErrorKind::System, reason));
            }
        }
        self.dispatch(ctx);
    }
}

impl Handler<CancelTask> for LocalScheduler {
    type Result = bool;
    fn handle(&mut self, m: CancelTask, _: &mut Context<Self>) -> bool {
        if self.cancel(m.task_id, m.force, m.recursive) || self.cancel_away(m.task_id, m.force) {
            return true;
        }
        // Not here yet (its placement may trail the cancellation) or done already.
        self.cancelled_early(m.task_id);
        false
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
        let mut reason = m.reason;
        if let Some(dead) = self.away.remove(m.spec.task_id).and_then(|a| a.lost_with) {
            reason.push_str(&format!(
                " (it was to run again because node {dead}, which had it, died)"
            ));
        }
        self.fail_task(&m.spec, TaskError::new(m.kind, reason));
    }
}

impl Handler<GetSchedulerState> for LocalScheduler {
    type Result = MessageResult<GetSchedulerState>;
    fn handle(&mut self, _: GetSchedulerState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(SchedulerState {
            total: self.cfg.total.clone(),
            available: self.available.clone(),
            waiting_for_args: self.waiting.len(),
            queued: self.ready.len(),
            running: self.running.len(),
            blocked: self.running.values().filter(|r| r.blocked).count(),
            workers: self.workers.len(),
            idle_workers: self.workers.idle_len(),
        })
    }
}

#[cfg(test)]
mod tests;
