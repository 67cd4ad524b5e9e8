//! Fault tolerance on real processes (loopback, mDNS off): a head from `raya start --head`,
//! worker nodes and a driver that is not the head, each its own process; a node is killed with
//! `kill -9` while it runs the driver's tasks and actors and holds their results, and the
//! driver's job still finishes with every result right (Ray's task retries on node death,
//! object reconstruction, owner death and actor restarts on another node).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use raya::prelude::*;
use raya::{SchedulingStrategy, TaskErrorKind};
use support::{Cluster, env_usize, signal};

// ---------------------------------------------------------------------------------------------
// The user's code: what worker nodes and drivers link.

/// The name the harness gave the node this runs on.
fn here() -> String {
    std::env::var("TEST_NODE_NAME").unwrap_or_else(|_| "driver".into())
}

#[raya::remote]
fn node_id() -> String {
    raya::runtime_context().unwrap().node_id.to_string()
}

/// `len` bytes that depend on `seed`.
fn pattern(seed: u64, len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed as u8))
        .collect()
}

fn sum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(*b)))
}

/// Marks `seed` (and the node it runs on) in `marks`, sleeps `ms`, and makes `len` bytes.
#[raya::remote]
fn made(marks: ActorHandle<Marks>, seed: u64, len: u64, ms: u64) -> Vec<u8> {
    raya::get(&marks.mark(seed, here())).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    pattern(seed, len)
}

#[raya::remote]
fn digest(data: Vec<u8>) -> u64 {
    sum(&data)
}

/// Puts `len` bytes in the store of the node this runs on (which owns them) and returns the
/// reference.
#[raya::remote]
fn put_here(len: u64) -> ObjectRef<Vec<u8>> {
    raya::put(pattern(9, len)).unwrap()
}

/// Where each piece of work ran, in the order it started.
#[raya::actor]
struct Marks {
    seen: Vec<(u64, String)>,
}

#[raya::actor]
impl Marks {
    fn new() -> Self {
        Marks { seen: Vec::new() }
    }
    fn mark(&mut self, seed: u64, node: String) -> usize {
        self.seen.push((seed, node));
        self.seen.len()
    }
    fn seen(&self) -> Vec<(u64, String)> {
        self.seen.clone()
    }
}

/// A running total.
#[raya::actor]
struct Keeper {
    total: u64,
}

#[raya::actor]
impl Keeper {
    fn new() -> Self {
        Keeper { total: 0 }
    }
    fn add(&mut self, n: u64) -> u64 {
        self.total += n;
        self.total
    }
    fn node(&self) -> String {
        raya::runtime_context().unwrap().node_id.to_string()
    }
}

/// A running total whose constructor notes, in a file every process of the test shares
/// (`TMPDIR` is the test's directory), the node it ran on: how many instances there were.
#[raya::actor]
struct Tally {
    total: u64,
}

/// The nodes `Tally` instances were constructed on, in order, as noted in `dir`.
fn tally_constructions(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("tally-constructed"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[raya::actor]
impl Tally {
    fn new() -> Self {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join("tally-constructed"))
            .expect("the constructions file");
        writeln!(f, "{}", here()).expect("a construction noted");
        Tally { total: 0 }
    }
    fn add(&mut self, n: u64) -> u64 {
        self.total += n;
        self.total
    }
    fn node(&self) -> String {
        here()
    }
}

/// An actor whose node leaves; the head places its restart on a node that cannot answer yet,
/// dies, and is started again: the actor runs once, where the head first placed it.
fn one_instance_across_a_head_restart() {
    let t = Tally::options()
        .resource("a", 1.0)
        .max_restarts(-1)
        .max_task_retries(-1)
        .remote()
        .unwrap();
    assert_eq!(raya::get(&t.add(1)).unwrap(), 1);
    support::step("placed");
    let n = raya::get_timeout(&t.add(1), Duration::from_secs(90)).expect("the actor restarted");
    assert_eq!(
        n, 1,
        "the restarted actor did not start from its constructor"
    );
    let at = raya::get(&t.node()).unwrap();
    let made = tally_constructions(&std::env::temp_dir());
    assert_eq!(
        made.len(),
        2,
        "the actor was constructed on {made:?}: more than once after its node left"
    );
    assert_eq!(
        made[1], at,
        "the instance that answers is not the one constructed"
    );
}

/// A counter whose calls can take a while, so one is running when its node dies.
#[raya::actor]
struct Counter {
    n: u64,
    /// The [`SlowTell`]s this instance finished.
    tells: u64,
}

/// An actix-native message sent with `tell`: marks `seed` where it runs, then takes `ms`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct SlowTell {
    marks: ActorHandle<Marks>,
    seed: u64,
    ms: u64,
}

impl raya::Message for SlowTell {
    type Result = ();
}

impl raya::Handler<SlowTell> for Counter {
    fn handle(&mut self, m: SlowTell, _: &mut raya::Context<Self>) {
        raya::get(&m.marks.mark(m.seed, here())).unwrap();
        std::thread::sleep(Duration::from_millis(m.ms));
        self.tells += 1;
    }
}

#[raya::actor(handles(SlowTell))]
impl Counter {
    fn new() -> Self {
        Counter { n: 0, tells: 0 }
    }
    fn tells(&self) -> u64 {
        self.tells
    }
    fn add(&mut self, k: u64) -> u64 {
        self.n += k;
        self.n
    }
    /// Marks `seed` in `marks`, sleeps `ms`, then adds `k`.
    fn slow_add(&mut self, k: u64, ms: u64, marks: ActorHandle<Marks>, seed: u64) -> u64 {
        raya::get(&marks.mark(seed, here())).unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        self.n += k;
        self.n
    }
    fn total(&self) -> u64 {
        self.n
    }
    fn node(&self) -> String {
        raya::runtime_context().unwrap().node_id.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios, run by a driver process.

/// Waits until `marks` shows every seed of `seeds` started.
fn wait_for_marks(marks: &ActorHandle<Marks>, seeds: impl IntoIterator<Item = u64> + Clone) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<u64> = raya::get(&marks.seen())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        if seeds.clone().into_iter().all(|s| seen.contains(&s)) {
            return;
        }
        assert!(Instant::now() < deadline, "the marked work never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Node `w1` is killed after it made results, while it runs tasks, has tasks queued and owns
/// an object the driver borrows: the tasks it ran or queued run again on `w2` and their
/// dependents wait for them and see the right values, a task with `max_retries = 0` fails
/// naming the node, and the borrowed object fails as `OwnerDied`.
fn work_lost_with_a_node_runs_again() {
    let n = env_usize("TEST_TASKS", 6) as u64;
    let victim = raya::get(&node_id::options().resource("v", 1.0).remote()).unwrap();
    let on_victim = SchedulingStrategy::NodeAffinity {
        node: victim.parse().unwrap(),
        soft: true,
    };
    let marks = Marks::remote();
    // Made on the victim (too large to travel with the announcement: the driver fetches them).
    let held: Vec<ObjectRef<Vec<u8>>> = (0..n)
        .map(|i| {
            made::options()
                .resource("x", 0.01)
                .scheduling_strategy(on_victim.clone())
                .remote(marks.clone(), i, 256 << 10, 0)
        })
        .collect();
    wait_for_marks(&marks, 0..n);
    // An object the victim owns, which the driver borrows and has not fetched.
    let owned_there = raya::get(&put_here::options().resource("v", 1.0).remote(1 << 20)).unwrap();
    // Running there when it dies: one that may not run again, then more than it has CPUs for.
    let once = made::options()
        .resource("x", 0.01)
        .scheduling_strategy(on_victim.clone())
        .max_retries(0)
        .remote(marks.clone(), 5000, 16, 30_000);
    wait_for_marks(&marks, [5000]);
    let running: Vec<ObjectRef<Vec<u8>>> = (0..n)
        .map(|i| {
            made::options()
                .resource("x", 0.01)
                .scheduling_strategy(on_victim.clone())
                .remote(marks.clone(), 1000 + i, 1024, 2000)
        })
        .collect();
    wait_for_marks(&marks, [1000]);
    let digests: Vec<ObjectRef<u64>> = held
        .iter()
        .chain(&running)
        .map(|r| digest::options().resource("x", 0.01).remote(r.clone()))
        .collect();
    let killed = Instant::now();
    signal("w1", "KILL");

    match raya::get_timeout(&once, Duration::from_secs(60)) {
        Err(e) => {
            assert_eq!(e.task_error_kind(), Some(TaskErrorKind::NodeDied), "{e}");
            assert!(
                e.to_string().contains(&victim),
                "the error names no node: {e}"
            );
        }
        Ok(_) => panic!("a task with max_retries = 0 ran again"),
    }
    for (i, r) in held.iter().enumerate() {
        let got =
            raya::get_timeout(r, Duration::from_secs(60)).expect("a lost result is made again");
        assert!(got == pattern(i as u64, 256 << 10), "result {i} is wrong");
    }
    for (i, r) in running.iter().enumerate() {
        let got = raya::get_timeout(r, Duration::from_secs(60)).expect("a lost task runs again");
        assert!(
            got == pattern(1000 + i as u64, 1024),
            "result {} is wrong",
            1000 + i
        );
    }
    let expected: Vec<u64> = (0..n)
        .map(|i| sum(&pattern(i, 256 << 10)))
        .chain((0..n).map(|i| sum(&pattern(1000 + i, 1024))))
        .collect();
    assert_eq!(
        raya::get_all_timeout(&digests, Duration::from_secs(60)).unwrap(),
        expected,
        "the dependents saw other values"
    );
    let recovered = killed.elapsed();
    match raya::get_timeout(&owned_there, Duration::from_secs(60)) {
        Err(e) => assert_eq!(e.task_error_kind(), Some(TaskErrorKind::OwnerDied), "{e}"),
        Ok(_) => panic!("an object whose owner died was read"),
    }
    // What the victim was running or had queued ran again on the other node (what it had made
    // was already fetched by its owner, this driver).
    let seen = raya::get(&marks.seen()).unwrap();
    for i in 1000..1000 + n {
        assert!(
            seen.contains(&(i, "w2".to_string())),
            "{i} was not made again on w2: {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|(s, node)| *s == 5000 && node != "w1"),
        "the task with max_retries = 0 ran again: {seen:?}"
    );
    let dir = std::path::PathBuf::from(std::env::var("TEST_STEPS").expect("TEST_STEPS"));
    let summary = format!(
        "{n} results made, {n} tasks (2 s each) running or queued and one that may not run \
         again on the killed node, {} dependents: every result back {recovered:?} after the kill\n",
        2 * n,
    );
    std::fs::write(dir.join("recovery.txt"), summary).unwrap();
}

/// Creates a detached named actor and an actor of its own holding `w1`'s only `o`, then waits
/// to be killed.
fn leaves_a_detached_actor_behind() {
    let keeper = Keeper::options()
        .name("keeper")
        .namespace("ft")
        .detached()
        .remote()
        .unwrap();
    let owned = Keeper::options().resource("o", 1.0).remote().unwrap();
    assert_eq!(raya::get(&keeper.add(5)).unwrap(), 5);
    assert_eq!(raya::get(&owned.add(1)).unwrap(), 1);
    let me = raya::runtime_context().unwrap().node_id.to_string();
    assert_ne!(
        raya::get(&keeper.node()).unwrap(),
        me,
        "a detached actor was placed on the driver that will leave"
    );
    support::step("created");
}

/// After the first driver was killed: its detached actor is found by name and keeps its state;
/// the actor it owned is gone and gave back its resources.
fn finds_the_detached_actor() {
    let keeper = raya::get_actor_in::<Keeper>("keeper", "ft").expect("the detached actor is found");
    assert_eq!(raya::get(&keeper.add(1)).unwrap(), 6);
    let freed = node_id::options().resource("o", 1.0).remote();
    raya::get_timeout(&freed, Duration::from_secs(60))
        .expect("the killed driver's actor gave its resources back");
}

/// Work placed on `w1` while the test stalls it past the node timeout: every result comes back
/// right, made again on `w2`.
fn work_moves_off_a_stalled_node() {
    let victim = raya::get(&node_id::options().resource("v", 1.0).remote()).unwrap();
    let on_victim = SchedulingStrategy::NodeAffinity {
        node: victim.parse().unwrap(),
        soft: true,
    };
    let marks = Marks::remote();
    let work: Vec<ObjectRef<Vec<u8>>> = (0..4)
        .map(|i| {
            made::options()
                .resource("x", 0.01)
                .scheduling_strategy(on_victim.clone())
                .remote(marks.clone(), 2000 + i, 1024, 3000)
        })
        .collect();
    wait_for_marks(&marks, [2000]);
    support::step("running");
    for (i, r) in work.iter().enumerate() {
        let got = raya::get_timeout(r, Duration::from_secs(60)).expect("the work moved");
        assert!(got == pattern(2000 + i as u64, 1024), "result {i} is wrong");
    }
    let seen = raya::get(&marks.seen()).unwrap();
    for i in 2000..2004 {
        assert!(
            seen.contains(&(i, "w2".to_string())),
            "{i} was not made again on w2: {seen:?}"
        );
    }
}

/// The head is killed mid-job and restarted on its session directory: while it is down, the
/// actor on `w1` keeps answering and a task that needs the head to be placed waits; once it is
/// back, everything completes with the right values.
fn the_job_outlives_the_head() {
    let marks = Marks::remote();
    let keeper = Keeper::options().resource("v", 0.5).remote().unwrap();
    assert_eq!(raya::get(&keeper.add(1)).unwrap(), 1);
    let before: Vec<ObjectRef<Vec<u8>>> = (0..4)
        .map(|i| {
            made::options()
                .resource("x", 0.01)
                .remote(marks.clone(), 100 + i, 1024, 1500)
        })
        .collect();
    wait_for_marks(&marks, [100]);
    support::step("head-killed");
    // The head is down: calls between live nodes go on.
    assert_eq!(
        raya::get_timeout(&keeper.add(1), Duration::from_secs(30)).unwrap(),
        2
    );
    // A task that needs the head to be placed waits for it.
    let during = made::options()
        .resource("x", 0.01)
        .remote(marks.clone(), 200, 1024, 0);
    assert!(
        raya::get_timeout(&during, Duration::from_millis(500))
            .unwrap_err()
            .is_timeout()
    );
    support::step("head-down-checked");
    assert!(raya::get_timeout(&during, Duration::from_secs(90)).unwrap() == pattern(200, 1024));
    for (i, r) in before.iter().enumerate() {
        let got = raya::get_timeout(r, Duration::from_secs(60)).unwrap();
        assert!(got == pattern(100 + i as u64, 1024), "result {i} is wrong");
    }
    assert_eq!(
        raya::get(&keeper.add(1)).unwrap(),
        3,
        "the actor kept its state"
    );
    let after: Vec<ObjectRef<Vec<u8>>> = (0..8)
        .map(|i| {
            made::options()
                .resource("x", 0.01)
                .remote(marks.clone(), 300 + i, 1024, 0)
        })
        .collect();
    for (i, r) in after.iter().enumerate() {
        let got = raya::get_timeout(r, Duration::from_secs(60)).unwrap();
        assert!(got == pattern(300 + i as u64, 1024), "result {i} is wrong");
    }
}

/// The node with resource `v` (the victim), and a soft affinity to it.
fn victim() -> (String, SchedulingStrategy) {
    let victim = raya::get(&node_id::options().resource("v", 1.0).remote()).unwrap();
    let on_victim = SchedulingStrategy::NodeAffinity {
        node: victim.parse().unwrap(),
        soft: true,
    };
    (victim, on_victim)
}

/// Creates the detached actor `lasting` on the victim, counts it to 5, then waits to be
/// killed.
fn leaves_a_detached_actor_on_the_victim() {
    let (victim, on_victim) = victim();
    let lasting = Counter::options()
        .name("lasting")
        .namespace("ft")
        .detached()
        .max_restarts(-1)
        .resource("a", 0.1)
        .scheduling_strategy(on_victim)
        .remote()
        .unwrap();
    assert_eq!(raya::get(&lasting.add(5)).unwrap(), 5);
    assert_eq!(raya::get(&lasting.node()).unwrap(), victim);
    support::step("created");
}

/// Asserts that `results` of calls to one counter after its restart are each of 1..=n once
/// and that the counter ends at n: every call ran on the new instance, none twice.
fn counted_once_each(results: &[u64], total: u64, what: &str) {
    let mut sorted = results.to_vec();
    sorted.sort_unstable();
    let expected: Vec<u64> = (1..=results.len() as u64).collect();
    assert_eq!(
        sorted, expected,
        "{what}: the calls after the restart saw {results:?}"
    );
    assert_eq!(
        total,
        results.len() as u64,
        "{what}: a call ran twice or not at all"
    );
}

/// Actors on the victim when it is killed: those that may restart come back on the other
/// node, constructed again; the call each was running and those queued behind run there
/// (`max_task_retries = -1`), a call sent with `tell` too, a named one is found under its name, a detached one whose
/// creator is gone is restarted too; a call running on an actor whose `max_task_retries` is 0
/// fails naming the node, and an actor that may not restart is dead, naming it.
fn actors_move_off_a_killed_node() {
    let (victim, on_victim) = victim();
    let restartable = || {
        Counter::options()
            .max_restarts(-1)
            .max_task_retries(-1)
            .resource("a", 0.1)
            .scheduling_strategy(on_victim.clone())
    };
    let n = env_usize("TEST_ACTORS", 3);
    let mut counters: Vec<ActorHandle<Counter>> =
        (0..n).map(|_| restartable().remote().unwrap()).collect();
    counters.push(
        restartable()
            .name("counter")
            .namespace("ft")
            .remote()
            .unwrap(),
    );
    let fragile = Counter::options()
        .resource("a", 0.1)
        .scheduling_strategy(on_victim.clone())
        .remote()
        .unwrap();
    let once = Counter::options()
        .max_restarts(-1)
        .resource("a", 0.1)
        .scheduling_strategy(on_victim.clone())
        .remote()
        .unwrap();
    for c in counters.iter().chain([&fragile, &once]) {
        assert_eq!(
            raya::get(&c.node()).unwrap(),
            victim,
            "not placed on the victim"
        );
    }
    for c in &counters {
        let before: Vec<u64> = (0..5).map(|_| raya::get(&c.add(1)).unwrap()).collect();
        assert_eq!(before, vec![1, 2, 3, 4, 5]);
    }
    // The driver's own node keeps the marks (a hard affinity: it must not die with the victim).
    let me = raya::runtime_context().unwrap().node_id;
    let marks = Marks::options()
        .scheduling_strategy(SchedulingStrategy::NodeAffinity {
            node: me,
            soft: false,
        })
        .remote()
        .unwrap();
    let running: Vec<ObjectRef<u64>> = counters
        .iter()
        .enumerate()
        .map(|(i, c)| c.slow_add(1, 3000, marks.clone(), i as u64))
        .collect();
    let interrupted = once.slow_add(1, 30_000, marks.clone(), 999);
    // A call sent with `tell`, running when the node dies: it runs again too.
    let teller = restartable().remote().unwrap();
    assert_eq!(raya::get(&teller.node()).unwrap(), victim);
    teller.tell(SlowTell {
        marks: marks.clone(),
        seed: 500,
        ms: 3000,
    });
    wait_for_marks(&marks, (0..counters.len() as u64).chain([999, 500]));
    let killed = Instant::now();
    signal("w1", "KILL");
    // Queued while the actors are away.
    let queued: Vec<Vec<ObjectRef<u64>>> = counters
        .iter()
        .map(|c| (0..5).map(|_| c.add(1)).collect())
        .collect();
    for (i, c) in counters.iter().enumerate() {
        let mut after = vec![
            raya::get_timeout(&running[i], Duration::from_secs(90))
                .expect("the running call runs again on the restarted actor"),
        ];
        for r in &queued[i] {
            after.push(raya::get_timeout(r, Duration::from_secs(90)).expect("a queued call runs"));
        }
        let total = raya::get(&c.total()).unwrap();
        counted_once_each(&after, total, &format!("counter {i}"));
        assert_ne!(
            raya::get(&c.node()).unwrap(),
            victim,
            "counter {i} did not move"
        );
    }
    let recovered = killed.elapsed();
    assert_eq!(
        raya::get_timeout(&teller.tells(), Duration::from_secs(90)).unwrap(),
        1,
        "the told call running when the node died did not run again on the restarted actor"
    );
    assert!(
        raya::get(&marks.seen())
            .unwrap()
            .contains(&(500, "w2".to_string())),
        "the told call did not run again on w2"
    );
    match raya::get_timeout(&interrupted, Duration::from_secs(90)) {
        Err(e) => {
            assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied), "{e}");
            assert!(
                e.to_string().contains(&victim),
                "the error names no node: {e}"
            );
        }
        Ok(_) => panic!("a call with max_task_retries = 0 ran again"),
    }
    assert_eq!(
        raya::get_timeout(&once.add(1), Duration::from_secs(90)).unwrap(),
        1,
        "the restarted actor is not a new instance"
    );
    match raya::get_timeout(&fragile.add(1), Duration::from_secs(90)) {
        Err(e) => {
            assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied), "{e}");
            assert!(
                e.to_string().contains(&victim),
                "the error names no node: {e}"
            );
        }
        Ok(_) => panic!("an actor with max_restarts = 0 came back"),
    }
    let named = raya::get_actor_in::<Counter>("counter", "ft").expect("found again by name");
    assert_ne!(raya::get(&named.node()).unwrap(), victim);
    assert_eq!(raya::get(&named.add(1)).unwrap(), 7);
    let lasting = raya::get_actor_in::<Counter>("lasting", "ft")
        .expect("the detached actor whose creator is gone was restarted");
    assert_eq!(
        raya::get_timeout(&lasting.add(1), Duration::from_secs(90)).unwrap(),
        1,
        "the detached actor was not constructed again"
    );
    assert_ne!(raya::get(&lasting.node()).unwrap(), victim);
    let dir = std::path::PathBuf::from(std::env::var("TEST_STEPS").expect("TEST_STEPS"));
    let summary = format!(
        "{} restartable actors (one running a 3 s call, 5 calls queued behind it) back on \
         another node, every call answered, {recovered:?} after the kill\n",
        counters.len()
    );
    std::fs::write(dir.join("actor-recovery.txt"), summary).unwrap();
}

fn run_scenario(name: &str) {
    match name {
        "work_lost_with_a_node_runs_again" => work_lost_with_a_node_runs_again(),
        "leaves_a_detached_actor_behind" => leaves_a_detached_actor_behind(),
        "finds_the_detached_actor" => finds_the_detached_actor(),
        "work_moves_off_a_stalled_node" => work_moves_off_a_stalled_node(),
        "the_job_outlives_the_head" => the_job_outlives_the_head(),
        "leaves_a_detached_actor_on_the_victim" => leaves_a_detached_actor_on_the_victim(),
        "actors_move_off_a_killed_node" => actors_move_off_a_killed_node(),
        "one_instance_across_a_head_restart" => one_instance_across_a_head_restart(),
        other => panic!("no scenario {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points of the processes a test starts (ignored when the suite runs them directly).

support::entry_points!(run_scenario);

// ---------------------------------------------------------------------------------------------
// The tests.

/// The head's node timeout in these tests: short, so deaths are detected quickly.
const NODE_TIMEOUT_MS: &str = "3000";

/// The tests of this file take turns: each runs a cluster whose deaths are detected within a
/// few seconds, and two at once on a small machine would delay heartbeats past that.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A head from `raya start --head` with this file's node timeout, on loopback or, with `hosts`,
/// on hosts of its own (network namespaces).
fn head(name: &str, hosts: Option<usize>) -> Cluster {
    let extra = ["--node-timeout-ms", NODE_TIMEOUT_MS];
    match hosts {
        Some(n) => Cluster::in_netns(name, 1, &extra, n),
        None => Cluster::with_head_args(name, 1, &extra),
    }
}

/// Adds the two workers most scenarios use: `w1` (resources `x` and `v`, the victim) and `w2`
/// (`x`), and waits until the head counts them.
fn two_workers(mut c: Cluster) -> Cluster {
    c.named_worker("w1", 2, "x,v");
    c.named_worker("w2", 2, "x");
    c.wait_alive(3);
    c
}

/// Work runs on `w1` while `cut` takes it away (`true`) past the node timeout and brings it
/// back (`false`): the work completes elsewhere, and `w1`, which learns it was declared dead,
/// joins again as a new node instead of going on as it was.
fn a_node_taken_away_is_fenced(mut c: Cluster, cut: impl Fn(&Cluster, bool)) {
    let mut driver = c.start_driver("work_moves_off_a_stalled_node", 1);
    driver.reached("running");
    cut(&c, true);
    c.wait_for("DEAD", 1);
    cut(&c, false);
    driver.go("running");
    driver.finish(Duration::from_secs(120));
    // The head, w2 and the new w1 are alive (the driver left).
    c.assert_rejoined("w1", 3);
}

#[test]
fn tasks_and_results_lost_with_a_killed_node_are_made_again() {
    let _turn = turn();
    let mut c = two_workers(head("lost-work", None));
    c.drive(
        "work_lost_with_a_node_runs_again",
        1,
        Duration::from_secs(180),
    );
    eprint!(
        "{}",
        std::fs::read_to_string(c.tmp.join("recovery.txt")).unwrap()
    );
}

#[test]
fn actors_on_a_killed_node_restart_on_another() {
    let _turn = turn();
    let mut c = head("actors-move", None);
    c.named_worker("w1", 2, "v,a");
    c.named_worker("w2", 2, "a");
    c.wait_alive(3);
    // A driver leaves a detached actor on w1 and is killed: its actor belongs to the cluster.
    let mut first = c.start_driver("leaves_a_detached_actor_on_the_victim", 1);
    first.reached("created");
    first.kill();
    c.wait_for("DEAD", 1);
    c.drive("actors_move_off_a_killed_node", 1, Duration::from_secs(240));
    eprint!(
        "{}",
        std::fs::read_to_string(c.tmp.join("actor-recovery.txt")).unwrap()
    );
}

#[test]
fn a_killed_drivers_detached_actor_stays_and_its_own_actors_go() {
    let _turn = turn();
    let mut c = head("driver-dies", None);
    c.named_worker("w1", 1, "o");
    c.wait_alive(2);
    let mut first = c.start_driver("leaves_a_detached_actor_behind", 1);
    first.reached("created");
    first.kill();
    c.drive("finds_the_detached_actor", 1, Duration::from_secs(120));
}

#[test]
fn a_node_declared_dead_is_fenced_and_rejoins_as_a_new_node() {
    let _turn = turn();
    // Stalled (SIGSTOP) past the node timeout, then let go on.
    a_node_taken_away_is_fenced(two_workers(head("fenced", None)), |c, away| {
        c.signal("w1", if away { "STOP" } else { "CONT" })
    });
}

#[test]
fn a_node_serving_without_raya_serve_is_fenced_and_rejoins_too() {
    let _turn = turn();
    // w1 is a program's own node (`Config::serves`) that never calls `raya::serve`.
    let mut c = head("fenced-embedded", None);
    c.embedded_worker("w1", 2, "x,v");
    c.named_worker("w2", 2, "x");
    c.wait_alive(3);
    a_node_taken_away_is_fenced(c, |c, away| {
        c.signal("w1", if away { "STOP" } else { "CONT" })
    });
}

#[test]
fn a_job_outlives_its_head_killed_and_restarted_on_its_directory() {
    let _turn = turn();
    let mut c = two_workers(head("head-dies", None));
    let port = c.head.rsplit(':').next().expect("host:port").to_string();
    let mut driver = c.start_driver("the_job_outlives_the_head", 1);
    driver.reached("head-killed");
    c.kill("head");
    driver.go("head-killed");
    driver.reached("head-down-checked");
    let restarted = Instant::now();
    c.start_head(&port);
    // Every node (the driver too) is in the restarted head's reloaded table.
    c.wait_alive(4);
    eprintln!(
        "the restarted head counted every node alive {:?} after it started",
        restarted.elapsed()
    );
    driver.go("head-down-checked");
    driver.finish(Duration::from_secs(180));
    // Node-death detection resumed: a node killed now is declared dead (the driver, which left,
    // is the first dead node).
    c.kill("w2");
    c.wait_for("DEAD", 2);
}

#[test]
fn an_actor_restart_sent_just_before_the_head_died_runs_once() {
    let _turn = turn();
    // A node timeout long enough for the stopped workers to outlast the head's restart.
    let mut c = Cluster::with_head_args("restart-head-dies", 1, &["--node-timeout-ms", "20000"]);
    let workers = ["w1", "w2", "w3"];
    for w in workers {
        c.named_worker(w, 1, "a");
    }
    c.wait_alive(4);
    let port = c.head.rsplit(':').next().expect("host:port").to_string();
    let mut driver = c.start_driver("one_instance_across_a_head_restart", 1);
    driver.reached("placed");
    let first = tally_constructions(&c.tmp)
        .into_iter()
        .next()
        .expect("the actor was constructed");
    let others: Vec<&str> = workers.into_iter().filter(|w| *w != first).collect();
    // The nodes the restart can go to take nothing in for now; the actor's node leaves (a
    // clean leave: its death is recorded at once, and the restart placed on a stopped node).
    for o in &others {
        c.signal(o, "STOP");
    }
    c.signal(&first, "TERM");
    c.wait_for("DEAD", 1);
    c.kill("head");
    c.start_head(&port);
    for o in &others {
        c.signal(o, "CONT");
    }
    // The head, the two workers and the driver are back in the restarted head's table.
    c.wait_alive(4);
    driver.go("placed");
    driver.finish(Duration::from_secs(180));
}

#[test]
fn a_partitioned_node_is_fenced_when_the_partition_heals() {
    let _turn = turn();
    // Head, two workers and the driver each on a host of their own (network namespaces); w1's
    // link is taken down past the node timeout, then up again.
    a_node_taken_away_is_fenced(two_workers(head("partition", Some(4))), |c, away| {
        c.partition("w1", away)
    });
}
