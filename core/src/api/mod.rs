//! What users call: objects ([`object`]: `put`, `get`, `wait`, `cancel`, `ObjectRef`), tasks
//! ([`task`]: options, `FunctionCall`), actor types ([`actor`]) and handles ([`handle`]),
//! arguments ([`args`]), the runtime context ([`context`]) and the cluster as the GCS sees it
//! ([`cluster`]). Each call goes to the process's [core worker](crate::core_worker).

pub(crate) mod actor;
pub(crate) mod args;
pub(crate) mod cluster;
pub(crate) mod context;
pub(crate) mod handle;
pub(crate) mod object;
pub(crate) mod task;
