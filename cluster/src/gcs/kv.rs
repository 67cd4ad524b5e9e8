//! The key-value table: small byte values by namespace and key, as Ray's internal KV.

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, gcs_requests};

/// Largest key accepted.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Largest value accepted.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes (namespaces, keys and values) the store holds in all, at most, unless the GCS is
/// configured otherwise ([`super::GcsConfig::max_kv_bytes`]).
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024 * 1024;
/// Entries the store holds, at most.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Bytes of keys one `KvKeys` answers with, at most (the listing stops there).
pub const MAX_LISTED_BYTES: usize = 32 * 1024 * 1024;

/// What an entry costs against the table's bound of bytes.
fn cost(namespace: &str, key: &[u8], value: &[u8]) -> usize {
    namespace.len() + key.len() + value.len()
}

/// Stores `value` under `key`; returns whether the key was new. With `overwrite` false an
/// existing value is kept.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<bool, GcsError>")]
pub struct KvPut {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Replace an existing value.
    pub overwrite: bool,
}

/// Reads the value under `key`.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Option<Vec<u8>>, GcsError>")]
pub struct KvGet {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: Vec<u8>,
}

/// Deletes `key`; returns whether it existed.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<bool, GcsError>")]
pub struct KvDel {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: Vec<u8>,
}

/// Keys of `namespace` starting with `prefix`, in order: the first [`MAX_LISTED_BYTES`] bytes
/// of them (ask again with a longer prefix for the rest).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<Vec<u8>>, GcsError>")]
pub struct KvKeys {
    /// Namespace.
    pub namespace: String,
    /// Key prefix.
    pub prefix: Vec<u8>,
}

gcs_requests! {
    KvTable, kv:
    KvPut => bool as "gcs/KvPut";
    KvGet => Option<Vec<u8>> as "gcs/KvGet", access = Read;
    KvDel => bool as "gcs/KvDel";
    KvKeys => Vec<Vec<u8>> as "gcs/KvKeys", access = Read;
}

/// The key-value table actor.
pub struct KvTable {
    entries: Persisted<(String, Vec<u8>), Vec<u8>>,
    /// What the entries cost in all ([`cost`]).
    bytes: usize,
    /// The most they may cost.
    max_bytes: usize,
}

impl KvTable {
    pub(crate) fn load(db: &sled::Db, max_bytes: usize) -> Result<Self, GcsError> {
        let entries: Persisted<(String, Vec<u8>), Vec<u8>> = Persisted::open(db, "kv")?;
        let bytes = entries.iter().map(|((ns, k), v)| cost(ns, k, v)).sum();
        Ok(KvTable {
            entries,
            bytes,
            max_bytes,
        })
    }
}

impl Actor for KvTable {
    type Context = Context<Self>;
}

impl Handler<KvPut> for KvTable {
    type Result = Result<bool, GcsError>;
    fn handle(&mut self, m: KvPut, _: &mut Context<Self>) -> Self::Result {
        if m.key.len() > MAX_KEY_BYTES || m.value.len() > MAX_VALUE_BYTES {
            return Err(GcsError::Invalid(format!(
                "key of {} bytes / value of {} bytes exceeds the limit of {MAX_KEY_BYTES} / {MAX_VALUE_BYTES}",
                m.key.len(),
                m.value.len()
            )));
        }
        let k = (m.namespace, m.key);
        let old = self.entries.get(&k).map(|v| cost(&k.0, &k.1, v));
        if old.is_some() && !m.overwrite {
            return Ok(false);
        }
        let new = cost(&k.0, &k.1, &m.value);
        let bytes = self.bytes - old.unwrap_or(0) + new;
        if bytes > self.max_bytes || (old.is_none() && self.entries.len() >= MAX_ENTRIES) {
            return Err(GcsError::Invalid(format!(
                "the key-value store is full ({} entries, {} bytes; at most {MAX_ENTRIES} \
                 entries and {} bytes): delete keys first",
                self.entries.len(),
                self.bytes,
                self.max_bytes
            )));
        }
        self.entries.insert(k, m.value)?;
        self.bytes = bytes;
        Ok(old.is_none())
    }
}

impl Handler<KvGet> for KvTable {
    type Result = Result<Option<Vec<u8>>, GcsError>;
    fn handle(&mut self, m: KvGet, _: &mut Context<Self>) -> Self::Result {
        Ok(self.entries.get(&(m.namespace, m.key)).cloned())
    }
}

impl Handler<KvDel> for KvTable {
    type Result = Result<bool, GcsError>;
    fn handle(&mut self, m: KvDel, _: &mut Context<Self>) -> Self::Result {
        let k = (m.namespace, m.key);
        let removed = self.entries.remove(&k)?;
        if let Some(v) = &removed {
            self.bytes -= cost(&k.0, &k.1, v);
        }
        Ok(removed.is_some())
    }
}

impl Handler<KvKeys> for KvTable {
    type Result = Result<Vec<Vec<u8>>, GcsError>;
    fn handle(&mut self, m: KvKeys, _: &mut Context<Self>) -> Self::Result {
        let start = (m.namespace.clone(), m.prefix.clone());
        let mut listed = 0usize;
        Ok(self
            .entries
            .range_from(&start)
            .take_while(|((ns, k), _)| *ns == m.namespace && k.starts_with(&m.prefix))
            .take_while(|((_, k), _)| {
                listed += k.len();
                listed <= MAX_LISTED_BYTES
            })
            .map(|((_, k), _)| k.clone())
            .collect())
    }
}

impl std::fmt::Debug for KvTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTable").finish_non_exhaustive()
    }
}
