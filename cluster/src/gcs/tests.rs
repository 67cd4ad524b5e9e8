//! Tests of the GCS tables: each table's requests, persistence and reload, node death and the
//! bounded buffers.

use std::path::PathBuf;
use std::time::Duration;

use raya_common::{ActorId, JobId, NodeId, ObjectId, ResourceSet, TaskId};

use super::actors::ActorState;
use super::actors::*;
use super::functions::*;
use super::jobs::*;
use super::kv::*;
use super::nodes::*;
use super::objects::*;
use super::task_events::*;
use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("raya-gcs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(dir: &std::path::Path) -> GcsConfig {
    GcsConfig {
        dir: dir.to_path_buf(),
        node_timeout: Duration::from_millis(400),
        max_task_events: 3,
        max_kv_bytes: 1 << 20,
        head: None,
    }
}

fn run<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    actix_rt::System::new().block_on(async move { f().await })
}

fn node_info(node: NodeId) -> NodeInfo {
    NodeInfo {
        node_id: node,
        state: NodeState::Alive,
        is_head: true,
        is_driver: false,
        hostname: "test".into(),
        addresses: vec![],
        resources_total: ResourceSet::cpus(2.0).unwrap(),
        resources_available: ResourceSet::cpus(2.0).unwrap(),
        queued_tasks: 0,
        pending_demand: vec![],
        start_time_ms: 1,
        end_time_ms: None,
        last_heartbeat_ms: 0,
        death_reason: None,
        labels: Default::default(),
    }
}

pub(crate) fn actor_info(id: u128, name: Option<&str>, node: NodeId) -> ActorInfo {
    ActorInfo {
        actor_id: ActorId(id),
        class_name: "C".into(),
        name: name.map(Into::into),
        namespace: "ns".into(),
        job: JobId(1),
        node: Some(node),
        state: ActorState::Alive,
        detached: false,
        max_restarts: 0,
        max_task_retries: 0,
        num_restarts: 0,
        death_cause: None,
        resources: ResourceSet::new(),
        start_time_ms: 0,
        end_time_ms: None,
    }
}

#[test]
fn kv_put_get_delete_and_prefix_listing() {
    let dir = temp_dir("kv");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let put = |k: &str, v: &str, overwrite| KvPut {
            namespace: "a".into(),
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
            overwrite,
        };
        assert!(gcs.request(put("x1", "1", false)).await.unwrap());
        assert!(!gcs.request(put("x1", "2", false)).await.unwrap());
        let get = |k: &str| KvGet {
            namespace: "a".into(),
            key: k.as_bytes().to_vec(),
        };
        assert_eq!(gcs.request(get("x1")).await.unwrap(), Some(b"1".to_vec()));
        assert!(!gcs.request(put("x1", "3", true)).await.unwrap());
        assert_eq!(gcs.request(get("x1")).await.unwrap(), Some(b"3".to_vec()));
        gcs.request(put("x2", "", false)).await.unwrap();
        gcs.request(put("y", "", false)).await.unwrap();
        let keys = gcs
            .request(KvKeys {
                namespace: "a".into(),
                prefix: b"x".to_vec(),
            })
            .await
            .unwrap();
        assert_eq!(keys, vec![b"x1".to_vec(), b"x2".to_vec()]);
        assert!(
            gcs.request(KvDel {
                namespace: "a".into(),
                key: b"x1".to_vec()
            })
            .await
            .unwrap()
        );
        assert_eq!(gcs.request(get("x1")).await.unwrap(), None);
        let too_big = KvPut {
            namespace: "a".into(),
            key: vec![0; MAX_KEY_BYTES + 1],
            value: vec![],
            overwrite: true,
        };
        assert!(matches!(
            gcs.request(too_big).await,
            Err(GcsError::Invalid(_))
        ));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tables_reload_from_their_directory() {
    let dir = temp_dir("reload");
    let node = NodeId::random();
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t.clone(), &actix_rt::Arbiter::current());
        gcs.request(RegisterNode(node_info(node))).await.unwrap();
        let j1 = gcs
            .request(AddJob {
                driver_node: node,
                namespace: "n".into(),
            })
            .await
            .unwrap();
        assert_eq!(j1.job_id, JobId(1));
        gcs.request(KvPut {
            namespace: "a".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            overwrite: true,
        })
        .await
        .unwrap();
        gcs.request(RegisterActor(actor_info(7, Some("keeper"), node)))
            .await
            .unwrap();
        gcs.request(RegisterFunctions {
            node,
            functions: vec![FunctionInfo {
                name: "m::f".into(),
                kind: FunctionKind::Function,
            }],
        })
        .await
        .unwrap();
        t.flush().unwrap();
        actix_rt::System::current().stop();
    });
    // Long enough that the reloaded node is still alive when its functions are read, even on a
    // loaded machine; it is declared dead afterwards.
    let reload = GcsConfig {
        node_timeout: Duration::from_secs(2),
        ..config(&dir)
    };
    run(|| async {
        let t = GcsTables::start(&reload, &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let j2 = gcs
            .request(AddJob {
                driver_node: node,
                namespace: "n".into(),
            })
            .await
            .unwrap();
        assert_eq!(j2.job_id, JobId(2), "job ids continue after a restart");
        let v = gcs
            .request(KvGet {
                namespace: "a".into(),
                key: b"k".to_vec(),
            })
            .await
            .unwrap();
        assert_eq!(v, Some(b"v".to_vec()));
        let named = gcs
            .request(GetNamedActor {
                name: "keeper".into(),
                namespace: "ns".into(),
            })
            .await
            .unwrap();
        assert_eq!(named.map(|a| a.actor_id), Some(ActorId(7)));
        let nodes = gcs
            .request(NodesWithFunction {
                name: "m::f".into(),
            })
            .await
            .unwrap();
        assert_eq!(nodes, vec![node]);
        // The reloaded node never heartbeats again: it is declared dead, and with it its
        // actors, functions and jobs.
        let mut dead = false;
        for _ in 0..300 {
            let all = gcs.request(GetAllNodes).await.unwrap();
            if all
                .iter()
                .any(|n| n.node_id == node && n.state == NodeState::Dead)
            {
                dead = true;
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(dead, "a node that stops heartbeating must be declared dead");
        let a = gcs.request(GetActor(ActorId(7))).await.unwrap().unwrap();
        assert_eq!(a.state, ActorState::Dead);
        assert!(a.death_cause.unwrap().contains("died"));
        assert!(
            gcs.request(NodesWithFunction {
                name: "m::f".into()
            })
            .await
            .unwrap()
            .is_empty()
        );
        let jobs = gcs.request(GetAllJobs).await.unwrap();
        assert!(
            jobs.iter()
                .filter(|j| j.job_id == JobId(1))
                .all(|j| j.state == JobState::Finished)
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn actor_names_are_unique_per_namespace_until_death() {
    let dir = temp_dir("names");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let node = NodeId::random();
        gcs.request(RegisterActor(actor_info(1, Some("a"), node)))
            .await
            .unwrap();
        let err = gcs
            .request(RegisterActor(actor_info(2, Some("a"), node)))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            GcsError::NameTaken {
                name: "a".into(),
                namespace: "ns".into()
            }
        );
        let mut other_ns = actor_info(3, Some("a"), node);
        other_ns.namespace = "other".into();
        gcs.request(RegisterActor(other_ns)).await.unwrap();
        gcs.request(UpdateActor {
            actor_id: ActorId(1),
            state: ActorState::Dead,
            node: None,
            num_restarts: 0,
            death_cause: Some("killed".into()),
        })
        .await
        .unwrap();
        gcs.request(RegisterActor(actor_info(2, Some("a"), node)))
            .await
            .unwrap();
        let live = gcs
            .request(ListActors {
                include_dead: false,
            })
            .await
            .unwrap();
        assert_eq!(live.len(), 2);
        let all = gcs
            .request(ListActors { include_dead: true })
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn object_locations_follow_updates_and_node_death() {
    let dir = temp_dir("objects");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let (n1, n2) = (NodeId::random(), NodeId::random());
        gcs.request(RegisterNode(node_info(n1))).await.unwrap();
        let o = |i| ObjectId::for_return(TaskId(i), 0);
        gcs.request(UpdateObjectLocations {
            node: n1,
            added: vec![(o(1), 10), (o(2), 20)],
            removed: vec![],
        })
        .await
        .unwrap();
        gcs.request(UpdateObjectLocations {
            node: n2,
            added: vec![(o(1), 10)],
            removed: vec![],
        })
        .await
        .unwrap();
        let loc = gcs
            .request(GetObjectLocations(o(1)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loc.nodes, vec![n1, n2]);
        assert_eq!(loc.size, 10);
        gcs.request(UpdateObjectLocations {
            node: n1,
            added: vec![],
            removed: vec![o(2)],
        })
        .await
        .unwrap();
        assert_eq!(gcs.request(GetObjectLocations(o(2))).await.unwrap(), None);
        gcs.request(UnregisterNode {
            node: n1,
            reason: "test".into(),
        })
        .await
        .unwrap();
        // Node death is published asynchronously to the object table.
        let mut purged = false;
        for _ in 0..100 {
            let loc = gcs
                .request(GetObjectLocations(o(1)))
                .await
                .unwrap()
                .unwrap();
            if loc.nodes == vec![n2] {
                purged = true;
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(purged);
        assert_eq!(gcs.request(CountObjects).await.unwrap(), 1);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn task_events_merge_per_attempt_and_stay_bounded() {
    let dir = temp_dir("events");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let ev = |id: u128, state: TaskState, t: u64| TaskEvent {
            task_id: TaskId(id),
            attempt: 0,
            job: JobId(1),
            name: format!("f{id}"),
            kind: TaskKind::Normal,
            state,
            node: None,
            worker: None,
            actor: None,
            parent: None,
            error: None,
            times: vec![(state, t)],
        };
        gcs.request(AddTaskEvents(vec![
            ev(1, TaskState::Running, 5),
            ev(1, TaskState::PendingArgs, 1),
        ]))
        .await
        .unwrap();
        gcs.request(AddTaskEvents(vec![ev(1, TaskState::Finished, 9)]))
            .await
            .unwrap();
        let list = gcs
            .request(ListTaskEvents {
                job: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, TaskState::Finished);
        assert_eq!(
            list[0].times,
            vec![
                (TaskState::PendingArgs, 1),
                (TaskState::Running, 5),
                (TaskState::Finished, 9)
            ]
        );
        gcs.request(AddTaskEvents(
            (2..=5)
                .map(|i| ev(i, TaskState::Finished, i as u64))
                .collect(),
        ))
        .await
        .unwrap();
        let list = gcs
            .request(ListTaskEvents {
                job: None,
                limit: 10,
            })
            .await
            .unwrap();
        let ids: Vec<u128> = list.iter().map(|e| e.task_id.0).collect();
        assert_eq!(
            ids,
            vec![3, 4, 5],
            "only the newest max_task_events are kept"
        );
        assert_eq!(gcs.request(TaskEventCounts).await.unwrap(), (3, 2));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_node_event_buffer_sends_bounded_batches_and_drops_past_its_bound() {
    let buf = TaskEventBuffer::new(5);
    let make = |id: u128| {
        move || TaskEvent {
            task_id: TaskId(id),
            attempt: 0,
            job: JobId(1),
            name: "f".into(),
            kind: TaskKind::Normal,
            state: TaskState::PendingArgs,
            node: None,
            worker: None,
            actor: None,
            parent: None,
            error: None,
            times: vec![],
        }
    };
    for i in 0..7 {
        buf.record(TaskId(i), 0, TaskState::Running, make(i));
    }
    // A later state of a buffered task merges into its record.
    buf.record(TaskId(0), 0, TaskState::Finished, make(0));
    let (first, dropped) = buf.drain_at_most(3);
    assert_eq!(first.len(), 3);
    assert_eq!(dropped, 2, "two tasks past the bound of 5 were dropped");
    let (rest, dropped) = buf.drain();
    assert_eq!(rest.len(), 2);
    assert_eq!(dropped, 0);
    let all: Vec<_> = first.iter().chain(rest.iter()).collect();
    let t0 = all.iter().find(|e| e.task_id == TaskId(0)).unwrap();
    assert_eq!(t0.state, TaskState::Finished);
    assert_eq!(t0.times.len(), 2);
}

#[test]
fn a_notification_is_queued_before_notify_returns() {
    // An actor's registration must reach the head before the creation task the creator sends
    // it next (which another node answers with a state update the GCS would refuse for an
    // unknown actor): `notify` queues on the ordered link itself, not later from the client.
    use crate::transport::{NetConfig, Network, Role, Router};
    let dir = temp_dir("notify-order");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let router = Router::new();
        t.serve(&router);
        let mut c = NetConfig::new(Role::Head);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        let key = libp2p::identity::Keypair::generate_ed25519;
        let head = Network::start(key(), c.clone(), router).unwrap();
        c.role = Role::Node;
        c.bootstrap = head.listen_addrs();
        let node = Network::start(key(), c, Router::new()).unwrap();
        let hp = node.wait_for_head(Duration::from_secs(10)).await.unwrap();
        let gcs = GcsHandle::start_remote(node.clone(), hp, &actix_rt::Arbiter::current());
        let me = NodeId::from_peer_id(node.local_peer_id());
        gcs.request(RegisterNode(node_info(me))).await.unwrap();
        for i in 0..20 {
            // An actor id this node made (it carries the node's tag).
            let id = ((me.tag() as u128) << 64) | (100 + i);
            gcs.notify(RegisterActor(actor_info(id, None, me)));
            let found = node.send_ordered(hp, GetActor(ActorId(id))).await.unwrap();
            assert!(
                matches!(found, Ok(Some(_))),
                "round {i}: the registration was not handled first: {found:?}"
            );
        }
        node.shutdown();
        head.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A head and a second node on loopback; the node's GCS handle and its node id.
async fn head_and_node(
    dir: &std::path::Path,
) -> (Network, Network, GcsHandle, NodeId, GcsHandle, GcsTables) {
    head_and_node_with(&config(dir)).await
}

/// [`head_and_node`] with the GCS configured as `config` says.
async fn head_and_node_with(
    config: &GcsConfig,
) -> (Network, Network, GcsHandle, NodeId, GcsHandle, GcsTables) {
    use crate::transport::{NetConfig, Role};
    let t = GcsTables::start(config, &actix_rt::Arbiter::current()).unwrap();
    let router = Router::new();
    t.serve(&router);
    let local = GcsHandle::start(t.clone(), &actix_rt::Arbiter::current());
    let mut c = NetConfig::new(Role::Head);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let key = libp2p::identity::Keypair::generate_ed25519;
    let head = Network::start(key(), c.clone(), router).unwrap();
    c.role = Role::Node;
    c.bootstrap = head.listen_addrs();
    let node = Network::start(key(), c, Router::new()).unwrap();
    let hp = node.wait_for_head(Duration::from_secs(10)).await.unwrap();
    let gcs = GcsHandle::start_remote(node.clone(), hp, &actix_rt::Arbiter::current());
    let me = NodeId::from_peer_id(node.local_peer_id());
    (head, node, gcs, me, local, t)
}

use crate::transport::{Network, Router};

fn refused<T>(reply: Result<T, GcsError>) -> bool {
    matches!(reply, Err(GcsError::Refused(_)))
}

#[test]
fn a_node_speaks_only_for_itself_and_only_members_change_the_tables() {
    let dir = temp_dir("senders");
    run(|| async {
        let (head, node, gcs, me, ..) = head_and_node(&dir).await;
        let put = || KvPut {
            namespace: "app".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            overwrite: true,
        };
        // Not registered yet: it may read, not write.
        assert_eq!(
            gcs.request(KvGet {
                namespace: "app".into(),
                key: b"k".to_vec()
            })
            .await,
            Ok(None)
        );
        assert!(refused(gcs.request(put()).await));
        // Registering, or dropping, another node is refused; the table never sees it.
        let victim = NodeId::random();
        assert!(refused(gcs.request(RegisterNode(node_info(victim))).await));
        assert!(refused(
            gcs.request(UnregisterNode {
                node: victim,
                reason: "forged".into()
            })
            .await
        ));
        assert!(refused(
            gcs.request(AddJob {
                driver_node: victim,
                namespace: String::new()
            })
            .await
        ));
        let nodes = gcs.request(GetAllNodes).await.unwrap();
        assert!(nodes.iter().all(|n| n.node_id != victim), "{nodes:?}");
        assert_eq!(head.router().refused(), 4);
        // Its own registration with resources no node could have (as only the wire can make
        // them: negative, or so large that sums overflow) is refused too.
        for units in [-10_000i64, i64::MAX] {
            let forged: ResourceSet = postcard::from_bytes(
                &postcard::to_stdvec(&vec![("CPU".to_string(), units)]).unwrap(),
            )
            .unwrap();
            let mut info = node_info(me);
            info.resources_total = forged;
            assert!(refused(gcs.request(RegisterNode(info)).await));
        }
        assert_eq!(head.router().refused(), 6);
        // Registered as itself, it is a member: its writes are taken.
        gcs.request(RegisterNode(node_info(me))).await.unwrap();
        assert_eq!(gcs.request(put()).await, Ok(true));
        // An actor, a location update or a job's end it claims for another node are refused.
        let others_actor = ((victim.tag() as u128) << 64) | 7;
        assert!(refused(
            gcs.request(RegisterActor(actor_info(others_actor, None, me)))
                .await
        ));
        let mine = ((me.tag() as u128) << 64) | 7;
        gcs.request(RegisterActor(actor_info(mine, None, me)))
            .await
            .unwrap();
        assert!(refused(
            gcs.request(UpdateObjectLocations {
                node: victim,
                added: vec![],
                removed: vec![]
            })
            .await
        ));
        let job = gcs
            .request(AddJob {
                driver_node: me,
                namespace: String::new(),
            })
            .await
            .unwrap();
        assert!(refused(
            gcs.request(FinishJob {
                job: job.job_id,
                node: victim
            })
            .await
        ));
        gcs.request(FinishJob {
            job: job.job_id,
            node: me,
        })
        .await
        .unwrap();
        assert_eq!(head.router().refused(), 9);
        // Leaving, it stops being a member.
        gcs.request(UnregisterNode {
            node: me,
            reason: "shut down".into(),
        })
        .await
        .unwrap();
        assert!(refused(gcs.request(put()).await));
        node.shutdown();
        head.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_member_cannot_take_over_another_nodes_actor() {
    let dir = temp_dir("actor-takeover");
    run(|| async {
        let (head, node, gcs, me, local, tables) = head_and_node(&dir).await;
        // An actor alive on another alive node, and one still being created there (recorded
        // through the head's own tables).
        let owner = NodeId::random();
        local.request(RegisterNode(node_info(owner))).await.unwrap();
        let id = ((owner.tag() as u128) << 64) | 5;
        local
            .request(RegisterActor(actor_info(id, Some("svc"), owner)))
            .await
            .unwrap();
        let pending = id + 1;
        let mut creating = actor_info(pending, None, owner);
        creating.state = ActorState::PendingCreation;
        local.request(RegisterActor(creating)).await.unwrap();
        gcs.request(RegisterNode(node_info(me))).await.unwrap();
        let claim = |actor: u128, state| UpdateActor {
            actor_id: ActorId(actor),
            state,
            node: Some(me),
            num_restarts: 0,
            death_cause: None,
        };
        // The member reports either actor as its own, or as dead: refused, records unchanged.
        for actor in [id, pending] {
            for state in [ActorState::Alive, ActorState::Dead] {
                let taken = gcs.request(claim(actor, state)).await;
                // Alive on a known node: the member's instance is a stray one. Still being
                // created at its creator, with no placement known: refused all the same.
                if actor == id {
                    assert!(
                        matches!(taken, Err(GcsError::ActorElsewhere(_))),
                        "{taken:?}"
                    );
                } else {
                    assert!(matches!(taken, Err(GcsError::Invalid(_))), "{taken:?}");
                }
            }
        }
        let info = local.request(GetActor(ActorId(id))).await.unwrap().unwrap();
        assert_eq!((info.node, info.state), (Some(owner), ActorState::Alive));
        let info = local
            .request(GetActor(ActorId(pending)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (info.node, info.state),
            (Some(owner), ActorState::PendingCreation)
        );
        // Once the head placed the creation on the member, the member's report is taken.
        tables.placements.record(ActorId(pending), me);
        gcs.request(claim(pending, ActorState::Alive))
            .await
            .unwrap();
        let info = local
            .request(GetActor(ActorId(pending)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((info.node, info.state), (Some(me), ActorState::Alive));
        node.shutdown();
        head.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_whose_id_tag_is_another_nodes_is_not_registered() {
    let dir = temp_dir("tag-collision");
    run(|| async {
        let t = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        let first = NodeId::random();
        gcs.request(RegisterNode(node_info(first))).await.unwrap();
        // A key ground until its tag is the first node's: refused, also once that one died.
        let ground = crate::tag_collision::node_with_tag(first.tag());
        let err = gcs.request(RegisterNode(node_info(ground))).await;
        assert!(
            matches!(&err, Err(GcsError::Invalid(m)) if m.contains("id tag")),
            "{err:?}"
        );
        gcs.request(UnregisterNode {
            node: first,
            reason: "shut down".into(),
        })
        .await
        .unwrap();
        assert!(gcs.request(RegisterNode(node_info(ground))).await.is_err());
        let nodes = gcs.request(GetAllNodes).await.unwrap();
        assert_eq!(nodes.iter().map(|n| n.node_id).collect::<Vec<_>>(), [first]);
        // The first node registers again (a restart) as before.
        gcs.request(RegisterNode(node_info(first))).await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_the_tables_keep_is_bounded() {
    let dir = temp_dir("bounded");
    run(|| async {
        // The node sends no heartbeats here: it stays alive for the test.
        let config = GcsConfig {
            node_timeout: Duration::from_secs(600),
            ..config(&dir)
        };
        let (head, node, gcs, me, local, _) = head_and_node_with(&config).await;
        // A registration with a hostname no DNS name can have is refused before it is read.
        let mut long = node_info(me);
        long.hostname = "h".repeat(MAX_HOSTNAME + 1);
        assert!(refused(gcs.request(RegisterNode(long)).await));
        gcs.request(RegisterNode(node_info(me))).await.unwrap();
        // A task record naming no node comes from the task's owner only; long texts are cut.
        let record = |id: u128, error: Option<String>| TaskEvent {
            task_id: TaskId(id),
            attempt: 0,
            job: JobId(1),
            name: "f".repeat(MAX_NAME_KEPT * 2),
            kind: TaskKind::Normal,
            state: TaskState::Failed,
            node: None,
            worker: None,
            actor: None,
            parent: None,
            error,
            times: vec![],
        };
        let others = ((NodeId::random().tag() as u128) << 64) | 1;
        assert!(refused(
            gcs.request(AddTaskEvents(vec![record(others, None)])).await
        ));
        let mine = ((me.tag() as u128) << 64) | 1;
        let error = "é".repeat(MAX_ERROR_KEPT);
        gcs.request(AddTaskEvents(vec![record(mine, Some(error))]))
            .await
            .unwrap();
        let kept = gcs
            .request(ListTaskEvents {
                job: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].name.len() <= MAX_NAME_KEPT + 6 && kept[0].name.ends_with("[cut]"));
        let e = kept[0].error.as_deref().unwrap();
        assert!(
            e.len() <= MAX_ERROR_KEPT + 6 && e.ends_with("[cut]"),
            "{}",
            e.len()
        );
        // The key-value store holds what its bound allows (1 MiB here), and no more.
        let put = |key: &str, bytes: usize| KvPut {
            namespace: "app".into(),
            key: key.as_bytes().to_vec(),
            value: vec![0; bytes],
            overwrite: true,
        };
        gcs.request(put("a", 600 << 10)).await.unwrap();
        let full = gcs.request(put("b", 600 << 10)).await;
        assert!(
            matches!(&full, Err(GcsError::Invalid(m)) if m.contains("full")),
            "{full:?}"
        );
        // Replacing a value counts only the difference; a delete makes room.
        gcs.request(put("a", 900 << 10)).await.unwrap();
        gcs.request(KvDel {
            namespace: "app".into(),
            key: b"a".to_vec(),
        })
        .await
        .unwrap();
        gcs.request(put("b", 600 << 10)).await.unwrap();
        // One node drives at most so many jobs at once; finished jobs are let go, the oldest
        // first.
        let add = || AddJob {
            driver_node: me,
            namespace: String::new(),
        };
        let mut jobs = Vec::new();
        for _ in 0..MAX_RUNNING_JOBS_A_NODE {
            jobs.push(local.request(add()).await.unwrap().job_id);
        }
        let over = local.request(add()).await;
        assert!(matches!(over, Err(GcsError::Invalid(_))), "{over:?}");
        for job in &jobs {
            local
                .request(FinishJob {
                    job: *job,
                    node: me,
                })
                .await
                .unwrap();
        }
        local.request(add()).await.unwrap();
        let all = local.request(GetAllJobs).await.unwrap();
        assert_eq!(all.len(), MAX_FINISHED_JOBS + 1);
        assert!(
            all.iter()
                .all(|j| j.job_id > jobs[MAX_RUNNING_JOBS_A_NODE - MAX_FINISHED_JOBS - 1])
        );
        // Dead nodes' records too.
        for _ in 0..MAX_DEAD_NODES + 5 {
            let n = NodeId::random();
            local.request(RegisterNode(node_info(n))).await.unwrap();
            local
                .request(UnregisterNode {
                    node: n,
                    reason: "shut down".into(),
                })
                .await
                .unwrap();
        }
        let nodes = local.request(GetAllNodes).await.unwrap();
        let dead = nodes.iter().filter(|n| n.state == NodeState::Dead).count();
        assert_eq!(dead, MAX_DEAD_NODES);
        assert!(
            nodes
                .iter()
                .any(|n| n.node_id == me && n.state == NodeState::Alive)
        );
        node.shutdown();
        head.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_head_is_alive_while_its_gcs_runs_and_no_member_passes_for_it() {
    let dir = temp_dir("head-alive");
    run(|| async {
        let (head, other) = (NodeId::random(), NodeId::random());
        let config = GcsConfig {
            head: Some(head),
            ..config(&dir)
        };
        let t = GcsTables::start(&config, &actix_rt::Arbiter::current()).unwrap();
        let gcs = GcsHandle::start(t, &actix_rt::Arbiter::current());
        // Both register as the head and send no heartbeat.
        gcs.request(RegisterNode(node_info(head))).await.unwrap();
        gcs.request(RegisterNode(node_info(other))).await.unwrap();
        let other_now = gcs.request(GetNode(other)).await.unwrap().unwrap();
        assert!(!other_now.is_head, "a member registered as the head");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let o = gcs.request(GetNode(other)).await.unwrap().unwrap();
            if o.state == NodeState::Dead {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the silent node never died"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        // The other node timed out; the head, just as silent, did not.
        let h = gcs.request(GetNode(head)).await.unwrap().unwrap();
        assert_eq!(h.state, NodeState::Alive);
        assert!(h.is_head);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_first_seen_in_a_resource_update_can_be_reached_by_its_peer_id() {
    // A node that joined later reaches another node by peer id only once its client learned
    // where it listens. Gossip of a resource change can overtake the node table's reload, so a
    // node's first sighting may be a `NodeResources` event, not `NodeAlive`.
    use crate::transport::{NetConfig, Role, Target};
    let dir = temp_dir("first-sight");
    run(|| async {
        let key = libp2p::identity::Keypair::generate_ed25519;
        let mut c = NetConfig::new(Role::Head);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        let tables = GcsTables::start(&config(&dir), &actix_rt::Arbiter::current()).unwrap();
        let router = Router::new();
        tables.serve(&router);
        let other = Network::start(key(), c.clone(), router).unwrap();
        c.role = Role::Node;
        let me = Network::start(key(), c, Router::new()).unwrap();
        let mut client = GcsClient::local(tables.clone(), Some(me.clone()));
        let mut seen = node_info(NodeId::from_peer_id(other.local_peer_id()));
        seen.addresses = other.listen_addrs().iter().map(|a| a.to_string()).collect();
        client.apply(GcsEvent::NodeResources(seen));
        let nodes = me
            .ask(other.local_peer_id(), Target::System, GetAllNodes)
            .await;
        assert!(
            matches!(nodes, Ok(Ok(_))),
            "the node seen first in a resource update could not be reached: {nodes:?}"
        );
        me.shutdown();
        other.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}
