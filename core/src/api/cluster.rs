//! The cluster as the GCS sees it: nodes, resources, task and actor records, and the key-value
//! store.

use std::collections::BTreeMap;

use raya_cluster::gcs::actors::{ActorInfo, ListActors};
use raya_cluster::gcs::kv::{KvDel, KvGet, KvKeys, KvPut};
use raya_cluster::gcs::nodes::{GetAllNodes, NodeInfo, NodeState};
use raya_cluster::gcs::task_events::{ListTaskEvents, TaskEvent};
use raya_store::StoreStats;

use crate::block_on::block_on;
use crate::error::Result;
use crate::execution::context::check_may_block;
use crate::runtime::current;

fn blocking<T>(what: &'static str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    check_may_block(what)?;
    block_on(f)
}

/// Every node the cluster has known, alive and dead.
pub fn nodes() -> Result<Vec<NodeInfo>> {
    blocking("nodes", nodes_async())
}

/// The async form of [`nodes`].
pub async fn nodes_async() -> Result<Vec<NodeInfo>> {
    Ok(current()?.gcs.request(GetAllNodes).await?)
}

fn sum(
    nodes: &[NodeInfo],
    pick: impl Fn(&NodeInfo) -> &raya_common::ResourceSet,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.state == NodeState::Alive) {
        for (name, amount) in pick(n).iter() {
            *out.entry(name.to_string()).or_insert(0.0) += amount;
        }
    }
    out
}

/// Total resources of the alive nodes.
///
/// ```
/// # raya::init(raya::Config::default().num_cpus(2).resource("sensor", 1.0)).unwrap();
/// let total = raya::cluster_resources().unwrap();
/// assert_eq!(total["CPU"], 2.0);
/// assert_eq!(total["sensor"], 1.0);
/// # raya::shutdown();
/// ```
pub fn cluster_resources() -> Result<BTreeMap<String, f64>> {
    blocking("cluster_resources", cluster_resources_async())
}

/// The async form of [`cluster_resources`].
pub async fn cluster_resources_async() -> Result<BTreeMap<String, f64>> {
    Ok(sum(&nodes_async().await?, |n| &n.resources_total))
}

/// Free resources of the alive nodes, as of their last heartbeat (every 100 ms). Resources with
/// nothing free are left out, as in Ray.
pub fn available_resources() -> Result<BTreeMap<String, f64>> {
    blocking("available_resources", available_resources_async())
}

/// The async form of [`available_resources`].
pub async fn available_resources_async() -> Result<BTreeMap<String, f64>> {
    Ok(sum(&nodes_async().await?, |n| &n.resources_available))
}

/// Live actors (and dead ones when `include_dead`) as the GCS records them.
pub fn list_actors(include_dead: bool) -> Result<Vec<ActorInfo>> {
    blocking("list_actors", list_actors_async(include_dead))
}

/// The async form of [`list_actors`].
pub async fn list_actors_async(include_dead: bool) -> Result<Vec<ActorInfo>> {
    Ok(current()?.gcs.request(ListActors { include_dead }).await?)
}

/// The most recent task records (flushed to the GCS once a second), newest last.
pub fn list_tasks(limit: usize) -> Result<Vec<TaskEvent>> {
    blocking("list_tasks", list_tasks_async(limit))
}

/// The async form of [`list_tasks`].
pub async fn list_tasks_async(limit: usize) -> Result<Vec<TaskEvent>> {
    Ok(current()?
        .gcs
        .request(ListTaskEvents { job: None, limit })
        .await?)
}

/// Counters of this node's object store: objects held, bytes in memory, objects spilled.
pub fn object_store_stats() -> Result<StoreStats> {
    Ok(current()?.store.stats())
}

/// The GCS key-value store, by namespace (Ray's internal KV).
///
/// ```
/// # raya::init(raya::Config::default().num_cpus(1)).unwrap();
/// assert!(raya::kv::put("app", b"mode", b"fast", false).unwrap());
/// assert_eq!(raya::kv::get("app", b"mode").unwrap(), Some(b"fast".to_vec()));
/// # raya::shutdown();
/// ```
pub mod kv {
    use super::*;

    /// Stores `value` under `key`; returns whether the key was new. An existing value is replaced
    /// only when `overwrite` is set.
    pub fn put(namespace: &str, key: &[u8], value: &[u8], overwrite: bool) -> Result<bool> {
        blocking("kv::put", put_async(namespace, key, value, overwrite))
    }

    /// The async form of [`put`].
    pub async fn put_async(
        namespace: &str,
        key: &[u8],
        value: &[u8],
        overwrite: bool,
    ) -> Result<bool> {
        let m = KvPut {
            namespace: namespace.into(),
            key: key.into(),
            value: value.into(),
            overwrite,
        };
        Ok(current()?.gcs.request(m).await?)
    }

    /// The value under `key`.
    pub fn get(namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        blocking("kv::get", get_async(namespace, key))
    }

    /// The async form of [`get`].
    pub async fn get_async(namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let m = KvGet {
            namespace: namespace.into(),
            key: key.into(),
        };
        Ok(current()?.gcs.request(m).await?)
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(namespace: &str, key: &[u8]) -> Result<bool> {
        blocking("kv::delete", delete_async(namespace, key))
    }

    /// The async form of [`delete`].
    pub async fn delete_async(namespace: &str, key: &[u8]) -> Result<bool> {
        let m = KvDel {
            namespace: namespace.into(),
            key: key.into(),
        };
        Ok(current()?.gcs.request(m).await?)
    }

    /// Keys starting with `prefix`, in order.
    pub fn keys(namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        blocking("kv::keys", keys_async(namespace, prefix))
    }

    /// The async form of [`keys`].
    pub async fn keys_async(namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let m = KvKeys {
            namespace: namespace.into(),
            prefix: prefix.into(),
        };
        Ok(current()?.gcs.request(m).await?)
    }
}
