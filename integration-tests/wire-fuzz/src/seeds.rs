//! Seed inputs: valid frames and bodies of the messages nodes send each other, from the node
//! [`crate::targets::peers`]`[1]` (and the head, `[0]`), in each target's input layout.

use raya_cluster::gcs::actors::{
    ActorInfo, ActorState, GetActor, ListActors, RegisterActor, UpdateActor,
};
use raya_cluster::gcs::functions::{
    FunctionInfo, FunctionKind, NodesWithFunction, RegisterFunctions,
};
use raya_cluster::gcs::jobs::{AddJob, FinishJob, GetAllJobs};
use raya_cluster::gcs::kv::{KvDel, KvGet, KvKeys, KvPut};
use raya_cluster::gcs::nodes::{
    GetAllNodes, NodeHeartbeat, NodeInfo, NodeState, RegisterNode, UnregisterNode,
};
use raya_cluster::gcs::objects::{GetObjectLocations, UpdateObjectLocations};
use raya_cluster::gcs::task_events::{AddTaskEvents, TaskEvent, TaskKind, TaskState};
use raya_cluster::transport::codec::{FrameCodec, RPC_PROTOCOL};
use raya_cluster::transport::{Frame, Sequenced, Target, WireMessage, route_of};
use raya_common::{
    ActorId, JobId, NodeId, ObjectId, ResourceSet, TaskError, TaskErrorKind, TaskId,
};
use raya_scheduler::{
    CancelTask, FunctionDescriptor, PlaceTask, ScheduleTask, SchedulingStrategy, TaskArg,
    TaskGoing, TaskPlaced, TaskSpec, TaskUnschedulable,
};
use raya_store::object_manager::{
    Borrow, ExpectedFrom, FreeObject, LocateObject, Located, ObjectLocated, ObjectReady,
    ObjectsExpected, ReadyData, StillMaking,
};

use crate::targets::{checks, ensure_store, peers};

/// Which target an input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzTarget {
    /// [`crate::targets::frame`].
    Frame,
    /// [`crate::targets::route`].
    Route,
    /// [`crate::targets::gcs_live`].
    GcsLive,
}

impl FuzzTarget {
    /// The cargo-fuzz target's name (its corpus directory).
    pub fn name(self) -> &'static str {
        match self {
            FuzzTarget::Frame => "frame",
            FuzzTarget::Route => "route",
            FuzzTarget::GcsLive => "gcs_live",
        }
    }
}

fn node() -> NodeId {
    NodeId::from_peer_id(peers()[1])
}

/// An id the node made.
fn id(n: u64) -> u128 {
    ((node().tag() as u128) << 64) | n as u128
}

fn spec() -> TaskSpec {
    ensure_store();
    let task_id = TaskId(id(7));
    let arg = raya_store::current_store()
        .expect("a store")
        .add_ref(ObjectId::for_return(TaskId(id(3)), 0));
    TaskSpec {
        task_id,
        job: JobId(1),
        parent: TaskId::driver(JobId(1), node().tag()),
        origin: node(),
        function: FunctionDescriptor {
            name: "app::f".into(),
            local_index: None,
        },
        args: vec![TaskArg::Ref(arg)],
        num_returns: 2,
        resources: ResourceSet::cpus(1.0).expect("one CPU"),
        strategy: SchedulingStrategy::Default,
        label_selector: {
            let mut s = raya_common::labels::LabelSelector::default();
            s.require("region", "in(us-west,us-east)")
                .expect("a selector");
            s
        },
        max_retries: 3,
        retry_exceptions: false,
        attempt: 0,
        kind: raya_scheduler::TaskKind::Normal,
    }
}

fn info() -> NodeInfo {
    NodeInfo {
        node_id: node(),
        state: NodeState::Alive,
        is_head: false,
        is_driver: false,
        hostname: "seed".into(),
        addresses: vec!["/ip4/10.0.0.2/tcp/7000".into()],
        resources_total: ResourceSet::cpus(4.0).expect("CPUs"),
        resources_available: ResourceSet::cpus(2.0).expect("CPUs"),
        queued_tasks: 1,
        pending_demand: vec![(ResourceSet::cpus(1.0).expect("a CPU"), 3)],
        start_time_ms: 1,
        end_time_ms: None,
        last_heartbeat_ms: 1,
        death_reason: None,
        labels: [("region".to_string(), "us-west".to_string())].into(),
    }
}

fn actor() -> ActorInfo {
    ActorInfo {
        actor_id: ActorId(id(9)),
        class_name: "Counter".into(),
        name: Some("c".into()),
        namespace: "ns".into(),
        job: JobId(1),
        node: Some(node()),
        state: ActorState::Alive,
        detached: false,
        max_restarts: -1,
        max_task_retries: 0,
        num_restarts: 0,
        death_cause: None,
        resources: ResourceSet::new(),
        start_time_ms: 1,
        end_time_ms: None,
    }
}

fn body<M: WireMessage>(m: &M) -> (&'static str, Vec<u8>) {
    (M::NAME, m.encode().expect("a seed encodes"))
}

/// Valid bodies, with their wire names.
pub fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let oid = ObjectId::for_return(TaskId(id(7)), 0);
    vec![
        body(&RegisterNode(info())),
        body(&UnregisterNode {
            node: node(),
            reason: "shut down".into(),
        }),
        body(&GetAllNodes),
        body(&NodeHeartbeat {
            node: node(),
            available: ResourceSet::cpus(1.0).expect("a CPU"),
            queued_tasks: 0,
            pending_demand: vec![],
        }),
        body(&AddJob {
            driver_node: node(),
            namespace: "ns".into(),
        }),
        body(&FinishJob {
            job: JobId(1),
            node: node(),
        }),
        body(&GetAllJobs),
        body(&RegisterActor(actor())),
        body(&UpdateActor {
            actor_id: ActorId(id(9)),
            state: ActorState::Dead,
            node: Some(node()),
            num_restarts: 1,
            death_cause: Some("killed".into()),
        }),
        body(&GetActor(ActorId(id(9)))),
        body(&ListActors { include_dead: true }),
        body(&RegisterFunctions {
            node: node(),
            functions: vec![FunctionInfo {
                name: "app::f".into(),
                kind: FunctionKind::Function,
            }],
        }),
        body(&NodesWithFunction {
            name: "app::f".into(),
        }),
        body(&UpdateObjectLocations {
            node: node(),
            added: vec![(oid, 10)],
            removed: vec![],
        }),
        body(&GetObjectLocations(oid)),
        body(&AddTaskEvents(vec![TaskEvent {
            task_id: TaskId(id(7)),
            attempt: 0,
            job: JobId(1),
            name: "app::f".into(),
            kind: TaskKind::Normal,
            state: TaskState::Finished,
            node: Some(node()),
            worker: None,
            actor: None,
            parent: None,
            error: None,
            times: vec![(TaskState::Running, 1), (TaskState::Finished, 2)],
        }])),
        body(&KvPut {
            namespace: "app".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            overwrite: true,
        }),
        body(&KvGet {
            namespace: "app".into(),
            key: b"k".to_vec(),
        }),
        body(&KvDel {
            namespace: "app".into(),
            key: b"k".to_vec(),
        }),
        body(&KvKeys {
            namespace: "app".into(),
            prefix: vec![],
        }),
        body(&PlaceTask(spec())),
        body(&TaskPlaced {
            attempt: 0,
            task_id: TaskId(id(7)),
            node: node(),
        }),
        body(&TaskGoing {
            task_id: TaskId(id(7)),
            node: node(),
        }),
        body(&TaskUnschedulable {
            spec: spec(),
            reason: "no node".into(),
            kind: TaskErrorKind::Infeasible,
        }),
        body(&CancelTask {
            task_id: TaskId(id(7)),
            force: true,
            recursive: false,
        }),
        body(&ScheduleTask {
            spec: spec(),
            from: node(),
        }),
        body(&ObjectReady {
            id: oid,
            from: node(),
            data: ReadyData::Held { size: 1 << 20 },
        }),
        body(&ObjectReady {
            id: oid,
            from: node(),
            data: ReadyData::Failed(TaskError::new(TaskErrorKind::Application, "boom")),
        }),
        body(&ObjectsExpected {
            ids: vec![oid],
            at: node(),
        }),
        body(&LocateObject(oid)),
        body(&ObjectLocated {
            id: oid,
            located: Located::Value(vec![1, 2, 3]),
        }),
        body(&ObjectLocated {
            id: oid,
            located: Located::At(node()),
        }),
        body(&ExpectedFrom {
            ids: vec![oid],
            from: node(),
        }),
        body(&FreeObject(oid)),
        body(&Borrow {
            id: oid,
            node: node(),
            add: true,
        }),
        body(&StillMaking(vec![oid])),
    ]
}

/// A frame for the body of `name`.
fn frame(name: &str, body: Vec<u8>) -> Frame {
    Frame {
        route: route_of(name),
        target: Target::System,
        body,
    }
}

/// Every seed: `(target, input)`.
pub fn seeds() -> Vec<(FuzzTarget, Vec<u8>)> {
    use libp2p::request_response::Codec;
    let names: Vec<&str> = checks().iter().map(|(n, _)| *n).collect();
    let gcs = crate::targets::gcs_names();
    let mut out = Vec::new();
    let bodies = bodies();
    let mut codec = FrameCodec {
        max_request: 16 << 20,
        max_reply: 64 << 20,
    };
    let mut framed = |f: Frame, who: u8| {
        let mut bytes = vec![who];
        futures::executor::block_on(codec.write_request(&RPC_PROTOCOL, &mut bytes, f))
            .expect("a seed frame writes");
        bytes
    };
    for (name, b) in &bodies {
        // From the node (1), and from the head (0) for what only the head sends.
        for who in [1u8, 0] {
            let i = names
                .iter()
                .position(|n| n == name)
                .expect("a catalogued name") as u16;
            let mut input = i.to_le_bytes().to_vec();
            input.push(who);
            input.extend_from_slice(b);
            out.push((FuzzTarget::Route, input));
            if let Some(g) = gcs.iter().position(|n| n == name) {
                let mut input = (g as u16).to_le_bytes().to_vec();
                input.push(who);
                input.extend_from_slice(b);
                out.push((FuzzTarget::GcsLive, input));
            }
            out.push((FuzzTarget::Frame, framed(frame(name, b.clone()), who)));
        }
    }
    // An ordered link's batch of several messages, and one nested in another (refused).
    let batch = |frames: Vec<Frame>| Sequenced {
        epoch: 1,
        seq: 1,
        lane: 0,
        frames,
    };
    let inner: Vec<Frame> = bodies
        .iter()
        .take(6)
        .map(|(n, b)| frame(n, b.clone()))
        .collect();
    let seq = batch(inner).encode().expect("a batch encodes");
    let nested = batch(vec![frame(Sequenced::NAME, seq.clone())])
        .encode()
        .expect("nested");
    for b in [seq, nested] {
        out.push((
            FuzzTarget::Frame,
            framed(frame(Sequenced::NAME, b.clone()), 1),
        ));
        let i = names
            .iter()
            .position(|n| *n == Sequenced::NAME)
            .expect("catalogued") as u16;
        let mut input = i.to_le_bytes().to_vec();
        input.push(1);
        input.extend_from_slice(&b);
        out.push((FuzzTarget::Route, input));
    }
    out
}
