//! An owner takes a result only from the node its own records say makes it, over real loopback
//! connections: an owner, the node it placed the work on (the maker) and a third member that
//! tries to complete, fail or re-point the owner's objects. The maker's result is taken also
//! when it arrives before the owner's record, and after a handover by the maker.

use std::sync::Arc;
use std::time::Duration;

use raya_cluster::transport::{Role, Target};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, Value};
use raya_store::object_manager::{
    Borrow, EarlyResults, ExpectReturns, ExpectedFrom, ForgetReturns, ObjectReady, ReadyData,
    StillMaking,
};
use raya_store::wire_value::WireValue;
use raya_store::{Lookup, ObjectsExpected, Status, StoreCore};

mod common;
use common::{TestNode, object_of, settled, start, start_with_lease};

/// An object `owner` owns (a return of a task it made), pending in its store while `_ref` lives.
fn pending_object(owner: &TestNode, seq: u64) -> (ObjectId, raya_store::RawRef) {
    let id = object_of(owner, seq);
    let r = owner.store.add_ref(id);
    assert_eq!(owner.store.status(id), Status::Pending);
    (id, r)
}

fn inline(v: i64) -> ReadyData {
    ReadyData::Inline(WireValue::encode(&Value::new(v)).unwrap())
}

fn value_of(store: &StoreCore, id: ObjectId) -> i64 {
    match store.get(id) {
        Lookup::Ready(v) => v.clone_as::<i64>().expect("an i64"),
        other => panic!("object {id} is not ready: {}", describe(&other)),
    }
}

fn describe(l: &Lookup) -> &'static str {
    match l {
        Lookup::Ready(_) => "ready",
        Lookup::Failed(_) => "failed",
        Lookup::Pending => "pending",
        Lookup::Missing => "missing",
    }
}

/// `from` tells `owner` that node `at` makes `id` now (a handover).
async fn hand_over(from: &TestNode, owner: &TestNode, id: ObjectId, at: NodeId) {
    let handover = ObjectsExpected { ids: vec![id], at };
    let to = owner.net.local_peer_id();
    from.net.send_ordered(to, handover).await.unwrap();
}

/// The maker makes `id` for `owner` with value `v` (as a task run there would).
fn make(maker: &TestNode, owner: NodeId, id: ObjectId, v: i64) {
    let r = maker.store.add_ref(id);
    maker.objects.do_send(ExpectReturns {
        refs: vec![r],
        owner,
    });
    // After the object manager took the references (its mailbox is in order).
    let (store, objects) = (Arc::clone(&maker.store), maker.objects.clone());
    actix_rt::spawn(async move {
        let _ = objects
            .send(ObjectsExpected {
                ids: vec![],
                at: owner,
            })
            .await;
        store.complete(id, Value::new(v)).unwrap();
    });
}

#[test]
fn only_the_maker_an_owner_expects_completes_its_objects() {
    let dir = std::env::temp_dir().join(format!("raya-who-makes-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let maker = start(Role::Node, owner.net.listen_addrs(), &dir);
        let other = start(Role::Node, owner.net.listen_addrs(), &dir);
        for n in [&maker, &other] {
            n.net
                .wait_for_head(Duration::from_secs(10))
                .await
                .expect("connected to the owner");
        }
        let to_owner = owner.net.local_peer_id();

        // 1. The owner placed the work on `maker`. Another member announces the result, a
        //    failure, and hands the object over to itself: all refused, the object pending.
        let (a, _a) = pending_object(&owner, 1);
        owner.objects.do_send(ObjectsExpected {
            ids: vec![a],
            at: maker.id(),
        });
        let forged = ObjectReady {
            id: a,
            from: other.id(),
            data: inline(666),
        };
        assert!(
            !other
                .net
                .send_ordered(to_owner, forged.clone())
                .await
                .unwrap()
        );
        let failed = ObjectReady {
            id: a,
            from: other.id(),
            data: ReadyData::Failed(TaskError::new(TaskErrorKind::System, "forged")),
        };
        assert!(!other.net.send_ordered(to_owner, failed).await.unwrap());
        hand_over(&other, &owner, a, other.id()).await;
        assert!(!other.net.send_ordered(to_owner, forged).await.unwrap());
        assert_eq!(owner.store.status(a), Status::Pending);
        // Asked (by a node given calls passed on), the owner says from whom it expects it.
        for (from, expected) in [(maker.id(), true), (other.id(), false)] {
            let asked = ExpectedFrom { ids: vec![a], from };
            let flags = other.net.ask(to_owner, Target::System, asked).await;
            assert_eq!(flags.unwrap(), [expected]);
        }
        // The maker's result is taken.
        make(&maker, owner.id(), a, 42);
        settled(&owner.store, a).await;
        assert_eq!(value_of(&owner.store, a), 42);

        // 2. The maker's result arrives before the owner's record of where the work went (the
        //    head reports a placement only once the node took the task): it waits for the
        //    record and is taken then; another member's, waiting alike and arriving after it,
        //    is refused (taking the maker's first must not make the forgery look answered).
        let (b, _b) = pending_object(&owner, 2);
        let waiting_for = |n: usize| {
            let objects = owner.objects.clone();
            async move {
                let waiting = async {
                    while objects.send(EarlyResults).await.unwrap() < n {
                        tokio::task::yield_now().await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(30), waiting)
                    .await
                    .expect("the results wait for the record");
            }
        };
        make(&maker, owner.id(), b, 7);
        waiting_for(1).await;
        let early_forgery = {
            let net = other.net.clone();
            let from = other.id();
            actix_rt::spawn(async move {
                net.send_ordered(
                    to_owner,
                    ObjectReady {
                        id: b,
                        from,
                        data: inline(666),
                    },
                )
                .await
            })
        };
        // Both wait at the owner until its record arrives.
        waiting_for(2).await;
        owner.objects.do_send(ObjectsExpected {
            ids: vec![b],
            at: maker.id(),
        });
        settled(&owner.store, b).await;
        assert_eq!(value_of(&owner.store, b), 7);
        assert!(!early_forgery.await.unwrap().unwrap());

        // 3. A node the owner sent the work to passes it on (an actor's creator forwarding a
        //    call): after its handover the node it named makes the object.
        let (c, _c) = pending_object(&owner, 3);
        owner.objects.do_send(ObjectsExpected {
            ids: vec![c],
            at: maker.id(),
        });
        hand_over(&maker, &owner, c, other.id()).await;
        make(&other, owner.id(), c, 9);
        settled(&owner.store, c).await;
        assert_eq!(value_of(&owner.store, c), 9);

        for n in [owner, maker, other] {
            n.net.shutdown();
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_the_cluster_never_knew_does_not_pin_objects() {
    let dir = std::env::temp_dir().join(format!("raya-strangers-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let lease = Duration::from_secs(1);
        let owner = start_with_lease(Role::Head, vec![], &dir, lease);
        let member = start(Role::Node, owner.net.listen_addrs(), &dir);
        let stranger = start(Role::Node, owner.net.listen_addrs(), &dir);
        for n in [&member, &stranger] {
            n.net
                .wait_for_head(Duration::from_secs(10))
                .await
                .expect("connected to the owner");
        }
        // The owner's node table knows `member` (it registered); `stranger` only holds the key.
        owner.net.router().know_node(member.id());
        let (id, _r) = pending_object(&owner, 1);
        owner.store.complete(id, Value::new(1i64)).unwrap();
        let to_owner = owner.net.local_peer_id();
        for n in [&member, &stranger] {
            let borrow = Borrow {
                id,
                node: n.id(),
                add: true,
            };
            n.net.send_ordered(to_owner, borrow).await.unwrap();
        }
        assert_eq!(owner.store.ref_count(id), 3);
        // A lease later the stranger's borrow is dropped; the member's stays.
        let dropped = async {
            while owner.store.ref_count(id) > 2 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), dropped)
            .await
            .expect("the stranger's borrow was dropped");
        assert_eq!(owner.store.ref_count(id), 2);
        for n in [owner, member, stranger] {
            n.net.shutdown();
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn results_kept_for_work_passed_on_to_another_node_are_let_go() {
    // A node kept an owner's results for calls queued there, then passed the calls on to the
    // node the actor went to: once told, it keeps nothing for them and no longer says it
    // makes them (the owner asks the node it was handed over to).
    let dir = std::env::temp_dir().join(format!("raya-passed-on-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let kept = start(Role::Node, owner.net.listen_addrs(), &dir);
        kept.net
            .wait_for_head(Duration::from_secs(10))
            .await
            .expect("connected to the owner");
        let id = object_of(&owner, 7);
        let r = kept.store.add_ref(id);
        kept.objects
            .send(ExpectReturns {
                refs: vec![r],
                owner: owner.id(),
            })
            .await
            .unwrap();
        let to_kept = kept.net.local_peer_id();
        let asked = owner
            .net
            .ask(to_kept, Target::System, StillMaking(vec![id]))
            .await;
        assert_eq!(asked.unwrap(), vec![true]);
        kept.objects.send(ForgetReturns(vec![id])).await.unwrap();
        assert_eq!(
            kept.store.status(id),
            Status::Missing,
            "the pending entry is still held"
        );
        let asked = owner
            .net
            .ask(to_kept, Target::System, StillMaking(vec![id]))
            .await;
        assert_eq!(asked.unwrap(), vec![false]);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
