//! Actors: ordering, parallelism, names, lifetimes, restarts, concurrency, the actix-native form.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raya::prelude::*;
use raya::{Error, TaskErrorKind};
use raya_integration_tests::{config, eventually, with_raya};
use serde::{Deserialize, Serialize};

#[raya::actor]
struct Counter {
    value: u64,
}

#[raya::actor]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { value: start }
    }
    fn increment(&mut self) -> u64 {
        self.value += 1;
        self.value
    }
    fn add(&mut self, n: u64) -> u64 {
        self.value += n;
        self.value
    }
    fn read(&self) -> u64 {
        self.value
    }
    fn slow_read(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        self.value
    }
}

/// Records the order in which calls arrive.
#[raya::actor]
struct Log {
    seen: Vec<u32>,
}

#[raya::actor]
impl Log {
    fn new() -> Self {
        Log { seen: Vec::new() }
    }
    fn push(&mut self, v: u32) {
        self.seen.push(v);
    }
    fn seen(&self) -> Vec<u32> {
        self.seen.clone()
    }
}

static CONSTRUCTED: AtomicUsize = AtomicUsize::new(0);

#[raya::actor(max_restarts = 2, max_task_retries = 1)]
struct Fragile {
    calls: u32,
}

#[raya::actor]
impl Fragile {
    fn new() -> Self {
        CONSTRUCTED.fetch_add(1, Ordering::SeqCst);
        Fragile { calls: 0 }
    }
    fn work(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }
    fn crash(&mut self) -> u32 {
        panic!("fragile crashed")
    }
    fn fails(&self) -> Result<u32, String> {
        Err("an application error does not crash the actor".into())
    }
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[raya::actor]
struct Threaded;

#[raya::actor]
impl Threaded {
    fn new() -> Self {
        Threaded
    }
    /// Runs until `target` calls have been in flight at once (or 10 s pass).
    fn busy(&self, target: usize) -> u8 {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MAX_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
        let mut waited = 0;
        while MAX_IN_FLIGHT.load(Ordering::SeqCst) < target && waited < 10_000 {
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        1
    }
}

/// Two async calls that each wait for the other: they finish only if they run concurrently.
#[raya::actor]
struct Rendezvous {
    arrived: AtomicUsize,
}

#[raya::actor]
impl Rendezvous {
    fn new() -> Self {
        Rendezvous {
            arrived: AtomicUsize::new(0),
        }
    }
    async fn meet(&self) -> usize {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let mut waited = 0;
        while self.arrived.load(Ordering::SeqCst) < 2 && waited < 10_000 {
            // Actor event loops are Actix arbiters, i.e. tokio runtimes: tokio's timer works.
            tokio::time::sleep(Duration::from_millis(1)).await;
            waited += 1;
        }
        self.arrived.load(Ordering::SeqCst)
    }
    async fn echo(&mut self, s: String) -> String {
        s
    }
}

#[raya::remote]
fn bump_through(c: ActorHandle<Counter>, times: u32) -> raya::Result<u64> {
    let mut last = 0;
    for _ in 0..times {
        last = raya::get(&c.increment())?;
    }
    Ok(last)
}

#[raya::actor]
struct Forwarder {
    target: ActorHandle<Counter>,
}

#[raya::actor]
impl Forwarder {
    fn new(target: ActorHandle<Counter>) -> Self {
        Forwarder { target }
    }
    fn forward(&self, n: u64) -> raya::Result<u64> {
        raya::get(&self.target.add(n))
    }
}

// The actix-native form: message types with Handler impls.
#[derive(Clone, Serialize, Deserialize)]
struct Deposit(u64);
impl raya::Message for Deposit {
    type Result = u64;
}

#[derive(Clone, Serialize, Deserialize)]
struct Balance;
impl raya::Message for Balance {
    type Result = u64;
}

#[raya::actor]
struct Account {
    balance: u64,
}

#[raya::actor]
impl Account {
    fn new() -> Self {
        Account { balance: 0 }
    }
}

impl raya::Handler<Deposit> for Account {
    fn handle(&mut self, msg: Deposit, _ctx: &mut raya::Context<Self>) -> u64 {
        self.balance += msg.0;
        self.balance
    }
}

impl raya::Handler<Balance> for Account {
    fn handle(&mut self, _: Balance, _ctx: &mut raya::Context<Self>) -> u64 {
        self.balance
    }
}

#[raya::actor]
struct NeedsGpu;

#[raya::actor]
impl NeedsGpu {
    fn new() -> Self {
        NeedsGpu
    }
    fn ping(&self) -> u8 {
        1
    }
}

#[raya::actor]
struct BadCtor;

#[raya::actor]
impl BadCtor {
    fn new(ok: bool) -> Result<Self, String> {
        if ok {
            Ok(BadCtor)
        } else {
            Err("refused to start".into())
        }
    }
    fn ping(&self) -> u8 {
        1
    }
}

#[test]
fn calls_from_one_caller_run_in_order() {
    with_raya(config(2), || {
        let c = Counter::remote(0);
        let refs: Vec<ObjectRef<u64>> = (0..10).map(|_| c.increment()).collect();
        assert_eq!(raya::get_all(&refs).unwrap(), (1..=10).collect::<Vec<_>>());

        let log = Log::remote();
        // Calls whose arguments are not ready yet still run in submission order.
        let late = raya::put(0u32).unwrap();
        let slow = slow_arg::remote(100, 1);
        log.push(slow);
        for i in 2..200 {
            log.push(i);
        }
        log.push(late);
        let seen = raya::get(&log.seen()).unwrap();
        let mut expected: Vec<u32> = (1..200).collect();
        expected.push(0);
        assert_eq!(seen, expected);
    });
}

#[raya::remote]
fn slow_arg(ms: u64, v: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    v
}

static ARRIVED: AtomicUsize = AtomicUsize::new(0);

/// Each gate waits (up to 10 s) until `n` gates have arrived: all return `n` only if they ran at
/// the same time.
#[raya::actor]
struct Gate;

#[raya::actor]
impl Gate {
    fn new() -> Self {
        Gate
    }
    fn arrive(&self, n: usize) -> usize {
        ARRIVED.fetch_add(1, Ordering::SeqCst);
        let mut waited = 0;
        while ARRIVED.load(Ordering::SeqCst) < n && waited < 10_000 {
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
        }
        ARRIVED.load(Ordering::SeqCst)
    }
}

#[test]
fn different_actors_run_in_parallel() {
    with_raya(config(2), || {
        ARRIVED.store(0, Ordering::SeqCst);
        // More actors than CPUs: actors take no CPU while they run.
        let gates: Vec<_> = (0..4).map(|_| Gate::remote()).collect();
        let arrivals: Vec<_> = gates.iter().map(|g| g.arrive(4)).collect();
        let seen = raya::get_all(&arrivals).unwrap();
        assert_eq!(seen, vec![4, 4, 4, 4], "arrivals seen by each gate");
    });
}

#[test]
fn named_actors_are_found_and_names_are_unique() {
    with_raya(config(2), || {
        let c = Counter::options().name("shared").remote(5).unwrap();
        c.increment();
        let found = raya::get_actor::<Counter>("shared").unwrap();
        assert_eq!(found.actor_id(), c.actor_id());
        assert_eq!(raya::get(&found.read()).unwrap(), 6);
        let e = Counter::options().name("shared").remote(0).unwrap_err();
        assert!(
            matches!(&e, Error::NameTaken { name, .. } if name == "shared"),
            "{e}"
        );
        assert!(e.to_string().contains("already taken"));
        // The same name in another namespace is fine.
        let other = Counter::options()
            .name("shared")
            .namespace("elsewhere")
            .remote(100)
            .unwrap();
        let found = raya::get_actor_in::<Counter>("shared", "elsewhere").unwrap();
        assert_eq!(found.actor_id(), other.actor_id());
        assert!(matches!(
            raya::get_actor::<Counter>("nobody"),
            Err(Error::ActorNotFound { .. })
        ));
        assert!(matches!(
            raya::get_actor::<Log>("shared"),
            Err(Error::TypeMismatch { .. })
        ));
        // Once killed, the name is free again.
        raya::kill(&c).unwrap();
        assert!(eventually(Duration::from_secs(10), || Counter::options()
            .name("shared")
            .remote(0)
            .is_ok()));
    });
}

#[test]
fn actors_stop_when_their_last_handle_goes_unless_detached() {
    with_raya(config(2), || {
        let owned = Counter::options().name("owned").remote(0).unwrap();
        raya::get(&owned.increment()).unwrap();
        let copy = owned.clone();
        drop(owned);
        assert!(
            raya::get_actor::<Counter>("owned").is_ok(),
            "a clone keeps it alive"
        );
        drop(copy);
        assert!(
            eventually(Duration::from_secs(10), || raya::get_actor::<Counter>(
                "owned"
            )
            .is_err()),
            "an owned actor ends with its last handle"
        );

        let detached = Counter::options()
            .name("kept")
            .detached()
            .remote(41)
            .unwrap();
        drop(detached);
        std::thread::sleep(Duration::from_millis(100));
        let again = raya::get_actor::<Counter>("kept").unwrap();
        assert_eq!(raya::get(&again.increment()).unwrap(), 42);
        raya::kill(&again).unwrap();
        let e = raya::get(&again.increment()).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied), "{e}");
        assert!(e.to_string().contains("killed"), "{e}");
    });
}

#[test]
fn handles_travel_into_tasks_and_other_actors() {
    with_raya(config(2), || {
        let c = Counter::remote(0);
        assert_eq!(raya::get(&bump_through::remote(c.clone(), 5)).unwrap(), 5);
        let f = Forwarder::remote(c.clone());
        assert_eq!(raya::get(&f.forward(10)).unwrap(), 15);
        assert_eq!(raya::get(&c.read()).unwrap(), 15);
        // A handle inside a stored value.
        let stored = raya::put(vec![c.clone()]).unwrap();
        let back = raya::get(&stored).unwrap();
        assert_eq!(raya::get(&back[0].increment()).unwrap(), 16);
    });
}

#[test]
fn crashed_actors_restart_and_retry_the_call() {
    with_raya(config(2), || {
        CONSTRUCTED.store(0, Ordering::SeqCst);
        let f = Fragile::remote();
        assert_eq!(raya::get(&f.work()).unwrap(), 1);
        assert_eq!(raya::get(&f.work()).unwrap(), 2);
        // An application error is an error value; the actor keeps its state.
        assert!(
            raya::get(&f.fails())
                .unwrap_err()
                .to_string()
                .contains("does not crash")
        );
        assert_eq!(raya::get(&f.work()).unwrap(), 3);
        // A panic is a crash: the call is retried once (max_task_retries = 1) on a restarted
        // actor, panics again, and fails; the actor restarted twice and is out of restarts.
        let e = raya::get(&f.crash()).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Panic), "{e}");
        assert!(e.to_string().contains("fragile crashed"), "{e}");
        // Calls wait while the actor restarts.
        assert_eq!(
            raya::get(&f.work()).unwrap(),
            1,
            "a restarted actor starts from its constructor"
        );
        assert_eq!(
            CONSTRUCTED.load(Ordering::SeqCst),
            3,
            "constructor re-run on each restart"
        );
        // One more crash is past max_restarts: the actor dies.
        let _ = raya::get(&f.crash());
        let e = raya::get(&f.work()).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied), "{e}");
        let dead = raya::list_actors(true)
            .unwrap()
            .into_iter()
            .find(|a| a.actor_id == f.actor_id())
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || {
                raya::list_actors(true).unwrap().iter().any(|a| {
                    a.actor_id == f.actor_id()
                        && a.state == raya::ActorState::Dead
                        && a.num_restarts == 2
                })
            }),
            "{dead:?}"
        );
        // Kill with restart allowed re-runs the constructor too (on a fresh actor).
        let g = Fragile::remote();
        raya::get(&g.work()).unwrap();
        let before = CONSTRUCTED.load(Ordering::SeqCst);
        raya::kill_with(&g, true).unwrap();
        assert_eq!(raya::get(&g.work()).unwrap(), 1);
        assert_eq!(CONSTRUCTED.load(Ordering::SeqCst), before + 1);
    });
}

#[test]
fn threaded_actors_run_shared_methods_concurrently() {
    with_raya(config(2), || {
        IN_FLIGHT.store(0, Ordering::SeqCst);
        MAX_IN_FLIGHT.store(0, Ordering::SeqCst);
        let t = Threaded::options().max_concurrency(4).remote().unwrap();
        let refs: Vec<_> = (0..8).map(|_| t.busy(4)).collect();
        raya::get_all(&refs).unwrap();
        assert_eq!(MAX_IN_FLIGHT.load(Ordering::SeqCst), 4);
        MAX_IN_FLIGHT.store(0, Ordering::SeqCst);
        let serial = Threaded::remote();
        let refs: Vec<_> = (0..4).map(|_| serial.busy(1)).collect();
        raya::get_all(&refs).unwrap();
        assert_eq!(
            MAX_IN_FLIGHT.load(Ordering::SeqCst),
            1,
            "max_concurrency defaults to 1"
        );
    });
}

#[test]
fn async_methods_run_concurrently_on_the_event_loop() {
    with_raya(config(2), || {
        let r = Rendezvous::remote();
        let a = r.meet();
        let b = r.meet();
        assert_eq!(raya::get_timeout(&a, Duration::from_secs(30)).unwrap(), 2);
        assert_eq!(raya::get_timeout(&b, Duration::from_secs(30)).unwrap(), 2);
        assert_eq!(raya::get(&r.echo("hi".to_string())).unwrap(), "hi");
    });
}

#[test]
fn actix_native_messages_send_ask_and_tell() {
    with_raya(config(2), || {
        let acct = Account::remote();
        let r: ObjectRef<u64> = acct.send(Deposit(10));
        assert_eq!(raya::get(&r).unwrap(), 10);
        acct.tell(Deposit(5));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let balance = rt.block_on(acct.ask(Balance)).unwrap();
        assert_eq!(balance, 15, "tell and ask keep the caller's order");
        // The reply of `send` is an object like any other: it can be passed on.
        let doubled = double::remote(acct.send(Balance));
        assert_eq!(raya::get(&doubled).unwrap(), 30);
    });
}

#[raya::remote]
fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn actors_take_one_cpu_to_place_and_none_to_run() {
    with_raya(config(2), || {
        let counters: Vec<_> = (0..10).map(Counter::remote).collect();
        let reads: Vec<_> = counters.iter().map(|c| c.read()).collect();
        assert_eq!(raya::get_all(&reads).unwrap(), (0..10).collect::<Vec<_>>());
        // With ten actors alive the two CPUs are free for tasks.
        assert_eq!(raya::get(&double::remote(21)).unwrap(), 42);
        assert!(eventually(
            Duration::from_secs(10),
            || raya::available_resources().unwrap()["CPU"] == 2.0
        ));
        // An actor holding a CPU for its lifetime takes it from tasks.
        let holder = Counter::options().num_cpus(1.0).remote(0).unwrap();
        raya::get(&holder.read()).unwrap();
        assert!(eventually(
            Duration::from_secs(10),
            || raya::available_resources().unwrap()["CPU"] == 1.0
        ));
        raya::kill(&holder).unwrap();
        assert!(eventually(
            Duration::from_secs(10),
            || raya::available_resources().unwrap()["CPU"] == 2.0
        ));
    });
}

#[test]
fn actor_creation_failures_are_reported() {
    with_raya(config(2), || {
        let g = NeedsGpu::options().num_gpus(1.0).remote().unwrap();
        let e = raya::get_timeout(&g.ready(), Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Infeasible), "{e}");
        let e = raya::get_timeout(&g.ping(), Duration::from_secs(30)).unwrap_err();
        assert!(
            e.to_string().contains("GPU"),
            "calls report why the actor could not start: {e}"
        );

        let bad = BadCtor::remote(false);
        let e = raya::get(&bad.ready()).unwrap_err();
        assert!(e.to_string().contains("refused to start"), "{e}");
        let e = raya::get(&bad.ping()).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied));
        let good = BadCtor::remote(true);
        assert_eq!(raya::get(&good.ping()).unwrap(), 1);
        assert!(matches!(
            Threaded::options().max_concurrency(0).remote(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            Threaded::options().label_selector("", "x").remote(),
            Err(Error::InvalidArgument(_))
        ));
        // A hard affinity to a node that does not exist: the actor cannot be placed, as Ray's
        // ActorUnschedulableError says.
        let nowhere = Threaded::options()
            .scheduling_strategy(raya::SchedulingStrategy::NodeAffinity {
                node: raya::NodeId::random(),
                soft: false,
            })
            .remote()
            .unwrap();
        let e = raya::get(&nowhere.ready()).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(TaskErrorKind::Unschedulable),
            "{e}"
        );
    });
}

#[test]
fn ten_thousand_actors_each_answer_a_call() {
    with_raya(config(2), || {
        let actors: Vec<_> = (0..10_000).map(Counter::remote).collect();
        let reads: Vec<_> = actors.iter().map(|a| a.increment()).collect();
        let values = raya::get_all(&reads).unwrap();
        assert_eq!(values, (1..=10_000).collect::<Vec<_>>());
    });
}

#[raya::actor]
struct Busy;

#[raya::actor]
impl Busy {
    fn new() -> Self {
        Busy
    }
    /// Works for up to `ms`, stopping early when cancelled; returns the time spent.
    fn work(&self, ms: u64) -> u64 {
        let mut spent = 0;
        while spent < ms && !raya::is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
            spent += 5;
        }
        spent
    }
    fn whoami(&self) -> (Option<raya::ActorId>, Option<raya::TaskId>) {
        let ctx = raya::runtime_context().unwrap();
        (ctx.actor_id, ctx.task_id)
    }
}

#[test]
fn actor_calls_can_be_cancelled() {
    with_raya(config(2), || {
        let b = Busy::remote();
        let running = b.work(10_000);
        let queued = b.work(10);
        raya::cancel(&queued, false).unwrap();
        let e = raya::get(&queued).unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        raya::cancel(&running, false).unwrap();
        let e = raya::get(&running).unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        assert_eq!(
            e.task_error().unwrap().chain[0].function,
            "Busy::work",
            "{e}"
        );
        // The actor is still there, and its next call runs (after the cancelled one stopped).
        assert_eq!(raya::get(&b.work(10)).unwrap(), 10);
    });
}

#[test]
fn actor_methods_see_their_runtime_context() {
    with_raya(config(2), || {
        let b = Busy::remote();
        let r = b.whoami();
        let (actor, task) = raya::get(&r).unwrap();
        assert_eq!(actor, Some(b.actor_id()));
        assert_eq!(task, Some(r.id().task));
    });
}

#[test]
fn actors_dropped_before_they_are_built_give_their_cpu_back() {
    with_raya(config(2), || {
        for _ in 0..20 {
            drop(Counter::remote(0));
        }
        assert!(
            eventually(Duration::from_secs(10), || {
                raya::available_resources().unwrap().get("CPU") == Some(&2.0)
            }),
            "placement CPUs of actors that went out of scope come back"
        );
        assert_eq!(
            raya::get_timeout(&double::remote(4), Duration::from_secs(30)).unwrap(),
            8
        );
        let c = Counter::remote(1);
        assert_eq!(
            raya::get_timeout(&c.increment(), Duration::from_secs(30)).unwrap(),
            2
        );
    });
}
