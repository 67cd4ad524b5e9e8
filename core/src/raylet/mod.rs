//! The raylet: the per-node half of Ray, which every node runs beside its core worker.
//!
//! | Ray's raylet part | Raya | where |
//! |---|---|---|
//! | node manager | [`NodeManager`](node_manager::NodeManager): membership, placed actors, calls from other nodes | [`node_manager`] |
//! | worker pool | `WorkerPool`: idle and busy workers, more while some block | `raya_scheduler::local::worker_pool` |
//! | workers | [`Worker`](worker::Worker): one thread each, one task at a time | [`worker`] |
//! | local task manager | `LocalScheduler`: queues, arguments, resources, dispatch, spillback | `raya_scheduler::local` |
//! | object store | `StoreCore` and its `ObjectStore` mailbox | `raya_store::object_store` |
//! | object manager | `ObjectManager`: results to owners, pulls, borrowers, frees | `raya_store::object_manager` |
//!
//! Actor workers are [actor hosts](crate::actor_host) here: one Actix actor per user actor, on
//! shared event loops and threads, not a process each.

pub(crate) mod node_manager;
pub(crate) mod worker;
