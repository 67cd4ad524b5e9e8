//! Queueing and running calls: calls queue in arrival order; the front call waits for its
//! `ObjectRef` arguments; ready calls start while the actor's concurrency allows — consecutive
//! synchronous calls in batches on the node's actor threads (one thread hop per batch), `async`
//! calls on the host's event loop — and a cancelled call leaves the queue or is flagged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use raya_cluster::gcs::task_events::TaskState;
use raya_common::{ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_scheduler::TaskArg;
use raya_store::Status as ObjectStatus;

use super::ActorHost;
use super::call::{ActorCall, CallEnv, CallMeta, finish_call, record_call, run_sync};
use super::control::{BatchDone, FrontCallReady};
use super::lifecycle::{Lifecycle, out_of_scope};
use super::wire::{WireActorCall, keep_results_for_owner};
use crate::api::actor::{ActorClass, Context as MethodContext, MethodKind};
use crate::execution::args::Args;
use crate::execution::context::{self, ExecCtx, WithCtx};
use crate::execution::panic::CatchUnwind;

/// Consecutive ready synchronous calls gathered into batches: at most this many per free slot.
const BATCH_PER_SLOT: usize = 256;

/// A call that is running.
pub(super) struct Running<A> {
    pub(super) cancel: Arc<AtomicBool>,
    /// For async calls: the future, to stop it.
    pub(super) spawn: Option<SpawnHandle>,
    /// Whether it runs alone (`&mut self`, or a serial actor).
    pub(super) exclusive: bool,
    /// For async calls: the call itself, for a retry after a crash.
    pub(super) retry: Option<ActorCall<A>>,
    pub(super) meta: CallMeta,
}

/// How much of the actor's concurrency is in use: each running batch (or async call) takes
/// one slot; an exclusive one takes the actor.
#[derive(Debug, Default)]
pub(super) struct Slots {
    used: u32,
    exclusive: bool,
}

impl Slots {
    fn can_start(&self, exclusive: bool, max: u32) -> bool {
        if exclusive {
            self.used == 0
        } else {
            !self.exclusive && self.used < max
        }
    }

    fn take(&mut self, exclusive: bool) {
        self.used += 1;
        self.exclusive |= exclusive;
    }

    fn give_back(&mut self, exclusive: bool) {
        self.used -= 1;
        if exclusive {
            self.exclusive = false;
        }
    }

    fn clear(&mut self) {
        *self = Slots::default();
    }
}

impl<A: ActorClass> ActorHost<A> {
    /// Fails a call this host took (its results, kept for their owner, report the error).
    pub(super) fn fail_call(&self, call: &ActorCall<A>, err: &TaskError) {
        self.keep_results(call.owner, &call.meta());
        finish_call(&self.env, self.id, call.meta(), Err(err.clone()));
    }

    /// Keeps the results of a call this host runs or fails for `owner` (see
    /// `keep_results_for_owner`), unless they were kept when it was queued.
    fn keep_results(&self, owner: raya_common::NodeId, call: &CallMeta) {
        if self.kept_early.borrow_mut().remove(&call.task_id) {
            return;
        }
        keep_results_for_owner(
            &self.env.store,
            self.env.objects.as_ref(),
            owner,
            call.task_id,
            call.num_returns,
        );
    }

    /// Fails the calls still running (their late results are ignored by the store).
    pub(super) fn abandon_running(&mut self, err: &TaskError, ctx: &mut Context<Self>) {
        for (_, r) in self.running.drain() {
            r.cancel.store(true, Ordering::Relaxed);
            if let Some(h) = r.spawn {
                ctx.cancel_future(h);
            }
            finish_call(&self.env, self.id, r.meta, Err(err.clone()));
        }
        self.slots.clear();
    }

    /// The actor restarts while calls run: an `async` call is stopped and runs again on the
    /// new instance when `max_task_retries` allows (else it fails with `err`); a synchronous
    /// call cannot be stopped on its thread, so it finishes there, and the calls of its batch
    /// not started yet come back to the queue (`BatchDone`).
    pub(super) fn rerun_running(&mut self, err: &TaskError, ctx: &mut Context<Self>) {
        let retries = self.opts.max_task_retries;
        let mut again = Vec::new();
        for (_, r) in self.running.drain() {
            let Some(h) = r.spawn else { continue };
            ctx.cancel_future(h);
            r.cancel.store(true, Ordering::Relaxed);
            match r.retry {
                Some(mut call) if retries < 0 || i64::from(call.attempt) < retries => {
                    call.attempt += 1;
                    again.push(call);
                }
                _ => finish_call(&self.env, self.id, r.meta, Err(err.clone())),
            }
        }
        for call in again.into_iter().rev() {
            self.queue.push_front(call);
        }
        self.slots.clear();
    }

    fn first_pending_arg(&self, call: &ActorCall<A>) -> Option<ObjectId> {
        call.args.iter().find_map(|a| match a {
            TaskArg::Ref(r) if self.env.store.status(r.id()) == ObjectStatus::Pending => {
                Some(r.id())
            }
            _ => None,
        })
    }

    pub(super) fn idle(&self) -> bool {
        self.queue.is_empty() && self.running.is_empty()
    }

    /// Starts every call that may start now.
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            if !matches!(self.lifecycle, Lifecycle::Alive) {
                return;
            }
            let Some(front) = self.queue.front() else {
                if self.handles_dropped && self.idle() {
                    self.die(out_of_scope(), ctx);
                }
                return;
            };
            if let Some(pending) = self.first_pending_arg(front) {
                if self.front_waits_on != Some(pending) {
                    self.front_waits_on = Some(pending);
                    let me = ctx.address();
                    self.env
                        .store
                        .on_ready(pending, Box::new(move || me.do_send(FrontCallReady)));
                }
                return;
            }
            self.front_waits_on = None;
            let kind = front.method.kind;
            let serial = self.opts.max_concurrency == 1;
            let exclusive = serial || kind.exclusive();
            if !self.slots.can_start(exclusive, self.opts.max_concurrency) {
                return;
            }
            let call = self.queue.pop_front().expect("front exists");
            if kind.is_async() {
                self.dispatch_async(call, exclusive, ctx);
                continue;
            }
            self.dispatch_sync(call, serial, exclusive, ctx);
        }
    }

    /// Starts `first` and the consecutive ready calls that may run the same way: a serial
    /// actor runs them in order on one thread; `&self` calls of a threaded actor are spread over
    /// its free slots; a `&mut self` call of a threaded actor runs alone.
    fn dispatch_sync(
        &mut self,
        first: ActorCall<A>,
        serial: bool,
        exclusive: bool,
        ctx: &mut Context<Self>,
    ) {
        let free = if exclusive {
            1
        } else {
            (self.opts.max_concurrency - self.slots.used) as usize
        };
        let mut calls = vec![first];
        let gather = serial || !exclusive;
        while gather && calls.len() < BATCH_PER_SLOT * free {
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
            return;
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

    /// Runs `batch` on a pool thread, in order, until one panics; [`BatchDone`] reports.
    fn dispatch_batch(
        &mut self,
        batch: Vec<ActorCall<A>>,
        exclusive: bool,
        ctx: &mut Context<Self>,
    ) {
        self.slots.take(exclusive);
        let keep_args = self.opts.max_task_retries != 0;
        let calls: Vec<(ActorCall<A>, Arc<AtomicBool>)> = batch
            .into_iter()
            .map(|c| {
                self.keep_results(c.owner, &c.meta());
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
        let call_env = CallEnv {
            id: self.id,
            restarts: self.restarts,
            cell: Arc::clone(&self.cell),
            env: Arc::clone(&self.env),
            keep_args,
        };
        let me = ctx.address();
        let generation = self.generation;
        let current = Arc::clone(&self.shared_generation);
        self.env.threads.execute(move || {
            let mut done = Vec::with_capacity(calls.len());
            let mut crashed = None;
            let mut restarted = None;
            let mut it = calls.into_iter();
            for (call, cancel) in it.by_ref() {
                if current.load(Ordering::SeqCst) != generation {
                    // The actor restarted (or died): the rest is the host's to run or fail.
                    restarted = Some(call);
                    break;
                }
                if cancel.load(Ordering::Relaxed) {
                    done.push(call.task_id);
                    continue;
                }
                let id = call.task_id;
                match run_sync(&call_env, call, cancel) {
                    Ok(()) => done.push(id),
                    Err(c) => {
                        crashed = Some(*c);
                        break;
                    }
                }
            }
            let rest = restarted.into_iter().chain(it.map(|(c, _)| c)).collect();
            me.do_send(BatchDone {
                generation,
                done,
                crashed,
                rest,
            });
        });
    }

    /// Runs an `async` call on the host's event loop.
    fn dispatch_async(&mut self, mut call: ActorCall<A>, exclusive: bool, ctx: &mut Context<Self>) {
        let f = match call.method.kind {
            MethodKind::AsyncMut(f) | MethodKind::AsyncRef(f) => f,
            _ => unreachable!("only async methods are dispatched here"),
        };
        self.slots.take(exclusive);
        self.keep_results(call.owner, &call.meta());
        let cancel = Arc::new(AtomicBool::new(false));
        let retry = (self.opts.max_task_retries != 0).then(|| call.clone());
        let args = std::mem::take(&mut call.args);
        let meta = call.meta();
        record_call(&self.env, self.id, meta, TaskState::Running);
        let args = Args::new(
            args,
            Arc::clone(&self.env.store),
            call.method.name.into(),
            call.num_returns,
        );
        let exec = ExecCtx::actor_call(call.task_id, self.id, Arc::clone(&cancel));
        let actor_ctx = MethodContext::new(self.id, self.env.node, self.restarts);
        let fut = {
            let _g = context::enter(Arc::clone(&exec));
            f(Arc::clone(&self.cell), actor_ctx, args)
        };
        let generation = self.generation;
        let task_id = call.task_id;
        let wrapped = CatchUnwind(Box::pin(WithCtx { ctx: exec, fut }));
        let handle = ctx.spawn(actix::fut::wrap_future::<_, Self>(wrapped).map(
            move |res, this, ctx| {
                let retry = match this.running.remove(&task_id) {
                    Some(r) if generation == this.generation => {
                        this.slots.give_back(r.exclusive);
                        r.retry
                    }
                    _ => None,
                };
                match res {
                    Ok(output) => finish_call(&this.env, this.id, meta, output),
                    Err(msg) if generation == this.generation => {
                        // Without a kept copy the call is retried without its arguments: it
                        // then fails on them, as a call past its retries would.
                        let call = retry.unwrap_or(ActorCall {
                            args: Vec::new(),
                            ..call
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

    /// Cancels a queued call (it fails as cancelled and never runs) or a running one (flagged;
    /// an async one is stopped at its next await point when `force`).
    pub(super) fn cancel(&mut self, task_id: TaskId, force: bool, ctx: &mut Context<Self>) {
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
        finish_call(&self.env, self.id, r.meta, Err(cancelled));
        if force && let Some(h) = r.spawn.take() {
            ctx.cancel_future(h);
            let exclusive = r.exclusive;
            self.running.remove(&task_id);
            self.slots.give_back(exclusive);
            self.pump(ctx);
        }
    }
}

impl<A: ActorClass> Handler<ActorCall<A>> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, call: ActorCall<A>, ctx: &mut Context<Self>) {
        match &self.lifecycle {
            Lifecycle::Remote(sender) => {
                self.forward_call(&sender.clone(), call);
                return;
            }
            Lifecycle::Dead(cause) => {
                let err = self.died_error(cause);
                self.fail_call(&call, &err);
                return;
            }
            _ => {}
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
        // A call queued here will run or fail here, or wait here for the node the actor moved
        // to (which the owner is told of when it is passed on, and this node lets go then):
        // its owner may count on this node making it from now on. Not while the actor is being
        // placed: the call goes to the node it lands on, which keeps the results then.
        if !matches!(self.lifecycle, Lifecycle::Placing)
            && call.owner != self.env.node
            && !self.kept_early.borrow().contains(&call.task_id)
        {
            self.keep_results(call.owner, &call.meta());
            self.kept_early.borrow_mut().insert(call.task_id);
        }
        self.queue.push_back(call);
        self.pump(ctx);
    }
}

impl<A: ActorClass> Handler<WireActorCall> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, w: WireActorCall, ctx: &mut Context<Self>) {
        if let Lifecycle::Remote(sender) = &self.lifecycle {
            sender.do_send(w);
            return;
        }
        let meta = CallMeta {
            task_id: w.task_id,
            attempt: w.attempt,
            name: "actor call",
            num_returns: w.num_returns,
            parent: w.parent,
        };
        let w_owner = w.owner;
        match ActorCall::<A>::from_wire(w) {
            Ok(call) => <Self as Handler<ActorCall<A>>>::handle(self, call, ctx),
            Err(e) => {
                self.keep_results(w_owner, &meta);
                finish_call(&self.env, self.id, meta, Err(e))
            }
        }
    }
}

impl<A: ActorClass> Handler<FrontCallReady> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, _: FrontCallReady, ctx: &mut Context<Self>) {
        self.front_waits_on = None;
        self.pump(ctx);
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
            self.slots.give_back(exclusive);
        }
        match &self.lifecycle {
            Lifecycle::Dead(cause) => {
                let err = self.died_error(cause);
                for c in &m.rest {
                    self.fail_call(c, &err);
                }
            }
            Lifecycle::Remote(sender) => {
                // The instance here stopped while the batch ran (the head records the actor
                // elsewhere): what it did not start goes where the actor is.
                let sender = sender.clone();
                for c in m.rest {
                    self.forward_call(&sender, c);
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
