//! Waiting for objects: waiters registered on a pending object fire when it is completed or
//! fails, and callbacks run when the last reference to an object goes.

use raya_common::ObjectId;

use super::{State, StoreCore};
use crate::signal::{Waiter, WaiterId};

impl StoreCore {
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
            // The fetch hook hears of every first waiter: one that comes after earlier ones
            // gave up (a `get_timeout`, a `wait`) needs the object fetched as much as they did.
            let first = list.is_empty();
            match list.iter_mut().find(|(w, _)| *w == wid) {
                Some(slot) => slot.1 = waiter,
                None => list.push((wid, waiter)),
            }
            first.then_some(e.owner)
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

    /// Runs `callback` when the last reference to `id` is dropped, after those registered
    /// before it (each component that follows an object's end registers its own). Returns
    /// `false` (dropping the callback) when `id` is not in the store.
    pub fn on_free(&self, id: ObjectId, callback: Box<dyn FnOnce() + Send>) -> bool {
        let mut shard = self.shard(&id);
        match shard.entries.get_mut(&id) {
            Some(e) => {
                e.on_free = Some(match e.on_free.take() {
                    None => callback,
                    Some(earlier) => Box::new(move || {
                        earlier();
                        callback();
                    }),
                });
                true
            }
            None => false,
        }
    }
}
