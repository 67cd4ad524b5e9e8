//! Tests of the actor host against the GCS's record of where the actor lives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raya_cluster::gcs::actors::{ActorState, GetActor, UpdateActor};
use raya_common::NodeId;

use crate::api::actor::ActorBuilder;

static STOPPED: AtomicUsize = AtomicUsize::new(0);

struct Sticky;

impl crate::Actor for Sticky {
    fn stopped(&mut self, _: &mut crate::api::actor::Context<Self>) {
        STOPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[crate::actor]
impl Sticky {
    fn new() -> Self {
        Sticky
    }
    fn ping(&self) -> u32 {
        1
    }
}

/// Polls `cond` for up to a minute (a bound on a hang, not a timing assertion).
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn an_instance_the_head_records_elsewhere_stops_instead_of_living_on_unseen() {
    let _node = crate::runtime::TestNode::start(crate::Config::default().num_cpus(1));
    let a = Sticky::options().max_restarts(-1).remote().unwrap();
    assert_eq!(crate::get(&a.ping()).unwrap(), 1);
    let id = a.actor_id();
    // The head placed the actor again on another node, which reported it there (as after a
    // head restart that lost the placement here before it was confirmed).
    let tables = crate::runtime::test_tables();
    let other = NodeId::random();
    tables.placements.record(id, other);
    let moved = crate::block_on::block_on(tables.actors.send(UpdateActor {
        actor_id: id,
        state: ActorState::Alive,
        node: Some(other),
        num_restarts: 1,
        death_cause: None,
    }));
    moved.unwrap().unwrap();
    // The instance here restarts and tells the head so: refused, it stops.
    crate::kill_with(&a, true).unwrap();
    assert!(
        eventually(|| STOPPED.load(Ordering::SeqCst) == 1),
        "the instance the head does not record lives on"
    );
    let info = crate::block_on::block_on(tables.actors.send(GetActor(id)))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (info.state, info.node),
        (ActorState::Alive, Some(other)),
        "the head's record is left as it was"
    );
    drop(a);
}
