//! Tests of the local scheduler, with fake workers that record what they are given.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use raya_common::{IdGenerator, JobId, ObjectId, TaskErrorKind, Value};
use raya_store::{Lookup, RawRef, StoreConfig};

use super::*;
use crate::task_spec::FunctionDescriptor;

/// A worker that records what it is given and leaves finishing to the test.
struct FakeWorker {
    id: WorkerId,
    log: Arc<Mutex<Vec<(WorkerId, TaskSpec)>>>,
}

impl Actor for FakeWorker {
    type Context = Context<Self>;
}

impl Handler<WorkerCommand> for FakeWorker {
    type Result = ();
    fn handle(&mut self, cmd: WorkerCommand, _: &mut Context<Self>) {
        if let WorkerCommand::Execute(d) = cmd {
            self.log.lock().unwrap().push((self.id, *d.take()));
        }
    }
}

struct Factory(Arc<Mutex<Vec<(WorkerId, TaskSpec)>>>);

impl WorkerFactory for Factory {
    fn start_worker(&mut self, id: WorkerId, _: Addr<LocalScheduler>) -> Recipient<WorkerCommand> {
        FakeWorker {
            id,
            log: Arc::clone(&self.0),
        }
        .start()
        .recipient()
    }
}

struct Creator;
impl Actor for Creator {
    type Context = Context<Self>;
}
impl Handler<CreateActor> for Creator {
    type Result = ();
    fn handle(&mut self, _: CreateActor, _: &mut Context<Self>) {}
}

struct Fixture {
    sched: Addr<LocalScheduler>,
    store: Arc<StoreCore>,
    log: Arc<Mutex<Vec<(WorkerId, TaskSpec)>>>,
    ids: IdGenerator,
    node: NodeId,
}

impl Fixture {
    fn new(cpus: f64) -> Fixture {
        let node = NodeId::random();
        Fixture::with_store(
            cpus,
            node,
            StoreCore::new(StoreConfig {
                node,
                memory_budget: 1 << 30,
                spilling: false,
                spill_dir: std::env::temp_dir().join("raya-sched-test-unused"),
            }),
        )
    }

    fn with_store(cpus: f64, node: NodeId, store: Arc<StoreCore>) -> Fixture {
        let log = Arc::new(Mutex::new(Vec::new()));
        let cfg = LocalSchedulerConfig {
            node,
            total: ResourceSet::cpus(cpus).unwrap(),
            min_workers: cpus as usize,
            max_workers: 64,
            worker_idle_timeout: Duration::from_secs(60),
            report_interval: Duration::from_secs(60),
            event_flush_interval: Duration::from_secs(60),
            placement_lease: Duration::from_secs(60),
            max_lineage_bytes: 1 << 30,
            is_driver: false,
            labels: Default::default(),
        };
        let sched = LocalScheduler::new(
            cfg,
            LocalSchedulerParts {
                store: Arc::clone(&store),
                workers: Box::new(Factory(Arc::clone(&log))),
                actor_creator: Creator.start().recipient(),
                global: None,
                gcs: None,
                events: TaskEventBuffer::new(1000),
                queued: Arc::new(AtomicUsize::new(0)),
                cancel_flags: CancelFlags::default(),
            },
        )
        .launch();
        Fixture {
            sched,
            store,
            log,
            ids: IdGenerator::new(JobId(1), node.tag()),
            node,
        }
    }

    /// A task of this node's with `resources`, `args` and `num_returns`, and a reference to its
    /// first return.
    fn spec(
        &self,
        resources: ResourceSet,
        args: Vec<TaskArg>,
        num_returns: u32,
    ) -> (TaskSpec, RawRef) {
        let task_id = self.ids.task_id();
        let ret = self.store.add_ref(ObjectId::for_return(task_id, 0));
        let spec = TaskSpec {
            task_id,
            job: JobId(1),
            parent: TaskId::driver(JobId(1), 1),
            origin: self.node,
            function: FunctionDescriptor {
                name: "test::f".into(),
                local_index: None,
            },
            args,
            num_returns,
            resources,
            strategy: SchedulingStrategy::Default,
            label_selector: Default::default(),
            max_retries: 0,
            retry_exceptions: false,
            attempt: 0,
            kind: TaskKind::Normal,
        };
        (spec, ret)
    }

    /// Submits a task and returns its return reference.
    fn submit(&self, cpus: f64, args: Vec<TaskArg>) -> (TaskId, RawRef) {
        let (spec, ret) = self.spec(ResourceSet::cpus(cpus).unwrap(), args, 1);
        let task_id = spec.task_id;
        self.sched.do_send(SubmitTask(spec));
        (task_id, ret)
    }

    async fn state(&self) -> SchedulerState {
        self.sched.send(GetSchedulerState).await.unwrap()
    }

    fn started(&self) -> Vec<(WorkerId, TaskId)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(w, s)| (*w, s.task_id))
            .collect()
    }

    fn finish(&self, worker: WorkerId, task_id: TaskId) {
        self.sched.do_send(TaskDone {
            worker: Some(worker),
            task_id,
            outcome: TaskOutcome::Finished,
        });
    }
}

fn run<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    actix_rt::System::new().block_on(async move { f().await })
}

#[test]
fn tasks_wait_for_free_cpus() {
    run(|| async {
        let fx = Fixture::new(2.0);
        let a = fx.submit(1.0, vec![]);
        let b = fx.submit(1.0, vec![]);
        let c = fx.submit(2.0, vec![]);
        let st = fx.state().await;
        assert_eq!(st.running, 2);
        assert_eq!(st.queued, 1);
        assert_eq!(st.available.get("CPU"), 0.0);
        let started = fx.started();
        assert_eq!(started.len(), 2);
        fx.finish(started[0].0, a.0);
        assert_eq!(
            fx.state().await.running,
            1,
            "one CPU free is not enough for the 2-CPU task"
        );
        fx.finish(started[1].0, b.0);
        let st = fx.state().await;
        assert_eq!(st.running, 1);
        assert_eq!(st.queued, 0);
        assert_eq!(fx.started().last().unwrap().1, c.0);
    });
}

#[test]
fn infeasible_tasks_fail_at_once_with_the_reason() {
    run(|| async {
        let fx = Fixture::new(2.0);
        let (_, r) = fx.submit(4.0, vec![]);
        fx.state().await;
        match fx.store.get(r.id()) {
            Lookup::Failed(e) => {
                assert_eq!(e.kind, TaskErrorKind::Infeasible);
                assert!(e.message.contains("CPU short by 2"), "{}", e.message);
            }
            _ => panic!("an infeasible task must fail"),
        }
    });
}

#[test]
fn a_blocked_task_lends_its_cpu_to_a_new_worker() {
    run(|| async {
        let fx = Fixture::new(1.0);
        let a = fx.submit(1.0, vec![]);
        let b = fx.submit(1.0, vec![]);
        fx.state().await;
        let w = fx.started()[0].0;
        fx.sched.do_send(WorkerBlocked(w));
        let st = fx.state().await;
        assert_eq!(st.running, 2);
        assert_eq!(st.blocked, 1);
        assert_eq!(st.workers, 2, "a second worker runs the queued task");
        fx.sched.do_send(WorkerUnblocked(w));
        let st = fx.state().await;
        assert_eq!(
            st.available.get("CPU"),
            -1.0,
            "briefly over-committed, as in Ray"
        );
        fx.finish(w, a.0);
        fx.finish(fx.started()[1].0, b.0);
        assert_eq!(fx.state().await.available.get("CPU"), 1.0);
    });
}

#[test]
fn tasks_wait_for_their_arguments_and_inherit_failures() {
    run(|| async {
        let fx = Fixture::new(1.0);
        let (pending_task, pending) = fx.submit(0.0, vec![]);
        let dependent = fx.submit(1.0, vec![TaskArg::Ref(pending.clone())]);
        let st = fx.state().await;
        assert_eq!(st.waiting_for_args, 1);
        // The first task fails; its dependent fails with the same error, one frame longer.
        let err = Arc::new(
            raya_common::TaskError::new(TaskErrorKind::Panic, "boom").with_frame(
                raya_common::TaskFrame {
                    task: pending_task,
                    function: "test::f".into(),
                    node: None,
                },
            ),
        );
        fx.store.fail(pending.id(), err);
        fx.state().await;
        fx.state().await;
        match fx.store.get(dependent.1.id()) {
            Lookup::Failed(e) => {
                assert_eq!(e.kind, TaskErrorKind::Panic);
                assert_eq!(e.chain.len(), 2);
                assert_eq!(e.chain[1].task, dependent.0);
            }
            _ => panic!("a task whose argument failed must fail"),
        }
        let ok_arg = fx.submit(0.0, vec![]);
        let waits = fx.submit(
            1.0,
            vec![
                TaskArg::Ref(ok_arg.1.clone()),
                TaskArg::Value(Value::new(1u8)),
            ],
        );
        fx.state().await;
        fx.store.complete(ok_arg.1.id(), Value::new(5u8)).unwrap();
        fx.state().await;
        fx.state().await;
        assert!(fx.started().iter().any(|(_, t)| *t == waits.0));
    });
}

#[test]
fn cancelling_queued_and_running_tasks_stores_cancellation() {
    run(|| async {
        let fx = Fixture::new(1.0);
        let running = fx.submit(1.0, vec![]);
        let queued = fx.submit(1.0, vec![]);
        fx.state().await;
        assert!(
            fx.sched
                .send(CancelTask {
                    task_id: queued.0,
                    force: false,
                    recursive: true
                })
                .await
                .unwrap()
        );
        assert!(
            fx.sched
                .send(CancelTask {
                    task_id: running.0,
                    force: true,
                    recursive: true
                })
                .await
                .unwrap()
        );
        for r in [&running.1, &queued.1] {
            assert!(matches!(fx.store.get(r.id()), Lookup::Failed(e) if e.is_cancelled()));
        }
        let st = fx.state().await;
        assert_eq!(st.queued, 0);
        assert!(
            !fx.sched
                .send(CancelTask {
                    task_id: TaskId(12345),
                    force: false,
                    recursive: false
                })
                .await
                .unwrap(),
            "unknown tasks are reported as not found"
        );
    });
}

#[test]
fn a_spilled_argument_is_not_read_to_schedule_its_task() {
    run(|| async {
        let node = NodeId::random();
        let dir = std::env::temp_dir().join(format!("raya-sched-spill-{node}"));
        let store = StoreCore::new(StoreConfig {
            node,
            memory_budget: 1 << 10,
            spilling: true,
            spill_dir: dir.clone(),
        });
        let fx = Fixture::with_store(1.0, node, store);
        // Larger than the whole budget: it goes straight to disk.
        let arg = fx
            .store
            .put(fx.ids.put_id(), Value::new(vec![7u8; 64 << 10]))
            .unwrap_or_else(|_| panic!("put"));
        assert_eq!(fx.store.stats().num_spilled, 1);
        let (task, _r) = fx.submit(1.0, vec![TaskArg::Ref(arg)]);
        fx.state().await;
        assert_eq!(fx.started(), vec![(WorkerId(0), task)]);
        // Only the worker that runs it reads it (the fake one does not).
        assert_eq!(fx.store.stats().total_spill_reads, 0);
        drop(fx);
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// Places a task as another node's message could: with `resources` and `num_returns` as they
/// were decoded. Returns its first return.
fn place_forged(fx: &Fixture, resources: ResourceSet, num_returns: u32) -> RawRef {
    let (spec, ret) = fx.spec(resources, vec![], num_returns);
    fx.sched.do_send(PlaceTask(spec));
    ret
}

/// The forged task failed as invalid, nothing ran or was committed, and the node goes on
/// serving: two 1-CPU tasks run, a third waits.
async fn refused_and_serving(fx: &Fixture, ret: RawRef, says: &str) {
    let st = fx.state().await;
    assert_eq!(st.available.get("CPU"), 2.0, "the node over-committed");
    assert!(fx.started().is_empty(), "the forged task ran");
    match fx.store.get(ret.id()) {
        Lookup::Failed(e) => {
            assert_eq!(e.kind, TaskErrorKind::InvalidOptions);
            assert!(e.message.contains(says), "{}", e.message);
        }
        _ => panic!("the forged task must fail"),
    }
    for _ in 0..3 {
        fx.submit(1.0, vec![]);
    }
    let st = fx.state().await;
    assert_eq!((st.running, st.queued), (2, 1));
}

#[test]
fn a_placement_asking_for_negative_resources_fails_and_commits_nothing() {
    run(|| async {
        let fx = Fixture::new(2.0);
        // What a hostile peer can put on the wire: a resource set of CPU -1000.
        let forged: ResourceSet = raya_common::codec::decode(
            &raya_common::codec::encode(&vec![("CPU", -1000 * raya_common::resources::UNIT)])
                .unwrap(),
        )
        .unwrap();
        let ret = place_forged(&fx, forged, 1);
        refused_and_serving(&fx, ret, "CPU").await;
    });
}

#[test]
fn a_placement_asking_for_billions_of_returns_is_refused_before_it_allocates() {
    run(|| async {
        let fx = Fixture::new(2.0);
        let ret = place_forged(&fx, ResourceSet::cpus(1.0).unwrap(), u32::MAX);
        refused_and_serving(&fx, ret, "return objects").await;
    });
}

#[test]
fn a_placement_of_an_actor_with_negative_lifetime_resources_or_of_another_nodes_id_is_refused() {
    run(|| async {
        let fx = Fixture::new(2.0);
        let forged: ResourceSet = raya_common::codec::decode(
            &raya_common::codec::encode(&vec![("CPU", -1000 * raya_common::resources::UNIT)])
                .unwrap(),
        )
        .unwrap();
        // An actor whose lifetime resources would raise the node's capacity once granted.
        let (mut spec, ret) = fx.spec(ResourceSet::cpus(1.0).unwrap(), vec![], 1);
        spec.kind = TaskKind::ActorCreation {
            actor: fx.ids.actor_id(),
            lifetime: forged,
            options: Default::default(),
        };
        fx.sched.do_send(PlaceTask(spec));
        refused_and_serving(&fx, ret, "lifetime").await;
        // A task whose id another node made (it would run under that node's task id).
        let (mut spec, _) = fx.spec(ResourceSet::cpus(1.0).unwrap(), vec![], 1);
        spec.task_id = TaskId(spec.task_id.0 ^ (1u128 << 64));
        let ret = fx.store.add_ref(spec.return_id(0));
        fx.sched.do_send(PlaceTask(spec));
        let st = fx.state().await;
        assert!(
            matches!(fx.store.get(ret.id()), Lookup::Failed(e) if e.message.contains("origin"))
        );
        // Nothing more runs or waits than the three tasks submitted above.
        assert_eq!((st.running, st.queued), (2, 1));
    });
}
