//! An object's owner answers where its object is ([`LocateObject`]), over real loopback
//! connections. A small value with no references in it travels in the answer itself, as Ray's
//! owners answer with small objects: the asker needs no second round trip and no pull stream
//! (the owner's stream acceptor drops streams that arrive faster than it takes them). Values
//! too large to inline, or naming other objects (whose borrows a pull settles before it is
//! acknowledged), are located to be pulled.
//!
//! The owner answers at once even for a pending object, and tells the asker when it is made
//! ([`ObjectLocated`]): a node waiting for hundreds of pending objects at one owner still hears
//! of a ready one at once (a locate parked at the owner held one of the 256 requests a node may
//! have in flight to a peer, and 256 parked held up every other question to it for 15 s). The
//! word is taken only from the owner asked.

use raya_cluster::transport::{Role, Target};
use raya_common::{ObjectId, TaskError, TaskErrorKind, Value};
use raya_store::object_manager::{LocateObject, Located, MAX_INLINE, ObjectLocated, Subscriptions};
use raya_store::wire_value::keeping;
use raya_store::{Lookup, RawRef, Status, StoreCore};

mod common;
use common::{TestNode, object_of, settled, start};

/// Objects pending at `owner` that the test makes later, the references keeping them.
fn pending(owner: &TestNode, seqs: std::ops::Range<u64>) -> Vec<(ObjectId, RawRef)> {
    seqs.map(|seq| {
        let id = object_of(owner, seq);
        (id, owner.store.add_ref(id))
    })
    .collect()
}

/// `asker` starts fetching `id` from `owner` (a waiter on an object another node owns), and
/// is told when it settles.
fn fetch(
    asker: &TestNode,
    owner: &TestNode,
    id: ObjectId,
) -> (RawRef, tokio::sync::oneshot::Receiver<()>) {
    let r = asker.store.add_ref_from(id, owner.id(), None);
    let (tx, rx) = tokio::sync::oneshot::channel();
    asker.store.on_ready(
        id,
        Box::new(move || {
            let _ = tx.send(());
        }),
    );
    (r, rx)
}

/// Waits (bounded) until `owner` holds `n` subscriptions.
async fn subscriptions(owner: &TestNode, n: usize) {
    for _ in 0..3000 {
        if owner.objects.send(Subscriptions).await.unwrap() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "the owner holds {} subscriptions, not {n}",
        owner.objects.send(Subscriptions).await.unwrap()
    );
}

/// `v` as a result that came from another node holds it: encoded.
fn arrived(v: Value) -> Value {
    Value::from_bytes(v.encode().unwrap().to_vec())
}

/// Makes return `seq` of `owner` with `value`, ready in its store while the reference lives.
fn ready(owner: &TestNode, seq: u64, value: Value) -> (raya_common::ObjectId, raya_store::RawRef) {
    let id = object_of(owner, seq);
    let r = owner.store.add_ref(id);
    owner.store.complete(id, value).unwrap();
    (id, r)
}

async fn locate(asker: &TestNode, owner: &TestNode, id: raya_common::ObjectId) -> Located {
    asker
        .net
        .ask(owner.net.local_peer_id(), Target::System, LocateObject(id))
        .await
        .expect("the owner answers")
}

#[test]
fn a_small_object_travels_in_its_owners_answer() {
    let dir = std::env::temp_dir().join(format!("raya-locate-small-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let asker = start(Role::Node, owner.net.listen_addrs(), &dir);
        let (id, _r) = ready(&owner, 1, arrived(Value::new(41i64)));
        match locate(&asker, &owner, id).await {
            Located::Value(bytes) => {
                assert_eq!(Value::from_bytes(bytes).clone_as::<i64>().unwrap(), 41);
            }
            other => panic!("a small ready object came back as {other:?}, not its value"),
        }
        // The asker's own fetch (a waiter on an object another node owns) stores it.
        let wanted = id;
        let _w = asker.store.add_ref_from(wanted, owner.id(), None);
        settled(&asker.store, wanted).await;
        assert_eq!(value_of(&asker.store, wanted), 41);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_large_object_or_one_naming_others_is_located_to_be_pulled() {
    let dir = std::env::temp_dir().join(format!("raya-locate-pulled-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let asker = start(Role::Node, owner.net.listen_addrs(), &dir);
        let (large, _l) = ready(&owner, 1, arrived(Value::new(vec![7u8; MAX_INLINE + 1])));
        let (inner, inner_ref) = ready(&owner, 2, arrived(Value::new(1i64)));
        let nested = keeping(Value::new(5i64).encode().unwrap().to_vec(), vec![inner_ref]);
        let (outer, _o) = ready(&owner, 3, nested);
        // A live value (made on the owner) is encoded only by a pull, off the owner's threads.
        let (live, _v) = ready(&owner, 4, Value::new(2i64));
        for id in [large, outer, live] {
            match locate(&asker, &owner, id).await {
                Located::At(n) => assert_eq!(n, owner.id()),
                other => panic!("object {id} should be pulled from its owner, got {other:?}"),
            }
        }
        assert!(matches!(
            locate(&asker, &owner, inner).await,
            Located::Value(_)
        ));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn value_of(store: &StoreCore, id: ObjectId) -> i64 {
    match store.get(id) {
        Lookup::Ready(v) => v.clone_as::<i64>().expect("an i64"),
        _ => panic!("object {id} is not ready"),
    }
}

#[test]
fn a_node_waiting_for_hundreds_of_objects_at_one_owner_hears_of_a_ready_one_at_once() {
    let dir = std::env::temp_dir().join(format!("raya-locate-many-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let asker = start(Role::Node, owner.net.listen_addrs(), &dir);
        // More pending objects than the requests a node may have in flight to one peer.
        let waiting = pending(&owner, 1..301);
        let fetches: Vec<_> = waiting
            .iter()
            .map(|(id, _)| fetch(&asker, &owner, *id))
            .collect();
        subscriptions(&owner, 300).await;
        let (ready_id, _r) = ready(&owner, 1000, Value::new(7i64));
        // (Live on the owner: pulled, over a stream, beside the 300 waits.)
        let (_f, arrived) = fetch(&asker, &owner, ready_id);
        tokio::time::timeout(std::time::Duration::from_secs(30), arrived)
            .await
            .expect("the ready object arrived")
            .unwrap();
        assert_eq!(value_of(&asker.store, ready_id), 7);
        // It came while every pending one still waited for the owner's word, none asked again.
        assert_eq!(owner.objects.send(Subscriptions).await.unwrap(), 300);
        for (i, (id, _)) in waiting.iter().enumerate() {
            assert_eq!(asker.store.status(*id), Status::Pending);
            owner.store.complete(*id, Value::new(i as i64)).unwrap();
        }
        for (i, (_, arrived)) in fetches.into_iter().enumerate() {
            tokio::time::timeout(std::time::Duration::from_secs(30), arrived)
                .await
                .expect("a pending object arrived once made")
                .unwrap();
            assert_eq!(value_of(&asker.store, waiting[i].0), i as i64);
        }
        subscriptions(&owner, 0).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pending_object_that_fails_at_its_owner_fails_at_the_asker_with_its_error() {
    let dir = std::env::temp_dir().join(format!("raya-locate-failed-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let asker = start(Role::Node, owner.net.listen_addrs(), &dir);
        let objects = pending(&owner, 1..2);
        let id = objects[0].0;
        let (_f, arrived) = fetch(&asker, &owner, id);
        subscriptions(&owner, 1).await;
        owner.store.fail(
            id,
            std::sync::Arc::new(TaskError::new(TaskErrorKind::Panic, "the task panicked")),
        );
        tokio::time::timeout(std::time::Duration::from_secs(30), arrived)
            .await
            .expect("the asker heard")
            .unwrap();
        match asker.store.get(id) {
            Lookup::Failed(e) => {
                assert_eq!(e.kind, TaskErrorKind::Panic, "{e}");
                assert_eq!(e.message, "the task panicked");
            }
            _ => panic!("an object that failed at its owner should fail at the asker"),
        }
        subscriptions(&owner, 0).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn word_of_an_object_from_a_node_other_than_its_owner_is_ignored() {
    let dir = std::env::temp_dir().join(format!("raya-locate-forged-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let asker = start(Role::Node, owner.net.listen_addrs(), &dir);
        // A member that can reach the asker, and is not the owner.
        let other = start(Role::Node, asker.net.listen_addrs(), &dir);
        let objects = pending(&owner, 1..2);
        let id = objects[0].0;
        let (_f, mut arrived) = fetch(&asker, &owner, id);
        subscriptions(&owner, 1).await;
        let forged = ObjectLocated {
            id,
            located: Located::Value(Value::new(666i64).encode().unwrap().to_vec()),
        };
        other
            .net
            .send_ordered(asker.net.local_peer_id(), forged)
            .await
            .expect("the asker acknowledged the forgery");
        // Handled (the link acknowledged it) and ignored: still pending, still waiting.
        assert!(arrived.try_recv().is_err());
        assert_eq!(asker.store.status(id), Status::Pending);
        owner.store.complete(id, Value::new(1i64)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(30), arrived)
            .await
            .expect("the real word arrived")
            .unwrap();
        assert_eq!(value_of(&asker.store, id), 1);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
