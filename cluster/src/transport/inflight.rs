//! References in flight: how a message that names objects keeps them alive until its receiver
//! has registered its own references with their owners.
//!
//! A counted reference (the store's `RawRef`) that is serialized into a message calls [`keep`]
//! with a clone of itself; the network encodes every message inside [`keeping`] and holds what
//! was kept until the far node has answered. A reference deserialized on the far node to an
//! object another node owns registers the node as a borrower with the owner, and hands the
//! registration's acknowledgement to [`settle_later`]; the router decodes every message inside
//! [`settling`], hands it to its actor at once and waits for those acknowledgements before it
//! answers. So the sender lets go of its references only after the owner counts the receiver's,
//! and the message is not held up meanwhile (what the receiver does with the references — drop
//! them, send them on — is counted after its own borrow: a node's borrows travel in order, and
//! a message it sends on keeps them alive in turn).
//!
//! The frames of one ordered batch are handled one after another, but their registrations are
//! waited for together, once the last frame is handled ([`in_batch`]): a batch of a thousand
//! messages naming new objects costs one round trip to their owners, not a thousand in a row.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A counted reference, kept alive while the message naming it travels.
pub type Kept = Arc<dyn Any + Send + Sync>;

/// A registration to wait for before the message that caused it is answered.
pub type Settle = Pin<Box<dyn Future<Output = ()> + Send>>;

thread_local! {
    static KEPT: RefCell<Option<Vec<Kept>>> = const { RefCell::new(None) };
    static SETTLING: RefCell<Option<Vec<Settle>>> = const { RefCell::new(None) };
}

/// Keeps `reference` alive with the message being encoded on this thread, if one is.
pub fn keep(reference: Kept) {
    KEPT.with(|k| {
        if let Some(v) = k.borrow_mut().as_mut() {
            v.push(reference);
        }
    });
}

/// Runs `f` (which encodes a message) and returns what it kept.
pub fn keeping<R>(f: impl FnOnce() -> R) -> (R, Vec<Kept>) {
    let outer = KEPT.with(|k| k.borrow_mut().replace(Vec::new()));
    let r = f();
    let kept = KEPT
        .with(|k| std::mem::replace(&mut *k.borrow_mut(), outer))
        .unwrap_or_default();
    // A message encoded inside another keeps for the outer one too.
    if !kept.is_empty() {
        KEPT.with(|k| {
            if let Some(v) = k.borrow_mut().as_mut() {
                v.extend(kept.iter().cloned());
            }
        });
    }
    (r, kept)
}

/// Hands `registration` to the message being decoded on this thread, if one is, which waits for
/// it before it is answered; otherwise gives it back (nobody waits: the caller runs it).
pub fn settle_later(registration: Settle) -> Option<Settle> {
    SETTLING.with(|s| match s.borrow_mut().as_mut() {
        Some(v) => {
            v.push(registration);
            None
        }
        None => Some(registration),
    })
}

/// Runs `f` (which decodes a message) and returns the registrations its references started.
pub fn settling<R>(f: impl FnOnce() -> R) -> (R, Vec<Settle>) {
    let outer = SETTLING.with(|s| s.borrow_mut().replace(Vec::new()));
    let r = f();
    let pending = SETTLING
        .with(|s| std::mem::replace(&mut *s.borrow_mut(), outer))
        .unwrap_or_default();
    (r, pending)
}

/// Waits for every registration.
pub async fn settled(pending: Vec<Settle>) {
    for p in pending {
        p.await;
    }
}

tokio::task_local! {
    /// The registrations of the frames of the batch being handled ([`in_batch`]).
    static BATCH: RefCell<Vec<Settle>>;
}

/// Runs `handle` (which handles the frames of one batch in order), then waits for the
/// registrations its frames handed over with [`to_batch`]: the batch's answers, which let the
/// sender drop its references, still wait for every borrow they started.
pub(crate) async fn in_batch<R>(handle: impl Future<Output = R>) -> R {
    BATCH
        .scope(RefCell::new(Vec::new()), async {
            let r = handle.await;
            let pending = BATCH.with(|b| std::mem::take(&mut *b.borrow_mut()));
            settled(pending).await;
            r
        })
        .await
}

/// Hands `pending` to the batch being handled on this task, if any (then nothing is left to
/// wait for here); otherwise gives it back.
pub(crate) fn to_batch(pending: Vec<Settle>) -> Vec<Settle> {
    if pending.is_empty() {
        return pending;
    }
    let mut left = Some(pending);
    let _ = BATCH.try_with(|b| b.borrow_mut().extend(left.take().unwrap_or_default()));
    left.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_while_encoding_is_returned_and_nests() {
        let (_, outer) = keeping(|| {
            keep(Arc::new(1u8));
            let (_, inner) = keeping(|| keep(Arc::new(2u8)));
            assert_eq!(inner.len(), 1);
        });
        assert_eq!(
            outer.len(),
            2,
            "the outer message keeps what inner ones kept"
        );
        keep(Arc::new(3u8)); // outside any encoding: nothing to do
    }

    #[test]
    fn registrations_started_while_decoding_are_collected() {
        let (_, pending) = settling(|| {
            assert!(settle_later(Box::pin(async {})).is_none());
        });
        assert_eq!(pending.len(), 1);
        assert!(settle_later(Box::pin(async {})).is_some());
    }
}
