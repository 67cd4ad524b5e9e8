//! How a running task or actor call reads its arguments: values passed directly are moved out,
//! referenced objects are read from the node's store.

use std::sync::Arc;

use raya_common::{Object, TaskError, TaskErrorKind, Value};
use raya_scheduler::TaskArg;
use raya_store::{Lookup, RawRef, StoreCore};

/// The arguments of a running task, taken one by one by the generated code.
pub struct Args {
    slots: Vec<Option<TaskArg>>,
    store: Arc<StoreCore>,
    function: Arc<str>,
    num_returns: u32,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("function", &self.function)
            .field("len", &self.slots.len())
            .finish()
    }
}

impl Args {
    pub(crate) fn new(
        args: Vec<TaskArg>,
        store: Arc<StoreCore>,
        function: Arc<str>,
        num_returns: u32,
    ) -> Args {
        Args {
            slots: args.into_iter().map(Some).collect(),
            store,
            function,
            num_returns,
        }
    }

    /// Number of arguments passed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no arguments were passed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Fails unless exactly `n` arguments were passed.
    pub fn expect_len(&self, n: usize) -> Result<(), TaskError> {
        if self.slots.len() == n {
            return Ok(());
        }
        Err(TaskError::new(
            TaskErrorKind::ArgumentType,
            format!(
                "{} takes {n} argument{}, {} given",
                self.function,
                if n == 1 { "" } else { "s" },
                self.slots.len()
            ),
        ))
    }

    /// How many return values the caller asked for.
    pub fn num_returns(&self) -> u32 {
        self.num_returns
    }

    /// Takes argument `i` as a `T`: a value passed directly is moved out (cloned only when a
    /// retry may need it again); a referenced object is read from the store.
    pub fn take<T: Object + Clone>(&mut self, i: usize) -> Result<T, TaskError> {
        let arg = self
            .slots
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| {
                TaskError::new(
                    TaskErrorKind::ArgumentType,
                    format!(
                        "{}: argument {i} is missing ({} given)",
                        self.function,
                        self.slots.len()
                    ),
                )
            })?;
        let function = &self.function;
        let mismatch = |e: raya_common::value::ValueError| {
            TaskError::new(
                TaskErrorKind::ArgumentType,
                format!("{function}: argument {i}: {e}"),
            )
        };
        match arg {
            TaskArg::Value(v) => v.into_inner::<T>().map_err(mismatch),
            TaskArg::Ref(r) => read_ref::<T>(&self.store, &r).map_err(|e| match e {
                ReadError::Value(v) => mismatch(v),
                ReadError::Task(t) => t,
            }),
        }
    }
}

pub(crate) enum ReadError {
    Value(raya_common::value::ValueError),
    Task(TaskError),
}

/// Reads a ready object as a `T`. Encoded (spilled) objects are decoded once and kept live.
pub(crate) fn read_ref<T: Object + Clone>(store: &StoreCore, r: &RawRef) -> Result<T, ReadError> {
    read_arc::<T>(store, r).map(|a| Arc::try_unwrap(a).unwrap_or_else(|shared| (*shared).clone()))
}

/// Reads a ready object as a shared `Arc<T>` (no copy for a live value).
pub(crate) fn read_arc<T: Object>(store: &StoreCore, r: &RawRef) -> Result<Arc<T>, ReadError> {
    match store.get(r.id()) {
        Lookup::Ready(v) if v.is_live() => v.to_arc::<T>().map_err(ReadError::Value),
        Lookup::Ready(v) => {
            let arc = v.to_arc::<T>().map_err(ReadError::Value)?;
            store.promote(r.id(), Value::from_arc(Arc::clone(&arc)));
            Ok(arc)
        }
        Lookup::Failed(e) => Err(ReadError::Task((*e).clone())),
        Lookup::Pending => Err(ReadError::Task(TaskError::new(
            TaskErrorKind::System,
            format!("object {} read before it was ready", r.id()),
        ))),
        Lookup::Missing => Err(ReadError::Task(TaskError::new(
            TaskErrorKind::ObjectLost,
            format!("object {} is no longer in the object store", r.id()),
        ))),
    }
}
