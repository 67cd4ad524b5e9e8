//! What an owner's object manager does when a node dies (`NodeGone`), over real loopback
//! connections: the objects the node was making, or held the only copy of, go to whoever keeps
//! their lineage to be made again (`Recover`) and stay pending meanwhile; those it does not know
//! fail naming the node; objects the owner borrows from the dead node fail as `OwnerDied`; and
//! work reported placed on the node after its death counts as lost with it.

use std::time::Duration;

use actix::prelude::*;
use raya_cluster::transport::Role;
use raya_common::{ObjectId, TaskErrorKind};
use raya_store::object_manager::{ObjectReady, ReadyData};
use raya_store::{
    Lookup, Loss, NodeBack, NodeGone, ObjectsExpected, Recover, RecoverWith, Status, StoreCore,
};
use tokio::sync::mpsc;

mod common;
use common::{object_of, settled, start};

/// Stands in for the local scheduler: passes on every `Recover`, and answers that it does not
/// know the ids in `unknown`.
struct Lineage {
    seen: mpsc::UnboundedSender<Recover>,
    unknown: Vec<ObjectId>,
}

impl Actor for Lineage {
    type Context = Context<Self>;
}

impl Handler<Recover> for Lineage {
    type Result = MessageResult<Recover>;
    fn handle(&mut self, m: Recover, _: &mut Context<Self>) -> Self::Result {
        let unknown = m
            .lost
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| self.unknown.contains(id))
            .collect();
        let _ = self.seen.send(m);
        MessageResult(unknown)
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Recover>) -> Recover {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a Recover in time")
        .expect("the lineage actor is alive")
}

fn failure(store: &StoreCore, id: ObjectId) -> raya_common::TaskError {
    match store.get(id) {
        Lookup::Failed(e) => (*e).clone(),
        _ => panic!("object {id} did not fail"),
    }
}

#[test]
fn objects_lost_with_a_dead_node_are_made_again_or_fail_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("raya-lost-objects-{}", std::process::id()));
    actix_rt::System::new().block_on(async {
        let owner = start(Role::Head, vec![], &dir);
        let maker = start(Role::Node, owner.net.listen_addrs(), &dir);
        maker
            .net
            .wait_for_head(Duration::from_secs(10))
            .await
            .expect("connected to the owner");
        let (tx, mut rx) = mpsc::unbounded_channel();

        // The owner's objects: `making` and `unknown` are being made on the maker; `held` was
        // made there and only the maker holds it (too large to travel with its announcement,
        // and nobody here has asked for it yet).
        let making = object_of(&owner, 1);
        let held = object_of(&owner, 2);
        let unknown = object_of(&owner, 3);
        let _refs: Vec<_> = [making, held, unknown]
            .iter()
            .map(|id| owner.store.add_ref(*id))
            .collect();
        owner
            .objects
            .send(ObjectsExpected {
                ids: vec![making, held, unknown],
                at: maker.id(),
            })
            .await
            .unwrap();
        let announced = ObjectReady {
            id: held,
            from: maker.id(),
            data: ReadyData::Held { size: 1 << 20 },
        };
        let taken = maker
            .net
            .send_ordered(owner.net.local_peer_id(), announced)
            .await
            .unwrap();
        assert!(taken, "the maker's announcement is taken");
        // An object the maker owns, which the owner borrows and does not have.
        let borrowed = object_of(&maker, 4);
        let _borrowed = owner.store.attach(borrowed, maker.id(), None);
        owner
            .objects
            .send(RecoverWith(
                Lineage {
                    seen: tx,
                    unknown: vec![unknown],
                }
                .start()
                .recipient(),
            ))
            .await
            .unwrap();

        owner.objects.send(NodeGone(maker.id())).await.unwrap();
        let mut asked = next(&mut rx).await;
        assert_eq!(asked.node, maker.id());
        asked.lost.sort();
        let mut want = vec![
            (making, Loss::Making),
            (held, Loss::OnlyCopy),
            (unknown, Loss::Making),
        ];
        want.sort();
        assert_eq!(asked.lost, want);
        settled(&owner.store, unknown).await;
        let e = failure(&owner.store, unknown);
        assert_eq!(e.kind, TaskErrorKind::NodeDied);
        assert!(e.message.contains(&maker.id().to_string()), "{e}");
        // Made again by the lineage's keeper: pending, not failed.
        assert_eq!(owner.store.status(making), Status::Pending);
        assert_eq!(owner.store.status(held), Status::Pending);
        settled(&owner.store, borrowed).await;
        assert_eq!(
            failure(&owner.store, borrowed).kind,
            TaskErrorKind::OwnerDied
        );

        // A placement on the dead node reported after its death: lost with it at once.
        let late = object_of(&owner, 5);
        let _late = owner.store.add_ref(late);
        owner
            .objects
            .send(ObjectsExpected {
                ids: vec![late],
                at: maker.id(),
            })
            .await
            .unwrap();
        let asked = next(&mut rx).await;
        assert_eq!(asked.lost, vec![(late, Loss::Making)]);
        assert_eq!(owner.store.status(late), Status::Pending);

        // The node registers again under its identity (a restarted head): work placed there
        // now is expected from it, not lost at once; it is lost only when it dies again.
        owner.objects.send(NodeBack(maker.id())).await.unwrap();
        let again = object_of(&owner, 6);
        let _again = owner.store.add_ref(again);
        owner
            .objects
            .send(ObjectsExpected {
                ids: vec![again],
                at: maker.id(),
            })
            .await
            .unwrap();
        let announced = ObjectReady {
            id: again,
            from: maker.id(),
            data: ReadyData::Inline(
                raya_store::WireValue::encode(&raya_common::Value::new(7i64)).unwrap(),
            ),
        };
        let taken = maker
            .net
            .send_ordered(owner.net.local_peer_id(), announced)
            .await
            .unwrap();
        assert!(taken, "the restarted node's result is taken");
        assert_eq!(owner.store.status(again), Status::Ready);
        assert!(
            rx.try_recv().is_err(),
            "work on a node back was counted lost"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
