//! A table kept in memory and written through to a sled tree.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::GcsError;

pub(crate) struct Persisted<K, V> {
    tree: sled::Tree,
    map: BTreeMap<K, V>,
}

fn storage(e: impl std::fmt::Display) -> GcsError {
    GcsError::Storage(e.to_string())
}

impl<K, V> Persisted<K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Opens tree `name` and loads every record. A record that no longer decodes is dropped with
    /// a warning rather than failing the whole GCS.
    pub(crate) fn open(db: &sled::Db, name: &str) -> Result<Self, GcsError> {
        let tree = db.open_tree(name).map_err(storage)?;
        let mut map = BTreeMap::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(storage)?;
            match (postcard::from_bytes::<K>(&k), postcard::from_bytes::<V>(&v)) {
                (Ok(k), Ok(v)) => {
                    map.insert(k, v);
                }
                _ => tracing::warn!(table = name, "dropping a GCS record that does not decode"),
            }
        }
        Ok(Persisted { tree, map })
    }

    fn key_bytes(k: &K) -> Result<Vec<u8>, GcsError> {
        postcard::to_stdvec(k).map_err(storage)
    }

    pub(crate) fn insert(&mut self, k: K, v: V) -> Result<Option<V>, GcsError> {
        let kb = Self::key_bytes(&k)?;
        let vb = postcard::to_stdvec(&v).map_err(storage)?;
        self.tree.insert(kb, vb).map_err(storage)?;
        Ok(self.map.insert(k, v))
    }

    pub(crate) fn remove(&mut self, k: &K) -> Result<Option<V>, GcsError> {
        let kb = Self::key_bytes(k)?;
        self.tree.remove(kb).map_err(storage)?;
        Ok(self.map.remove(k))
    }

    /// Applies many inserts (`Some`) and removals (`None`) in one sled batch.
    pub(crate) fn apply(&mut self, ops: Vec<(K, Option<V>)>) -> Result<(), GcsError> {
        let mut batch = sled::Batch::default();
        for (k, v) in &ops {
            let kb = Self::key_bytes(k)?;
            match v {
                Some(v) => batch.insert(kb, postcard::to_stdvec(v).map_err(storage)?),
                None => batch.remove(kb),
            }
        }
        self.tree.apply_batch(batch).map_err(storage)?;
        for (k, v) in ops {
            match v {
                Some(v) => {
                    self.map.insert(k, v);
                }
                None => {
                    self.map.remove(&k);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub(crate) fn range_from<'a>(&'a self, from: &K) -> impl Iterator<Item = (&'a K, &'a V)> {
        self.map.range(from.clone()..)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl<K: Ord, V> Persisted<K, V> {
    /// Changes the in-memory copy only (for fast-changing fields not worth a disk write).
    pub(crate) fn set_in_memory(&mut self, k: K, v: V) {
        self.map.insert(k, v);
    }
}
