//! Running again the tasks whose results a dead node lost ([`Recover`], from the node's object
//! manager): a task that was queued or running on the node, or whose result's only copy the
//! node held, is handed to the global scheduler again as its next attempt, counted against its
//! `max_retries` as Ray counts node failures (whether or not `retry_exceptions` is set). Tasks
//! that depend on its results keep waiting: the objects stay pending, under the same ids, until
//! the new attempt makes them.
//!
//! A task out of retries fails with `NodeDied` (it was running there) or `ReconstructionFailed`
//! (its result was made and lost), naming the node; one whose lineage was let go fails with
//! `ReconstructionFailed` too. Objects this node does not keep the lineage of (actor calls, the
//! tasks of other owners) go back to the object manager, which fails them.

use std::collections::HashMap;

use actix::prelude::*;
use raya_common::{ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_store::{Loss, Recover};

use super::LocalScheduler;
use crate::task_spec::TaskKind;

impl Handler<Recover> for LocalScheduler {
    type Result = MessageResult<Recover>;

    fn handle(&mut self, m: Recover, ctx: &mut Context<Self>) -> Self::Result {
        let mut by_task: HashMap<TaskId, Vec<(ObjectId, Loss)>> = HashMap::new();
        for (id, loss) in m.lost {
            by_task.entry(id.task).or_default().push((id, loss));
        }
        let mut unknown = Vec::new();
        for (task, lost) in by_task {
            let known = self.away.get(&task).is_some_and(|a| {
                a.cancel.is_none() && !matches!(a.spec.kind, TaskKind::ActorCreation { .. })
            });
            if !known {
                unknown.extend(lost.into_iter().map(|(id, _)| id));
                continue;
            }
            let making = lost.iter().any(|(_, l)| *l == Loss::Making);
            self.run_again(task, m.node, making, ctx);
        }
        MessageResult(unknown)
    }
}

impl LocalScheduler {
    /// Hands `task`, which node `dead` lost, to the global scheduler again as its next
    /// attempt, or fails it when its retries or its lineage are gone.
    fn run_again(
        &mut self,
        task: TaskId,
        dead: raya_common::NodeId,
        making: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(a) = self.away.get(&task) else {
            return;
        };
        let spec = &a.spec;
        let failure = if a.evicted {
            Some(TaskError::new(
                TaskErrorKind::ReconstructionFailed,
                format!(
                    "node {dead}, which {}, died, and the task's lineage was let go (the \
                     lineage bound, {} bytes of arguments, was reached): it cannot run again",
                    if making {
                        "was running it"
                    } else {
                        "held the only copy of its result"
                    },
                    self.away.max_bytes
                ),
            ))
        } else if !spec.may_retry(false) {
            Some(if making {
                TaskError::new(
                    TaskErrorKind::NodeDied,
                    format!(
                        "node {dead}, which was running it, died, and its max_retries ({}) are \
                         used up",
                        spec.max_retries
                    ),
                )
            } else {
                TaskError::new(
                    TaskErrorKind::ReconstructionFailed,
                    format!(
                        "node {dead}, which held the only copy of its result, died, and making \
                         it again would exceed its max_retries ({})",
                        spec.max_retries
                    ),
                )
            })
        } else {
            None
        };
        if let Some(error) = failure {
            let spec = a.spec.clone();
            self.away.remove(task);
            tracing::warn!(%task, node = %dead, error = %error.message, "task lost with a dead node");
            self.fail_task(&spec, error);
            return;
        }
        let mut next = spec.clone();
        next.attempt += 1;
        tracing::info!(
            %task,
            node = %dead,
            attempt = next.attempt,
            lost_result = !making,
            "running a task again: the node that had it died"
        );
        self.away.remove(task);
        self.send_to_global(next, ctx);
        if let Some(a) = self.away.get_mut(&task) {
            a.lost_with = Some(dead);
        }
    }
}
