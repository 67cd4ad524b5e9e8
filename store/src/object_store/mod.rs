//! The object store of a node (Ray's plasma store, in-process).
//!
//! [`StoreCore`] holds the node's objects by id in 64 locked shards: live Rust values (never
//! serialized while they stay on the node), encoded bytes, errors of failed tasks, and objects
//! spilled (`spill`) to disk when the memory budget is exceeded. Every [`RawRef`] alive on the
//! node counts as a reference; when the last one goes the object is freed (and its spill file
//! deleted), and an object is never evicted while referenced — only spilled. Every thread of the
//! node reads the core directly: a local `get` is a lock, an `Arc` clone and a downcast.
//!
//! Waiting is by registration: [`StoreCore::register_waiter`] (a signal, a waker or a callback)
//! fires when an object stops being pending. The store tells the node's object manager, through
//! [`StoreHooks`], when someone waits for an object it does not have and when a reference to an
//! object owned elsewhere is first taken or last dropped.
//!
//! The [`ObjectStore`] actor is the store's mailbox (`mailbox`): it reports object locations to the GCS in
//! batches.

mod mailbox;
mod spill;
mod types;
mod waiters;

pub use mailbox::ObjectStore;
pub use types::{Lookup, Resident, Status, StoreConfig, StoreError, StoreStats};

use std::hash::{BuildHasher, BuildHasherDefault};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use raya_common::{ActorId, FastHashMap, FastHasher, NodeId, ObjectId, TaskError, Value};

use crate::raw_ref::RawRef;
use crate::signal::{Waiter, WaiterId};

const SHARDS: usize = 64;

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
}

/// What the store tells the node's object manager.
pub trait StoreHooks: Send + Sync {
    /// Someone started waiting for pending object `id`, owned by `owner` (`None`: this node),
    /// and nobody else was waiting.
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
    spill_reads: AtomicU64,
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
    /// Deletes the spill files of freed objects off the thread that freed them.
    unlinker: spill::Unlinker,
    /// Set when the node stopped ([`StoreCore::fail_all_pending`]).
    stopped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for StoreCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCore")
            .field("node", &self.config.node)
            .field("objects", &self.count.load(Ordering::Relaxed))
            .field("bytes_in_memory", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
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
            unlinker: spill::Unlinker::default(),
            counters: Counters::default(),
            hooks: std::sync::OnceLock::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
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
        self.counted_ref(id, owner, actor, false)
    }

    /// A reference read back from its serialized form (in a message, or in bytes the program
    /// kept out of band). An object of this node that is no longer in the store was freed while
    /// only serialized references to it were left: the reference reads as failed at once,
    /// rather than waiting for an object nobody will make.
    pub fn attach(self: &Arc<Self>, id: ObjectId, owner: NodeId, actor: Option<ActorId>) -> RawRef {
        self.counted_ref(id, owner, actor, true)
    }

    fn counted_ref(
        self: &Arc<Self>,
        id: ObjectId,
        owner: NodeId,
        actor: Option<ActorId>,
        read_back: bool,
    ) -> RawRef {
        let foreign = owner != self.config.node;
        let first = {
            let mut shard = self.shard(&id);
            match shard.entries.get_mut(&id) {
                Some(e) => {
                    e.refs += 1;
                    false
                }
                None if read_back && !foreign => {
                    let freed = TaskError::new(
                        raya_common::TaskErrorKind::ObjectLost,
                        format!(
                            "object {id} was freed: every reference to it was dropped while it \
                             was kept only in serialized form (an ObjectRef serialized out of \
                             band does not keep its object alive; keep an ObjectRef in the program \
                             for as long as the object is needed)"
                        ),
                    );
                    let e = self.new_entry(State::Failed(Arc::new(freed)), 0);
                    shard.entries.insert(id, e);
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
                // The last reference may go on any thread, one carrying the network or a
                // scheduler included: the file is deleted elsewhere.
                self.unlinker.delete(path.clone());
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

    /// Fails every object still pending with `error`, waking whoever waits for one, and returns
    /// how many there were. The node calls it when it stops: nothing will complete them any
    /// more, and a waiter's callback (which may hold a reference into this store) must not
    /// outlive the node in a store nobody frees.
    pub fn fail_all_pending(&self, error: Arc<TaskError>) -> usize {
        self.stopped.store(true, Ordering::SeqCst);
        let mut waiters = Vec::new();
        let mut failed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for e in shard.entries.values_mut() {
                if let State::Pending(_) = e.state {
                    let State::Pending(w) =
                        std::mem::replace(&mut e.state, State::Failed(Arc::clone(&error)))
                    else {
                        unreachable!("checked above")
                    };
                    waiters.extend(w.into_iter().map(|(_, w)| w));
                    failed += 1;
                }
            }
        }
        // Outside the shard locks: a callback may drop references, which lock shards again.
        for w in waiters {
            w.fire();
        }
        failed
    }

    /// Whether the node this store belongs to stopped: what fails from now on fails because
    /// of that, not of its own accord.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Whether `id` is in this store and owned by this node (not a borrowed object).
    pub fn owned_here(&self, id: ObjectId) -> bool {
        self.shard(&id)
            .entries
            .get(&id)
            .is_some_and(|e| e.owner.is_none())
    }

    /// The objects still pending here that node `owner` owns (references this node borrows
    /// from it), for failing them when that node dies.
    pub fn pending_owned_by(&self, owner: NodeId) -> Vec<ObjectId> {
        let mut ids = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            ids.extend(
                shard
                    .entries
                    .iter()
                    .filter(|(_, e)| e.owner == Some(owner) && matches!(e.state, State::Pending(_)))
                    .map(|(id, _)| *id),
            );
        }
        ids
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
        let (path, contained) = {
            let mut shard = self.shard(&id);
            let Some(e) = shard.entries.get_mut(&id) else {
                return Lookup::Missing;
            };
            e.last_use = self.clock.fetch_add(1, Ordering::Relaxed);
            match &e.state {
                State::Ready(v) => return Lookup::Ready(v.clone()),
                State::Failed(err) => return Lookup::Failed(Arc::clone(err)),
                State::Pending(_) => return Lookup::Pending,
                State::Spilled { path, .. } => (path.clone(), e.contained.clone()),
            }
        };
        self.counters.spill_reads.fetch_add(1, Ordering::Relaxed);
        match std::fs::read(&path) {
            // The bytes read back hold the references the spilled value contained.
            Ok(bytes) => Lookup::Ready(crate::wire_value::keeping(bytes, contained)),
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

    /// Where `id` is: its value when in memory, its encoded length when spilled. Never reads
    /// the disk (for threads that must not block).
    pub fn resident(&self, id: ObjectId) -> Resident {
        let shard = self.shard(&id);
        match shard.entries.get(&id).map(|e| &e.state) {
            None => Resident::Missing,
            Some(State::Pending(_)) => Resident::Pending,
            Some(State::Failed(e)) => Resident::Failed(Arc::clone(e)),
            Some(State::Ready(v)) => Resident::Memory(v.clone()),
            Some(State::Spilled { len, .. }) => Resident::Spilled(*len),
        }
    }

    /// The error `id` failed with, if it failed (never reads the disk).
    pub fn failure(&self, id: ObjectId) -> Option<Arc<TaskError>> {
        match self.resident(id) {
            Resident::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether `bytes` more fit in the memory budget now, without spilling.
    pub fn has_room(&self, bytes: u64) -> bool {
        self.used.load(Ordering::Relaxed).saturating_add(bytes) <= self.config.memory_budget
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

    /// Number of references to `id` on this node (0 when absent).
    pub fn ref_count(&self, id: ObjectId) -> u64 {
        self.shard(&id).entries.get(&id).map_or(0, |e| e.refs)
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        let num_spilled = self.counters.num_spilled.load(Ordering::Relaxed);
        let (mut num_in_memory, mut num_waiters) = (0, 0);
        for s in self.shards.iter() {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            for e in s.entries.values() {
                match &e.state {
                    State::Ready(_) => num_in_memory += 1,
                    State::Pending(list) => num_waiters += list.len() as u64,
                    _ => {}
                }
            }
        }
        StoreStats {
            num_objects: self.count.load(Ordering::Relaxed),
            num_in_memory,
            num_waiters,
            bytes_in_memory: self.used.load(Ordering::Relaxed),
            num_spilled,
            bytes_spilled: self.counters.bytes_spilled.load(Ordering::Relaxed),
            memory_budget: self.config.memory_budget,
            total_spilled: self.counters.total_spilled.load(Ordering::Relaxed),
            total_restored: self.counters.total_restored.load(Ordering::Relaxed),
            total_spill_reads: self.counters.spill_reads.load(Ordering::Relaxed),
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
}

fn old_value(s: State) -> Option<Value> {
    match s {
        State::Ready(v) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
