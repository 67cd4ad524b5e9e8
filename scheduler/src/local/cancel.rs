//! Cancellation flags of the tasks running on a node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use raya_common::{FastHashMap, TaskId};

/// The cancellation flags of the tasks running on a node, shared by the scheduler (which sets
/// them) and the workers (which register them and whose tasks read them). A flag is set from the
/// scheduler's thread because a worker busy in a synchronous task cannot read its mailbox.
#[derive(Debug, Clone, Default)]
pub struct CancelFlags(Arc<Mutex<FastHashMap<TaskId, Arc<AtomicBool>>>>);

impl CancelFlags {
    fn lock(&self) -> MutexGuard<'_, FastHashMap<TaskId, Arc<AtomicBool>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the flag of a task that starts running.
    pub fn register(&self, task: TaskId, flag: Arc<AtomicBool>) {
        self.lock().insert(task, flag);
    }

    /// Forgets a task that stopped running.
    pub fn unregister(&self, task: TaskId) {
        self.lock().remove(&task);
    }

    /// Sets the flag of a running task; returns whether it was running.
    pub fn cancel(&self, task: TaskId) -> bool {
        match self.lock().get(&task) {
            Some(f) => {
                f.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}
