//! The actor table's side of restarts: what it keeps, whom it restarts when a node dies, and
//! what it restarts again after a reload.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use raya_common::{ActorId, NodeId};

use super::super::{ActorInfo, ActorState, ActorTable, GetActor, Placements, RegisterActor};
use super::{
    KeepActorCreation, MAX_CREATION_BYTES, MAX_KEPT_PER_CREATOR, RestartActor, SetActorRestarter,
};
use crate::gcs::{GcsError, GcsEvent};

/// Collects the restarts the table asks for.
struct Restarts(Arc<Mutex<Vec<RestartActor>>>);

impl Actor for Restarts {
    type Context = Context<Self>;
}

impl Handler<RestartActor> for Restarts {
    type Result = ();
    fn handle(&mut self, m: RestartActor, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(m);
    }
}

fn actor(id: u128, node: NodeId, max_restarts: i64, detached: bool) -> ActorInfo {
    let mut a = crate::gcs::tests::actor_info(id, Some(&format!("a{id}")), node);
    a.max_restarts = max_restarts;
    a.detached = detached;
    a
}

fn keep(id: u128, creator: NodeId) -> KeepActorCreation {
    KeepActorCreation {
        actor: ActorId(id),
        creator,
        spec: vec![id as u8; 16],
    }
}

/// A creation task of the largest size kept.
fn full(id: u128, creator: NodeId) -> KeepActorCreation {
    KeepActorCreation {
        spec: vec![1; MAX_CREATION_BYTES],
        ..keep(id, creator)
    }
}

/// Waits until `asked` holds `n` restarts (the table sends them through a mailbox).
async fn restarts_asked(asked: &Mutex<Vec<RestartActor>>, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while asked.lock().unwrap().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "restart {n} never asked for"
        );
        actix_rt::task::yield_now().await;
    }
    assert_eq!(
        asked.lock().unwrap().len(),
        n,
        "more restarts than expected"
    );
}

async fn state(t: &Addr<ActorTable>, id: u128) -> (ActorState, Option<NodeId>, u64) {
    let a = t
        .send(GetActor(ActorId(id)))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (a.state, a.node, a.num_restarts)
}

#[test]
fn a_dead_nodes_actors_restart_elsewhere_when_they_may_and_die_otherwise() {
    let dir = std::env::temp_dir().join(format!("raya-restarts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).open().unwrap();
    actix_rt::System::new().block_on(async {
        let placements = Placements::default();
        let table = ActorTable::load(&db, placements.clone()).unwrap().start();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let restarter = Restarts(Arc::clone(&asked)).start();
        table.do_send(SetActorRestarter(restarter.clone().recipient()));
        let (n1, n2, n3, n4) = (
            NodeId::random(),
            NodeId::random(),
            NodeId::random(),
            NodeId::random(),
        );
        // 1 may restart (created by n2); 2 may not; 3 is n1's own, on n3; 4 is n1's too but
        // detached.
        for a in [
            actor(1, n1, -1, false),
            actor(2, n1, 0, false),
            actor(3, n3, -1, false),
            actor(4, n3, -1, true),
        ] {
            table.send(RegisterActor(a)).await.unwrap().unwrap();
        }
        table.send(keep(1, n2)).await.unwrap().unwrap();
        table.send(keep(3, n1)).await.unwrap().unwrap();
        table.send(keep(4, n1)).await.unwrap().unwrap();
        // Nothing is kept for an actor that may not restart, nor past the size bound.
        let refused = table.send(keep(2, n2)).await.unwrap();
        assert!(matches!(refused, Err(GcsError::Invalid(_))), "{refused:?}");
        let mut big = keep(1, n2);
        big.spec = vec![0; MAX_CREATION_BYTES + 1];
        assert!(matches!(
            table.send(big).await.unwrap(),
            Err(GcsError::Invalid(_))
        ));

        table.do_send(GcsEvent::NodeDead {
            node: n1,
            reason: "killed".into(),
        });
        assert_eq!(state(&table, 1).await, (ActorState::Restarting, None, 1));
        assert_eq!(state(&table, 2).await.0, ActorState::Dead);
        assert_eq!(
            state(&table, 3).await.0,
            ActorState::Dead,
            "its creator died"
        );
        assert_eq!(state(&table, 4).await.0, ActorState::Alive, "detached");
        restarts_asked(&asked, 1).await;
        {
            let asked = asked.lock().unwrap();
            assert_eq!(asked.len(), 1);
            assert_eq!(
                (asked[0].actor, asked[0].num_restarts, asked[0].creator),
                (ActorId(1), 1, n2)
            );
            assert_eq!(asked[0].spec, vec![1u8; 16]);
        }

        // Placed on n4, which dies before reporting it: placed again.
        placements.record(ActorId(1), n4);
        table.do_send(GcsEvent::NodeDead {
            node: n4,
            reason: "killed".into(),
        });
        assert_eq!(state(&table, 1).await, (ActorState::Restarting, None, 2));
        restarts_asked(&asked, 2).await;

        // A head restarted on its directory places what was restarting.
        let reloaded = ActorTable::load(&db, Placements::default())
            .unwrap()
            .start();
        let again = Arc::new(Mutex::new(Vec::new()));
        reloaded.do_send(SetActorRestarter(
            Restarts(Arc::clone(&again)).start().recipient(),
        ));
        assert_eq!(state(&reloaded, 1).await, (ActorState::Restarting, None, 2));
        restarts_asked(&again, 1).await;
        let again = again.lock().unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].actor, again[0].num_restarts), (ActorId(1), 2));
    });
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_creator_keeps_no_more_than_its_share_of_creation_tasks() {
    let dir = std::env::temp_dir().join(format!("raya-restarts-quota-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).open().unwrap();
    let other = NodeId::random();
    actix_rt::System::new().block_on(async {
        let table = ActorTable::load(&db, Placements::default())
            .unwrap()
            .start();
        let (greedy, host) = (NodeId::random(), NodeId::random());
        let fits = MAX_KEPT_PER_CREATOR / MAX_CREATION_BYTES;
        for id in 1..=fits as u128 + 2 {
            table
                .send(RegisterActor(actor(id, host, -1, false)))
                .await
                .unwrap()
                .unwrap();
        }
        for id in 1..=fits as u128 {
            table.send(full(id, greedy)).await.unwrap().unwrap();
        }
        // One more from the same creator is refused, saying why; another creator's is kept.
        match table.send(full(fits as u128 + 1, greedy)).await.unwrap() {
            Err(GcsError::Invalid(m)) => assert!(m.contains("for one creator"), "{m}"),
            other => panic!("a creator past its share was kept: {other:?}"),
        }
        table
            .send(full(fits as u128 + 2, other))
            .await
            .unwrap()
            .unwrap();
        // Its share comes back as its actors die (with their creator).
        table.do_send(GcsEvent::NodeDead {
            node: greedy,
            reason: "killed".into(),
        });
        assert_eq!(
            state(&table, 1).await.0,
            ActorState::Dead,
            "its creator died"
        );
        table
            .send(full(fits as u128 + 1, greedy))
            .await
            .unwrap()
            .unwrap();
    });
    drop(db);
    let db = sled::Config::new().path(&dir).open().unwrap();
    actix_rt::System::new().block_on(async {
        // Reloaded from disk, the shares are counted again: `other` keeps one already.
        let table = ActorTable::load(&db, Placements::default())
            .unwrap()
            .start();
        let host = NodeId::random();
        let fits = MAX_KEPT_PER_CREATOR / MAX_CREATION_BYTES;
        for id in 1000..1000 + fits as u128 {
            table
                .send(RegisterActor(actor(id, host, -1, false)))
                .await
                .unwrap()
                .unwrap();
            let kept = table.send(full(id, other)).await.unwrap();
            if id < 1000 + fits as u128 - 1 {
                kept.unwrap();
            } else {
                assert!(matches!(kept, Err(GcsError::Invalid(_))), "{kept:?}");
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_creation_task_left_behind_by_a_crash_after_its_actor_died_is_dropped_at_reload() {
    let dir = std::env::temp_dir().join(format!("raya-restarts-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).open().unwrap();
    let (creator, host) = (NodeId::random(), NodeId::random());
    let fits = MAX_KEPT_PER_CREATOR / MAX_CREATION_BYTES;
    actix_rt::System::new().block_on(async {
        let table = ActorTable::load(&db, Placements::default())
            .unwrap()
            .start();
        for id in 1..=fits as u128 {
            table
                .send(RegisterActor(actor(id, host, -1, false)))
                .await
                .unwrap()
                .unwrap();
            table.send(full(id, creator)).await.unwrap().unwrap();
        }
    });
    // The head crashed after writing actor 1's death and before letting go of its creation
    // task: the record says Dead, the task is still on disk.
    {
        let mut actors: crate::gcs::persist::Persisted<ActorId, ActorInfo> =
            crate::gcs::persist::Persisted::open(&db, "actors").unwrap();
        let mut dead = actors.get(&ActorId(1)).cloned().unwrap();
        dead.state = ActorState::Dead;
        actors.insert(ActorId(1), dead).unwrap();
    }
    drop(db);
    let db = sled::Config::new().path(&dir).open().unwrap();
    actix_rt::System::new().block_on(async {
        let table = ActorTable::load(&db, Placements::default())
            .unwrap()
            .start();
        // The dead actor's share is the creator's again: one more full task is kept.
        let id = fits as u128 + 1;
        table
            .send(RegisterActor(actor(id, host, -1, false)))
            .await
            .unwrap()
            .unwrap();
        table.send(full(id, creator)).await.unwrap().unwrap();
        // And the dead actor is restarted by nobody.
        let asked = Arc::new(Mutex::new(Vec::new()));
        table.do_send(SetActorRestarter(
            Restarts(Arc::clone(&asked)).start().recipient(),
        ));
        table.do_send(GcsEvent::NodeDead {
            node: host,
            reason: "killed".into(),
        });
        restarts_asked(&asked, fits).await;
        assert!(
            asked.lock().unwrap().iter().all(|r| r.actor != ActorId(1)),
            "the dead actor was restarted"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_placed_before_the_head_stopped_goes_back_to_its_node_and_that_node_is_believed() {
    use super::super::UpdateActor;
    let dir = std::env::temp_dir().join(format!("raya-restarts-placed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).open().unwrap();
    let (creator, first, placed, stranger) = (
        NodeId::random(),
        NodeId::random(),
        NodeId::random(),
        NodeId::random(),
    );
    actix_rt::System::new().block_on(async {
        let placements = Placements::open(&db).unwrap();
        let table = ActorTable::load(&db, placements.clone()).unwrap().start();
        let asked = Arc::new(Mutex::new(Vec::new()));
        table.do_send(SetActorRestarter(
            Restarts(Arc::clone(&asked)).start().recipient(),
        ));
        table
            .send(RegisterActor(actor(1, first, -1, true)))
            .await
            .unwrap()
            .unwrap();
        table.send(keep(1, creator)).await.unwrap().unwrap();
        table.do_send(GcsEvent::NodeDead {
            node: first,
            reason: "killed".into(),
        });
        restarts_asked(&asked, 1).await;
        // The head's scheduler placed the restart on `placed`; the head dies before that node
        // reports the actor.
        placements.record(ActorId(1), placed);
        // And one of an actor that is dead by now (a crash before its placement was let go).
        table
            .send(RegisterActor(actor(2, first, 0, true)))
            .await
            .unwrap()
            .unwrap();
        table
            .send(UpdateActor {
                actor_id: ActorId(2),
                state: ActorState::Dead,
                node: Some(first),
                num_restarts: 0,
                death_cause: Some("killed".into()),
            })
            .await
            .unwrap()
            .unwrap();
        placements.record(ActorId(2), placed);
        placements.flushed().await;
    });
    let placements = actix_rt::System::new().block_on(async {
        // A head restarted on its directory.
        let placements = Placements::open(&db).unwrap();
        assert_eq!(placements.placed(ActorId(2)), Some(placed), "not on disk");
        let reloaded = ActorTable::load(&db, placements.clone()).unwrap().start();
        assert_eq!(
            placements.placed(ActorId(2)),
            None,
            "a dead actor's placement is kept"
        );
        let again = Arc::new(Mutex::new(Vec::new()));
        reloaded.do_send(SetActorRestarter(
            Restarts(Arc::clone(&again)).start().recipient(),
        ));
        restarts_asked(&again, 1).await;
        assert_eq!(
            again.lock().unwrap()[0].on,
            Some(placed),
            "the restart goes to another node than the one that may run it already"
        );
        let report = |node| UpdateActor {
            actor_id: ActorId(1),
            state: ActorState::Alive,
            node: Some(node),
            num_restarts: 1,
            death_cause: None,
        };
        // A member the head never placed it on is refused; the placed node is believed.
        let refused = reloaded.send(report(stranger)).await.unwrap();
        assert!(refused.is_err(), "{refused:?}");
        reloaded.send(report(placed)).await.unwrap().unwrap();
        assert_eq!(
            state(&reloaded, 1).await,
            (ActorState::Alive, Some(placed), 1)
        );
        placements.flushed().await;
        placements
    });
    drop(placements);
    // Settled: the placement is gone from disk too.
    assert!(
        Placements::open(&db).unwrap().placed(ActorId(1)).is_none(),
        "a settled placement stays on disk"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
