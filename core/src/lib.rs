//! # Raya: Ray Core for Rust
//!
//! Remote functions (tasks), remote stateful objects (actors) and an object store between them,
//! running on every core of one machine or on the nodes of a cluster linked by libp2p, built on
//! Actix. Every Ray concept is an Actix actor with a mailbox: the global control
//! store's tables, the local and global schedulers, the object store, the workers and each of
//! your actors.
//!
//! ```
//! use raya::prelude::*;
//!
//! #[raya::remote]
//! fn square(x: i64) -> i64 {
//!     x * x
//! }
//!
//! #[raya::actor]
//! struct Counter {
//!     value: u64,
//! }
//!
//! #[raya::actor]
//! impl Counter {
//!     fn new(start: u64) -> Self {
//!         Counter { value: start }
//!     }
//!     fn increment(&mut self) -> u64 {
//!         self.value += 1;
//!         self.value
//!     }
//! }
//!
//! raya::init(raya::Config::default()).unwrap();
//! let r = square::remote(4);
//! assert_eq!(raya::get(&r).unwrap(), 16);
//!
//! let c = Counter::remote(0);
//! let refs: Vec<ObjectRef<u64>> = (0..10).map(|_| c.increment()).collect();
//! assert_eq!(raya::get_all(&refs).unwrap(), (1..=10).collect::<Vec<_>>());
//! raya::shutdown();
//! ```
//!
//! ## What runs where
//!
//! `raya::init` starts an embedded one-node cluster in the process: the GCS tables (persisted in
//! sled under a session directory), a local and a global scheduler, the object store, one worker
//! thread per CPU, and event loops for actors. Values stay live Rust values on the node: a local
//! `get` is a lock, a pointer copy and a clone, never a deserialization.
//!
//! Tasks hold their resources (1 CPU by default) while they run and wait for free resources;
//! a task blocked in `get` lends its CPU back so nested fan-out cannot deadlock. A request no node
//! can ever satisfy fails with an infeasible error. Actors take 1 CPU to place and none to run.
//!
//! Errors are values: a task that panics or returns `Err` stores the error as its result; `get`
//! returns it and dependent tasks fail with it, the chain of tasks recorded.
//!
//! ## A cluster
//!
//! With `RAYA_ADDRESS` set (or [`Config::address`]), `raya::init` joins the cluster whose head
//! listens there (started with `raya start --head`, or by a program with [`Config::head`]); with
//! `RAYA_ROLE=worker` too, the program serves the cluster as a worker node and never returns
//! from `init`. Tasks and actors go to nodes whose binary links them and that have the
//! resources; objects move between nodes when needed; see the README's cluster section.

// Lets the crate's own tests use `#[raya::remote]` and `#[raya::actor]`.
#[cfg(test)]
extern crate self as raya;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod actor_host;
mod api;
mod block_on;
mod config;
mod core_worker;
mod error;
mod execution;
mod raylet;
mod registry;
mod runtime;
mod timer;
mod wire_checks;

pub use api::actor::{
    Actor, ActorBuilder, ActorClass, ActorOptions, Context, Handler, Lifetime, Message,
};
pub use api::args::IntoArg;
pub use api::cluster::{
    available_resources, available_resources_async, cluster_resources, cluster_resources_async, kv,
    list_actors, list_actors_async, list_tasks, list_tasks_async, nodes, nodes_async,
    object_store_stats,
};
pub use api::context::{RuntimeContext, is_cancelled, runtime_context};
pub use api::handle::{
    ActorHandle, get_actor, get_actor_async, get_actor_in, get_actor_in_async, kill, kill_with,
};
pub use api::object::{
    GetFuture, ObjectRef, ReadyPending, cancel, get, get_all, get_all_async, get_all_timeout,
    get_arc, get_async, get_timeout, get_timeout_async, put, put_arc, try_put, wait, wait_async,
};
pub use api::task::{FunctionCall, TaskBuilder, TaskOptions};
pub use config::{Config, Fenced};
pub use error::{Error, Result};
pub use execution::Args;
pub use raya_cluster::gcs::actors::{ActorInfo, ActorState};
pub use raya_cluster::gcs::nodes::{NodeInfo, NodeState};
pub use raya_cluster::gcs::task_events::{TaskEvent, TaskKind, TaskState};
pub use raya_cluster::transport::ClusterKey;
pub use raya_common::size::register_heap_size;
pub use raya_common::{
    ActorAddress, ActorId, JobId, NodeId, Object, ObjectId, TaskError, TaskErrorKind, TaskFrame,
    TaskId, WorkerId,
};
pub use raya_macros::{actor, remote};
pub use raya_scheduler::SchedulingStrategy;
pub use raya_store::{StoreError, StoreStats};
pub use runtime::cluster_key::{current_cluster_key_file, joining_cluster_key};
pub use runtime::node_files::{
    current_cluster_file, nodes_dir, process_start, record_matches_process,
};
pub use runtime::serve::serve;
pub use runtime::{cluster_address, cluster_key, init, is_initialized, session_dir, shutdown};
pub use wire_checks::wire_checks;

/// What most programs need: `use raya::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Actor, ActorBuilder, ActorHandle, Context, Handler, IntoArg, Message, ObjectRef,
        TaskBuilder,
    };
    pub use std::time::Duration;
}
