//! Submitting tasks (Ray's normal task submitter): a task's results are owned here from the
//! moment it is submitted — their references exist before the task is queued — and the task
//! goes to the node's local scheduler within the node's queue bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::Addr;
use raya_common::{ObjectId, TaskError, TaskErrorKind, TaskFrame};
use raya_scheduler::{
    CancelTask, FunctionDescriptor, LocalScheduler, SubmitTask, TaskArg, TaskKind, TaskSpec,
};
use raya_store::RawRef;

use super::CoreWorker;
use crate::api::task::TaskOptions;
use crate::error::{Error, Result};

/// The way into the node's local scheduler.
#[derive(Debug)]
pub(crate) struct TaskSubmitter {
    scheduler: Addr<LocalScheduler>,
    /// Tasks submitted and not yet dispatched (the scheduler counts them down).
    queued: Arc<AtomicUsize>,
    max_pending: usize,
}

impl TaskSubmitter {
    pub(crate) fn new(
        scheduler: Addr<LocalScheduler>,
        queued: Arc<AtomicUsize>,
        max_pending: usize,
    ) -> Self {
        TaskSubmitter {
            scheduler,
            queued,
            max_pending,
        }
    }

    /// Hands a task to the local scheduler, within the queue bound.
    pub(crate) fn submit(&self, spec: TaskSpec) -> Result<()> {
        let queued = self.queued.fetch_add(1, Ordering::Relaxed);
        if queued >= self.max_pending {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::QueueFull(format!(
                "{queued} tasks are queued on this node (max_pending_tasks = {})",
                self.max_pending
            )));
        }
        self.scheduler.do_send(SubmitTask(spec));
        Ok(())
    }

    /// Cancels task `task_id` (and the tasks it submitted) wherever it is on this node.
    pub(crate) fn cancel(&self, task_id: raya_common::TaskId, force: bool) {
        self.scheduler.do_send(CancelTask {
            task_id,
            force,
            recursive: true,
        });
    }
}

impl CoreWorker {
    /// Submits a task running `function` and returns references to its `num_returns` results.
    /// Errors in the submission itself (invalid options, a full queue) are stored in the
    /// results.
    pub(crate) fn submit_task(
        &self,
        function: FunctionDescriptor,
        options: &TaskOptions,
        args: Vec<TaskArg>,
        num_returns: u32,
    ) -> Vec<RawRef> {
        let task_id = self.ids.task_id();
        let refs: Vec<RawRef> = (0..num_returns)
            .map(|i| self.store.add_ref(ObjectId::for_return(task_id, i)))
            .collect();
        let reject = |kind: TaskErrorKind, msg: String| {
            let e = Arc::new(TaskError::new(kind, msg).with_frame(TaskFrame {
                task: task_id,
                function: function.name.to_string(),
                node: Some(self.node),
            }));
            for r in &refs {
                self.store.fail(r.id(), Arc::clone(&e));
            }
        };
        let resources = match options.resource_set() {
            Ok(r) => r,
            Err(e) => {
                reject(TaskErrorKind::InvalidOptions, e.to_string());
                return refs;
            }
        };
        let label_selector = match crate::api::task::label_selector(&options.label_selector) {
            Ok(s) => s,
            Err(e) => {
                reject(TaskErrorKind::InvalidOptions, e);
                return refs;
            }
        };
        let spec = TaskSpec {
            task_id,
            job: self.job,
            parent: self.current_task(),
            origin: self.node,
            function: function.clone(),
            args,
            num_returns,
            resources,
            strategy: options.scheduling_strategy.clone(),
            label_selector,
            max_retries: options.max_retries,
            retry_exceptions: options.retry_exceptions,
            attempt: 0,
            kind: TaskKind::Normal,
        };
        if let Err(e) = self.tasks.submit(spec) {
            reject(TaskErrorKind::QueueFull, e.to_string());
        }
        refs
    }
}
