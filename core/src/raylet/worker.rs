//! Workers: one Actix actor per thread (an Arbiter each), running one task at a time, and the
//! factory through which the local scheduler's worker pool starts them.
//!
//! A worker serves [`WorkerCommand`]: `Execute` runs a task (a synchronous function inline, an
//! `async fn` on the worker's event loop) through the [execution path](crate::execution) and
//! tells the scheduler [`TaskDone`], with a retry when the failure allows one; `Cancel` flags
//! (or, for an `async` task with `force`, stops) the task it runs; `Stop` ends the thread.
//!
//! Panics in the task, in dropping its arguments and in storing its results are caught and
//! reported as the task's. A worker whose thread dies all the same (a panic elsewhere unwinds
//! out of its event loop, dropping it) tells the scheduler as it goes ([`WorkerStopped`], with
//! the task it ran), so the task fails or is retried, its resources come back and another
//! worker takes its place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use raya_cluster::gcs::task_events::{TaskEventBuffer, TaskState};
use raya_common::{NodeId, TaskError, TaskErrorKind, TaskId, WorkerId};
use raya_scheduler::{
    CancelFlags, LocalScheduler, TaskDone, TaskOutcome, TaskSpec, WorkerCommand, WorkerFactory,
    WorkerStopped, record_event,
};
use raya_store::StoreCore;

use crate::execution::args::Args;
use crate::execution::context::{self, ExecCtx, WithCtx};
use crate::execution::panic::{CatchUnwind, catch};
use crate::execution::results::{Returns, fail_returns, store_output};
use crate::registry::{self, Invoke, Output};

/// What every worker of a node uses.
#[derive(Clone)]
pub(crate) struct WorkerEnv {
    pub(crate) node: NodeId,
    pub(crate) store: Arc<StoreCore>,
    pub(crate) events: TaskEventBuffer,
    pub(crate) cancel_flags: CancelFlags,
}

/// The task a worker runs now.
struct Current {
    /// The task (with its arguments when a retry may need them).
    spec: Box<TaskSpec>,
    cancel: Arc<AtomicBool>,
    /// For an async task: its future.
    spawn: Option<SpawnHandle>,
}

/// A worker: runs the tasks its node's local scheduler gives it, one at a time, on its own
/// thread.
pub(crate) struct Worker {
    id: WorkerId,
    env: WorkerEnv,
    scheduler: Addr<LocalScheduler>,
    current: Option<Current>,
    /// Told to stop: its end is no news to the scheduler.
    stopping: bool,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.stopping {
            return;
        }
        // Dropped without being told to stop: its thread is unwinding, or its event loop ended.
        let task = self.current.take().map(|c| {
            self.env.cancel_flags.unregister(c.spec.task_id);
            c.spec
        });
        self.scheduler.do_send(WorkerStopped {
            worker: self.id,
            task,
        });
    }
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Worker {
    fn execute(&mut self, mut spec: TaskSpec, ctx: &mut Context<Self>) {
        let cancel = Arc::new(AtomicBool::new(false));
        let Some(entry) = registry::function(spec.function.local_index, &spec.function.name) else {
            let err = TaskError::new(
                TaskErrorKind::UnknownFunction,
                format!(
                    "no remote function named {:?} is registered in this binary",
                    spec.function.name
                ),
            );
            self.current = Some(Current {
                spec: Box::new(spec),
                cancel,
                spawn: None,
            });
            self.finish(Err(err));
            return;
        };
        // Arguments are kept for a retry only when one is possible.
        let args = if spec.attempt < spec.max_retries {
            spec.args.clone()
        } else {
            std::mem::take(&mut spec.args)
        };
        self.env
            .cancel_flags
            .register(spec.task_id, Arc::clone(&cancel));
        let exec = ExecCtx::task(
            spec.task_id,
            (self.id, self.scheduler.clone()),
            Arc::clone(&cancel),
        );
        let mut args = Args::new(
            args,
            Arc::clone(&self.env.store),
            Arc::clone(&spec.function.name),
            spec.num_returns,
        );
        let span =
            tracing::debug_span!("task", task = %spec.task_id, function = %spec.function.name);
        let _span = span.enter();
        self.current = Some(Current {
            spec: Box::new(spec),
            cancel,
            spawn: None,
        });
        match entry.invoke {
            Invoke::Sync(f) => {
                let out = {
                    let _g = context::enter(exec);
                    catch(|| f(&mut args)).unwrap_or_else(|msg| Err(panicked(msg)))
                };
                // The arguments' `Drop` is user code too.
                let out = match catch(move || drop(args)) {
                    Ok(()) => out,
                    Err(msg) => Err(panicked(format!("dropping an argument panicked: {msg}"))),
                };
                self.finish(out);
            }
            Invoke::Async(f) => {
                let fut = {
                    let _g = context::enter(Arc::clone(&exec));
                    f(args)
                };
                let wrapped = CatchUnwind(Box::pin(WithCtx { ctx: exec, fut }));
                let handle = ctx.spawn(actix::fut::wrap_future::<_, Self>(wrapped).map(
                    move |res, this, _| this.finish(res.unwrap_or_else(|m| Err(panicked(m)))),
                ));
                if let Some(c) = &mut self.current {
                    c.spawn = Some(handle);
                }
            }
        }
    }

    /// Stores the current task's results (or error) and tells the scheduler, asking for a
    /// retry when the failure allows one.
    fn finish(&mut self, out: Output) {
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        let spec = &cur.spec;
        self.env.cancel_flags.unregister(spec.task_id);
        let cancelled = cur.cancel.load(Ordering::Relaxed);
        let returns = Returns {
            task_id: spec.task_id,
            num_returns: spec.num_returns,
            name: &spec.function.name,
        };
        let stored = store_output(&self.env.store, returns, out);
        let (events, node) = (&self.env.events, self.env.node);
        let outcome = match stored {
            // A cancelled task's results were already reported as cancelled.
            _ if cancelled => {
                record_event(events, spec, node, TaskState::Cancelled);
                TaskOutcome::Failed
            }
            Ok(()) => {
                record_event(events, spec, node, TaskState::Finished);
                TaskOutcome::Finished
            }
            Err(e) => {
                record_event(events, spec, node, TaskState::Failed);
                if should_retry(&e, spec) {
                    tracing::debug!(task = %spec.task_id, attempt = spec.attempt, error = %e, "task failed, retrying");
                    let mut next = spec.clone();
                    next.attempt += 1;
                    TaskOutcome::Retry(next)
                } else {
                    fail_returns(&self.env.store, events, node, returns, spec.attempt, e);
                    TaskOutcome::Failed
                }
            }
        };
        let task_id = spec.task_id;
        let done = self.current.take();
        self.scheduler.do_send(TaskDone {
            worker: Some(self.id),
            task_id,
            outcome,
        });
        // Reported first: the arguments kept for a retry are user values, and their `Drop` may
        // panic.
        if let Err(msg) = catch(move || drop(done)) {
            tracing::warn!(task = %task_id, panic = %msg, "dropping a task's arguments panicked");
        }
    }

    fn cancel(&mut self, task_id: TaskId, force: bool, ctx: &mut Context<Self>) {
        let Some(cur) = &mut self.current else { return };
        if cur.spec.task_id != task_id {
            return;
        }
        cur.cancel.store(true, Ordering::Relaxed);
        if force && let Some(h) = cur.spawn.take() {
            // An async task stops at its current await point; its results were already
            // reported as cancelled by the scheduler.
            let done = self.current.take();
            self.env.cancel_flags.unregister(task_id);
            if let Some(c) = &done {
                record_event(
                    &self.env.events,
                    &c.spec,
                    self.env.node,
                    TaskState::Cancelled,
                );
            }
            self.scheduler.do_send(TaskDone {
                worker: Some(self.id),
                task_id,
                outcome: TaskOutcome::Failed,
            });
            // Reported first: dropping the future and the arguments runs user `Drop`s (and a
            // panic in the future's drops the worker, which its replacement makes good).
            if let Err(msg) = catch(move || drop(done)) {
                tracing::warn!(task = %task_id, panic = %msg, "dropping a task's arguments panicked");
            }
            ctx.cancel_future(h);
        }
    }
}

fn panicked(msg: String) -> TaskError {
    TaskError::new(TaskErrorKind::Panic, msg)
}

/// Whether a failed attempt is run again, within `max_retries`: system failures and lost
/// objects are; application errors and panics only with `retry_exceptions`; errors that came
/// from another task (a failed argument or a nested `get`) never are, since running this task
/// again would meet them again.
fn should_retry(e: &TaskError, spec: &TaskSpec) -> bool {
    let own = e.chain.is_empty();
    let allowed = match e.kind {
        TaskErrorKind::Application | TaskErrorKind::Panic => spec.retry_exceptions,
        TaskErrorKind::ObjectLost | TaskErrorKind::System => true,
        _ => false,
    };
    own && allowed && spec.attempt < spec.max_retries
}

impl Handler<WorkerCommand> for Worker {
    type Result = ();
    fn handle(&mut self, cmd: WorkerCommand, ctx: &mut Context<Self>) {
        match cmd {
            WorkerCommand::Execute(d) => self.execute(*d.take(), ctx),
            WorkerCommand::Cancel { task_id, force } => self.cancel(task_id, force, ctx),
            WorkerCommand::Stop => {
                self.stopping = true;
                ctx.stop();
                Arbiter::current().stop();
            }
        }
    }
}

/// Starts each worker on an Arbiter (thread) of its own.
pub(crate) struct ThreadWorkerFactory {
    pub(crate) env: WorkerEnv,
}

impl WorkerFactory for ThreadWorkerFactory {
    fn start_worker(
        &mut self,
        id: WorkerId,
        scheduler: Addr<LocalScheduler>,
    ) -> Recipient<WorkerCommand> {
        let arbiter = Arbiter::new();
        let env = self.env.clone();
        Worker::start_in_arbiter(&arbiter.handle(), move |_| Worker {
            id,
            env,
            scheduler,
            current: None,
            stopping: false,
        })
        .recipient()
    }
}
