//! Where the head placed each actor's creation lately ([`Placements`]), in memory for the actor
//! table and the global scheduler, and on disk for a head started again on its directory.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use raya_common::{ActorId, NodeId};

use crate::gcs::GcsError;

/// Placements kept, at most (the oldest are let go).
pub const MAX_PLACEMENTS_KEPT: usize = 1 << 20;

/// Writes to disk queued for the placements' writer thread, at most; past it a placement is
/// kept in memory only (and a warning says so).
const MAX_QUEUED_WRITES: usize = 1 << 16;

/// Where the head placed the creation of each actor it placed lately: the only node, besides
/// the one recorded, an actor's record may move to (so a member cannot claim another's actor
/// while it is being created, and receive its calls). Written by the head's global scheduler
/// before it sends the placement, read by the actor table, and let go once the placed node
/// reported the actor or the actor died (so it holds the creations in flight). Keeps the latest
/// [`MAX_PLACEMENTS_KEPT`] placements.
///
/// The head's placements are on disk too (the `actor_placements` tree). The disk writes run on
/// a thread of their own, never on the scheduler's or the tables' event loop; a caller that
/// needs what it recorded on disk waits for [`Placements::flushed`] (the scheduler does before
/// it sends an actor's creation or restart to another node). So a head restarted on its directory still knows where it sent
/// a restart, believes the node that got it when it reports the actor, and sends the restart
/// to that node again rather than to another.
#[derive(Debug, Clone, Default)]
pub struct Placements(Arc<Mutex<PlacedActors>>);

/// The placements, and the order they came in (an entry let go early stays in the order until
/// its turn; the generation tells it from a later placement of the same actor).
#[derive(Debug, Default)]
struct PlacedActors {
    at: HashMap<ActorId, (NodeId, u64)>,
    order: VecDeque<(ActorId, u64)>,
    generation: u64,
    /// The disk writer (none for placements kept in memory only, as in tests).
    writer: Option<SyncSender<Write>>,
    /// Its thread, joined when the placements go (it holds the database open until then).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for PlacedActors {
    fn drop(&mut self) {
        // The writer ends once its channel closes, after the writes queued before.
        self.writer = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::warn!("the placements' disk writer panicked");
        }
    }
}

/// What the writer thread does.
enum Write {
    /// Stores (`Some`) or deletes (`None`) an actor's placement.
    Put(ActorId, Option<NodeId>),
    /// Flushes what came before, then answers.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl Placements {
    /// The placements stored in `db` by an earlier run of the head, kept there from now on
    /// (entries that do not decode are deleted).
    pub(crate) fn open(db: &sled::Db) -> Result<Placements, GcsError> {
        let storage = |e: sled::Error| GcsError::Storage(e.to_string());
        let tree = db.open_tree("actor_placements").map_err(storage)?;
        let placements = Placements::default();
        let mut stale = Vec::new();
        {
            let mut p = placements.lock();
            for item in tree.iter() {
                let (k, v) = item.map_err(storage)?;
                match (
                    postcard::from_bytes::<ActorId>(&k),
                    postcard::from_bytes::<NodeId>(&v),
                ) {
                    (Ok(actor), Ok(node)) => p.insert(actor, node),
                    _ => stale.push(k),
                }
            }
        }
        if !stale.is_empty() {
            tracing::warn!(
                count = stale.len(),
                "dropping actor placements that do not decode"
            );
            let mut batch = sled::Batch::default();
            for k in stale {
                batch.remove(k);
            }
            tree.apply_batch(batch).map_err(storage)?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(MAX_QUEUED_WRITES);
        let thread = std::thread::Builder::new()
            .name("raya-placements".into())
            .spawn(move || write_placements(&tree, &rx))
            .map_err(|e| GcsError::Storage(format!("cannot start the placements' writer: {e}")))?;
        let mut p = placements.lock();
        p.writer = Some(tx);
        p.thread = Some(thread);
        drop(p);
        Ok(placements)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlacedActors> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the head placed `actor`'s creation on `node`.
    pub fn record(&self, actor: ActorId, node: NodeId) {
        let mut p = self.lock();
        p.store(actor, Some(node));
        p.insert(actor, node);
    }

    /// Resolves once every placement recorded so far is on disk (at once for placements kept
    /// in memory only). The flush runs on the writer thread; a failure is logged there.
    pub fn flushed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = self
            .lock()
            .writer
            .as_ref()
            .is_some_and(|w| w.try_send(Write::Flush(tx)).is_ok());
        async move {
            if queued {
                let _ = rx.await;
            }
        }
    }

    /// Lets go of the placements of actors `keep` says need theirs no more (at load: those
    /// that are neither being created nor restarting, as after a crash between an actor's
    /// death and the deletion of its placement).
    pub(super) fn retain(&self, keep: impl Fn(ActorId) -> bool) {
        let mut p = self.lock();
        let gone: Vec<ActorId> = p.at.keys().copied().filter(|a| !keep(*a)).collect();
        for actor in gone {
            p.at.remove(&actor);
            p.store(actor, None);
        }
    }

    /// Where the head last placed `actor`'s creation, if it did lately.
    pub fn placed(&self, actor: ActorId) -> Option<NodeId> {
        self.lock().at.get(&actor).map(|(n, _)| *n)
    }

    /// Lets go of `actor`'s placement (its node reported it, or it died; a later move is a new
    /// placement).
    pub(super) fn settled(&self, actor: ActorId) {
        let mut p = self.lock();
        if p.at.remove(&actor).is_some() {
            p.store(actor, None);
        }
    }
}

impl PlacedActors {
    /// Keeps `actor`'s placement on `node` in memory, letting go of the oldest past the bound.
    fn insert(&mut self, actor: ActorId, node: NodeId) {
        self.generation += 1;
        let g = self.generation;
        self.at.insert(actor, (node, g));
        self.order.push_back((actor, g));
        while self.order.len() > MAX_PLACEMENTS_KEPT {
            if let Some((old, g)) = self.order.pop_front()
                && self.at.get(&old).is_some_and(|(_, now)| *now == g)
            {
                self.at.remove(&old);
                self.store(old, None);
            }
        }
    }

    /// Queues the disk write of `actor`'s placement (`None`: its deletion).
    fn store(&self, actor: ActorId, node: Option<NodeId>) {
        let Some(w) = &self.writer else { return };
        match w.try_send(Write::Put(actor, node)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(actor = %actor, "the placements' disk writer is behind: this placement is kept in memory only")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!(actor = %actor, "the placements' disk writer stopped: this placement is kept in memory only")
            }
        }
    }
}

/// The writer thread: applies the writes in order, a run of them in one batch, and answers
/// flushes once what came before them is on disk. Ends when the placements are dropped.
fn write_placements(tree: &sled::Tree, rx: &Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = sled::Batch::default();
        let mut waiting = Vec::new();
        for w in std::iter::once(first).chain(rx.try_iter()) {
            match w {
                Write::Put(actor, node) => {
                    let Ok(k) = postcard::to_stdvec(&actor) else {
                        continue;
                    };
                    match node.map(|n| postcard::to_stdvec(&n)) {
                        Some(Ok(v)) => batch.insert(k, v),
                        Some(Err(_)) => continue,
                        None => batch.remove(k),
                    }
                }
                Write::Flush(done) => waiting.push(done),
            }
        }
        if let Err(e) = tree.apply_batch(batch) {
            tracing::warn!(error = %e, "could not write the actor placements to disk");
        }
        if !waiting.is_empty() {
            if let Err(e) = tree.flush() {
                tracing::warn!(error = %e, "could not flush the actor placements to disk");
            }
            for done in waiting {
                let _ = done.send(());
            }
        }
    }
}
