//! Spilling: objects past the memory budget are written to files under the session directory,
//! least recently used first, and read back on `get`.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use raya_common::{ObjectId, Value};

use super::{Deferred, Entry, State, StoreCore, old_value};
use crate::raw_ref::{RawRef, collect_refs};

/// Spill files waiting to be deleted, at most; past it the freeing thread deletes its own.
const MAX_UNLINKS: usize = 4096;

/// Deletes spill files on a thread of its own (started with the first file), so that freeing
/// a spilled object never waits for the disk. It stops when the store is dropped.
#[derive(Default)]
pub(super) struct Unlinker {
    tx: Mutex<Option<SyncSender<PathBuf>>>,
}

impl Unlinker {
    pub(super) fn delete(&self, path: PathBuf) {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.is_none() {
            let (sender, rx) = sync_channel::<PathBuf>(MAX_UNLINKS);
            let started = std::thread::Builder::new()
                .name("raya-unlink".into())
                .spawn(move || {
                    for path in rx {
                        unlink(&path);
                    }
                });
            if started.is_ok() {
                *tx = Some(sender);
            }
        }
        let path = match tx.as_ref().map(|t| t.try_send(path.clone())) {
            Some(Ok(())) => return,
            Some(Err(TrySendError::Full(p) | TrySendError::Disconnected(p))) => p,
            None => path,
        };
        drop(tx);
        unlink(&path);
    }
}

fn unlink(path: &std::path::Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %err, "could not delete spill file");
    }
}

impl StoreCore {
    pub(super) fn discard_spill(&self, spilled: Option<(PathBuf, u64, Vec<RawRef>)>) {
        if let Some((path, len, _)) = spilled {
            self.counters.num_spilled.fetch_sub(1, Ordering::Relaxed);
            self.counters
                .bytes_spilled
                .fetch_sub(len, Ordering::Relaxed);
            let _ = std::fs::remove_file(path);
        }
    }

    /// A file no other spill of this store uses, even of the same object (a file of an
    /// object freed earlier may still wait to be deleted).
    fn spill_path(&self, id: ObjectId) -> PathBuf {
        let n = self.clock.fetch_add(1, Ordering::Relaxed);
        self.config.spill_dir.join(format!("{id}.{n}.obj"))
    }

    /// Encodes `value` (collecting the references it contains) and writes it to its spill file.
    pub(super) fn write_spill(
        &self,
        id: ObjectId,
        value: &Value,
    ) -> Result<(PathBuf, u64, Vec<RawRef>), String> {
        let (encoded, contained) =
            collect_refs(|| std::panic::catch_unwind(AssertUnwindSafe(|| value.encode())));
        let bytes = match encoded {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("its Serialize implementation panicked".into()),
        };
        raya_common::private_fs::create_dir(&self.config.spill_dir)
            .map_err(|e| format!("{}: {e}", self.config.spill_dir.display()))?;
        let path = self.spill_path(id);
        raya_common::private_fs::write(&path, &bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = bytes.len() as u64;
        self.counters.num_spilled.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_spilled
            .fetch_add(len, Ordering::Relaxed);
        self.counters.total_spilled.fetch_add(1, Ordering::Relaxed);
        Ok((path, len, contained))
    }

    /// Spills least-recently-used objects until `needed` more bytes fit in the budget.
    pub(super) fn spill_lru(&self, needed: u64, exclude: Option<ObjectId>) {
        let _one_spiller = self.spill_lock.lock().unwrap_or_else(|p| p.into_inner());
        let budget = self.config.memory_budget;
        let over = |used: u64| used.saturating_add(needed).saturating_sub(budget);
        if over(self.used.load(Ordering::Relaxed)) == 0 {
            return;
        }
        let mut candidates: Vec<(u64, ObjectId, u64)> = Vec::new();
        for s in self.shards.iter() {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            candidates.extend(
                s.entries
                    .iter()
                    .filter(|(id, e)| {
                        Some(**id) != exclude
                            && e.size > 0
                            && !e.unspillable
                            && matches!(e.state, State::Ready(_))
                    })
                    .map(|(id, e)| (e.last_use, *id, e.size)),
            );
        }
        candidates.sort_unstable();
        for (_, id, _) in candidates {
            if over(self.used.load(Ordering::Relaxed)) == 0 {
                break;
            }
            self.spill_one(id);
        }
    }

    fn spill_one(&self, id: ObjectId) -> bool {
        let value = {
            let shard = self.shard(&id);
            match shard.entries.get(&id) {
                Some(Entry {
                    state: State::Ready(v),
                    unspillable: false,
                    ..
                }) => v.clone(),
                _ => return false,
            }
        };
        let (path, len, contained) = match self.write_spill(id, &value) {
            Ok(s) => s,
            Err(reason) => {
                tracing::warn!(object = %id, %reason, "object cannot be spilled");
                if let Some(e) = self.shard(&id).entries.get_mut(&id) {
                    e.unspillable = true;
                }
                return false;
            }
        };
        let mut deferred: Deferred = vec![Box::new(value.clone())];
        let swapped = {
            let mut shard = self.shard(&id);
            match shard.entries.get_mut(&id) {
                Some(e) if matches!(&e.state, State::Ready(v) if v.ptr_eq(&value)) => {
                    let old = std::mem::replace(
                        &mut e.state,
                        State::Spilled {
                            path: path.clone(),
                            len,
                        },
                    );
                    self.used.fetch_sub(e.size, Ordering::Relaxed);
                    e.size = 0;
                    e.contained.extend(contained);
                    deferred.push(Box::new(old_value(old)));
                    true
                }
                _ => {
                    deferred.push(Box::new(contained));
                    false
                }
            }
        };
        drop(value);
        drop(deferred);
        if !swapped {
            self.discard_spill(Some((path, len, Vec::new())));
        } else {
            tracing::debug!(object = %id, bytes = len, "spilled object");
        }
        swapped
    }
}
