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

struct Doomed;

impl crate::Actor for Doomed {}

#[crate::actor]
impl Doomed {
    fn new() -> Self {
        Doomed
    }
    fn ping(&self) -> u32 {
        1
    }
}

#[test]
fn an_instance_the_head_records_dead_dies_instead_of_answering_on() {
    let _node = crate::runtime::TestNode::start(crate::Config::default().num_cpus(1));
    let a = Doomed::options().max_restarts(-1).remote().unwrap();
    assert_eq!(crate::get(&a.ping()).unwrap(), 1);
    let id = a.actor_id();
    // The head records the actor dead (as when it was killed, or its owner was declared dead,
    // while this node could not hear of it).
    let tables = crate::runtime::test_tables();
    let node = crate::runtime_context().unwrap().node_id;
    let dead = crate::block_on::block_on(tables.actors.send(UpdateActor {
        actor_id: id,
        state: ActorState::Dead,
        node: Some(node),
        num_restarts: 0,
        death_cause: Some("its owner died".into()),
    }));
    dead.unwrap().unwrap();
    // The instance here restarts and tells the head it lives: it is told the actor is dead.
    crate::kill_with(&a, true).unwrap();
    let mut last = None;
    assert!(
        eventually(|| {
            let got = crate::get(&a.ping());
            let died = matches!(&got, Err(crate::Error::Task(e)) if e.kind == crate::TaskErrorKind::ActorDied && e.message.contains("its owner died"));
            last = Some(got);
            died
        }),
        "the instance the head records dead answers on: {last:?}"
    );
}

#[test]
fn a_relocating_host_forwards_only_to_another_node_and_never_gives_up_a_live_actor() {
    use super::proxy::{Relocation, relocation_step};
    use raya_cluster::gcs::GcsError;
    let me = NodeId::random();
    let other = NodeId::random();
    let record = |state, node| {
        let mut info = raya_cluster::gcs::actors::ActorInfo {
            actor_id: raya_common::ActorId(7),
            class_name: "C".into(),
            name: None,
            namespace: "ns".into(),
            job: raya_common::JobId(1),
            node,
            state,
            detached: false,
            max_restarts: -1,
            max_task_retries: 0,
            num_restarts: 1,
            death_cause: None,
            resources: raya_common::ResourceSet::new(),
            start_time_ms: 0,
            end_time_ms: None,
        };
        if state == ActorState::Dead {
            info.death_cause = Some("killed".into());
        }
        Ok(Some(info))
    };
    assert_eq!(
        relocation_step(record(ActorState::Alive, Some(other)), me),
        Relocation::There(other)
    );
    assert_eq!(
        relocation_step(record(ActorState::Restarting, Some(other)), me),
        Relocation::There(other)
    );
    // A head that cannot answer, or a record that names no other node yet, is asked again:
    // the actor may live (the old code took these as the actor's end and reported it dead).
    for answer in [
        Err(GcsError::Unavailable),
        record(ActorState::Restarting, None),
        record(ActorState::Alive, Some(me)),
    ] {
        assert!(
            matches!(relocation_step(answer, me), Relocation::Again(_)),
            "gave up on an actor that may live"
        );
    }
    assert_eq!(
        relocation_step(record(ActorState::Dead, Some(other)), me),
        Relocation::Gone("killed".into())
    );
    assert!(matches!(relocation_step(Ok(None), me), Relocation::Gone(_)));
}
