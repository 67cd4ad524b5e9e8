//! Storing what a task or actor call produced: its values as its result objects, or the error
//! that replaces them. Workers (tasks) and actor hosts (calls) both end here, so a result is
//! stored, and a failure reported, the same way whatever ran it.

use std::sync::Arc;

use raya_cluster::gcs::task_events::TaskEventBuffer;
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, TaskFrame, TaskId};
use raya_store::StoreCore;

use crate::registry::Output;

/// The result objects of one task or actor call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returns<'a> {
    /// The task (or call) whose results these are: result `i` is `ObjectId::for_return(task, i)`.
    pub(crate) task_id: TaskId,
    /// How many the caller asked for (0: a call sent with `tell`, whose reply nobody keeps).
    pub(crate) num_returns: u32,
    /// The function or method, for messages and error frames.
    pub(crate) name: &'a str,
}

impl Returns<'_> {
    fn id(&self, i: u32) -> ObjectId {
        ObjectId::for_return(self.task_id, i)
    }
}

/// Stores `output` as the results `returns`. On failure returns the error to report instead —
/// the function's own, a number of values other than the caller asked for (an application
/// error, as a `Vec` split into the wrong number of parts is), or a full store — without storing
/// it: the caller decides whether to retry or [`fail_returns`]. User code that runs while
/// storing (a size measure registered with `register_heap_size`, a value's `Drop`) and panics
/// makes it a panic error; it never unwinds into the thread storing.
pub(crate) fn store_output(
    store: &StoreCore,
    returns: Returns<'_>,
    output: Output,
) -> Result<(), TaskError> {
    crate::execution::panic::catch(|| store_values(store, returns, output)).unwrap_or_else(|m| {
        Err(TaskError::new(
            TaskErrorKind::Panic,
            format!("storing the result of {} panicked: {m}", returns.name),
        ))
    })
}

fn store_values(store: &StoreCore, returns: Returns<'_>, output: Output) -> Result<(), TaskError> {
    let values = output?;
    if returns.num_returns == 0 {
        return Ok(());
    }
    if values.len() != returns.num_returns as usize {
        return Err(TaskError::new(
            TaskErrorKind::Application,
            format!(
                "{} returned {} values but {} were asked for",
                returns.name,
                values.len(),
                returns.num_returns
            ),
        ));
    }
    let mut failed = None;
    for (i, v) in values.into_iter().enumerate() {
        if let Err(e) = store.complete(returns.id(i as u32), v) {
            failed = Some(TaskError::new(TaskErrorKind::StoreFull, e.to_string()));
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Stores `error`, with the frame of the task that ran on `node`, in place of every result, and
/// records its message in the task's event (attempt `attempt`). Returns the stored error.
pub(crate) fn fail_returns(
    store: &StoreCore,
    events: &TaskEventBuffer,
    node: NodeId,
    returns: Returns<'_>,
    attempt: u32,
    error: TaskError,
) -> Arc<TaskError> {
    let error = Arc::new(error.with_frame(TaskFrame {
        task: returns.task_id,
        function: returns.name.to_string(),
        node: Some(node),
    }));
    for i in 0..returns.num_returns {
        store.fail(returns.id(i), Arc::clone(&error));
    }
    let msg = error.to_string();
    events.update(returns.task_id, attempt, |ev| ev.error = Some(msg));
    error
}

#[cfg(test)]
mod tests {
    use raya_common::{IdGenerator, JobId, Value};
    use raya_store::{Lookup, StoreConfig};

    use super::*;

    fn store() -> Arc<StoreCore> {
        StoreCore::new(StoreConfig {
            node: NodeId::random(),
            memory_budget: 1 << 20,
            spilling: false,
            spill_dir: std::env::temp_dir().join("raya-results-test-unused"),
        })
    }

    #[test]
    fn values_become_the_results_in_order() {
        let store = store();
        let task_id = IdGenerator::new(JobId(1), 1).task_id();
        let refs: Vec<_> = (0..2)
            .map(|i| store.add_ref(ObjectId::for_return(task_id, i)))
            .collect();
        let returns = Returns {
            task_id,
            num_returns: 2,
            name: "test::pair",
        };
        store_output(&store, returns, Ok(vec![Value::new(1u8), Value::new(2u8)])).unwrap();
        for (r, want) in refs.iter().zip([1u8, 2]) {
            match store.get(r.id()) {
                Lookup::Ready(v) => assert_eq!(v.into_inner::<u8>().unwrap(), want),
                _ => panic!("result not stored"),
            }
        }
    }

    #[test]
    fn a_wrong_number_of_values_is_an_application_error_and_stores_nothing() {
        let store = store();
        let task_id = IdGenerator::new(JobId(1), 1).task_id();
        let r = store.add_ref(ObjectId::for_return(task_id, 0));
        let returns = Returns {
            task_id,
            num_returns: 1,
            name: "test::pair",
        };
        let err =
            store_output(&store, returns, Ok(vec![Value::new(1u8), Value::new(2u8)])).unwrap_err();
        assert_eq!(err.kind, TaskErrorKind::Application);
        assert!(err.message.contains("returned 2 values but 1"), "{err}");
        assert!(matches!(store.get(r.id()), Lookup::Pending));
        let events = TaskEventBuffer::new(10);
        let stored = fail_returns(&store, &events, store.node(), returns, 0, err);
        assert_eq!(stored.chain.len(), 1);
        assert!(
            matches!(store.get(r.id()), Lookup::Failed(e) if e.kind == TaskErrorKind::Application)
        );
    }

    #[test]
    fn a_reply_nobody_keeps_is_dropped() {
        let store = store();
        let task_id = IdGenerator::new(JobId(1), 1).task_id();
        let returns = Returns {
            task_id,
            num_returns: 0,
            name: "test::tell",
        };
        assert!(store_output(&store, returns, Ok(vec![Value::new(1u8)])).is_ok());
        assert_eq!(store.stats().num_objects, 0);
    }
}
