//! The store's shared state: objects by id in locked shards.

use std::hash::{BuildHasher, BuildHasherDefault};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use raya_common::{ActorId, FastHashMap, FastHasher, NodeId, ObjectId, TaskError, Value};
use serde::{Deserialize, Serialize};

use crate::raw_ref::{RawRef, collect_refs};
use crate::signal::{Waiter, WaiterId};

const SHARDS: usize = 64;

/// How a node's store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The node the store belongs to.
    pub node: NodeId,
    /// Bytes of objects kept in memory; past it objects are spilled (or puts fail).
    pub memory_budget: u64,
    /// Whether objects may be spilled to disk.
    pub spilling: bool,
    /// Where spilled objects go.
    pub spill_dir: PathBuf,
}

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    /// No room in the memory budget and spilling is off (or nothing could be spilled).
    #[error(
        "object store full: {needed} bytes needed, {used} of {budget} bytes held by referenced objects{}",
        if *spilling { "" } else { " and spilling is off" }
    )]
    Full {
        /// Bytes the object needs.
        needed: u64,
        /// Bytes in memory.
        used: u64,
        /// The budget.
        budget: u64,
        /// Whether spilling is on.
        spilling: bool,
    },
    /// The object is not in the store.
    #[error(
        "object {0} is not in the object store (all its references were dropped, or it was lost)"
    )]
    Missing(ObjectId),
    /// Reading or writing a spill file failed.
    #[error("spill file error: {0}")]
    Io(String),
}

/// Counters describing the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Objects with at least one reference (pending, in memory, failed or spilled).
    pub num_objects: u64,
    /// Objects held in memory.
    pub num_in_memory: u64,
    /// Bytes held in memory (estimated for live values).
    pub bytes_in_memory: u64,
    /// Objects currently on disk.
    pub num_spilled: u64,
    /// Bytes currently on disk.
    pub bytes_spilled: u64,
    /// The memory budget.
    pub memory_budget: u64,
    /// Objects spilled since start.
    pub total_spilled: u64,
    /// Objects read back from disk since start.
    pub total_restored: u64,
}

/// What the store holds for an id.
pub enum Lookup {
    /// The value (live, or bytes read back from disk).
    Ready(Value),
    /// The task that was to make it failed.
    Failed(Arc<TaskError>),
    /// Not made yet.
    Pending,
    /// Not in the store.
    Missing,
}

/// Readiness of an object, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// In memory or on disk.
    Ready,
    /// Failed.
    Failed,
    /// Not made yet.
    Pending,
    /// Not in the store.
    Missing,
}

enum State {
    Pending(Vec<(WaiterId, Waiter)>),
    Ready(Value),
    Failed(Arc<TaskError>),
    Spilled { path: PathBuf, len: u64 },
}

struct Entry {
    refs: u64,
    state: State,
    /// Bytes counted in `used`.
    size: u64,
    last_use: u64,
    /// References held by the encoded form (bytes or spill file) of this object.
    contained: Vec<RawRef>,
    unspillable: bool,
    located: bool,
    /// Run when the last reference goes.
    on_free: Option<Box<dyn FnOnce() + Send>>,
    /// The node that owns the object, when another node does.
    owner: Option<NodeId>,
    /// Whether the fetch hook has been told that someone waits for this pending object.
    fetch_requested: bool,
}

/// What the store tells the node's object manager.
pub trait StoreHooks: Send + Sync {
    /// Someone started waiting for pending object `id`, owned by `owner` (`None`: this node).
    fn wanted(&self, id: ObjectId, owner: Option<NodeId>);
    /// This node took its first reference (`true`) to, or dropped its last (`false`) from,
    /// object `id` owned by node `owner`.
    fn borrowed(&self, id: ObjectId, owner: NodeId, first: bool);
}

#[derive(Default)]
struct Shard {
    entries: FastHashMap<ObjectId, Entry>,
    /// Location changes not yet reported to the GCS: `Some(size)` added, `None` removed.
    changes: FastHashMap<ObjectId, Option<u64>>,
}

impl Shard {
    fn record(&mut self, id: ObjectId, change: Option<u64>) {
        match change {
            Some(size) => {
                self.changes.insert(id, Some(size));
            }
            None => {
                if let Some(Some(_)) = self.changes.get(&id) {
                    // Added and removed before the GCS heard of it: nothing to report.
                    self.changes.remove(&id);
                } else {
                    self.changes.insert(id, None);
                }
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    total_spilled: AtomicU64,
    total_restored: AtomicU64,
    num_spilled: AtomicU64,
    bytes_spilled: AtomicU64,
}

/// The node's objects, shared by every thread of the node.
pub struct StoreCore {
    shards: Box<[Mutex<Shard>]>,
    used: AtomicU64,
    count: AtomicU64,
    clock: AtomicU64,
    config: StoreConfig,
    spill_lock: Mutex<()>,
    counters: Counters,
    hooks: std::sync::OnceLock<Box<dyn StoreHooks>>,
}

/// Things dropped after a shard lock is released: dropping a value can drop the references it
/// contains, which lock shards again.
type Deferred = Vec<Box<dyn std::any::Any + Send>>;

impl StoreCore {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Arc<StoreCore> {
        Arc::new(StoreCore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            used: AtomicU64::new(0),
            count: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            config,
            spill_lock: Mutex::new(()),
            counters: Counters::default(),
            hooks: std::sync::OnceLock::new(),
        })
    }

    /// Connects the node's object manager (once; later calls are ignored).
    pub fn set_hooks(&self, hooks: Box<dyn StoreHooks>) {
        let _ = self.hooks.set(hooks);
    }

    /// The node the store belongs to.
    pub fn node(&self) -> NodeId {
        self.config.node
    }

    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> u64 {
        self.config.memory_budget
    }

    fn shard(&self, id: &ObjectId) -> MutexGuard<'_, Shard> {
        let h = BuildHasherDefault::<FastHasher>::default().hash_one(id) as usize;
        self.shards[h % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn new_entry(&self, state: State, size: u64) -> Entry {
        self.count.fetch_add(1, Ordering::Relaxed);
        Entry {
            refs: 1,
            state,
            size,
            last_use: self.tick(),
            contained: Vec::new(),
            unspillable: false,
            located: false,
            on_free: None,
            owner: None,
            fetch_requested: false,
        }
    }

    /// Counts one more reference to `id` (creating a pending entry for an object still to be
    /// made) and returns it.
    pub fn add_ref(self: &Arc<Self>, id: ObjectId) -> RawRef {
        self.add_ref_from(id, self.config.node, None)
    }

    /// [`StoreCore::add_ref`] for the result of a call to `actor`.
    pub fn add_actor_ref(self: &Arc<Self>, id: ObjectId, actor: ActorId) -> RawRef {
        self.add_ref_from(id, self.config.node, Some(actor))
    }

    /// [`StoreCore::add_ref`] for a reference created by `owner` (for the result of a call to
    /// `actor`).
    pub fn add_ref_from(
        self: &Arc<Self>,
        id: ObjectId,
        owner: NodeId,
        actor: Option<ActorId>,
    ) -> RawRef {
        let foreign = owner != self.config.node;
        let first = {
            let mut shard = self.shard(&id);
            match shard.entries.get_mut(&id) {
                Some(e) => {
                    e.refs += 1;
                    false
                }
                None => {
                    let mut e = self.new_entry(State::Pending(Vec::new()), 0);
                    e.owner = foreign.then_some(owner);
                    shard.entries.insert(id, e);
                    true
                }
            }
        };
        if first
            && foreign
            && let Some(h) = self.hooks.get()
        {
            h.borrowed(id, owner, true);
        }
        RawRef::counted(Arc::clone(self), id, owner, actor)
    }

    pub(crate) fn remove_ref(&self, id: ObjectId) {
        let removed = {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                return;
            };
            e.refs -= 1;
            if e.refs > 0 {
                return;
            }
            let e = shard.entries.remove(&id);
            if let Some(e) = &e
                && e.located
            {
                shard.record(id, None);
            }
            e
        };
        if let Some(mut e) = removed {
            if let Some(f) = e.on_free.take() {
                f();
            }
            if let (Some(owner), Some(h)) = (e.owner, self.hooks.get()) {
                h.borrowed(id, owner, false);
            }
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.used.fetch_sub(e.size, Ordering::Relaxed);
            if let State::Spilled { path, len } = &e.state {
                self.counters.num_spilled.fetch_sub(1, Ordering::Relaxed);
                self.counters
                    .bytes_spilled
                    .fetch_sub(*len, Ordering::Relaxed);
                if let Err(err) = std::fs::remove_file(path) {
                    tracing::warn!(object = %id, error = %err, "could not delete spill file");
                }
            }
            drop(e);
        }
    }

    fn try_reserve(&self, size: u64) -> bool {
        let budget = self.config.memory_budget;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur.saturating_add(size) <= budget).then_some(cur + size)
            })
            .is_ok()
    }

    /// Makes room for `size` bytes, spilling least-recently-used objects when allowed.
    fn reserve(&self, size: u64, exclude: Option<ObjectId>) -> Result<(), StoreError> {
        if self.try_reserve(size) {
            return Ok(());
        }
        if self.config.spilling {
            self.spill_lru(size, exclude);
            if self.try_reserve(size) {
                return Ok(());
            }
        }
        Err(StoreError::Full {
            needed: size,
            used: self.used.load(Ordering::Relaxed),
            budget: self.config.memory_budget,
            spilling: self.config.spilling,
        })
    }

    /// Stores a new object made by `put` and returns the first reference to it. On failure the
    /// value is handed back.
    pub fn put(
        self: &Arc<Self>,
        id: ObjectId,
        value: Value,
    ) -> Result<RawRef, (StoreError, Value)> {
        let size = value.size() as u64;
        let state = match self.reserve(size, Some(id)) {
            Ok(()) => State::Ready(value),
            Err(e) if !self.config.spilling => return Err((e, value)),
            Err(e) => match self.write_spill(id, &value) {
                Ok((path, len, contained)) => {
                    let mut entry = self.new_entry(State::Spilled { path, len }, 0);
                    entry.contained = contained;
                    entry.located = true;
                    let mut shard = self.shard(&id);
                    shard.record(id, Some(len));
                    shard.entries.insert(id, entry);
                    return Ok(RawRef::counted(
                        Arc::clone(self),
                        id,
                        self.config.node,
                        None,
                    ));
                }
                Err(reason) => {
                    tracing::warn!(object = %id, %reason, "object larger than the free budget and not spillable");
                    return Err((e, value));
                }
            },
        };
        let reserved = if matches!(state, State::Ready(_)) {
            size
        } else {
            0
        };
        let mut entry = self.new_entry(state, reserved);
        entry.located = true;
        {
            let mut shard = self.shard(&id);
            shard.record(id, Some(size));
            if let Some(old) = shard.entries.insert(id, entry) {
                // Put ids are fresh; a clash means a bug elsewhere. Keep the new object.
                tracing::error!(object = %id, "put replaced an existing object");
                self.count.fetch_sub(1, Ordering::Relaxed);
                self.used.fetch_sub(old.size, Ordering::Relaxed);
                drop(shard);
                drop(old);
            }
        }
        Ok(RawRef::counted(
            Arc::clone(self),
            id,
            self.config.node,
            None,
        ))
    }

    /// Stores the result of a task. Returns `Ok(true)` when stored, `Ok(false)` when nobody
    /// references the object any more (or it already failed, e.g. was cancelled) and the value was
    /// dropped, and `Err` when there is no room; the caller then fails the object instead.
    pub fn complete(&self, id: ObjectId, value: Value) -> Result<bool, StoreError> {
        let size = value.size() as u64;
        let mut deferred: Deferred = Vec::new();
        let waiters;
        let mut spilled = None;
        if let Err(e) = self.reserve(size, Some(id)) {
            if !self.config.spilling {
                return Err(e);
            }
            match self.write_spill(id, &value) {
                Ok(s) => spilled = Some(s),
                Err(reason) => {
                    tracing::warn!(object = %id, %reason, "task result larger than the free budget and not spillable");
                    return Err(e);
                }
            }
        }
        {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                drop(shard);
                if spilled.is_none() {
                    self.used.fetch_sub(size, Ordering::Relaxed);
                }
                self.discard_spill(spilled);
                return Ok(false);
            };
            if !matches!(e.state, State::Pending(_)) {
                drop(shard);
                if spilled.is_none() {
                    self.used.fetch_sub(size, Ordering::Relaxed);
                }
                self.discard_spill(spilled);
                return Ok(false);
            }
            let new_state = match spilled {
                None => {
                    e.size = size;
                    State::Ready(value)
                }
                Some((path, len, contained)) => {
                    e.contained = contained;
                    deferred.push(Box::new(value));
                    State::Spilled { path, len }
                }
            };
            e.located = true;
            e.last_use = self.tick();
            let State::Pending(w) = std::mem::replace(&mut e.state, new_state) else {
                unreachable!("checked above")
            };
            waiters = w;
            shard.record(id, Some(size));
        }
        drop(deferred);
        for (_, w) in waiters {
            w.fire();
        }
        Ok(true)
    }

    fn discard_spill(&self, spilled: Option<(PathBuf, u64, Vec<RawRef>)>) {
        if let Some((path, len, _)) = spilled {
            self.counters.num_spilled.fetch_sub(1, Ordering::Relaxed);
            self.counters
                .bytes_spilled
                .fetch_sub(len, Ordering::Relaxed);
            let _ = std::fs::remove_file(path);
        }
    }

    /// Records that the task making `id` failed. Returns whether the error was stored (an object
    /// that is already ready keeps its value).
    pub fn fail(&self, id: ObjectId, error: Arc<TaskError>) -> bool {
        let waiters = {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                return false;
            };
            if !matches!(e.state, State::Pending(_)) {
                return false;
            }
            let State::Pending(w) = std::mem::replace(&mut e.state, State::Failed(error)) else {
                unreachable!("checked above")
            };
            w
        };
        for (_, w) in waiters {
            w.fire();
        }
        true
    }

    /// Readiness of `id`.
    pub fn status(&self, id: ObjectId) -> Status {
        let shard = self.shard(&id);
        match shard.entries.get(&id).map(|e| &e.state) {
            None => Status::Missing,
            Some(State::Pending(_)) => Status::Pending,
            Some(State::Failed(_)) => Status::Failed,
            Some(State::Ready(_) | State::Spilled { .. }) => Status::Ready,
        }
    }

    /// Reads `id`: a live value costs an `Arc` clone; a spilled one is read from disk as bytes
    /// (call [`StoreCore::promote`] with the decoded value to keep it in memory again).
    pub fn get(&self, id: ObjectId) -> Lookup {
        let path = {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                return Lookup::Missing;
            };
            e.last_use = self.clock.fetch_add(1, Ordering::Relaxed);
            match &e.state {
                State::Ready(v) => return Lookup::Ready(v.clone()),
                State::Failed(err) => return Lookup::Failed(Arc::clone(err)),
                State::Pending(_) => return Lookup::Pending,
                State::Spilled { path, .. } => path.clone(),
            }
        };
        match std::fs::read(&path) {
            Ok(bytes) => Lookup::Ready(Value::from_bytes(bytes)),
            Err(err) => {
                if self.status(id) == Status::Missing {
                    Lookup::Missing
                } else {
                    tracing::error!(object = %id, error = %err, "spill file unreadable");
                    Lookup::Failed(Arc::new(TaskError::new(
                        raya_common::TaskErrorKind::ObjectLost,
                        format!("spill file {} unreadable: {err}", path.display()),
                    )))
                }
            }
        }
    }

    /// Replaces a spilled (or encoded) object with its decoded live value, when the budget has
    /// room for it.
    pub fn promote(&self, id: ObjectId, live: Value) {
        let size = live.size() as u64;
        if self.reserve(size, Some(id)).is_err() {
            return;
        }
        let mut deferred: Deferred = Vec::new();
        let mut restored = false;
        {
            let mut shard = self.shard(&id);
            match shard.entries.get_mut(&id) {
                Some(e)
                    if matches!(e.state, State::Spilled { .. })
                        || matches!(&e.state, State::Ready(v) if !v.is_live()) =>
                {
                    let old = std::mem::replace(&mut e.state, State::Ready(live));
                    self.used.fetch_sub(e.size, Ordering::Relaxed);
                    e.size = size;
                    e.unspillable = false;
                    deferred.push(Box::new(std::mem::take(&mut e.contained)));
                    if let State::Spilled { path, len } = &old {
                        self.counters.num_spilled.fetch_sub(1, Ordering::Relaxed);
                        self.counters
                            .bytes_spilled
                            .fetch_sub(*len, Ordering::Relaxed);
                        self.counters.total_restored.fetch_add(1, Ordering::Relaxed);
                        restored = true;
                        let _ = std::fs::remove_file(path);
                    }
                    deferred.push(Box::new(old_value(old)));
                }
                _ => {
                    self.used.fetch_sub(size, Ordering::Relaxed);
                    deferred.push(Box::new(live));
                }
            }
        }
        if restored {
            tracing::debug!(object = %id, "restored spilled object");
        }
        drop(deferred);
    }

    /// Registers `waiter` for when `id` stops being pending. Hands the waiter back when the object
    /// is not pending (ready, failed or missing). A waiter with the same id replaces the old one.
    pub fn register_waiter(
        &self,
        id: ObjectId,
        wid: WaiterId,
        waiter: Waiter,
    ) -> Result<(), Waiter> {
        let fetch = {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                return Err(waiter);
            };
            let State::Pending(list) = &mut e.state else {
                return Err(waiter);
            };
            match list.iter_mut().find(|(w, _)| *w == wid) {
                Some(slot) => slot.1 = waiter,
                None => list.push((wid, waiter)),
            }
            let fetch = !e.fetch_requested;
            e.fetch_requested = true;
            fetch.then_some(e.owner)
        };
        if let (Some(owner), Some(h)) = (fetch, self.hooks.get()) {
            h.wanted(id, owner);
        }
        Ok(())
    }

    /// Whether someone waits for pending object `id`.
    pub fn has_waiters(&self, id: ObjectId) -> bool {
        matches!(
            self.shard(&id).entries.get(&id).map(|e| &e.state),
            Some(State::Pending(list)) if !list.is_empty()
        )
    }

    /// Removes a waiter registered with [`StoreCore::register_waiter`].
    pub fn unregister_waiter(&self, id: ObjectId, wid: WaiterId) {
        let removed = {
            let mut shard = self.shard(&id);
            match shard.entries.get_mut(&id).map(|e| &mut e.state) {
                Some(State::Pending(list)) => list
                    .iter()
                    .position(|(w, _)| *w == wid)
                    .map(|i| list.swap_remove(i)),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Runs `callback` once `id` is no longer pending: now (returning `false`) if it already is
    /// not, otherwise from the thread that completes it (returning `true`).
    pub fn on_ready(&self, id: ObjectId, callback: Box<dyn FnOnce() + Send>) -> bool {
        match self.register_waiter(
            id,
            crate::signal::next_waiter_id(),
            Waiter::Callback(callback),
        ) {
            Ok(()) => true,
            Err(Waiter::Callback(f)) => {
                f();
                false
            }
            Err(_) => unreachable!("the waiter handed back is the one given"),
        }
    }

    /// Runs `callback` when the last reference to `id` is dropped (replacing an earlier one).
    /// Returns `false` (dropping the callback) when `id` is not in the store.
    pub fn on_free(&self, id: ObjectId, callback: Box<dyn FnOnce() + Send>) -> bool {
        let mut shard = self.shard(&id);
        match shard.entries.get_mut(&id) {
            Some(e) => {
                e.on_free = Some(callback);
                true
            }
            None => false,
        }
    }

    /// Number of references to `id` on this node (0 when absent).
    pub fn ref_count(&self, id: ObjectId) -> u64 {
        self.shard(&id).entries.get(&id).map_or(0, |e| e.refs)
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        let num_spilled = self.counters.num_spilled.load(Ordering::Relaxed);
        let mut num_in_memory = 0;
        for s in self.shards.iter() {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            num_in_memory += s
                .entries
                .values()
                .filter(|e| matches!(e.state, State::Ready(_)))
                .count() as u64;
        }
        StoreStats {
            num_objects: self.count.load(Ordering::Relaxed),
            num_in_memory,
            bytes_in_memory: self.used.load(Ordering::Relaxed),
            num_spilled,
            bytes_spilled: self.counters.bytes_spilled.load(Ordering::Relaxed),
            memory_budget: self.config.memory_budget,
            total_spilled: self.counters.total_spilled.load(Ordering::Relaxed),
            total_restored: self.counters.total_restored.load(Ordering::Relaxed),
        }
    }

    /// Takes the location changes not yet reported: objects added (with sizes) and removed.
    pub fn drain_location_changes(&self) -> (Vec<(ObjectId, u64)>, Vec<ObjectId>) {
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            for (id, c) in s.changes.drain() {
                match c {
                    Some(size) => added.push((id, size)),
                    None => removed.push(id),
                }
            }
        }
        (added, removed)
    }

    fn spill_path(&self, id: ObjectId) -> PathBuf {
        self.config.spill_dir.join(format!("{id}.obj"))
    }

    /// Encodes `value` (collecting the references it contains) and writes it to its spill file.
    fn write_spill(
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
        std::fs::create_dir_all(&self.config.spill_dir)
            .map_err(|e| format!("{}: {e}", self.config.spill_dir.display()))?;
        let path = self.spill_path(id);
        std::fs::write(&path, &*bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = bytes.len() as u64;
        self.counters.num_spilled.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_spilled
            .fetch_add(len, Ordering::Relaxed);
        self.counters.total_spilled.fetch_add(1, Ordering::Relaxed);
        Ok((path, len, contained))
    }

    /// Spills least-recently-used objects until `needed` more bytes fit in the budget.
    fn spill_lru(&self, needed: u64, exclude: Option<ObjectId>) {
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

fn old_value(s: State) -> Option<Value> {
    match s {
        State::Ready(v) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
