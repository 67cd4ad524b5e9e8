//! Workers: one Actix actor per thread (an Arbiter each), running one task at a time, and the
//! factory through which the local scheduler's worker pool starts them.
//!
//! A worker serves [`WorkerCommand`]: `Execute` runs a task (a synchronous function inline, an
//! `async fn` on the worker's event loop) through the [execution path](crate::execution) and
//! tells the scheduler [`TaskDone`], with a retry when the failure allows one; `Cancel` flags
//! (or, for an `async` task with `force`, stops) the task it runs; `Stop` ends the thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use raya_cluster::gcs::task_events::{TaskEventBuffer, TaskState};
use raya_common::{NodeId, ResourceSet, TaskError, TaskErrorKind, TaskId, WorkerId};
use raya_scheduler::{
    CancelFlags, LocalScheduler, TaskDone, TaskOutcome, TaskSpec, WorkerCommand, WorkerFactory,
    record_event,
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
    task_id: TaskId,
    cancel: Arc<AtomicBool>,
    /// For an async task: its future, and the spec (without arguments) to report it by.
    spawn: Option<(SpawnHandle, Box<TaskSpec>)>,
}

/// `spec` without its arguments: enough to report the task.
fn described(spec: &TaskSpec) -> TaskSpec {
    TaskSpec {
        args: Vec::new(),
        resources: ResourceSet::new(),
        function: spec.function.clone(),
        strategy: spec.strategy.clone(),
        kind: spec.kind.clone(),
        ..*spec
    }
}

/// A worker: runs the tasks its node's local scheduler gives it, one at a time, on its own
/// thread.
pub(crate) struct Worker {
    id: WorkerId,
    env: WorkerEnv,
    scheduler: Addr<LocalScheduler>,
    current: Option<Current>,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Worker {
    fn execute(&mut self, mut spec: TaskSpec, ctx: &mut Context<Self>) {
        let Some(entry) = registry::function(spec.function.local_index, &spec.function.name) else {
            let err = TaskError::new(
                TaskErrorKind::UnknownFunction,
                format!(
                    "no remote function named {:?} is registered in this binary",
                    spec.function.name
                ),
            );
            self.finish(spec, Err(err));
            return;
        };
        // Arguments are kept for a retry only when one is possible.
        let args = if spec.attempt < spec.max_retries {
            spec.args.clone()
        } else {
            std::mem::take(&mut spec.args)
        };
        let cancel = Arc::new(AtomicBool::new(false));
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
        match entry.invoke {
            Invoke::Sync(f) => {
                self.current = Some(Current {
                    task_id: spec.task_id,
                    cancel,
                    spawn: None,
                });
                let out = {
                    let _g = context::enter(exec);
                    catch(|| f(&mut args)).unwrap_or_else(|msg| Err(panicked(msg)))
                };
                drop(args);
                self.finish(spec, out);
            }
            Invoke::Async(f) => {
                let fut = {
                    let _g = context::enter(Arc::clone(&exec));
                    f(args)
                };
                let task_id = spec.task_id;
                let report = Box::new(described(&spec));
                let wrapped = CatchUnwind(Box::pin(WithCtx { ctx: exec, fut }));
                let handle = ctx.spawn(actix::fut::wrap_future::<_, Self>(wrapped).map(
                    move |res, this, _| this.finish(spec, res.unwrap_or_else(|m| Err(panicked(m)))),
                ));
                self.current = Some(Current {
                    task_id,
                    cancel,
                    spawn: Some((handle, report)),
                });
            }
        }
    }

    /// Stores the task's results (or error) and tells the scheduler, asking for a retry when
    /// the failure allows one.
    fn finish(&mut self, mut spec: TaskSpec, out: Output) {
        self.env.cancel_flags.unregister(spec.task_id);
        let cancelled = self
            .current
            .take()
            .is_some_and(|c| c.task_id == spec.task_id && c.cancel.load(Ordering::Relaxed));
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
                record_event(events, &spec, node, TaskState::Cancelled);
                TaskOutcome::Failed
            }
            Ok(()) => {
                record_event(events, &spec, node, TaskState::Finished);
                TaskOutcome::Finished
            }
            Err(e) => {
                record_event(events, &spec, node, TaskState::Failed);
                if should_retry(&e, &spec) {
                    tracing::debug!(task = %spec.task_id, attempt = spec.attempt, error = %e, "task failed, retrying");
                    spec.attempt += 1;
                    TaskOutcome::Retry(Box::new(spec.clone()))
                } else {
                    fail_returns(&self.env.store, events, node, returns, spec.attempt, e);
                    TaskOutcome::Failed
                }
            }
        };
        self.scheduler.do_send(TaskDone {
            worker: Some(self.id),
            task_id: spec.task_id,
            outcome,
        });
    }

    fn cancel(&mut self, task_id: TaskId, force: bool, ctx: &mut Context<Self>) {
        let Some(cur) = &mut self.current else { return };
        if cur.task_id != task_id {
            return;
        }
        cur.cancel.store(true, Ordering::Relaxed);
        if force && let Some((h, spec)) = cur.spawn.take() {
            // An async task stops at its current await point; its results were already
            // reported as cancelled by the scheduler.
            ctx.cancel_future(h);
            self.current = None;
            self.env.cancel_flags.unregister(task_id);
            record_event(&self.env.events, &spec, self.env.node, TaskState::Cancelled);
            self.scheduler.do_send(TaskDone {
                worker: Some(self.id),
                task_id,
                outcome: TaskOutcome::Failed,
            });
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
            WorkerCommand::Execute(spec) => self.execute(*spec, ctx),
            WorkerCommand::Cancel { task_id, force } => self.cancel(task_id, force, ctx),
            WorkerCommand::Stop => {
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
        })
        .recipient()
    }
}
