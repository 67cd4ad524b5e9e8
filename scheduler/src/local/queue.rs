//! The local scheduler's two queues: tasks waiting for their arguments, and tasks ready to run
//! waiting for resources, one FIFO per resource shape (so that a large task at the front does
//! not hold back small tasks of another shape).

use std::collections::{HashMap, VecDeque};

use raya_common::{FastHashMap, ResourceSet, TaskId};

use crate::task_spec::TaskSpec;

/// A task some of whose `ObjectRef` arguments are still pending.
struct Waiting {
    spec: TaskSpec,
    /// Arguments not ready yet; the task moves on when this reaches 0.
    missing_args: u32,
}

/// Tasks waiting for arguments, by id. Each pending argument has a store callback that calls
/// [`ArgWait::arrived`].
#[derive(Default)]
pub(super) struct ArgWait {
    tasks: FastHashMap<TaskId, Waiting>,
}

impl ArgWait {
    /// Parks `spec` until `missing_args` arguments are ready.
    pub(super) fn park(&mut self, spec: TaskSpec, missing_args: u32) {
        self.tasks
            .insert(spec.task_id, Waiting { spec, missing_args });
    }

    /// One argument of `task` became ready (or failed): the task, when it was the last.
    pub(super) fn arrived(&mut self, task: TaskId) -> Option<TaskSpec> {
        let w = self.tasks.get_mut(&task)?;
        w.missing_args -= 1;
        if w.missing_args > 0 {
            return None;
        }
        self.tasks.remove(&task).map(|w| w.spec)
    }

    /// Takes `task` out, when it waits here.
    pub(super) fn remove(&mut self, task: TaskId) -> Option<TaskSpec> {
        self.tasks.remove(&task).map(|w| w.spec)
    }

    pub(super) fn len(&self) -> usize {
        self.tasks.len()
    }
}

/// Ready tasks of one resource shape, in submission order.
pub(super) struct ShapeQueue {
    pub(super) shape: ResourceSet,
    pub(super) tasks: VecDeque<TaskSpec>,
}

/// Ready tasks waiting for resources or a worker, one [`ShapeQueue`] per distinct resource set.
#[derive(Default)]
pub(super) struct ReadyQueue {
    pub(super) shapes: Vec<ShapeQueue>,
    index: HashMap<ResourceSet, usize>,
}

impl ReadyQueue {
    /// Queues `spec` behind the tasks of its shape.
    pub(super) fn push(&mut self, spec: TaskSpec) {
        let i = match self.index.get(&spec.resources) {
            Some(&i) => i,
            None => {
                self.shapes.push(ShapeQueue {
                    shape: spec.resources.clone(),
                    tasks: VecDeque::new(),
                });
                self.index
                    .insert(spec.resources.clone(), self.shapes.len() - 1);
                self.shapes.len() - 1
            }
        };
        self.shapes[i].tasks.push_back(spec);
    }

    /// Takes `task` out, when it is queued.
    pub(super) fn remove(&mut self, task: TaskId) -> Option<TaskSpec> {
        for q in &mut self.shapes {
            if let Some(pos) = q.tasks.iter().position(|t| t.task_id == task) {
                return q.tasks.remove(pos);
            }
        }
        None
    }

    /// Tasks queued.
    pub(super) fn len(&self) -> usize {
        self.shapes.iter().map(|q| q.tasks.len()).sum()
    }

    /// The shapes with tasks queued, and how many of each (the node's pending demand).
    pub(super) fn demand(&self) -> Vec<(ResourceSet, u64)> {
        self.shapes
            .iter()
            .filter(|q| !q.tasks.is_empty())
            .map(|q| (q.shape.clone(), q.tasks.len() as u64))
            .collect()
    }
}
