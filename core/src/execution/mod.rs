//! The one execution path of tasks and actor calls: whatever runs user code — a worker running
//! a task, an actor host running a method or a constructor — goes through these pieces.
//!
//! - [`context`]: the execution context ([`ExecCtx`](context::ExecCtx)) set on the thread while
//!   the code runs, and around every poll of its future;
//! - [`args`]: how the code reads its arguments ([`Args`]);
//! - [`panic`](mod@panic): a panic is caught and becomes its message, never unwinding into the runtime;
//! - [`results`]: the values become the result objects, or one error replaces them all, with
//!   the task's frame added and its message recorded in the task's event.
//!
//! What differs stays with the caller: a task's failure may be retried by its worker, and a
//! panicking method crashes its actor, which its host restarts.

pub(crate) mod args;
pub(crate) mod context;
pub(crate) mod panic;
pub(crate) mod results;

pub use args::Args;
