//! The task event table: the state history of recent tasks, bounded in size.
//!
//! Kept in memory only, as Ray's GCS keeps its task events: they are a record for people to
//! read (state listings, the timeline), not state a node relies on after a head restart, and
//! writing every report through to disk made the head's GCS fall behind a busy cluster (the
//! other tables share its event loop). Serves `gcs/AddTaskEvents`, `gcs/ListTaskEvents` and
//! `gcs/TaskEventCounts`.

use std::collections::VecDeque;

use actix::prelude::*;
use raya_common::{ActorId, JobId, NodeId, TaskId, WorkerId};
use serde::{Deserialize, Serialize};

use super::{GcsError, gcs_requests};

/// What kind of task a record describes.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// A remote function call.
    Normal,
    /// An actor's constructor.
    ActorCreation,
    /// An actor method call.
    ActorTask,
}

/// A task's state, in lifecycle order.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for its arguments.
    PendingArgs,
    /// Arguments ready, waiting for resources and a worker.
    PendingNodeAssignment,
    /// Running.
    Running,
    /// Finished with results.
    Finished,
    /// Failed with an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl TaskState {
    /// Whether the task is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Cancelled
        )
    }
}

/// A task's record: what it is, where it ran, and when it entered each state.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// The task.
    pub task_id: TaskId,
    /// Which attempt (0 for the first run, then one per retry).
    pub attempt: u32,
    /// Its job.
    pub job: JobId,
    /// Function name, or `Actor::method`.
    pub name: String,
    /// Kind.
    pub kind: TaskKind,
    /// Latest state.
    pub state: TaskState,
    /// Node it ran on.
    pub node: Option<NodeId>,
    /// Worker it ran on.
    pub worker: Option<WorkerId>,
    /// Actor it belongs to.
    pub actor: Option<ActorId>,
    /// The task that submitted it.
    pub parent: Option<TaskId>,
    /// Error message when it failed.
    pub error: Option<String>,
    /// When it entered each state (ms since the epoch).
    pub times: Vec<(TaskState, u64)>,
}

/// Bytes of a task record's name, and of its error message, the table keeps at most (longer
/// ones are cut, saying so); state times it keeps at most.
pub const MAX_NAME_KEPT: usize = 1024;
/// See [`MAX_NAME_KEPT`].
pub const MAX_ERROR_KEPT: usize = 16 * 1024;
/// See [`MAX_NAME_KEPT`].
pub const MAX_TIMES_KEPT: usize = 16;

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" [cut]");
}

impl TaskEvent {
    /// Cuts what the record carries to what the table keeps.
    fn bound(&mut self) {
        cut(&mut self.name, MAX_NAME_KEPT);
        if let Some(e) = &mut self.error {
            cut(e, MAX_ERROR_KEPT);
        }
        self.times.truncate(MAX_TIMES_KEPT);
    }

    /// Folds a later report on the same task attempt into this record.
    pub fn merge(&mut self, newer: TaskEvent) {
        if newer.state >= self.state {
            self.state = newer.state;
        }
        for (s, t) in newer.times {
            if !self.times.iter().any(|(s0, _)| *s0 == s) {
                self.times.push((s, t));
            }
        }
        self.times.sort();
        self.node = newer.node.or(self.node);
        self.worker = newer.worker.or(self.worker);
        self.error = newer.error.or(self.error.take());
    }
}

/// A batch of task reports from one node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct AddTaskEvents(pub Vec<TaskEvent>);

/// The most recent task records, newest last.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<TaskEvent>, GcsError>")]
pub struct ListTaskEvents {
    /// Only this job's tasks.
    pub job: Option<JobId>,
    /// At most this many.
    pub limit: usize,
}

/// How many task records are stored, and how many were dropped to stay within the bound.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(usize, u64), GcsError>")]
pub struct TaskEventCounts;

/// Task records one `gcs/AddTaskEvents` carries at most (nodes flush at most this many a
/// second); a larger request is refused.
pub const MAX_EVENTS_A_REQUEST: usize = 10_000;

gcs_requests! {
    TaskEventTable, task_events:
    AddTaskEvents => () as "gcs/AddTaskEvents", access = Notify,
        where |m, from| {
            if m.0.len() > MAX_EVENTS_A_REQUEST {
                return Err(format!(
                    "{} task records in one request, more than {MAX_EVENTS_A_REQUEST}",
                    m.0.len()
                ));
            }
            // A record names the node the task ran on, or comes from the task's owner (which
            // reports it submitted before it runs anywhere).
            m.0.iter().try_for_each(|e| match e.node {
                Some(node) => from.is(node, "a task record"),
                None => from.made(e.task_id.node_tag(), "a task record"),
            })
        };
    ListTaskEvents => Vec<TaskEvent> as "gcs/ListTaskEvents", access = Read;
    TaskEventCounts => (usize, u64) as "gcs/TaskEventCounts", access = Read;
}

/// The task event table actor.
pub struct TaskEventTable {
    events: raya_common::FastHashMap<(TaskId, u32), TaskEvent>,
    order: VecDeque<(TaskId, u32)>,
    max: usize,
    dropped: u64,
}

impl TaskEventTable {
    /// An empty table keeping at most `max` task attempts. Drops the records that versions
    /// which wrote task events to disk left in `db`.
    pub(crate) fn new(db: &sled::Db, max: usize) -> Result<Self, GcsError> {
        db.drop_tree("task_events")
            .map_err(|e| GcsError::Storage(e.to_string()))?;
        Ok(TaskEventTable {
            events: Default::default(),
            order: VecDeque::new(),
            max: max.max(1),
            dropped: 0,
        })
    }
}

impl Actor for TaskEventTable {
    type Context = Context<Self>;
}

impl Handler<AddTaskEvents> for TaskEventTable {
    type Result = Result<(), GcsError>;
    fn handle(
        &mut self,
        AddTaskEvents(batch): AddTaskEvents,
        _: &mut Context<Self>,
    ) -> Self::Result {
        for mut ev in batch {
            ev.bound();
            let key = (ev.task_id, ev.attempt);
            match self.events.get_mut(&key) {
                Some(cur) => cur.merge(ev),
                None => {
                    self.order.push_back(key);
                    self.events.insert(key, ev);
                }
            }
        }
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.events.remove(&old);
                self.dropped += 1;
            }
        }
        Ok(())
    }
}

impl Handler<ListTaskEvents> for TaskEventTable {
    type Result = Result<Vec<TaskEvent>, GcsError>;
    fn handle(&mut self, m: ListTaskEvents, _: &mut Context<Self>) -> Self::Result {
        let mut out: Vec<TaskEvent> = self
            .order
            .iter()
            .rev()
            .filter_map(|k| self.events.get(k))
            .filter(|e| m.job.is_none_or(|j| e.job == j))
            .take(m.limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }
}

impl Handler<TaskEventCounts> for TaskEventTable {
    type Result = Result<(usize, u64), GcsError>;
    fn handle(&mut self, _: TaskEventCounts, _: &mut Context<Self>) -> Self::Result {
        Ok((self.events.len(), self.dropped))
    }
}

/// A node's buffer of task reports, flushed to the GCS in batches (as Ray reports task events
/// once a second). Reports for the same task attempt are merged in the buffer; past `max`
/// distinct task attempts new reports are dropped and counted.
#[derive(Clone)]
pub struct TaskEventBuffer {
    inner: std::sync::Arc<std::sync::Mutex<EventBufferInner>>,
}

struct EventBufferInner {
    events: raya_common::FastHashMap<(TaskId, u32), TaskEvent>,
    max: usize,
    dropped: u64,
}

impl TaskEventBuffer {
    /// A buffer holding at most `max` task attempts between flushes.
    pub fn new(max: usize) -> Self {
        TaskEventBuffer {
            inner: std::sync::Arc::new(std::sync::Mutex::new(EventBufferInner {
                events: Default::default(),
                max,
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventBufferInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a state change of a task attempt, building the record with `make` when the
    /// attempt is new to the buffer.
    pub fn record(
        &self,
        task: TaskId,
        attempt: u32,
        state: TaskState,
        make: impl FnOnce() -> TaskEvent,
    ) {
        let now = raya_common::time::now_ms();
        let mut b = self.lock();
        if let Some(e) = b.events.get_mut(&(task, attempt)) {
            if state >= e.state {
                e.state = state;
            }
            e.times.push((state, now));
            return;
        }
        if b.events.len() >= b.max {
            b.dropped += 1;
            return;
        }
        let mut e = make();
        e.state = state;
        e.times = vec![(state, now)];
        b.events.insert((task, attempt), e);
    }

    /// Updates fields of a buffered record (node, worker, error); no effect when absent.
    pub fn update(&self, task: TaskId, attempt: u32, f: impl FnOnce(&mut TaskEvent)) {
        if let Some(e) = self.lock().events.get_mut(&(task, attempt)) {
            f(e);
        }
    }

    /// Takes every buffered record and the count of dropped reports since the last drain.
    pub fn drain(&self) -> (Vec<TaskEvent>, u64) {
        self.drain_at_most(usize::MAX)
    }

    /// Takes at most `limit` buffered records (the rest wait for the next drain) and the count of
    /// dropped reports since the last drain.
    pub fn drain_at_most(&self, limit: usize) -> (Vec<TaskEvent>, u64) {
        let mut b = self.lock();
        let dropped = std::mem::take(&mut b.dropped);
        if b.events.len() <= limit {
            return (b.events.drain().map(|(_, e)| e).collect(), dropped);
        }
        let keys: Vec<(TaskId, u32)> = b.events.keys().take(limit).copied().collect();
        let events = keys.iter().filter_map(|k| b.events.remove(k)).collect();
        (events, dropped)
    }
}

impl std::fmt::Debug for TaskEventTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskEventTable").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TaskEventBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskEventBuffer").finish_non_exhaustive()
    }
}
