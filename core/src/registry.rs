//! Remote functions and actor types registered at link time by `#[raya::remote]` and
//! `#[raya::actor]`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use linkme::distributed_slice;
use raya_common::{TaskError, Value};

use crate::error::{Error, Result};
use crate::execution::args::Args;

/// What a task's function produces: its return values, or the error that replaces them.
pub type Output = std::result::Result<Vec<Value>, TaskError>;

/// A boxed future run on a worker's event loop.
pub type LocalFuture = Pin<Box<dyn Future<Output = Output>>>;

/// How to run a registered function.
#[derive(Debug, Clone, Copy)]
pub enum Invoke {
    /// A plain function, run on a worker thread.
    Sync(fn(&mut Args) -> Output),
    /// An `async fn`, run on a worker's event loop.
    Async(fn(Args) -> LocalFuture),
}

/// A remote function registered by `#[raya::remote]`.
#[derive(Debug)]
pub struct FunctionEntry {
    /// The registered name (by default the function's module path).
    pub name: &'static str,
    /// Its return values per call.
    pub num_returns: u32,
    /// How to run it.
    pub invoke: Invoke,
}

/// An actor type registered by `#[raya::actor]`.
#[derive(Debug)]
pub struct ActorClassEntry {
    /// The registered name (by default the type's module path).
    pub name: &'static str,
    /// Starts a host for an actor of this type that the cluster placed on this node.
    pub start: fn(crate::actor_host::HostStart),
}

// SAFETY (both registries): linkme gathers the entries into one link section per registry; it
// checks at compile time that every entry has the registry's type, and the entries are plain
// immutable statics read only through these slices.

/// Every `#[raya::remote]` function linked into the binary.
#[allow(unsafe_code)]
#[distributed_slice]
pub static REMOTE_FUNCTIONS: [FunctionEntry];

/// Every `#[raya::actor]` type linked into the binary.
#[allow(unsafe_code)]
#[distributed_slice]
pub static ACTOR_CLASSES: [ActorClassEntry];

pub(crate) struct Registry {
    functions: HashMap<&'static str, u32>,
}

static REGISTRY: OnceLock<std::result::Result<Registry, Error>> = OnceLock::new();

fn build() -> std::result::Result<Registry, Error> {
    let mut functions = HashMap::new();
    for (i, f) in REMOTE_FUNCTIONS.iter().enumerate() {
        if functions.insert(f.name, i as u32).is_some() {
            return Err(Error::DuplicateFunction(f.name.to_string()));
        }
    }
    let mut classes = std::collections::HashSet::new();
    for c in ACTOR_CLASSES.iter() {
        if !classes.insert(c.name) || functions.contains_key(c.name) {
            return Err(Error::DuplicateFunction(c.name.to_string()));
        }
    }
    Ok(Registry { functions })
}

/// The registry, checked once for duplicate names.
pub(crate) fn registry() -> Result<&'static Registry> {
    REGISTRY.get_or_init(build).as_ref().map_err(Clone::clone)
}

impl Registry {
    /// The index of `name` in [`REMOTE_FUNCTIONS`].
    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.functions.get(name).copied()
    }
}

/// The entry at `index`, or looked up by `name`.
pub(crate) fn function(index: Option<u32>, name: &str) -> Option<&'static FunctionEntry> {
    if let Some(i) = index
        && let Some(f) = REMOTE_FUNCTIONS.get(i as usize)
        && f.name == name
    {
        return Some(f);
    }
    let reg = registry().ok()?;
    reg.index_of(name)
        .and_then(|i| REMOTE_FUNCTIONS.get(i as usize))
}

/// The position of `entry` in [`REMOTE_FUNCTIONS`].
pub(crate) fn index_of_entry(entry: &'static FunctionEntry) -> Option<u32> {
    let base = REMOTE_FUNCTIONS.as_ptr() as usize;
    let offset = (entry as *const FunctionEntry as usize).checked_sub(base)?;
    let i = offset / std::mem::size_of::<FunctionEntry>();
    REMOTE_FUNCTIONS
        .get(i)
        .filter(|f| std::ptr::eq(*f, entry))
        .map(|_| i as u32)
}
