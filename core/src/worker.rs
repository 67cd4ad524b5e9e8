//! Workers: one Actix actor per thread (an Arbiter each), running one task at a time.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use raya_cluster::gcs::task_events::TaskState;
use raya_common::{TaskError, TaskErrorKind, WorkerId};
use raya_scheduler::{
    LocalScheduler, TaskDone, TaskOutcome, TaskSpec, WorkerCommand, WorkerFactory, record_event,
};

use crate::actor::host::{CatchUnwind, panic_message};
use crate::args::Args;
use crate::context::{self, ExecCtx, WithCtx};
use crate::registry::{self, Invoke, Output};
use crate::runtime::NodeShared;

struct Current {
    task_id: raya_common::TaskId,
    cancel: Arc<AtomicBool>,
    /// For an async task: its future, and the spec (without arguments) to report it by.
    spawn: Option<(SpawnHandle, Box<TaskSpec>)>,
}

/// `spec` without its arguments: enough to report the task.
fn described(spec: &TaskSpec) -> TaskSpec {
    TaskSpec {
        task_id: spec.task_id,
        job: spec.job,
        parent: spec.parent,
        origin: spec.origin,
        function: spec.function.clone(),
        args: Vec::new(),
        num_returns: spec.num_returns,
        resources: raya_common::ResourceSet::new(),
        strategy: spec.strategy.clone(),
        max_retries: spec.max_retries,
        retry_exceptions: spec.retry_exceptions,
        attempt: spec.attempt,
        kind: spec.kind.clone(),
    }
}

/// A worker: runs the tasks its node's local scheduler gives it, one at a time, on its own
/// thread. Synchronous functions run inline; `async fn`s run on the worker's event loop.
pub(crate) struct Worker {
    id: WorkerId,
    rt: Arc<NodeShared>,
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
        self.rt
            .cancel_flags
            .register(spec.task_id, Arc::clone(&cancel));
        let exec = Arc::new(ExecCtx {
            task_id: spec.task_id,
            actor: None,
            worker: Some((self.id, self.scheduler.clone())),
            cancelled: Arc::clone(&cancel),
            lent: AtomicBool::new(false),
        });
        let mut args = Args::new(
            args,
            Arc::clone(&self.rt.store),
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
                    std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut args))).unwrap_or_else(
                        |p| Err(TaskError::new(TaskErrorKind::Panic, panic_message(p))),
                    )
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
                    move |res, this, _| {
                        let out = res
                            .unwrap_or_else(|msg| Err(TaskError::new(TaskErrorKind::Panic, msg)));
                        this.finish(spec, out);
                    },
                ));
                self.current = Some(Current {
                    task_id,
                    cancel,
                    spawn: Some((handle, report)),
                });
            }
        }
    }

    /// Stores the task's results (or error) and tells the scheduler.
    fn finish(&mut self, mut spec: TaskSpec, out: Output) {
        self.rt.cancel_flags.unregister(spec.task_id);
        let cancelled = self
            .current
            .take()
            .is_some_and(|c| c.task_id == spec.task_id && c.cancel.load(Ordering::Relaxed));
        let node = self.rt.node;
        let error = match out {
            Ok(values) if values.len() == spec.num_returns as usize => {
                let mut err = None;
                for (i, v) in values.into_iter().enumerate() {
                    if let Err(e) = self.rt.store.complete(spec.return_id(i as u32), v) {
                        err = Some(TaskError::new(TaskErrorKind::StoreFull, e.to_string()));
                    }
                }
                err
            }
            Ok(values) => Some(TaskError::new(
                TaskErrorKind::Application,
                format!(
                    "returned {} values but num_returns is {}",
                    values.len(),
                    spec.num_returns
                ),
            )),
            Err(e) => Some(e),
        };
        let outcome = match error {
            // A cancelled task's results were already reported as cancelled.
            _ if cancelled => {
                record_event(&self.rt.events, &spec, node, TaskState::Cancelled);
                TaskOutcome::Failed
            }
            None => {
                record_event(&self.rt.events, &spec, node, TaskState::Finished);
                TaskOutcome::Finished
            }
            Some(e) => {
                // Errors that came from another task (a failed argument or a nested `get`) are
                // not retried here: running this task again would meet them again.
                let own = e.chain.is_empty();
                let retryable = match e.kind {
                    TaskErrorKind::Application | TaskErrorKind::Panic => spec.retry_exceptions,
                    TaskErrorKind::ObjectLost | TaskErrorKind::System => true,
                    _ => false,
                };
                record_event(&self.rt.events, &spec, node, TaskState::Failed);
                if own && retryable && !cancelled && spec.attempt < spec.max_retries {
                    tracing::debug!(task = %spec.task_id, attempt = spec.attempt, error = %e, "task failed, retrying");
                    spec.attempt += 1;
                    TaskOutcome::Retry(Box::new(spec.clone()))
                } else {
                    let e = Arc::new(e.with_frame(spec.frame(Some(node))));
                    for id in spec.return_ids() {
                        self.rt.store.fail(id, Arc::clone(&e));
                    }
                    let msg = e.to_string();
                    self.rt
                        .events
                        .update(spec.task_id, spec.attempt, |ev| ev.error = Some(msg));
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
}

impl Handler<WorkerCommand> for Worker {
    type Result = ();
    fn handle(&mut self, cmd: WorkerCommand, ctx: &mut Context<Self>) {
        match cmd {
            WorkerCommand::Execute(spec) => self.execute(*spec, ctx),
            WorkerCommand::Cancel { task_id, force } => {
                if let Some(cur) = &mut self.current
                    && cur.task_id == task_id
                {
                    cur.cancel.store(true, Ordering::Relaxed);
                    if force && let Some((h, spec)) = cur.spawn.take() {
                        // An async task stops at its current await point; its results were
                        // already reported as cancelled by the scheduler.
                        ctx.cancel_future(h);
                        self.current = None;
                        self.rt.cancel_flags.unregister(task_id);
                        record_event(&self.rt.events, &spec, self.rt.node, TaskState::Cancelled);
                        self.scheduler.do_send(TaskDone {
                            worker: Some(self.id),
                            task_id,
                            outcome: TaskOutcome::Failed,
                        });
                    }
                }
            }
            WorkerCommand::Stop => {
                ctx.stop();
                Arbiter::current().stop();
            }
        }
    }
}

/// Starts each worker on an Arbiter (thread) of its own.
pub(crate) struct ThreadWorkers {
    pub(crate) rt: Arc<NodeShared>,
}

impl WorkerFactory for ThreadWorkers {
    fn start_worker(
        &mut self,
        id: WorkerId,
        scheduler: Addr<LocalScheduler>,
    ) -> Recipient<WorkerCommand> {
        let arbiter = Arbiter::new();
        let rt = Arc::clone(&self.rt);
        Worker::start_in_arbiter(&arbiter.handle(), move |_| Worker {
            id,
            rt,
            scheduler,
            current: None,
        })
        .recipient()
    }
}
