//! Task errors: the values stored in place of a task's results when it fails.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, TaskId};

/// Why a task, actor call or object failed.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The function returned `Err`.
    Application,
    /// The function panicked.
    Panic,
    /// The task was cancelled.
    Cancelled,
    /// The actor died (killed, crashed past its restarts, or went out of scope) before or while
    /// running the call.
    ActorDied,
    /// No node of the cluster can ever satisfy the task's resource request.
    Infeasible,
    /// No node has a function registered under the task's name.
    UnknownFunction,
    /// An argument or message had another type than the function expects.
    ArgumentType,
    /// The object store had no room for a result and spilling was off.
    StoreFull,
    /// An object the task depends on was lost.
    ObjectLost,
    /// The node running the task, holding the object or hosting the actor died.
    NodeDied,
    /// A node the task or object depends on could not be reached within the delivery bound or
    /// the object lease (it may be stalled or cut off rather than dead): a task or call sent
    /// there may or may not have run.
    Unreachable,
    /// The task's options were invalid (for example a negative resource amount).
    InvalidOptions,
    /// The task was refused because a queue was at its bound.
    QueueFull,
    /// The runtime itself failed (a bug or a shutdown mid-task).
    System,
    /// The object's owner (the node that submitted the task making it, or called `put`) died
    /// before the object could be read: nobody is left to say where it is or to make it again.
    OwnerDied,
    /// Every copy of the object was lost and it could not be made again from its lineage: the
    /// task that made it is out of `max_retries`, or its lineage was let go (an argument freed,
    /// or the lineage bound reached).
    ReconstructionFailed,
    /// The task's hard placement constraint cannot be met: the node its `NodeAffinity` (not
    /// soft) names is dead, unknown or can never fit it.
    Unschedulable,
}

impl fmt::Display for TaskErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message says what failed; the kind only says how the task ended.
        let s = match self {
            TaskErrorKind::Application => "returned an error",
            TaskErrorKind::Panic => "panicked",
            TaskErrorKind::Cancelled => "was cancelled",
            TaskErrorKind::Infeasible | TaskErrorKind::Unschedulable => "cannot be scheduled",
            TaskErrorKind::InvalidOptions | TaskErrorKind::QueueFull => "was rejected",
            _ => "failed",
        };
        f.write_str(s)
    }
}

/// One task an error passed through.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFrame {
    /// The task.
    pub task: TaskId,
    /// Its function, or `Actor::method` for actor calls.
    pub function: String,
    /// The node it ran (or was to run) on.
    pub node: Option<NodeId>,
}

impl fmt::Display for TaskFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (task {})", self.function, self.task)
    }
}

/// A failed task's error, stored as the task's result so that `get` returns it and every task
/// that depends on the result fails with it, one frame longer.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// What went wrong.
    pub kind: TaskErrorKind,
    /// The error or panic message.
    pub message: String,
    /// The tasks the error passed through: first the one that failed, then each dependent.
    pub chain: Vec<TaskFrame>,
}

impl TaskError {
    /// An error with no frames yet.
    pub fn new(kind: TaskErrorKind, message: impl Into<String>) -> Self {
        TaskError {
            kind,
            message: message.into(),
            chain: Vec::new(),
        }
    }

    /// Adds the task the error passed through next.
    pub fn with_frame(mut self, frame: TaskFrame) -> Self {
        if self.chain.last() != Some(&frame) {
            self.chain.push(frame);
        }
        self
    }

    /// The task where the error started.
    pub fn origin(&self) -> Option<&TaskFrame> {
        self.chain.first()
    }

    /// Whether the error reports a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.kind == TaskErrorKind::Cancelled
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.chain.first() {
            Some(origin) => write!(f, "{origin} {}: {}", self.kind, self.message)?,
            None => write!(f, "task {}: {}", self.kind, self.message)?,
        }
        for frame in self.chain.iter().skip(1) {
            write!(f, "\n  then failed {frame}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_origin_message_and_chain() {
        let frame = |n: u128, f: &str| TaskFrame {
            task: TaskId(n),
            function: f.into(),
            node: None,
        };
        let e = TaskError::new(TaskErrorKind::Panic, "boom")
            .with_frame(frame(1, "m::a"))
            .with_frame(frame(2, "m::b"));
        let s = e.to_string();
        assert!(s.starts_with("m::a (task "), "{s}");
        assert!(s.contains("panicked: boom"), "{s}");
        assert!(s.contains("then failed m::b"), "{s}");
        assert_eq!(e.origin().unwrap().function, "m::a");
        assert!(!e.is_cancelled());
    }
}
