//! Results announced to their owner ([`ObjectReady`]) and who may announce them.
//!
//! An owner takes a result only from the node its own records say makes it: the node the head
//! sends the task to (`TaskGoing`), the node it sent the actor call to, or the node that one
//! handed the work on to (a handover, `ObjectsExpected` from the node expected until then). Any
//! other announcement is refused, so a member cannot complete or fail another node's objects.
//!
//! The record may trail the result: the head tells the owner where a task goes as it sends it,
//! but on another link than the result takes, and a handover follows the work it hands on.
//! Such a result is held here,
//! unanswered, until the record arrives (taken if it names the sender, refused if not) or for
//! [`EARLY_WAIT`] at most (refused then: its maker announces it again a little later). Held
//! results are bounded in number and in bytes; past either bound a result is refused at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use raya_cluster::transport::Received;
use raya_common::ObjectId;
use tokio::sync::oneshot;

use super::locate::LocateResolved;
use super::{FreeObject, ObjectManager, ObjectReady, ReadyData, complete_or_fail};
use crate::object_store::Status;

/// How long a result waits here for the owner's record of its maker, at most.
pub const EARLY_WAIT: Duration = Duration::from_secs(2);

/// Results held waiting for their record, at most in all, and per object.
const MAX_EARLY: usize = 4096;
const MAX_EARLY_PER_OBJECT: usize = 4;

/// Bytes of inline values held waiting, at most.
const MAX_EARLY_BYTES: usize = 64 << 20;

/// Asks the object manager how many results wait for its record of their maker (what a
/// dashboard or a test watches: results are held only for [`EARLY_WAIT`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct EarlyResults;

/// A result waiting for its record, and its sender's answer.
struct Waiting {
    msg: ObjectReady,
    bytes: usize,
    seq: u64,
    answer: oneshot::Sender<bool>,
}

/// Results that arrived before this node's record of who makes them.
#[derive(Default)]
pub(super) struct Early {
    waiting: HashMap<ObjectId, Vec<Waiting>>,
    count: usize,
    bytes: usize,
    next_seq: u64,
}

impl Early {
    /// The bytes of `msg` that count against [`MAX_EARLY_BYTES`].
    fn bytes_of(msg: &ObjectReady) -> usize {
        match &msg.data {
            ReadyData::Inline(v) => v.len(),
            _ => 0,
        }
    }

    /// Whether `msg` may wait here, within the bounds.
    fn has_room(&self, msg: &ObjectReady) -> bool {
        let here = self.waiting.get(&msg.id).map_or(0, Vec::len);
        self.count < MAX_EARLY
            && here < MAX_EARLY_PER_OBJECT
            && self.bytes + Self::bytes_of(msg) <= MAX_EARLY_BYTES
    }

    /// Holds `msg` until its record arrives (once [`Early::has_room`] said it may).
    fn hold(&mut self, msg: ObjectReady) -> (u64, oneshot::Receiver<bool>) {
        let bytes = Self::bytes_of(&msg);
        let (answer, rx) = oneshot::channel();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.count += 1;
        self.bytes += bytes;
        self.waiting.entry(msg.id).or_default().push(Waiting {
            msg,
            bytes,
            seq,
            answer,
        });
        (seq, rx)
    }

    /// Takes every result waiting for `id`.
    fn take(&mut self, id: ObjectId) -> Vec<Waiting> {
        let list = self.waiting.remove(&id).unwrap_or_default();
        for w in &list {
            self.count -= 1;
            self.bytes -= w.bytes;
        }
        list
    }

    /// Takes the result `seq` waiting for `id`, if it still waits.
    fn take_one(&mut self, id: ObjectId, seq: u64) -> Option<Waiting> {
        let list = self.waiting.get_mut(&id)?;
        let i = list.iter().position(|w| w.seq == seq)?;
        let w = list.swap_remove(i);
        if list.is_empty() {
            self.waiting.remove(&id);
        }
        self.count -= 1;
        self.bytes -= w.bytes;
        Some(w)
    }
}

impl ObjectManager {
    /// The record of `id`'s maker arrived: the result waiting from that maker is taken, any
    /// other refused. Every held result is judged against the record as it arrived: the others
    /// are answered before the maker's is taken, so a forgery held beside the real result is
    /// refused whichever came first (once the object is made it would look like one that
    /// needs nothing more).
    pub(super) fn settle_early(&mut self, id: ObjectId, ctx: &mut Context<Self>) {
        let maker = self.expected.get(&id).copied();
        let (makers, others): (Vec<_>, Vec<_>) = self
            .early
            .take(id)
            .into_iter()
            .partition(|w| Some(w.msg.from) == maker);
        for w in others.into_iter().chain(makers) {
            let taken = self.take_ready(w.msg, ctx);
            let _ = w.answer.send(taken);
        }
    }

    /// Takes a result announced by `msg.from` if that is the node expected to make it;
    /// whether it was taken (or needs nothing more: the object was made, failed or freed).
    fn take_ready(&mut self, m: ObjectReady, ctx: &mut Context<Self>) -> bool {
        if self.core.status(m.id) != Status::Pending {
            // Made already, failed or freed: nothing to take. A copy held for it is let go.
            if matches!(m.data, ReadyData::Held { .. }) && self.core.status(m.id) == Status::Missing
            {
                self.tell(m.from, FreeObject(m.id));
            }
            return true;
        }
        if matches!(m.data, ReadyData::Held { .. })
            && self.copies.get(&m.id).is_some_and(|c| c.contains(&m.from))
        {
            // Taken already (the maker did not hear so, and announces it again).
            return true;
        }
        if self.expected.get(&m.id) != Some(&m.from) {
            tracing::warn!(object = %m.id, peer = %m.from, "result from a node not making it: refused");
            return false;
        }
        self.expected.remove(&m.id);
        match m.data {
            ReadyData::Inline(value) => {
                let value = value.into_value();
                if !self.core.has_room(value.size() as u64) {
                    // Storing it spills other objects to disk: not on this event loop.
                    let (core, me, id) = (Arc::clone(&self.core), ctx.address(), m.id);
                    self.net.spawn(async move {
                        let stored =
                            tokio::task::spawn_blocking(move || complete_or_fail(&core, id, value));
                        let _ = stored.await;
                        me.do_send(LocateResolved(id));
                    });
                    return true;
                }
                complete_or_fail(&self.core, m.id, value);
            }
            ReadyData::Failed(e) => {
                self.core.fail(m.id, Arc::new(e));
            }
            ReadyData::Held { .. } => {
                self.copies.entry(m.id).or_default().insert(m.from);
                self.watch_free(m.id, ctx);
                if self.core.has_waiters(m.id) {
                    self.pull(m.id, m.from, ctx);
                }
            }
        }
        self.tell_subscribers(m.id);
        true
    }
}

impl Handler<Received<ObjectReady>> for ObjectManager {
    type Result = Response<bool>;

    fn handle(&mut self, r: Received<ObjectReady>, ctx: &mut Context<Self>) -> Response<bool> {
        let m = r.msg;
        let pending = self.core.status(m.id) == Status::Pending;
        let known = self.expected.contains_key(&m.id) || self.copies.contains_key(&m.id);
        if !pending || known {
            return Response::reply(self.take_ready(m, ctx));
        }
        // No record of its maker yet: wait for it, a while.
        if !self.early.has_room(&m) {
            tracing::debug!(object = %m.id, peer = %m.from, "too many results wait for their record: refused");
            return Response::reply(false);
        }
        let id = m.id;
        let (seq, rx) = self.early.hold(m);
        ctx.run_later(EARLY_WAIT, move |this, _| {
            if let Some(w) = this.early.take_one(id, seq) {
                tracing::debug!(object = %id, peer = %w.msg.from, "result with no record of its maker: refused");
                let _ = w.answer.send(false);
            }
        });
        Response::fut(async move { rx.await.unwrap_or(false) })
    }
}

impl Handler<EarlyResults> for ObjectManager {
    type Result = usize;
    fn handle(&mut self, _: EarlyResults, _: &mut Context<Self>) -> usize {
        self.early.count
    }
}
