//! The worker pool of a node (Ray's raylet `WorkerPool`): the workers the local scheduler
//! dispatches to, which of them are idle, starting more while running ones block in `get`, and
//! stopping the extra ones that stay idle.
//!
//! A worker is an actor on its own thread, started by the node through a [`WorkerFactory`] (the
//! `raya` crate's thread workers); the pool only keeps its mailbox and what it runs.

use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_common::{FastHashMap, TaskId, WorkerId};

use super::LocalScheduler;
use super::messages::WorkerCommand;

/// Starts worker actors for the scheduler (the node knows how).
pub trait WorkerFactory: Send {
    /// Starts worker `id`, which reports to `scheduler`, and returns its mailbox.
    fn start_worker(
        &mut self,
        id: WorkerId,
        scheduler: Addr<LocalScheduler>,
    ) -> Recipient<WorkerCommand>;
}

struct WorkerSlot {
    mailbox: Recipient<WorkerCommand>,
    /// The task it runs.
    task: Option<TaskId>,
    idle_since: Instant,
}

/// The node's workers.
pub(super) struct WorkerPool {
    factory: Box<dyn WorkerFactory>,
    slots: FastHashMap<WorkerId, WorkerSlot>,
    /// Idle workers, the longest idle first (taken from the back).
    idle: Vec<WorkerId>,
    next_id: u32,
    /// Workers kept even when idle (one per CPU).
    min: usize,
    /// Most workers at once.
    max: usize,
    /// Extra workers idle this long are stopped.
    idle_timeout: Duration,
}

impl WorkerPool {
    pub(super) fn new(
        factory: Box<dyn WorkerFactory>,
        min: usize,
        max: usize,
        idle_timeout: Duration,
    ) -> Self {
        WorkerPool {
            factory,
            slots: FastHashMap::default(),
            idle: Vec::new(),
            next_id: 0,
            min,
            max,
            idle_timeout,
        }
    }

    /// Starts the workers kept even when idle; after one died, starts another.
    pub(super) fn start_minimum(&mut self, scheduler: &Addr<LocalScheduler>) {
        while self.slots.len() < self.min {
            match self.start_new(scheduler) {
                Some(w) => self.idle.push(w),
                None => break,
            }
        }
    }

    /// An idle worker, or a new one while the pool is below its maximum.
    pub(super) fn take(&mut self, scheduler: &Addr<LocalScheduler>) -> Option<WorkerId> {
        if let Some(w) = self.idle.pop() {
            return Some(w);
        }
        self.start_new(scheduler)
    }

    /// A new worker, while the pool is below its maximum.
    fn start_new(&mut self, scheduler: &Addr<LocalScheduler>) -> Option<WorkerId> {
        if self.slots.len() >= self.max {
            return None;
        }
        let id = WorkerId(self.next_id);
        self.next_id += 1;
        let mailbox = self.factory.start_worker(id, scheduler.clone());
        self.slots.insert(
            id,
            WorkerSlot {
                mailbox,
                task: None,
                idle_since: Instant::now(),
            },
        );
        tracing::debug!(worker = %id, total = self.slots.len(), "started worker");
        Some(id)
    }

    /// Gives worker `w` (taken with [`WorkerPool::take`]) its task.
    pub(super) fn execute(&mut self, w: WorkerId, task: TaskId, command: WorkerCommand) {
        let slot = self.slots.get_mut(&w).expect("a taken worker exists");
        slot.task = Some(task);
        slot.mailbox.do_send(command);
    }

    /// Worker `w` finished its task: it is idle again.
    pub(super) fn finished(&mut self, w: WorkerId) {
        if let Some(slot) = self.slots.get_mut(&w)
            && slot.task.is_some()
        {
            slot.task = None;
            slot.idle_since = Instant::now();
            self.idle.push(w);
        }
    }

    /// The task worker `w` runs.
    pub(super) fn task_of(&self, w: WorkerId) -> Option<TaskId> {
        self.slots.get(&w)?.task
    }

    /// Sends `command` to worker `w`, if it exists.
    pub(super) fn send(&self, w: WorkerId, command: WorkerCommand) {
        if let Some(slot) = self.slots.get(&w) {
            slot.mailbox.do_send(command);
        }
    }

    /// Forgets worker `w`, which exited; returns whether it was known.
    pub(super) fn remove(&mut self, w: WorkerId) -> bool {
        self.idle.retain(|i| *i != w);
        self.slots.remove(&w).is_some()
    }

    /// Stops the extra workers that have been idle longer than the idle timeout.
    pub(super) fn retire_idle(&mut self) {
        let now = Instant::now();
        while self.slots.len() > self.min {
            // The longest idle worker is at the front (`idle` is used as a stack).
            let Some(&w) = self.idle.first() else { break };
            if now.duration_since(self.slots[&w].idle_since) < self.idle_timeout {
                break;
            }
            self.idle.remove(0);
            if let Some(slot) = self.slots.remove(&w) {
                slot.mailbox.do_send(WorkerCommand::Stop);
            }
            tracing::debug!(worker = %w, total = self.slots.len(), "stopped idle worker");
        }
    }

    /// Tells every worker to stop.
    pub(super) fn stop_all(&mut self) {
        self.idle.clear();
        for (_, slot) in self.slots.drain() {
            slot.mailbox.do_send(WorkerCommand::Stop);
        }
    }

    /// Workers started.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Idle workers.
    pub(super) fn idle_len(&self) -> usize {
        self.idle.len()
    }

    /// How often idle workers are checked for retirement.
    pub(super) fn retire_check_interval(&self) -> Duration {
        (self.idle_timeout / 2).max(Duration::from_millis(10))
    }
}
