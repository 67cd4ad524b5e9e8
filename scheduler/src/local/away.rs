//! Tasks this node handed to the global scheduler, until their results are here or freed.
//!
//! For each the scheduler keeps the task whole (its [`lineage`](super::lineage): arguments
//! included, so it can run again) and, once the global scheduler reports it ([`TaskPlaced`]),
//! the node that has it. That is what lets it:
//! - fail the task where the user waits when the head never took it (the ordered link's error)
//!   or did not place it within the placement lease (the head died meanwhile);
//! - tell the node's object manager, when this node owns the results, which node makes them
//!   (`ObjectsExpected`), so that it takes them from that node and fails them if that node dies
//!   or stops answering; when another node owns them (a task placed here that this node handed
//!   on), tell the owner, which expects them from here, where they are made now;
//! - cancel it on the node that has it (`local_scheduler/CancelTask`), now or once it is placed;
//! - run it again when the node that had it, or the only copy of one of its results, died
//!   (see `recover`).
//!
//! Task ids cancelled here before their task arrived are remembered (a bounded number), so a
//! task whose placement trails its owner's cancellation fails as cancelled when it arrives.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use actix::prelude::*;
use raya_common::{NodeId, TaskError, TaskErrorKind, TaskId};
use raya_store::ObjectsExpected;

use super::lineage::Away;
use super::{CancelTask, HeadRestarted, LocalScheduler, TaskGoing, TaskPlaced};
use crate::global::ScheduleTask;
use crate::task_spec::TaskSpec;

/// Cancellations of tasks not (yet) here that a node remembers, at most.
const MAX_EARLY_CANCELS: usize = 4096;

/// Task ids cancelled before their task reached this node, oldest first.
#[derive(Default)]
pub(super) struct EarlyCancels {
    ids: HashSet<TaskId>,
    order: VecDeque<TaskId>,
}

impl EarlyCancels {
    fn insert(&mut self, task: TaskId) {
        if !self.ids.insert(task) {
            return;
        }
        self.order.push_back(task);
        while self.order.len() > MAX_EARLY_CANCELS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether `task` was cancelled before it arrived (forgetting it).
    pub(super) fn take(&mut self, task: TaskId) -> bool {
        self.ids.remove(&task)
    }
}

/// A result of a task handed over is here (or failed): when all are, the task cannot lose
/// them any more.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct AwayDone(pub(super) TaskId);

/// A result of a task handed over was freed: when all are, the task is no longer followed.
#[derive(Message)]
#[rtype(result = "()")]
struct AwayFreed(TaskId);

impl LocalScheduler {
    /// Hands `spec` to the global scheduler, keeping what is needed to follow it (see the
    /// module docs).
    pub(super) fn send_to_global(&mut self, spec: TaskSpec, ctx: &mut Context<Self>) {
        let Some(global) = self.global.clone() else {
            return;
        };
        let task = spec.task_id;
        if spec.num_returns > 0 {
            self.away.insert(Away::new(spec.clone()));
            for id in spec.return_ids() {
                let me = ctx.address();
                // Waiting for it fetches it: every result comes to its owner, which then holds
                // a copy (and needs no lineage for it).
                self.store
                    .on_ready(id, Box::new(move || me.do_send(AwayDone(task))));
                // Every result dropped before it was made: nobody waits for the task any more.
                let me = ctx.address();
                self.store
                    .on_free(id, Box::new(move || me.do_send(AwayFreed(task))));
            }
        }
        let taken = global.schedule(ScheduleTask {
            spec,
            from: self.cfg.node,
        });
        ctx.spawn(taken.into_actor(self).map(move |taken, this, _| {
            let Err(reason) = taken else {
                if let Some(a) = this.away.get_mut(&task) {
                    a.taken = true;
                }
                return;
            };
            if let Some(a) = this.away.remove(task) {
                tracing::warn!(%task, %reason, "task not handed over");
                this.fail_task(&a.spec, TaskError::new(TaskErrorKind::Unreachable, reason));
            }
        }));
    }

    /// Fails the handed-over tasks the global scheduler has not placed within the lease.
    pub(super) fn expire_placements(&mut self) {
        let lease = self.cfg.placement_lease;
        let now = Instant::now();
        let expired: Vec<TaskId> = self
            .away
            .iter()
            .filter(|(_, a)| a.at.is_none() && now.duration_since(a.since) > lease)
            .map(|(t, _)| *t)
            .collect();
        for task in expired {
            if let Some(a) = self.away.remove(task)
                && a.cancel.is_none()
            {
                let reason = format!(
                    "it was handed to the head's global scheduler and not placed within the \
                     placement lease ({lease:?}): the head may have died or be unreachable"
                );
                self.fail_task(&a.spec, TaskError::new(TaskErrorKind::Unreachable, reason));
            }
        }
    }

    /// Cancels a task handed over: its results fail here now, and the node that has it is
    /// told (once known). Returns whether the task was one handed over.
    pub(super) fn cancel_away(&mut self, task_id: TaskId, force: bool) -> bool {
        let Some(a) = self.away.get_mut(&task_id) else {
            return false;
        };
        if a.cancel.is_some() {
            return true;
        }
        a.cancel = Some(force);
        let at = a.at;
        tracing::debug!(task = %task_id, ?at, "cancelling a task handed over");
        let spec = a.spec.clone();
        self.fail_task(
            &spec,
            TaskError::new(TaskErrorKind::Cancelled, "the task was cancelled"),
        );
        if let Some(node) = at {
            self.cancel_at(node, task_id, force);
        }
        true
    }

    /// Tells `node`'s local scheduler to cancel `task_id` (and what it submitted).
    fn cancel_at(&self, node: NodeId, task_id: TaskId, force: bool) {
        let Some(c) = &self.cluster else { return };
        if node == self.cfg.node {
            return;
        }
        let sent = c.net.send_ordered(
            node.peer_id(),
            CancelTask {
                task_id,
                force,
                recursive: true,
            },
        );
        c.net.spawn(async move {
            if let Err(e) = sent.await {
                tracing::warn!(task = %task_id, %node, error = %e, "cancellation not delivered");
            }
        });
    }

    /// Remembers a cancellation for a task not here: it fails when it arrives.
    pub(super) fn cancelled_early(&mut self, task_id: TaskId) {
        self.early_cancels.insert(task_id);
    }
}

impl Handler<AwayDone> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, AwayDone(task): AwayDone, _: &mut Context<Self>) {
        let Some(a) = self.away.get(&task) else {
            return;
        };
        // A task cancelled before it was placed stays until its node is known, to be told.
        if a.cancel.is_some() && a.at.is_none() {
            return;
        }
        let store = &self.store;
        if a.spec
            .return_ids()
            .all(|id| store.status(id) != raya_store::Status::Pending)
        {
            self.away.remove(task);
        }
    }
}

impl Handler<AwayFreed> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, AwayFreed(task): AwayFreed, _: &mut Context<Self>) {
        let Some(a) = self.away.get(&task) else {
            return;
        };
        let store = &self.store;
        if a.cancel.is_some() && a.at.is_none() {
            // Its node must still be told of the cancellation once known.
            return;
        }
        if a.spec
            .return_ids()
            .all(|id| store.status(id) == raya_store::Status::Missing)
        {
            self.away.remove(task);
        }
    }
}

impl LocalScheduler {
    /// Tells whoever follows the results of handed-over task `task` that node `node` makes
    /// them: this node's object manager when the results are its own (it takes them only from
    /// that node; `confirmed` once the node has the task, when its death or silence fails
    /// them), the owner when another node owns them (a task placed here that this node handed
    /// on: the owner expects them from here), once the node has it.
    fn tell_maker(&self, task: TaskId, node: NodeId, confirmed: bool) {
        let (Some(a), Some(c)) = (self.away.get(&task), &self.cluster) else {
            return;
        };
        let ids: Vec<_> = a.spec.return_ids().collect();
        match (a.spec.origin == self.cfg.node, confirmed) {
            (true, true) => c.expected.do_send(ObjectsExpected { ids, at: node }),
            (true, false) => c.going.do_send(raya_store::MakerGoing { ids, at: node }),
            (false, true) => {
                for chunk in ids.chunks(raya_store::MAX_HANDED_OVER) {
                    c.net.tell_ordered(
                        a.spec.origin.peer_id(),
                        ObjectsExpected {
                            ids: chunk.to_vec(),
                            at: node,
                        },
                    );
                }
            }
            // The owner expects them from here until the node has the task.
            (false, false) => {}
        }
    }
}

impl Handler<TaskGoing> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, m: TaskGoing, _: &mut Context<Self>) {
        if m.node != self.cfg.node {
            if let Some(a) = self.away.get_mut(&m.task_id) {
                a.going = Some(m.node);
            }
            self.tell_maker(m.task_id, m.node, false);
        }
    }
}

impl Handler<TaskPlaced> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, m: TaskPlaced, _: &mut Context<Self>) {
        let me = self.cfg.node;
        let Some(a) = self.away.get_mut(&m.task_id) else {
            return;
        };
        if m.node == me {
            // Placed back here: it is a local task now (`PlaceTask` brought it).
            self.away.remove(m.task_id);
            return;
        }
        let cancel = a.cancel;
        // Retries the head counted (placements that may have run elsewhere) count here too.
        a.spec.attempt = a.spec.attempt.max(m.attempt);
        self.away.placed(m.task_id, m.node);
        tracing::debug!(task = %m.task_id, node = %m.node, "task placed");
        self.tell_maker(m.task_id, m.node, true);
        if let Some(force) = cancel {
            self.cancel_at(m.node, m.task_id, force);
            self.away.remove(m.task_id);
        }
    }
}

impl Handler<HeadRestarted> for LocalScheduler {
    type Result = ();
    /// The tasks the head's previous incarnation took and never reported placed: handed to the
    /// new one as a retry (the old head may have sent them to a node before it died) when
    /// `max_retries` allows, else failed as unreachable. Tasks still in the link to the head
    /// reach the new incarnation by themselves.
    fn handle(&mut self, _: HeadRestarted, ctx: &mut Context<Self>) {
        let lost: Vec<TaskId> = self
            .away
            .iter()
            .filter(|(_, a)| a.taken && a.at.is_none() && a.cancel.is_none())
            .map(|(t, _)| *t)
            .collect();
        for task in lost {
            let Some(a) = self.away.remove(task) else {
                continue;
            };
            // The old head may have sent it to a node before it died (its word of where may
            // not have arrived, on another link): running it again is a retry.
            let mut spec = a.spec;
            if !spec.may_retry(false) {
                let to = a
                    .going
                    .map(|n| format!(" (it was sending it to node {n})"))
                    .unwrap_or_default();
                let reason = format!(
                    "the head restarted after taking it{to}: it may or may not have run, and \
                     max_retries does not allow running it again"
                );
                self.fail_task(&spec, TaskError::new(TaskErrorKind::Unreachable, reason));
                continue;
            }
            spec.attempt += 1;
            tracing::info!(%task, attempt = spec.attempt, "handing a task to the restarted head");
            self.send_to_global(spec, ctx);
        }
    }
}
