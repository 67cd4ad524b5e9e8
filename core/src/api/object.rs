//! Objects: `put`, `get`, `wait`, `cancel` and [`ObjectRef`].

use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as PollContext, Poll};
use std::time::{Duration, Instant};

use raya_common::{FastHashSet, Object, ObjectId, Value};
use raya_store::{RawRef, Status, StoreCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::actor_host::HostControl;
use crate::actor_host::wire::WireControl;
use crate::core_worker::wait::{Need, WaitReady, block_until};
use crate::error::{Error, Result};
use crate::execution::args::{ReadError, read_arc, read_ref};
use crate::runtime::{current, current_or_start};

/// A reference to an object in Raya's object store: the result of a task or actor call, or a
/// value given to [`put`]. Cheap to clone (a reference count, not a copy), `Send`, and
/// serializable, so it can be passed to tasks and actors or stored inside other values. Await it
/// (or call [`get`]) for the value. The object is freed when the last reference to it — anywhere
/// on the node, including inside other objects and in queued tasks — is dropped.
///
/// Across nodes the count follows Ray's ownership protocol: a node holding a reference to an
/// object another node owns is counted by the owner, and a reference inside a message (a task's
/// argument or result, an actor call, an [`ActorHandle`](crate::ActorHandle) passed along) is
/// kept alive by the sender until the receiver has registered its own.
///
/// A reference serialized *out of band* — into JSON, a file, bytes the program keeps — does not
/// keep its object alive. Read back after every live reference was dropped, it names a freed
/// object, and a [`get`] of it fails at once with [`TaskErrorKind::ObjectLost`] saying so; it
/// never waits. Keep an `ObjectRef` alive in the program for as long as its serialized form
/// may be read back:
///
/// ```
/// # raya::init(raya::Config::default()).unwrap();
/// let r = raya::put(7u32).unwrap();
/// let text = serde_json::to_string(&r).unwrap();
/// let back: raya::ObjectRef<u32> = serde_json::from_str(&text).unwrap();
/// assert_eq!(raya::get(&back).unwrap(), 7);   // `r` is still alive
/// drop((r, back));
/// let late: raya::ObjectRef<u32> = serde_json::from_str(&text).unwrap();
/// let err = raya::get(&late).unwrap_err();
/// assert_eq!(err.task_error_kind(), Some(raya::TaskErrorKind::ObjectLost));
/// # raya::shutdown();
/// ```
///
/// [`TaskErrorKind::ObjectLost`]: crate::TaskErrorKind::ObjectLost
pub struct ObjectRef<T> {
    raw: RawRef,
    _t: PhantomData<fn() -> T>,
}

impl<T> ObjectRef<T> {
    pub(crate) fn from_raw(raw: RawRef) -> Self {
        ObjectRef {
            raw,
            _t: PhantomData,
        }
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.raw.id()
    }

    pub(crate) fn raw(&self) -> &RawRef {
        &self.raw
    }

    pub(crate) fn into_raw(self) -> RawRef {
        self.raw
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef::from_raw(self.raw.clone())
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({})", self.raw.id())
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw.id() == other.raw.id()
    }
}
impl<T> Eq for ObjectRef<T> {}

impl<T> Hash for ObjectRef<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.raw.id().hash(h)
    }
}

impl<T> Serialize for ObjectRef<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for ObjectRef<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        RawRef::deserialize(d).map(ObjectRef::from_raw)
    }
}

impl<T: Object + Clone> ObjectRef<T> {
    /// Blocks until the object is ready and returns a copy of it (same as [`get`]).
    pub fn get(&self) -> Result<T> {
        get(self)
    }
}

fn read_error(e: ReadError) -> Error {
    match e {
        ReadError::Value(v) => v.into(),
        ReadError::Task(t) => Error::Task(t),
    }
}

fn read<T: Object + Clone>(store: &StoreCore, r: &RawRef) -> Result<T> {
    read_ref::<T>(store, r).map_err(read_error)
}

/// Stores `value` in the node's object store and returns a reference to it. The value is moved,
/// not copied or serialized: a later `get` on this node clones it out of the store.
///
/// Fails with a store-full error when the value does not fit in the memory budget and spilling is
/// off (the objects already stored are untouched).
///
/// ```
/// # raya::init(raya::Config::default().num_cpus(1)).unwrap();
/// let r = raya::put(vec![1u32, 2, 3]).unwrap();
/// assert_eq!(raya::get(&r).unwrap(), vec![1, 2, 3]);
/// # raya::shutdown();
/// ```
pub fn put<T: Object>(value: T) -> Result<ObjectRef<T>> {
    put_value(Value::new(value))
}

/// Stores a shared, immutable value without copying it: every `get_arc` returns the same
/// allocation.
pub fn put_arc<T: Object>(value: Arc<T>) -> Result<ObjectRef<T>> {
    put_value(Value::from_arc(value))
}

fn put_value<T>(value: Value) -> Result<ObjectRef<T>> {
    let core = current_or_start()?;
    let id = core.ids.put_id();
    core.store
        .put(id, value)
        .map(ObjectRef::from_raw)
        .map_err(|(e, _)| Error::Store(e))
}

/// Like [`put`], but hands the value back when the store has no room for it.
pub fn try_put<T: Object>(value: T) -> std::result::Result<ObjectRef<T>, (Error, T)> {
    let core = match current_or_start() {
        Ok(core) => core,
        Err(e) => return Err((e, value)),
    };
    let id = core.ids.put_id();
    match core.store.put(id, Value::new(value)) {
        Ok(r) => Ok(ObjectRef::from_raw(r)),
        Err((e, v)) => {
            let back = v
                .into_arc::<T>()
                .ok()
                .and_then(|a| Arc::try_unwrap(a).ok())
                .expect("the store hands back the unique value it was given");
            Err((Error::Store(e), back))
        }
    }
}

/// Blocks until the object is ready and returns a copy of it. If the task that makes it failed,
/// returns that error (with the chain of tasks it passed through); if it was cancelled, an error
/// for which [`Error::is_cancelled`] is true.
pub fn get<T: Object + Clone>(r: &ObjectRef<T>) -> Result<T> {
    let core = current()?;
    block_until(&core.store, &[&r.raw], Need::Some(1), None, "get")?;
    read(&core.store, &r.raw)
}

/// Like [`get`], without copying: the returned `Arc` shares the stored value.
pub fn get_arc<T: Object>(r: &ObjectRef<T>) -> Result<Arc<T>> {
    let core = current()?;
    block_until(&core.store, &[&r.raw], Need::Some(1), None, "get")?;
    read_arc::<T>(&core.store, &r.raw).map_err(read_error)
}

/// Like [`get`], but fails with [`Error::GetTimeout`] after `timeout`.
pub fn get_timeout<T: Object + Clone>(r: &ObjectRef<T>, timeout: Duration) -> Result<T> {
    let core = current()?;
    if !block_until(
        &core.store,
        &[&r.raw],
        Need::Some(1),
        Some(Instant::now() + timeout),
        "get",
    )? {
        return Err(Error::GetTimeout(timeout));
    }
    read(&core.store, &r.raw)
}

/// Gets every object, in order. As soon as one fails its error is returned, without waiting
/// for the others (when several have failed, the first of them in `refs`).
pub fn get_all<T: Object + Clone>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    let core = current()?;
    let raws: Vec<&RawRef> = refs.iter().map(|r| &r.raw).collect();
    block_until(&core.store, &raws, Need::AllOrFailure, None, "get_all")?;
    read_all(&core.store, refs)
}

/// Reads objects that are all ready, or returns the error of the first that failed.
fn read_all<T: Object + Clone>(store: &StoreCore, refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    if let Some(failed) = refs.iter().find(|r| store.status(r.id()) == Status::Failed) {
        read::<T>(store, &failed.raw)?;
    }
    refs.iter().map(|r| read(store, &r.raw)).collect()
}

/// Like [`get_all`], but fails with [`Error::GetTimeout`] after `timeout`.
pub fn get_all_timeout<T: Object + Clone>(
    refs: &[ObjectRef<T>],
    timeout: Duration,
) -> Result<Vec<T>> {
    let core = current()?;
    let raws: Vec<&RawRef> = refs.iter().map(|r| &r.raw).collect();
    if !block_until(
        &core.store,
        &raws,
        Need::AllOrFailure,
        Some(Instant::now() + timeout),
        "get_all",
    )? {
        return Err(Error::GetTimeout(timeout));
    }
    read_all(&core.store, refs)
}

fn check_wait_args<T>(refs: &[ObjectRef<T>], num_returns: usize) -> Result<()> {
    if num_returns > refs.len() {
        return Err(Error::InvalidArgument(format!(
            "wait: num_returns ({num_returns}) exceeds the number of refs ({})",
            refs.len()
        )));
    }
    let mut seen = FastHashSet::with_capacity_and_hasher(refs.len(), Default::default());
    if !refs.iter().all(|r| seen.insert(r.id())) {
        return Err(Error::InvalidArgument(
            "wait: the list of refs contains duplicates".into(),
        ));
    }
    Ok(())
}

fn split_ready<T>(store: &StoreCore, refs: &[ObjectRef<T>], num_returns: usize) -> ReadyPending<T> {
    let mut ready = Vec::new();
    let mut pending = Vec::new();
    for r in refs {
        if ready.len() < num_returns && store.status(r.id()) != Status::Pending {
            ready.push(r.clone());
        } else {
            pending.push(r.clone());
        }
    }
    (ready, pending)
}

/// Waits until `num_returns` of `refs` are ready (finished or failed), or `timeout` passes.
/// Returns the ready ones (at most `num_returns`) and the others, each in the order of `refs`.
/// A `timeout` of `None` waits as long as needed; `Some(Duration::ZERO)` only looks.
///
/// ```
/// # raya::init(raya::Config::default().num_cpus(1)).unwrap();
/// let refs: Vec<_> = (0..3).map(|i| raya::put(i).unwrap()).collect();
/// let (ready, pending) = raya::wait(&refs, 2, None).unwrap();
/// assert_eq!((ready.len(), pending.len()), (2, 1));
/// # raya::shutdown();
/// ```
pub fn wait<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> Result<ReadyPending<T>> {
    check_wait_args(refs, num_returns)?;
    let core = current()?;
    let raws: Vec<&RawRef> = refs.iter().map(|r| &r.raw).collect();
    block_until(
        &core.store,
        &raws,
        Need::Some(num_returns),
        timeout.map(|t| Instant::now() + t),
        "wait",
    )?;
    Ok(split_ready(&core.store, refs, num_returns))
}

/// Cancels the task (or actor call) that makes `r`. A queued task never runs; a running one is
/// flagged (see [`crate::is_cancelled`]) and, when `force` is set and it is `async`, stopped at its
/// next await point. Either way its result — and the result of every task depending on it —
/// reports cancellation. Tasks the cancelled task submitted are cancelled too. Cancelling a
/// finished task does nothing.
pub fn cancel<T>(r: &ObjectRef<T>, force: bool) -> Result<()> {
    let core = current()?;
    if r.id().is_put() {
        return Err(Error::InvalidArgument(format!(
            "{} was made by put, not by a task: there is nothing to cancel",
            r.id()
        )));
    }
    let task_id = r.id().task;
    match r.raw.actor() {
        Some(actor) => {
            // The actor's host here (which forwards to the actor's node), or else the sender
            // of this node's calls to it.
            if !core
                .host_env
                .directory
                .control(actor, HostControl::Cancel { task_id, force })
            {
                core.host_env
                    .remote
                    .control(actor, WireControl::Cancel { task_id, force });
            }
        }
        None => core.tasks.cancel(task_id, force),
    }
    Ok(())
}

/// What `wait` returns: the ready references and the pending ones, each in input order.
pub type ReadyPending<T> = (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>);

/// The future of `ObjectRef<T>.await`: the object's value, as [`get`] returns it.
pub struct GetFuture<T> {
    raw: RawRef,
    wait: WaitReady,
    _t: PhantomData<fn() -> T>,
}

impl<T: Object + Clone> Future for GetFuture<T> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut PollContext<'_>) -> Poll<Result<T>> {
        match Pin::new(&mut self.wait).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(_)) => Poll::Ready(read(self.raw.store(), &self.raw)),
        }
    }
}

impl<T: Object + Clone> IntoFuture for ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = GetFuture<T>;
    fn into_future(self) -> GetFuture<T> {
        GetFuture {
            wait: WaitReady::new(vec![self.raw.clone()], Need::Some(1), None),
            raw: self.raw,
            _t: PhantomData,
        }
    }
}

impl<T: Object + Clone> IntoFuture for &ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = GetFuture<T>;
    fn into_future(self) -> GetFuture<T> {
        self.clone().into_future()
    }
}

/// The async form of [`get`] (same as `r.await`).
pub async fn get_async<T: Object + Clone>(r: &ObjectRef<T>) -> Result<T> {
    r.clone().await
}

/// The async form of [`get_timeout`].
pub async fn get_timeout_async<T: Object + Clone>(
    r: &ObjectRef<T>,
    timeout: Duration,
) -> Result<T> {
    if !WaitReady::new(vec![r.raw.clone()], Need::Some(1), Some(timeout)).await? {
        return Err(Error::GetTimeout(timeout));
    }
    read(r.raw.store(), &r.raw)
}

/// The async form of [`get_all`].
pub async fn get_all_async<T: Object + Clone>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    let raws: Vec<RawRef> = refs.iter().map(|r| r.raw.clone()).collect();
    WaitReady::new(raws, Need::AllOrFailure, None).await?;
    read_all(&current()?.store, refs)
}

/// The async form of [`wait`].
pub async fn wait_async<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> Result<ReadyPending<T>> {
    check_wait_args(refs, num_returns)?;
    let raws: Vec<RawRef> = refs.iter().map(|r| r.raw.clone()).collect();
    WaitReady::new(raws, Need::Some(num_returns), timeout).await?;
    let core = current()?;
    Ok(split_ready(&core.store, refs, num_returns))
}

impl<T> std::fmt::Debug for GetFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetFuture")
            .field("object", &self.raw.id())
            .finish()
    }
}
