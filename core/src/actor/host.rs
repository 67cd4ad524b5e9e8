//! `ActorHost<A>`: the Actix actor hosting one user actor.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskCx, Poll};

use actix::prelude::*;
use raya_cluster::gcs::actors::{ActorInfo, ActorState, RegisterActor, UpdateActor};
use raya_cluster::gcs::task_events::{TaskEvent, TaskKind as EventKind, TaskState};
use raya_common::{
    ActorAddress, ActorId, FastHashMap, NodeId, ObjectId, ResourceSet, TaskError, TaskErrorKind,
    TaskFrame, TaskId, Value,
};
use raya_scheduler::{
    CancelTask, FunctionDescriptor, ReleaseResources, TaskArg, TaskDone, TaskKind, TaskOutcome,
    TaskSpec,
};
use raya_store::{Lookup, Status as ObjStatus};
use serde::{Deserialize, Serialize};

use super::{
    ActorCell, ActorClass, ActorHandle, ActorOptions, Context as RayaContext, HandleRef, Lifetime,
    Method, MethodKind, creation_object,
};
use crate::args::Args;
use crate::context::{self, ExecCtx, WithCtx};
use crate::error::{Error, Result};
use crate::registry::Output;
use crate::runtime::NodeShared;

/// One call of an actor method.
pub(crate) struct ActorCall<A> {
    /// The node that owns the call's results (the caller's).
    pub(crate) owner: NodeId,
    pub(crate) task_id: TaskId,
    pub(crate) method: Method<A>,
    pub(crate) args: Vec<TaskArg>,
    pub(crate) num_returns: u32,
    pub(crate) attempt: u32,
    pub(crate) parent: TaskId,
}

impl<A> Clone for ActorCall<A> {
    fn clone(&self) -> Self {
        ActorCall {
            owner: self.owner,
            task_id: self.task_id,
            method: self.method,
            args: self.args.clone(),
            num_returns: self.num_returns,
            attempt: self.attempt,
            parent: self.parent,
        }
    }
}

/// The parts of a call needed to report its end.
#[derive(Clone, Copy)]
pub(crate) struct CallMeta {
    task_id: TaskId,
    attempt: u32,
    name: &'static str,
    num_returns: u32,
    parent: TaskId,
}

impl<A> ActorCall<A> {
    fn meta(&self) -> CallMeta {
        CallMeta {
            task_id: self.task_id,
            attempt: self.attempt,
            name: self.method.name,
            num_returns: self.num_returns,
            parent: self.parent,
        }
    }
}

impl<A: 'static> Message for ActorCall<A> {
    type Result = ();
}

/// The serializable form of an actor call: what travels when the caller and the actor are on
/// different nodes. The method is named (`Type::method`) and resolved by the receiving node's
/// copy of the actor type; the arguments are encoded only here.
#[derive(Debug, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub(crate) struct WireActorCall {
    pub(crate) to: ActorAddress,
    /// The node that owns the call's results (the caller's).
    pub(crate) owner: NodeId,
    pub(crate) class: String,
    pub(crate) method: String,
    pub(crate) task_id: TaskId,
    pub(crate) args: Vec<TaskArg>,
    pub(crate) num_returns: u32,
    pub(crate) attempt: u32,
    pub(crate) parent: TaskId,
}

impl<A: ActorClass> ActorCall<A> {
    /// The call's serializable form.
    pub(crate) fn to_wire(&self, to: ActorAddress) -> WireActorCall {
        WireActorCall {
            to,
            owner: self.owner,
            class: A::CLASS_NAME.to_string(),
            method: self.method.name.to_string(),
            task_id: self.task_id,
            args: self.args.clone(),
            num_returns: self.num_returns,
            attempt: self.attempt,
            parent: self.parent,
        }
    }

    /// The call a wire form describes, or why it names nothing this actor type handles.
    pub(crate) fn from_wire(w: WireActorCall) -> std::result::Result<Self, TaskError> {
        if w.class != A::CLASS_NAME {
            return Err(TaskError::new(
                TaskErrorKind::ArgumentType,
                format!(
                    "a call for an actor of {} reached an actor of {}",
                    w.class,
                    A::CLASS_NAME
                ),
            ));
        }
        let method = A::method(&w.method).ok_or_else(|| {
            TaskError::new(
                TaskErrorKind::UnknownFunction,
                format!(
                    "{} has no method {:?} on this node",
                    A::CLASS_NAME,
                    w.method
                ),
            )
        })?;
        Ok(ActorCall {
            owner: w.owner,
            task_id: w.task_id,
            method,
            args: w.args,
            num_returns: w.num_returns,
            attempt: w.attempt,
            parent: w.parent,
        })
    }
}

/// Control messages any host understands, whatever its actor type.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub(crate) enum HostControl {
    /// The scheduler placed the actor: run the constructor.
    Construct(Box<TaskSpec>),
    /// Kill the actor, restarting it when allowed and asked.
    Kill { no_restart: bool },
    /// Cancel a queued or running call.
    Cancel { task_id: TaskId, force: bool },
    /// The last handle was dropped.
    HandlesDropped,
    /// The actor could not be placed (its creation object failed).
    CreationFailed(Arc<TaskError>),
    /// The creation object is ready: when the constructor did not run here, the actor lives on
    /// another node and this host forwards to it from now on.
    Placed,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Constructed {
    generation: u64,
    result: std::result::Result<(), TaskError>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct BatchDone<A: 'static> {
    generation: u64,
    done: Vec<TaskId>,
    crashed: Option<(ActorCall<A>, String)>,
    rest: Vec<ActorCall<A>>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct HeadReady;

enum Status {
    Creating,
    Alive,
    Restarting,
    Dead(Arc<TaskError>),
}

struct Running<A> {
    cancel: Arc<AtomicBool>,
    spawn: Option<SpawnHandle>,
    exclusive: bool,
    /// For async calls: the call itself, for a retry after a crash.
    retry: Option<ActorCall<A>>,
    meta: CallMeta,
}

struct Options {
    class: &'static str,
    max_concurrency: u32,
    max_restarts: i64,
    max_task_retries: i64,
    max_pending: usize,
    lifetime: ResourceSet,
}

/// What a call running on a pool thread needs.
struct CallEnv<A> {
    id: ActorId,
    restarts: u64,
    cell: Arc<ActorCell<A>>,
    rt: Arc<NodeShared>,
    keep_args: bool,
}

/// The Actix actor hosting one user actor: it queues calls in arrival order, waits for their
/// arguments, runs them (synchronous ones on the node's actor thread pool, async ones on its own
/// event loop) within the actor's concurrency, restarts the actor after a crash and fails calls
/// once the actor is dead.
pub struct ActorHost<A: ActorClass> {
    id: ActorId,
    rt: Arc<NodeShared>,
    /// Set when the actor lives on another node: calls and controls are forwarded there.
    remote: Option<actix::Addr<super::remote::CallSender>>,
    cell: Arc<ActorCell<A>>,
    opts: Options,
    status: Status,
    queue: VecDeque<ActorCall<A>>,
    running: FastHashMap<TaskId, Running<A>>,
    slots: u32,
    exclusive: bool,
    generation: u64,
    shared_generation: Arc<AtomicU64>,
    restarts: u64,
    ctor_args: Vec<TaskArg>,
    created: bool,
    holds_lifetime: bool,
    waiting_on: Option<ObjectId>,
    handles_dropped: bool,
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// A future that turns a panic into an error.
pub(crate) struct CatchUnwind<F: ?Sized>(pub(crate) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(panic_message(p))),
        }
    }
}

fn frame(rt: &NodeShared, task_id: TaskId, name: &str) -> TaskFrame {
    TaskFrame {
        task: task_id,
        function: name.to_string(),
        node: Some(rt.node),
    }
}

fn record(rt: &NodeShared, actor: ActorId, call: CallMeta, state: TaskState) {
    rt.events
        .record(call.task_id, call.attempt, state, || TaskEvent {
            task_id: call.task_id,
            attempt: call.attempt,
            job: rt.job,
            name: call.name.to_string(),
            kind: EventKind::ActorTask,
            state,
            node: Some(rt.node),
            worker: None,
            actor: Some(actor),
            parent: (!call.parent.is_driver()).then_some(call.parent),
            error: None,
            times: Vec::new(),
        });
}

/// Stores a finished call's output (or error) as its results.
fn finish_call(rt: &NodeShared, actor: ActorId, call: CallMeta, output: Output) {
    let CallMeta {
        task_id,
        attempt,
        name,
        num_returns,
        ..
    } = call;
    let failed = match output {
        Ok(values) if num_returns == 0 => {
            drop(values);
            None
        }
        Ok(values) if values.len() == num_returns as usize => {
            let mut err = None;
            for (i, v) in values.into_iter().enumerate() {
                if let Err(e) = rt
                    .store
                    .complete(ObjectId::for_return(task_id, i as u32), v)
                {
                    err = Some(TaskError::new(TaskErrorKind::StoreFull, e.to_string()));
                }
            }
            err
        }
        Ok(values) => Some(TaskError::new(
            TaskErrorKind::System,
            format!(
                "{name} returned {} values, {num_returns} expected",
                values.len()
            ),
        )),
        Err(e) => Some(e),
    };
    let state = match &failed {
        None => TaskState::Finished,
        Some(e) if e.is_cancelled() => TaskState::Cancelled,
        Some(_) => TaskState::Failed,
    };
    record(rt, actor, call, state);
    if let Some(e) = failed {
        let e = Arc::new(e.with_frame(frame(rt, task_id, name)));
        if num_returns == 0 {
            tracing::warn!(%actor, error = %e, "a call sent with tell failed");
        }
        for i in 0..num_returns {
            rt.store
                .fail(ObjectId::for_return(task_id, i), Arc::clone(&e));
        }
        let msg = e.to_string();
        rt.events
            .update(task_id, attempt, |ev| ev.error = Some(msg));
    }
}

/// Runs one synchronous call on the current (pool) thread. A panic hands the call back.
fn run_sync<A: ActorClass>(
    env: &CallEnv<A>,
    mut call: ActorCall<A>,
    cancel: Arc<AtomicBool>,
) -> std::result::Result<(), Box<(ActorCall<A>, String)>> {
    let _g = context::enter(Arc::new(ExecCtx {
        task_id: call.task_id,
        actor: Some(env.id),
        worker: None,
        cancelled: cancel,
        lent: AtomicBool::new(false),
    }));
    record(&env.rt, env.id, call.meta(), TaskState::Running);
    let args = if env.keep_args {
        call.args.clone()
    } else {
        std::mem::take(&mut call.args)
    };
    let mut args = Args::new(
        args,
        Arc::clone(&env.rt.store),
        call.method.name.into(),
        call.num_returns,
    );
    let mut ctx = RayaContext::new(env.id, env.rt.node, env.restarts);
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| match call.method.kind {
        MethodKind::Mut(f) => env
            .cell
            .write()
            .and_then(|mut a| f(&mut a, &mut ctx, &mut args)),
        MethodKind::Ref(f) => env.cell.read().and_then(|a| f(&a, &ctx, &mut args)),
        MethodKind::AsyncMut(_) | MethodKind::AsyncRef(_) => Err(TaskError::new(
            TaskErrorKind::System,
            "async method dispatched to a thread",
        )),
    }));
    match out {
        Ok(output) => {
            finish_call(&env.rt, env.id, call.meta(), output);
            Ok(())
        }
        Err(p) => Err(Box::new((call, panic_message(p)))),
    }
}

impl<A: ActorClass> ActorHost<A> {
    fn fail_call(&self, call: &ActorCall<A>, err: &TaskError) {
        finish_call(&self.rt, self.id, call.meta(), Err(err.clone()));
    }

    fn died_error(&self, cause: &TaskError) -> TaskError {
        TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} ({}) is dead: {}",
                self.id, self.opts.class, cause.message
            ),
        )
    }

    fn can_restart(&self) -> bool {
        self.opts.max_restarts < 0 || self.restarts < self.opts.max_restarts as u64
    }

    fn report_state(&self, state: ActorState, cause: Option<String>) {
        self.rt.gcs().notify(UpdateActor {
            actor_id: self.id,
            state,
            node: Some(self.rt.node),
            num_restarts: self.restarts,
            death_cause: cause,
        });
    }

    fn bump_generation(&mut self) {
        self.generation += 1;
        self.shared_generation
            .store(self.generation, Ordering::SeqCst);
    }

    /// Runs the constructor on a pool thread.
    fn construct(&mut self, ctx: &mut Context<Self>) {
        let args = self.ctor_args.clone();
        let cell = Arc::clone(&self.cell);
        let rt = Arc::clone(&self.rt);
        let me = ctx.address();
        let generation = self.generation;
        let shared_gen = Arc::clone(&self.shared_generation);
        let (id, class, restarts) = (self.id, self.opts.class, self.restarts);
        self.rt.pool.execute(move || {
            let _g = context::enter(Arc::new(ExecCtx {
                task_id: TaskId(id.0),
                actor: Some(id),
                worker: None,
                cancelled: Arc::new(AtomicBool::new(false)),
                lent: AtomicBool::new(false),
            }));
            let mut args = Args::new(args, Arc::clone(&rt.store), class.into(), 1);
            let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let mut a = A::construct(&mut args)?;
                a.started(&mut RayaContext::new(id, rt.node, restarts));
                Ok::<A, TaskError>(a)
            }));
            let result = match built {
                Ok(Ok(a)) => {
                    // Installed only if no kill or restart happened meanwhile.
                    if shared_gen.load(Ordering::SeqCst) == generation {
                        let old = cell.replace(Some(a));
                        drop(old);
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(p) => Err(TaskError::new(
                    TaskErrorKind::Panic,
                    format!("constructor of {class} panicked: {}", panic_message(p)),
                )),
            };
            me.do_send(Constructed { generation, result });
        });
    }

    /// Drops the actor's state on a pool thread (it may be in use by a call still running).
    fn clear_state(&self, stopping: bool) {
        let cell = Arc::clone(&self.cell);
        let (id, node, restarts) = (self.id, self.rt.node, self.restarts);
        self.rt.pool.execute(move || {
            if let Some(mut a) = cell.replace(None)
                && stopping
                && let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| a.stopped(&mut RayaContext::new(id, node, restarts))))
            {
                tracing::warn!(actor = %id, panic = %panic_message(p), "the actor's stopped() hook panicked");
            }
        });
    }

    /// Fails the calls still running (their late results are ignored by the store).
    fn abandon_running(&mut self, err: &TaskError, ctx: &mut Context<Self>) {
        for (_, r) in self.running.drain() {
            r.cancel.store(true, Ordering::Relaxed);
            if let Some(h) = r.spawn {
                ctx.cancel_future(h);
            }
            finish_call(&self.rt, self.id, r.meta, Err(err.clone()));
        }
        self.slots = 0;
        self.exclusive = false;
    }

    fn die(&mut self, cause: TaskError, ctx: &mut Context<Self>) {
        if matches!(self.status, Status::Dead(_)) {
            return;
        }
        tracing::debug!(actor = %self.id, class = self.opts.class, cause = %cause, "actor died");
        let died = self.died_error(&cause);
        self.status = Status::Dead(Arc::new(cause.clone()));
        self.bump_generation();
        for call in std::mem::take(&mut self.queue) {
            self.fail_call(&call, &died);
        }
        self.abandon_running(&died, ctx);
        if !self.created {
            self.created = true;
            self.rt
                .store
                .fail(creation_object(self.id), Arc::new(died.clone()));
            // The placement may still be queued (the cancel drops it) or already granted, its
            // `Construct` in flight to a host that is about to stop: the `TaskDone` gives the
            // placement resources back either way (it is a no-op for a task no longer running).
            let task_id = TaskId(self.id.0);
            self.rt.scheduler().do_send(CancelTask {
                task_id,
                force: false,
                recursive: false,
            });
            self.rt.scheduler().do_send(TaskDone {
                worker: None,
                task_id,
                outcome: TaskOutcome::Failed,
            });
        }
        self.clear_state(self.created);
        if std::mem::take(&mut self.holds_lifetime) {
            self.rt
                .scheduler()
                .do_send(ReleaseResources(self.opts.lifetime.clone()));
        }
        self.report_state(ActorState::Dead, Some(cause.message.clone()));
        self.rt.actors.release_keep_alive(self.id);
        if self.handles_dropped {
            ctx.stop();
        }
    }

    fn restart(&mut self, reason: &str, ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.bump_generation();
        self.status = Status::Restarting;
        let err = TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} ({}) restarted while running the call: {reason}",
                self.id, self.opts.class
            ),
        );
        self.abandon_running(&err, ctx);
        tracing::info!(actor = %self.id, class = self.opts.class, restarts = self.restarts, %reason, "restarting actor");
        self.report_state(ActorState::Restarting, None);
        self.construct(ctx);
    }

    /// A call crashed the actor (a panic): retry the call if allowed, restart or die.
    fn crashed(&mut self, call: Option<ActorCall<A>>, msg: String, ctx: &mut Context<Self>) {
        let can_restart = self.can_restart();
        if let Some(mut call) = call {
            let retries = self.opts.max_task_retries;
            if can_restart && (retries < 0 || (call.attempt as i64) < retries) {
                call.attempt += 1;
                self.queue.push_front(call);
            } else {
                let err = TaskError::new(TaskErrorKind::Panic, msg.clone());
                self.fail_call(&call, &err);
            }
        }
        if can_restart {
            self.restart(&msg, ctx);
        } else {
            self.die(TaskError::new(TaskErrorKind::Panic, msg), ctx);
        }
    }

    fn first_pending_arg(&self, call: &ActorCall<A>) -> Option<ObjectId> {
        call.args.iter().find_map(|a| match a {
            TaskArg::Ref(r) if self.rt.store.status(r.id()) == ObjStatus::Pending => Some(r.id()),
            _ => None,
        })
    }

    fn idle(&self) -> bool {
        self.queue.is_empty() && self.running.is_empty()
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            if !matches!(self.status, Status::Alive) {
                return;
            }
            let Some(head) = self.queue.front() else {
                if self.handles_dropped && self.idle() {
                    self.die(
                        TaskError::new(
                            TaskErrorKind::ActorDied,
                            "all handles to the actor were dropped",
                        ),
                        ctx,
                    );
                }
                return;
            };
            if let Some(pending) = self.first_pending_arg(head) {
                if self.waiting_on != Some(pending) {
                    self.waiting_on = Some(pending);
                    let me = ctx.address();
                    self.rt
                        .store
                        .on_ready(pending, Box::new(move || me.do_send(HeadReady)));
                }
                return;
            }
            self.waiting_on = None;
            let kind = head.method.kind;
            let serial = self.opts.max_concurrency == 1;
            let exclusive = serial || kind.exclusive();
            let free = if exclusive {
                self.slots == 0
            } else {
                !self.exclusive && self.slots < self.opts.max_concurrency
            };
            if !free {
                return;
            }
            let call = self.queue.pop_front().expect("head exists");
            if kind.is_async() {
                self.dispatch_async(call, exclusive, ctx);
                continue;
            }
            // Consecutive ready calls that may run the same way go to the pool together: one
            // thread hop per batch rather than per call. A serial actor runs them in order on
            // one thread; `&self` calls of a threaded actor are spread over its free slots.
            let free = if exclusive {
                1
            } else {
                (self.opts.max_concurrency - self.slots) as usize
            };
            let mut calls = vec![call];
            // A `&mut self` call of a threaded actor runs alone.
            let gather = serial || !exclusive;
            while gather && calls.len() < 256 * free {
                match self.queue.front() {
                    Some(next)
                        if !next.method.kind.is_async()
                            && (serial || !next.method.kind.exclusive())
                            && self.first_pending_arg(next).is_none() =>
                    {
                        calls.push(self.queue.pop_front().expect("front exists"));
                    }
                    _ => break,
                }
            }
            if exclusive {
                self.dispatch_batch(calls, true, ctx);
                continue;
            }
            let k = free.min(calls.len());
            let mut batches: Vec<Vec<ActorCall<A>>> = (0..k).map(|_| Vec::new()).collect();
            for (i, c) in calls.into_iter().enumerate() {
                batches[i % k].push(c);
            }
            for b in batches {
                self.dispatch_batch(b, false, ctx);
            }
        }
    }

    fn dispatch_batch(
        &mut self,
        batch: Vec<ActorCall<A>>,
        exclusive: bool,
        ctx: &mut Context<Self>,
    ) {
        self.slots += 1;
        self.exclusive |= exclusive;
        let keep_args = self.opts.max_task_retries != 0;
        let calls: Vec<(ActorCall<A>, Arc<AtomicBool>)> = batch
            .into_iter()
            .map(|c| {
                let cancel = Arc::new(AtomicBool::new(false));
                self.running.insert(
                    c.task_id,
                    Running {
                        cancel: Arc::clone(&cancel),
                        spawn: None,
                        exclusive,
                        retry: None,
                        meta: c.meta(),
                    },
                );
                (c, cancel)
            })
            .collect();
        let env = CallEnv {
            id: self.id,
            restarts: self.restarts,
            cell: Arc::clone(&self.cell),
            rt: Arc::clone(&self.rt),
            keep_args,
        };
        let me = ctx.address();
        let generation = self.generation;
        self.rt.pool.execute(move || {
            let mut done = Vec::with_capacity(calls.len());
            let mut crashed = None;
            let mut it = calls.into_iter();
            for (call, cancel) in it.by_ref() {
                if cancel.load(Ordering::Relaxed) {
                    done.push(call.task_id);
                    continue;
                }
                let id = call.task_id;
                match run_sync(&env, call, cancel) {
                    Ok(()) => done.push(id),
                    Err(c) => {
                        crashed = Some(*c);
                        break;
                    }
                }
            }
            let rest = it.map(|(c, _)| c).collect();
            me.do_send(BatchDone {
                generation,
                done,
                crashed,
                rest,
            });
        });
    }

    fn dispatch_async(&mut self, mut call: ActorCall<A>, exclusive: bool, ctx: &mut Context<Self>) {
        let f = match call.method.kind {
            MethodKind::AsyncMut(f) | MethodKind::AsyncRef(f) => f,
            _ => unreachable!("only async methods are dispatched here"),
        };
        self.slots += 1;
        self.exclusive |= exclusive;
        let cancel = Arc::new(AtomicBool::new(false));
        let retry = (self.opts.max_task_retries != 0).then(|| call.clone());
        let args = std::mem::take(&mut call.args);
        record(&self.rt, self.id, call.meta(), TaskState::Running);
        let meta = call.meta();
        let args = Args::new(
            args,
            Arc::clone(&self.rt.store),
            call.method.name.into(),
            call.num_returns,
        );
        let exec = Arc::new(ExecCtx {
            task_id: call.task_id,
            actor: Some(self.id),
            worker: None,
            cancelled: Arc::clone(&cancel),
            lent: AtomicBool::new(false),
        });
        let actor_ctx = RayaContext::new(self.id, self.rt.node, self.restarts);
        let fut = {
            let _g = context::enter(Arc::clone(&exec));
            f(Arc::clone(&self.cell), actor_ctx, args)
        };
        let generation = self.generation;
        let (task_id, attempt, num_returns) = (call.task_id, call.attempt, call.num_returns);
        let wrapped = CatchUnwind(Box::pin(WithCtx { ctx: exec, fut }));
        let handle = ctx.spawn(actix::fut::wrap_future::<_, Self>(wrapped).map(
            move |res, this, ctx| {
                let retry = match this.running.remove(&task_id) {
                    Some(r) if generation == this.generation => {
                        this.slots -= 1;
                        if r.exclusive {
                            this.exclusive = false;
                        }
                        r.retry
                    }
                    _ => None,
                };
                match res {
                    Ok(output) => finish_call(&this.rt, this.id, meta, output),
                    Err(msg) if generation == this.generation => {
                        let call = retry.unwrap_or(ActorCall {
                            owner: call.owner,
                            task_id,
                            method: call.method,
                            args: Vec::new(),
                            num_returns,
                            attempt,
                            parent: call.parent,
                        });
                        this.crashed(Some(call), msg, ctx);
                    }
                    Err(msg) => {
                        tracing::debug!(%task_id, %msg, "a call of a previous incarnation panicked")
                    }
                }
                this.pump(ctx);
            },
        ));
        self.running.insert(
            task_id,
            Running {
                cancel,
                spawn: Some(handle),
                exclusive,
                retry,
                meta,
            },
        );
    }

    fn cancel(&mut self, task_id: TaskId, force: bool, ctx: &mut Context<Self>) {
        let cancelled = TaskError::new(TaskErrorKind::Cancelled, "the actor call was cancelled");
        if let Some(pos) = self.queue.iter().position(|c| c.task_id == task_id) {
            let call = self.queue.remove(pos).expect("position is in range");
            self.fail_call(&call, &cancelled);
            self.pump(ctx);
            return;
        }
        let Some(r) = self.running.get_mut(&task_id) else {
            return;
        };
        r.cancel.store(true, Ordering::Relaxed);
        finish_call(&self.rt, self.id, r.meta, Err(cancelled));
        if force && let Some(h) = r.spawn.take() {
            ctx.cancel_future(h);
            let exclusive = r.exclusive;
            self.running.remove(&task_id);
            self.slots -= 1;
            if exclusive {
                self.exclusive = false;
            }
            self.pump(ctx);
        }
    }
}

impl<A: ActorClass> Actor for ActorHost<A> {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.rt.actors.remove(self.id);
    }
}

impl<A: ActorClass> Handler<ActorCall<A>> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, call: ActorCall<A>, ctx: &mut Context<Self>) {
        if let Some(r) = &self.remote {
            r.do_send(call.to_wire(self.address()));
            return;
        }
        if let Status::Dead(cause) = &self.status {
            let err = self.died_error(cause);
            self.fail_call(&call, &err);
            return;
        }
        if self.queue.len() >= self.opts.max_pending {
            let err = TaskError::new(
                TaskErrorKind::QueueFull,
                format!(
                    "actor {} has {} calls queued (max_pending_calls)",
                    self.id,
                    self.queue.len()
                ),
            );
            self.fail_call(&call, &err);
            return;
        }
        self.queue.push_back(call);
        self.pump(ctx);
    }
}

impl<A: ActorClass> Handler<WireActorCall> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, w: WireActorCall, ctx: &mut Context<Self>) {
        if let Some(r) = &self.remote {
            r.do_send(w);
            return;
        }
        let meta = CallMeta {
            task_id: w.task_id,
            attempt: w.attempt,
            name: "actor call",
            num_returns: w.num_returns,
            parent: w.parent,
        };
        match ActorCall::<A>::from_wire(w) {
            Ok(call) => <Self as Handler<ActorCall<A>>>::handle(self, call, ctx),
            Err(e) => finish_call(&self.rt, self.id, meta, Err(e)),
        }
    }
}

impl<A: ActorClass> Handler<HeadReady> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, _: HeadReady, ctx: &mut Context<Self>) {
        self.waiting_on = None;
        self.pump(ctx);
    }
}

impl<A: ActorClass> Handler<Constructed> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, m: Constructed, ctx: &mut Context<Self>) {
        if m.generation != self.generation {
            return;
        }
        let creation_task = TaskId(self.id.0);
        match m.result {
            Ok(()) => {
                self.status = Status::Alive;
                if !self.created {
                    self.created = true;
                    self.holds_lifetime = true;
                    if let Err(e) = self
                        .rt
                        .store
                        .complete(creation_object(self.id), Value::new(()))
                    {
                        tracing::warn!(actor = %self.id, error = %e, "could not record the actor as ready");
                    }
                    self.rt.scheduler().do_send(TaskDone {
                        worker: None,
                        task_id: creation_task,
                        outcome: TaskOutcome::ActorCreated {
                            keep: self.opts.lifetime.clone(),
                        },
                    });
                }
                self.report_state(ActorState::Alive, None);
                self.pump(ctx);
            }
            Err(e) if !self.created => {
                let e = e.with_frame(frame(&self.rt, creation_task, self.opts.class));
                self.rt
                    .store
                    .fail(creation_object(self.id), Arc::new(e.clone()));
                self.rt.scheduler().do_send(TaskDone {
                    worker: None,
                    task_id: creation_task,
                    outcome: TaskOutcome::Failed,
                });
                self.created = true;
                self.die(e, ctx);
            }
            Err(e) => self.crashed(
                None,
                format!("constructor failed on restart: {}", e.message),
                ctx,
            ),
        }
    }
}

impl<A: ActorClass> Handler<BatchDone<A>> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, m: BatchDone<A>, ctx: &mut Context<Self>) {
        let current = m.generation == self.generation;
        let mut exclusive = false;
        for id in m
            .done
            .iter()
            .chain(m.crashed.iter().map(|c| &c.0.task_id))
            .chain(m.rest.iter().map(|c| &c.task_id))
        {
            if let Some(r) = self.running.remove(id) {
                exclusive |= r.exclusive;
            }
        }
        if current {
            self.slots -= 1;
            if exclusive {
                self.exclusive = false;
            }
        }
        match &self.status {
            Status::Dead(cause) => {
                let err = self.died_error(cause);
                for c in &m.rest {
                    self.fail_call(c, &err);
                }
            }
            _ => {
                for c in m.rest.into_iter().rev() {
                    self.queue.push_front(c);
                }
            }
        }
        if let Some((call, msg)) = m.crashed {
            if current {
                self.crashed(Some(call), msg, ctx);
            } else {
                let err = TaskError::new(TaskErrorKind::Panic, msg.clone());
                self.fail_call(&call, &err);
            }
        }
        self.pump(ctx);
    }
}

impl<A: ActorClass> Handler<HostControl> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, m: HostControl, ctx: &mut Context<Self>) {
        if let Some(r) = &self.remote {
            match m {
                HostControl::Kill { no_restart } => {
                    r.do_send(super::remote::WireControl::Kill { no_restart })
                }
                HostControl::Cancel { task_id, force } => {
                    r.do_send(super::remote::WireControl::Cancel { task_id, force })
                }
                HostControl::HandlesDropped => {
                    r.do_send(super::remote::WireControl::HandlesDropped);
                    ctx.stop();
                }
                _ => {}
            }
            return;
        }
        match m {
            HostControl::Placed => {
                if self.created || !matches!(self.status, Status::Creating) {
                    return;
                }
                let gcs = self.rt.gcs().clone();
                let (id, me) = (self.id, self.rt.node);
                ctx.spawn(
                    async move {
                        // The node that constructed it records itself in the GCS; that record
                        // may trail the creation object by a moment.
                        for _ in 0..200 {
                            match gcs.request(raya_cluster::gcs::actors::GetActor(id)).await {
                                Ok(Some(info)) => match info.node {
                                    Some(n) if n != me => return Some(n),
                                    _ => {}
                                },
                                Ok(None) => return None,
                                Err(e) => {
                                    tracing::warn!(actor = %id, error = %e, "cannot find where the actor was placed");
                                    return None;
                                }
                            }
                            actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        None
                    }
                    .into_actor(self)
                    .map(|found, this, ctx| match found {
                        Some(node) => this.become_proxy(node, ctx),
                        None if !this.created => this.die(
                            TaskError::new(
                                TaskErrorKind::ActorDied,
                                "the actor was constructed on another node that cannot be found",
                            ),
                            ctx,
                        ),
                        None => {}
                    }),
                );
            }
            HostControl::Construct(spec) => {
                if matches!(self.status, Status::Creating) {
                    self.ctor_args = spec.args.clone();
                    self.construct(ctx);
                } else {
                    self.rt.scheduler().do_send(TaskDone {
                        worker: None,
                        task_id: spec.task_id,
                        outcome: TaskOutcome::Failed,
                    });
                }
            }
            HostControl::Kill { no_restart } => {
                if matches!(self.status, Status::Dead(_)) {
                    return;
                }
                if !no_restart && self.created && self.can_restart() {
                    self.restart("killed with restart allowed", ctx);
                } else {
                    self.die(
                        TaskError::new(TaskErrorKind::ActorDied, "killed by raya::kill"),
                        ctx,
                    );
                }
            }
            HostControl::Cancel { task_id, force } => self.cancel(task_id, force, ctx),
            HostControl::HandlesDropped => {
                self.handles_dropped = true;
                match self.status {
                    Status::Dead(_) => ctx.stop(),
                    Status::Alive if self.idle() => self.pump(ctx),
                    Status::Creating if self.idle() => self.die(
                        TaskError::new(
                            TaskErrorKind::ActorDied,
                            "all handles to the actor were dropped",
                        ),
                        ctx,
                    ),
                    _ => {}
                }
            }
            HostControl::CreationFailed(e) => {
                if !self.created {
                    self.created = true;
                    self.die((*e).clone(), ctx);
                }
            }
        }
    }
}

/// Creates actor `A` on this node: registers it, starts its host and submits its placement.
pub(crate) fn create<A: ActorClass>(
    rt: &Arc<NodeShared>,
    options: ActorOptions,
    ctor_args: Vec<TaskArg>,
) -> Result<ActorHandle<A>> {
    let (placement, lifetime) = options.resource_sets()?;
    let max_concurrency =
        options
            .max_concurrency
            .unwrap_or(if A::HAS_ASYNC_METHODS { 1000 } else { 1 });
    if max_concurrency == 0 {
        return Err(Error::InvalidArgument(
            "max_concurrency must be at least 1".into(),
        ));
    }
    if options.name.as_deref() == Some("") {
        return Err(Error::InvalidArgument(
            "actor names must not be empty".into(),
        ));
    }
    let id = rt.ids.actor_id();
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| rt.namespace.clone());
    let detached = options.lifetime == Lifetime::Detached;
    let info = ActorInfo {
        actor_id: id,
        class_name: A::CLASS_NAME.to_string(),
        name: options.name.clone(),
        namespace,
        job: rt.job,
        node: Some(rt.node),
        state: ActorState::PendingCreation,
        detached,
        max_restarts: options.max_restarts,
        num_restarts: 0,
        death_cause: None,
        resources: lifetime.clone(),
        start_time_ms: raya_cluster::time::now_ms(),
        end_time_ms: None,
    };
    if info.name.is_some() {
        // The name must be checked before the handle is returned.
        context::check_may_block("creating a named actor")?;
        crate::block_on::block_on(rt.gcs().request(RegisterActor(info)))?;
    } else {
        rt.gcs().notify(RegisterActor(info));
    }
    let cobj = creation_object(id);
    let ready = rt.store.add_ref(cobj);
    let opts = Options {
        class: A::CLASS_NAME,
        max_concurrency,
        max_restarts: options.max_restarts,
        max_task_retries: options.max_task_retries,
        max_pending: rt.config.max_pending_calls,
        lifetime: lifetime.clone(),
    };
    let host = start_host_actor::<A>(rt, id, opts);
    rt.actors
        .insert(id, host.clone(), detached.then(|| ready.clone()));
    let on_free = host.clone().recipient::<HostControl>();
    rt.store.on_free(
        cobj,
        Box::new(move || on_free.do_send(HostControl::HandlesDropped)),
    );
    let on_fail = host.clone().recipient::<HostControl>();
    let store = Arc::clone(&rt.store);
    rt.store.on_ready(
        cobj,
        Box::new(move || match store.get(cobj) {
            Lookup::Failed(e) => on_fail.do_send(HostControl::CreationFailed(e)),
            _ => on_fail.do_send(HostControl::Placed),
        }),
    );
    rt.submit_spec(TaskSpec {
        task_id: TaskId(id.0),
        job: rt.job,
        parent: context::current_task_id(rt),
        origin: rt.node,
        function: FunctionDescriptor {
            name: A::CLASS_NAME.into(),
            local_index: None,
        },
        args: ctor_args,
        num_returns: 1,
        resources: placement,
        strategy: options.scheduling_strategy,
        max_retries: 0,
        retry_exceptions: false,
        attempt: 0,
        kind: TaskKind::ActorCreation {
            actor: id,
            lifetime,
            options: raya_scheduler::CreationOptions {
                max_concurrency,
                max_restarts: options.max_restarts,
                max_task_retries: options.max_task_retries,
            },
        },
    })?;
    Ok(ActorHandle::from_ref(HandleRef::new(
        Arc::clone(rt),
        id,
        rt.node,
        ready,
        Some(host),
    )))
}

/// Starts the host actor of actor `id` on one of the node's actor event loops.
fn start_host_actor<A: ActorClass>(
    rt: &Arc<NodeShared>,
    id: ActorId,
    opts: Options,
) -> actix::Addr<ActorHost<A>> {
    let host_rt = Arc::clone(rt);
    ActorHost::<A>::start_in_arbiter(&rt.next_actor_arbiter(), move |_| ActorHost {
        id,
        rt: host_rt,
        remote: None,
        cell: Arc::new(ActorCell::new()),
        opts,
        status: Status::Creating,
        queue: VecDeque::new(),
        running: FastHashMap::default(),
        slots: 0,
        exclusive: false,
        generation: 0,
        shared_generation: Arc::new(AtomicU64::new(0)),
        restarts: 0,
        ctor_args: Vec::new(),
        created: false,
        holds_lifetime: false,
        waiting_on: None,
        handles_dropped: false,
    })
}

/// An actor creation placed on this node by the cluster: the node and the task to construct it.
pub struct HostStart {
    pub(crate) rt: Arc<NodeShared>,
    pub(crate) spec: Box<TaskSpec>,
}

/// Starts the host of an actor of type `A` whose creation another node submitted and the
/// cluster placed here, and runs its constructor. Registered for every actor type by
/// `#[raya::actor]`.
pub fn start_host<A: ActorClass>(start: HostStart) {
    let HostStart { rt, spec } = start;
    let TaskKind::ActorCreation {
        actor,
        lifetime,
        options,
    } = spec.kind.clone()
    else {
        tracing::error!(task = %spec.task_id, "asked to host an actor by a task that creates none");
        return;
    };
    let opts = Options {
        class: A::CLASS_NAME,
        max_concurrency: options.max_concurrency.max(1),
        max_restarts: options.max_restarts,
        max_task_retries: options.max_task_retries,
        max_pending: rt.config.max_pending_calls,
        lifetime,
    };
    let host = start_host_actor::<A>(&rt, actor, opts);
    rt.actors.insert(actor, host.clone(), None);
    host.do_send(HostControl::Construct(spec));
}

impl<A: ActorClass> ActorHost<A> {
    fn address(&self) -> ActorAddress {
        ActorAddress {
            node: self.rt.node,
            actor: self.id,
        }
    }

    /// The actor was constructed on `node`: forward everything there from now on.
    fn become_proxy(&mut self, node: NodeId, ctx: &mut Context<Self>) {
        let sender = super::remote::call_sender(&self.rt, self.id, node);
        let to = ActorAddress {
            node,
            actor: self.id,
        };
        for call in self.queue.drain(..) {
            sender.do_send(call.to_wire(to));
        }
        tracing::debug!(actor = %self.id, %node, "actor placed on another node");
        if self.handles_dropped {
            sender.do_send(super::remote::WireControl::HandlesDropped);
            ctx.stop();
        }
        self.remote = Some(sender);
    }
}
