//! Clusters in the shapes users run, each node its own process on loopback with mDNS off: a head
//! started by `raya start --head`, worker nodes and drivers that are this test binary started
//! again (so they link the functions and actors below), and the test process itself no node at
//! all. A driver runs one scenario and exits 0 when every check in it held; every process is
//! killed when the test ends, pass or fail.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use raya::prelude::*;
use support::{Cluster, env_u64, signal, step};

// ---------------------------------------------------------------------------------------------
// The user's code: what worker nodes and drivers link.

#[raya::remote]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[raya::remote]
fn node_id() -> String {
    raya::runtime_context().unwrap().node_id.to_string()
}

#[raya::remote]
fn make_bytes(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[raya::remote]
fn checksum(data: Vec<u8>) -> (u64, String) {
    (
        sum(&data),
        raya::runtime_context().unwrap().node_id.to_string(),
    )
}

fn sum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(*b)))
}

/// How often the store of the node this runs on has read a spill file.
#[raya::remote]
fn spill_reads_here() -> u64 {
    raya::object_store_stats().unwrap().total_spill_reads
}

/// Objects in the store of the node this runs on, but for this task's own result.
#[raya::remote]
fn objects_here() -> u64 {
    raya::object_store_stats().unwrap().num_objects - 1
}

/// Sleeps, then makes `len` bytes: a result too large to travel with its announcement.
#[raya::remote]
fn slow_bytes(ms: u64, len: u64) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(ms));
    vec![7; len as usize]
}

/// Adds `mark` to `tally` (so the caller sees it started) and, once that call answered (the
/// task no longer blocked in `get`), `mark + 1`; then sleeps `ms`.
#[raya::remote]
fn mark_then_sleep(tally: ActorHandle<Tally>, mark: u64, ms: u64) -> u64 {
    raya::get(&tally.add(mark)).unwrap();
    let past_get = tally.add(mark + 1);
    std::thread::sleep(Duration::from_millis(ms));
    drop(past_get);
    ms
}

/// Adds `x` to `tally` (the side effect a cancelled task must not have).
#[raya::remote]
fn add_to(tally: ActorHandle<Tally>, x: u64) -> usize {
    raya::get(&tally.add(x)).unwrap()
}

#[raya::actor]
struct Tally {
    items: Vec<u64>,
}

#[raya::actor]
impl Tally {
    fn new() -> Self {
        Tally { items: Vec::new() }
    }
    fn add(&mut self, x: u64) -> usize {
        self.items.push(x);
        self.items.len()
    }
    fn items(&self) -> Vec<u64> {
        self.items.clone()
    }
    fn node(&self) -> String {
        raya::runtime_context().unwrap().node_id.to_string()
    }
    fn pause(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}

/// Submits `n` tasks (on this node) and returns the references to their results, which this
/// node owns: the wordcount pattern.
#[raya::remote]
fn fan_out(n: u64) -> Vec<ObjectRef<Vec<u8>>> {
    (0..n)
        .map(|i| {
            make_bytes::options()
                .resource("a", 0.001)
                .remote(1000 + i, i as u8)
        })
        .collect()
}

/// Reads every object the references point at, wherever this task runs.
#[raya::remote]
fn sum_all(refs: Vec<ObjectRef<Vec<u8>>>) -> u64 {
    refs.iter()
        .map(|r| sum(&raya::get(r).unwrap()))
        .fold(0, u64::wrapping_add)
}

#[raya::actor]
impl Summer {
    fn new() -> Self {
        Summer
    }
    fn sum_all(&self, refs: Vec<ObjectRef<Vec<u8>>>) -> u64 {
        refs.iter()
            .map(|r| sum(&raya::get(r).unwrap()))
            .fold(0, u64::wrapping_add)
    }
}

#[raya::actor]
struct Summer;

/// Calls `tally` from wherever this task runs; returns the call's result and this node.
#[raya::remote]
fn add_from_task(tally: ActorHandle<Tally>, x: u64) -> (usize, String) {
    let n = raya::get(&tally.add(x)).unwrap();
    (n, raya::runtime_context().unwrap().node_id.to_string())
}

// ---------------------------------------------------------------------------------------------
// Scenarios, run by a driver process.

/// 200 tasks of 5 ms from a driver with one CPU: most go to the cluster (some to the head's
/// global scheduler, which may place them back on the driver), and every one finishes.
fn many_short_tasks() {
    let refs: Vec<ObjectRef<u64>> = (0..200).map(|_| sleep_ms::remote(5)).collect();
    for (i, r) in refs.iter().enumerate() {
        match raya::get_timeout(r, Duration::from_secs(60)) {
            Ok(v) => assert_eq!(v, 5),
            Err(e) => panic!("task {i} of 200 did not finish: {e}"),
        }
    }
}

/// The node a task asking for one unit of `resource` runs on.
fn node_with(resource: &str) -> String {
    raya::get_timeout(
        &node_id::options().resource(resource, 1.0).remote(),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// Waits until the store of the node with `resource` holds no object but the probe's own
/// result, and this driver's holds none: every reference the scenario made was dropped, and
/// every copy freed.
fn no_objects_left(resources: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let here = raya::object_store_stats().unwrap().num_objects;
        let there: Vec<u64> = resources
            .iter()
            .map(|r| {
                let probe = objects_here::options().resource(*r, 1.0).remote();
                raya::get_timeout(&probe, Duration::from_secs(30)).unwrap()
            })
            .collect();
        if here == 0 && there.iter().all(|n| *n == 0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "objects left: {here} on the driver, {there:?} on the nodes with {resources:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An object made on the node with `b` is the argument of a task on the node with `a`, and
/// this driver reads the result and the object: every node pulls from the one that has it.
fn argument_made_on_one_worker_used_on_another() {
    let (a, b) = (node_with("a"), node_with("b"));
    assert_ne!(a, b);
    let len = 4u64 << 20;
    let x = make_bytes::options().resource("b", 1.0).remote(len, 7);
    let r = checksum::options().resource("a", 1.0).remote(&x);
    let (sum_there, ran_on) = raya::get_timeout(&r, Duration::from_secs(60)).unwrap();
    assert_eq!(ran_on, a);
    let data = raya::get_timeout(&x, Duration::from_secs(60)).unwrap();
    assert_eq!(data.len() as u64, len);
    assert_eq!(sum_there, sum(&data));
    drop((x, r, data));
    no_objects_left(&["a", "b"]);
}

/// An actor on the node with `a` is called from a task on the node with `b` (the handle
/// travels there), and from this driver.
fn actor_called_from_a_task_on_another_worker() {
    let (a, b) = (node_with("a"), node_with("b"));
    // The actor holds the node's one unit of `a` while it lives.
    let tally = Tally::options().resource("a", 1.0).remote().unwrap();
    let on = raya::get_timeout(&tally.node(), Duration::from_secs(60)).unwrap();
    assert_eq!(on, a);
    assert_eq!(raya::get(&tally.add(1)).unwrap(), 1);
    let (n, ran_on) = raya::get_timeout(
        &add_from_task::options()
            .resource("b", 1.0)
            .remote(tally.clone(), 2),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((n, ran_on), (2, b));
    assert_eq!(raya::get(&tally.add(3)).unwrap(), 3);
    assert_eq!(raya::get(&tally.items()).unwrap(), vec![1, 2, 3]);
    drop(tally);
    no_objects_left(&["a", "b"]);
}

/// A task on the node with `a` returns references to objects it made there; the driver reads
/// them after that task's own result is gone, and so does a task on the node with `b`.
fn nested_refs_in_a_result() {
    let outer = fan_out::options().resource("a", 0.5).remote(20);
    let inner = raya::get_timeout(&outer, Duration::from_secs(60)).unwrap();
    drop(outer);
    let expected: Vec<u64> = (0..20u64)
        .map(|i| {
            let data: Vec<u8> = (0..1000 + i)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            sum(&data)
        })
        .collect();
    for (i, r) in inner.iter().enumerate() {
        let data = raya::get_timeout(r, Duration::from_secs(60)).unwrap();
        assert_eq!(sum(&data), expected[i], "object {i}");
    }
    let there = sum_all::options().resource("b", 1.0).remote(inner.clone());
    let total = raya::get_timeout(&there, Duration::from_secs(60)).unwrap();
    assert_eq!(total, expected.iter().copied().fold(0, u64::wrapping_add));
    drop((inner, there));
    no_objects_left(&["a", "b"]);
}

/// References inside a by-value argument, and inside an actor call's argument, keep their
/// objects alive while the task or call travels, though the driver dropped its own at once.
fn nested_refs_in_arguments() {
    let expect = |len: u64, seed: u8| {
        let data: Vec<u8> = (0..len)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        sum(&data)
    };
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..10u64)
        .map(|i| {
            make_bytes::options()
                .resource("a", 0.5)
                .remote(5000 + i, i as u8)
        })
        .collect();
    raya::wait(&refs, refs.len(), Some(Duration::from_secs(60))).unwrap();
    let total: u64 = (0..10u64)
        .map(|i| expect(5000 + i, i as u8))
        .fold(0, u64::wrapping_add);
    // The only references left travel inside the argument.
    let task = sum_all::options().resource("b", 1.0).remote(refs.clone());
    let summer = Summer::options().resource("b", 0.0).remote().unwrap();
    let call = summer.sum_all(refs);
    assert_eq!(
        raya::get_timeout(&task, Duration::from_secs(60)).unwrap(),
        total
    );
    assert_eq!(
        raya::get_timeout(&call, Duration::from_secs(60)).unwrap(),
        total
    );
    drop((task, call, summer));
    no_objects_left(&["a", "b"]);
}

/// Tasks the head places on a node that was just killed (still alive in the head's view) are
/// placed again on a live node, not reported infeasible.
fn placement_on_a_node_that_just_died() {
    signal("x1", "KILL");
    let refs: Vec<ObjectRef<String>> = (0..10)
        .map(|_| node_id::options().resource("x", 1.0).remote())
        .collect();
    let mut on = std::collections::HashSet::new();
    for (i, r) in refs.iter().enumerate() {
        match raya::get_timeout(r, Duration::from_secs(90)) {
            Ok(n) => {
                on.insert(n);
            }
            Err(e) => panic!("task {i} failed: {e}"),
        }
    }
    assert_eq!(on.len(), 1, "every task ran on the one live node: {on:?}");
    drop(refs);
    no_objects_left(&["x"]);
}

/// A task for the head's global scheduler, submitted while the head is stopped, fails within
/// the driver's delivery bound with an error saying so; it does not wait forever.
fn scheduling_through_a_stopped_head_fails() {
    signal("head", "STOP");
    let r = node_id::options().resource("x", 1.0).remote();
    let got = raya::get_timeout(&r, Duration::from_secs(60));
    signal("head", "CONT");
    match got {
        Err(e) if !e.is_timeout() => {
            let text = e.to_string();
            assert!(text.contains("global scheduler"), "unclear error: {text}");
        }
        other => panic!("expected a delivery error, got {other:?}"),
    }
    drop(r);
    no_objects_left(&["x"]);
}

/// A `get_timeout` that gives up, then a `get` after the result was announced: the second
/// still fetches the value from the node that made it.
fn get_after_a_timed_out_get_fetches() {
    let len = 1u64 << 20;
    let big = slow_bytes::options().resource("a", 1.0).remote(500, len);
    assert!(
        raya::get_timeout(&big, Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    // A later task on the same one-CPU node: once its result is here, so is the announcement
    // of `big` (sent before it, on the same ordered link).
    node_with("a");
    let data = raya::get_timeout(&big, Duration::from_secs(30)).expect("the value is fetched");
    assert_eq!(data.len() as u64, len);
    drop(big);
    no_objects_left(&["a"]);
}

/// An object whose maker stops answering (a stalled node, not declared dead) fails after the
/// driver's object lease with an error naming the node.
fn an_unreachable_maker_fails_its_objects_after_the_lease() {
    let a = node_with("a");
    let tally = Tally::options().resource("b", 1.0).remote().unwrap();
    let r = mark_then_sleep::options()
        .resource("a", 1.0)
        .remote(tally.clone(), 0, 8_000);
    wait_for_mark(&tally, 1);
    signal("a", "STOP");
    let got = raya::get_timeout(&r, Duration::from_secs(60));
    signal("a", "CONT");
    match got {
        Err(e) if !e.is_timeout() => {
            let text = e.to_string();
            assert!(
                text.contains(&a),
                "the error does not name node {a}: {text}"
            );
        }
        other => panic!("expected a lease error, got {other:?}"),
    }
    // The node answers again: what it made for this driver is freed with the driver's
    // references.
    drop((r, tally));
    no_objects_left(&["a", "b"]);
}

/// Waits until `tally` holds `mark` (a task elsewhere reached its first line).
fn wait_for_mark(tally: &ActorHandle<Tally>, mark: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !raya::get(&tally.items()).unwrap().contains(&mark) {
        assert!(Instant::now() < deadline, "mark {mark} never came");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cancelling a task that runs on another node, and one queued there: their results report
/// cancellation at once, a task depending on one fails as cancelled, and the queued one never
/// runs.
fn cancel_tasks_on_another_node() {
    let tally = Tally::options().resource("b", 1.0).remote().unwrap();
    let running = mark_then_sleep::options()
        .resource("a", 1.0)
        .remote(tally.clone(), 0, 10_000);
    let dependent = sleep_ms::remote(&running);
    // Running, and past its `get` (during which it lent the node's `a` to other tasks).
    wait_for_mark(&tally, 1);
    let queued = add_to::options()
        .resource("a", 1.0)
        .remote(tally.clone(), 99);
    raya::cancel(&running, false).unwrap();
    raya::cancel(&queued, false).unwrap();
    for (what, r) in [("running", &running), ("dependent", &dependent)] {
        match raya::get_timeout(r, Duration::from_secs(5)) {
            Err(e) if e.is_cancelled() => {}
            other => panic!("the {what} task: expected cancellation, got {other:?}"),
        }
    }
    match raya::get_timeout(&queued, Duration::from_secs(5)) {
        Err(e) if e.is_cancelled() => {}
        other => panic!("the queued task: expected cancellation, got {other:?}"),
    }
    // A task behind both on the node's one unit of `a`: when it has run, the queued one would
    // have run before it.
    node_with("a");
    assert_eq!(raya::get(&tally.items()).unwrap(), vec![0, 1]);
    drop((tally, running, queued, dependent));
    no_objects_left(&["a", "b"]);
}

/// Cancelling calls to an actor on another node: a queued call never runs and reports
/// cancellation at once; a running one reports cancellation at once too.
fn cancel_calls_to_an_actor_on_another_node() {
    let tally = Tally::options().resource("a", 1.0).remote().unwrap();
    let running = tally.pause(5_000);
    let queued = tally.add(5);
    raya::cancel(&queued, false).unwrap();
    raya::cancel(&running, false).unwrap();
    for (what, r) in [("queued", &queued)] {
        match raya::get_timeout(r, Duration::from_secs(3)) {
            Err(e) if e.is_cancelled() => {}
            other => panic!("the {what} call: expected cancellation, got {other:?}"),
        }
    }
    match raya::get_timeout(&running, Duration::from_secs(3)) {
        Err(e) if e.is_cancelled() => {}
        other => panic!("the running call: expected cancellation, got {other:?}"),
    }
    assert_eq!(raya::get(&tally.items()).unwrap(), Vec::<u64>::new());
    drop((tally, running, queued));
    no_objects_left(&["a"]);
}

/// Calls to an actor whose node stalls longer than the delivery bound fail (they may or may
/// not have run), and once the node answers again the caller's next calls reach the actor: one
/// failed batch does not make a live actor dead.
fn an_actor_call_batch_that_fails_does_not_kill_the_actor() {
    let tally = Tally::options().resource("a", 1.0).remote().unwrap();
    assert_eq!(raya::get(&tally.add(1)).unwrap(), 1);
    signal("a", "STOP");
    let during = tally.add(2);
    let got = raya::get_timeout(&during, Duration::from_secs(60));
    signal("a", "CONT");
    match got {
        Err(e) if !e.is_timeout() => {}
        other => panic!("expected a delivery error, got {other:?}"),
    }
    let after = raya::get_timeout(&tally.add(3), Duration::from_secs(60))
        .expect("the actor is reached again");
    assert!(after >= 2, "{after}");
    let items = raya::get(&tally.items()).unwrap();
    assert_eq!(items.first(), Some(&1));
    assert_eq!(items.last(), Some(&3));
    drop((tally, during));
    no_objects_left(&["a"]);
}

/// A result too large for its node's memory is spilled as it is stored; announcing it to its
/// owner reads nothing from disk (only serving the owner's pull does).
fn a_spilled_result_is_announced_without_reading_it() {
    let len = 4u64 << 20;
    let r = make_bytes::options().resource("a", 1.0).remote(len, 3);
    let data = raya::get_timeout(&r, Duration::from_secs(60)).unwrap();
    assert_eq!(data.len() as u64, len);
    let reads = raya::get_timeout(
        &spill_reads_here::options().resource("a", 1.0).remote(),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(
        reads, 1,
        "the pull reads the spilled result once, and nothing else does"
    );
    drop((r, data));
    no_objects_left(&["a"]);
}

/// Work reaches a worker node before and after the head is killed and started again, from the
/// same driver: the driver and the worker reach the new head without being told.
fn the_head_restarts() {
    let before = node_with("a");
    step("head-restarted");
    let after = raya::get_timeout(
        &node_id::options().resource("a", 1.0).remote(),
        Duration::from_secs(90),
    )
    .expect("work goes through the restarted head");
    assert_eq!(before, after);
    let x = raya::put(vec![1u8; 1 << 20]).unwrap();
    let r = checksum::options().resource("a", 1.0).remote(&x);
    let (total, _) = raya::get_timeout(&r, Duration::from_secs(60)).unwrap();
    assert_eq!(total, sum(&vec![1u8; 1 << 20]));
    drop((x, r));
    no_objects_left(&["a"]);
}

/// A worker node killed and replaced by one on another port: work for it goes to the new one.
fn a_node_restarts_on_a_new_port() {
    let before = node_with("a");
    step("node-replaced");
    let after = raya::get_timeout(
        &node_id::options().resource("a", 1.0).remote(),
        Duration::from_secs(90),
    )
    .expect("work reaches the new node");
    assert_ne!(before, after);
    let x = raya::put(vec![2u8; 1 << 20]).unwrap();
    let r = checksum::options().resource("a", 1.0).remote(&x);
    let (total, ran_on) = raya::get_timeout(&r, Duration::from_secs(60)).unwrap();
    assert_eq!((total, ran_on), (sum(&vec![2u8; 1 << 20]), after));
    drop((x, r));
    no_objects_left(&["a"]);
}

/// Makes `n` objects of `len` bytes here and returns references to them (owned here).
#[raya::remote]
fn make_many(n: u64, len: u64) -> Vec<ObjectRef<Vec<u8>>> {
    (0..n)
        .map(|i| raya::put(vec![i as u8; len as usize]).unwrap())
        .collect()
}

/// More pulls from one node at once than it serves at once (64): the rest wait their turn and
/// every one completes.
fn many_concurrent_pulls_from_one_node() {
    let (n, len) = (150u64, 200u64 << 10);
    let refs = raya::get_timeout(
        &make_many::options().resource("a", 1.0).remote(n, len),
        Duration::from_secs(60),
    )
    .unwrap();
    let all = raya::get_all_timeout(&refs, Duration::from_secs(120)).expect("every pull completes");
    for (i, v) in all.iter().enumerate() {
        assert_eq!((v.len() as u64, v[0]), (len, i as u8), "object {i}");
    }
    drop((refs, all));
    no_objects_left(&["a"]);
}

/// The soak workload (see `soak_test` below): mixed work on a head and two workers until
/// `TEST_SOAK_SECS` pass, every result checked; then the leak check. Writes its figures to
/// `soak-summary.txt` in the test's directory.
fn soak() {
    let secs = env_u64("TEST_SOAK_SECS").unwrap_or(20);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let long = Duration::from_secs(120);
    let sizes = [1u64 << 10, 64 << 10, 1 << 20, 8 << 20, 64 << 20];
    let tally = Tally::options().resource("a", 0.5).remote().unwrap();
    let (mut rounds, mut tasks, mut calls, mut bytes, mut cancels, mut waits) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut added = 0usize;
    while Instant::now() < deadline {
        // Nested references: a task on `a` returns references to objects it made there; the
        // driver and a task on `b` read them.
        let outer = fan_out::options().resource("a", 0.5).remote(8);
        let inner = raya::get_timeout(&outer, long).unwrap();
        drop(outer);
        let expected: u64 = (0..8u64)
            .map(|i| {
                let data: Vec<u8> = (0..1000 + i)
                    .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                    .collect();
                sum(&data)
            })
            .fold(0, u64::wrapping_add);
        let there = sum_all::options().resource("b", 0.5).remote(inner.clone());
        assert_eq!(raya::get_timeout(&there, long).unwrap(), expected);
        let here: u64 = raya::get_all_timeout(&inner, long)
            .unwrap()
            .iter()
            .map(|d| sum(d))
            .fold(0, u64::wrapping_add);
        assert_eq!(here, expected);
        tasks += 10;
        // An actor on `a` called from a task on `b`.
        let (n, _) = raya::get_timeout(
            &add_from_task::options()
                .resource("b", 0.5)
                .remote(tally.clone(), rounds),
            long,
        )
        .unwrap();
        added += 1;
        assert_eq!(n, added);
        calls += 1;
        tasks += 1;
        // An object made on `b`, read by a task on `a` and by the driver.
        let len = sizes[(rounds as usize) % sizes.len()];
        let seed = rounds as u8;
        let x = make_bytes::options().resource("b", 0.5).remote(len, seed);
        let r = checksum::options().resource("a", 0.5).remote(&x);
        let (sum_there, _) = raya::get_timeout(&r, long).unwrap();
        let data = raya::get_timeout(&x, long).unwrap();
        assert_eq!((data.len() as u64, sum(&data)), (len, sum_there));
        bytes += 2 * len;
        tasks += 2;
        drop((x, r, data));
        // `wait` with a timeout, then the results.
        let slow: Vec<ObjectRef<u64>> = (0..4)
            .map(|i| {
                sleep_ms::options()
                    .resource(if i % 2 == 0 { "a" } else { "b" }, 0.25)
                    .remote(20)
            })
            .collect();
        let (ready, _) = raya::wait(&slow, 4, Some(Duration::from_millis(5))).unwrap();
        assert!(ready.len() <= 4);
        assert_eq!(raya::get_all_timeout(&slow, long).unwrap(), vec![20; 4]);
        waits += 1;
        tasks += 4;
        // A cancelled task on another node.
        let doomed = sleep_ms::options()
            .resource(if rounds % 2 == 0 { "a" } else { "b" }, 0.25)
            .remote(200);
        raya::cancel(&doomed, false).unwrap();
        match raya::get_timeout(&doomed, long) {
            Err(e) if e.is_cancelled() => {}
            other => panic!("round {rounds}: a cancelled task gave {other:?}"),
        }
        cancels += 1;
        tasks += 1;
        rounds += 1;
    }
    assert_eq!(raya::get(&tally.items()).unwrap().len(), added);
    drop(tally);
    let elapsed = start.elapsed();
    no_objects_left(&["a", "b"]);
    let summary = format!(
        "soak: {rounds} rounds in {:.1} s: {tasks} tasks, {calls} actor calls from other nodes, \
         {:.1} MiB read across nodes, {waits} waits with timeouts, {cancels} cancels; every \
         result checked, no objects left on any node\n",
        elapsed.as_secs_f64(),
        bytes as f64 / (1u64 << 20) as f64,
    );
    let dir = PathBuf::from(std::env::var("TEST_STEPS").expect("TEST_STEPS"));
    std::fs::write(dir.join("soak-summary.txt"), summary).unwrap();
}

fn run_scenario(name: &str) {
    match name {
        "many_short_tasks" => many_short_tasks(),
        "argument_made_on_one_worker_used_on_another" => {
            argument_made_on_one_worker_used_on_another()
        }
        "actor_called_from_a_task_on_another_worker" => {
            actor_called_from_a_task_on_another_worker()
        }
        "nested_refs_in_a_result" => nested_refs_in_a_result(),
        "nested_refs_in_arguments" => nested_refs_in_arguments(),
        "placement_on_a_node_that_just_died" => placement_on_a_node_that_just_died(),
        "scheduling_through_a_stopped_head_fails" => scheduling_through_a_stopped_head_fails(),
        "get_after_a_timed_out_get_fetches" => get_after_a_timed_out_get_fetches(),
        "the_head_restarts" => the_head_restarts(),
        "soak" => soak(),
        "many_concurrent_pulls_from_one_node" => many_concurrent_pulls_from_one_node(),
        "a_node_restarts_on_a_new_port" => a_node_restarts_on_a_new_port(),
        "a_spilled_result_is_announced_without_reading_it" => {
            a_spilled_result_is_announced_without_reading_it()
        }
        "an_unreachable_maker_fails_its_objects_after_the_lease" => {
            an_unreachable_maker_fails_its_objects_after_the_lease()
        }
        "cancel_tasks_on_another_node" => cancel_tasks_on_another_node(),
        "cancel_calls_to_an_actor_on_another_node" => cancel_calls_to_an_actor_on_another_node(),
        "an_actor_call_batch_that_fails_does_not_kill_the_actor" => {
            an_actor_call_batch_that_fails_does_not_kill_the_actor()
        }
        "queued_actor_calls_outlive_the_lease" => queued_actor_calls_outlive_the_lease(),
        other => panic!("no scenario {other:?}"),
    }
}

/// Calls to an actor on another node that wait in its queue for longer than the object lease
/// still complete: the actor's node keeps their results from the moment it queued them, so
/// the driver's lease on it holds.
fn queued_actor_calls_outlive_the_lease() {
    let a = node_with("a");
    let tally = Tally::options().resource("a", 1.0).remote().unwrap();
    assert_eq!(
        raya::get_timeout(&tally.node(), Duration::from_secs(60)).unwrap(),
        a
    );
    // The first call goes out alone and runs for twice the 3 s lease; the next ones follow in
    // a batch of their own and wait in the actor's queue meanwhile.
    let mut calls = vec![tally.pause(6000)];
    calls.extend((0..3).map(|_| tally.pause(10)));
    let done = raya::get_all_timeout(&calls, Duration::from_secs(60)).unwrap();
    assert_eq!(done, vec![6000, 10, 10, 10]);
    drop((calls, tally));
    no_objects_left(&["a"]);
}

// ---------------------------------------------------------------------------------------------
// Entry points of the processes a test starts (ignored when the suite runs them directly).

support::entry_points!(run_scenario);

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_driver_that_is_not_the_head_gets_every_result_of_many_short_tasks() {
    let mut c = Cluster::with_head("many-short", 1);
    c.worker(2, None);
    c.wait_alive(2);
    c.drive("many_short_tasks", 1, Duration::from_secs(120));
}

/// Head, two workers and a driver, each its own process: nodes that have no link yet reach each
/// other through the addresses the GCS records.
fn two_workers(name: &str) -> Cluster {
    let mut c = Cluster::with_head(name, 1);
    c.worker(1, Some("a"));
    c.worker(1, Some("b"));
    c.wait_alive(3);
    c
}

#[test]
fn an_argument_made_on_one_worker_reaches_a_task_on_another_and_the_driver() {
    let mut c = two_workers("arg-a-b");
    c.drive(
        "argument_made_on_one_worker_used_on_another",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn an_actor_on_one_worker_is_called_from_a_task_on_another() {
    let mut c = two_workers("actor-a-b");
    c.drive(
        "actor_called_from_a_task_on_another_worker",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn references_inside_a_result_keep_their_objects_alive_across_nodes() {
    let mut c = two_workers("nested-result");
    c.drive("nested_refs_in_a_result", 1, Duration::from_secs(120));
}

#[test]
fn references_inside_arguments_keep_their_objects_alive_across_nodes() {
    let mut c = two_workers("nested-args");
    c.drive("nested_refs_in_arguments", 1, Duration::from_secs(120));
}

#[test]
fn a_task_placed_on_a_node_that_just_died_is_placed_again() {
    let mut c = Cluster::with_head("replace", 1);
    // The node killed has more free CPUs: the head's view prefers it until it is declared dead.
    c.named_worker("x1", 2, "x");
    c.named_worker("x2", 1, "x");
    c.wait_alive(3);
    c.drive(
        "placement_on_a_node_that_just_died",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn scheduling_through_a_stopped_head_fails_within_the_delivery_bound() {
    let mut c = Cluster::with_head("stopped-head", 1);
    c.named_worker("x1", 1, "x");
    c.wait_alive(2);
    c.setting("TEST_DELIVERY_MS", "1500");
    c.drive(
        "scheduling_through_a_stopped_head_fails",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn a_get_after_a_timed_out_get_still_fetches_the_value() {
    let mut c = Cluster::with_head("get-after-timeout", 1);
    c.worker(1, Some("a"));
    c.wait_alive(2);
    c.drive(
        "get_after_a_timed_out_get_fetches",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn an_object_whose_maker_stalls_fails_after_the_lease() {
    // The head does not declare the stalled node dead during the test.
    let mut c = Cluster::with_head_args("stalled-maker", 1, &["--node-timeout-ms", "120000"]);
    c.setting("TEST_DELIVERY_MS", "1500");
    c.setting("TEST_LEASE_MS", "3000");
    c.worker(1, Some("a"));
    c.worker(1, Some("b"));
    c.wait_alive(3);
    c.drive(
        "an_unreachable_maker_fails_its_objects_after_the_lease",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn actor_calls_queued_longer_than_the_lease_complete() {
    let mut c = Cluster::with_head("queued-calls", 1);
    c.setting("TEST_DELIVERY_MS", "1500");
    c.setting("TEST_LEASE_MS", "3000");
    c.worker(1, Some("a"));
    c.wait_alive(2);
    c.drive(
        "queued_actor_calls_outlive_the_lease",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn tasks_on_another_node_are_cancelled() {
    let mut c = two_workers("cancel-tasks");
    c.drive("cancel_tasks_on_another_node", 1, Duration::from_secs(120));
}

#[test]
fn calls_to_an_actor_on_another_node_are_cancelled() {
    let mut c = two_workers("cancel-calls");
    c.drive(
        "cancel_calls_to_an_actor_on_another_node",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn a_failed_batch_of_actor_calls_does_not_make_the_actor_dead() {
    let mut c = Cluster::with_head_args("stalled-actor", 1, &["--node-timeout-ms", "120000"]);
    c.setting("TEST_DELIVERY_MS", "1500");
    c.worker(1, Some("a"));
    c.wait_alive(2);
    c.drive(
        "an_actor_call_batch_that_fails_does_not_kill_the_actor",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn a_spilled_result_is_announced_from_its_metadata() {
    let mut c = Cluster::with_head("spilled-result", 1);
    c.setting("TEST_STORE_BYTES", &(1u64 << 20).to_string());
    c.worker(1, Some("a"));
    c.wait_alive(2);
    c.env.clear();
    c.drive(
        "a_spilled_result_is_announced_without_reading_it",
        1,
        Duration::from_secs(120),
    );
}

#[test]
fn a_restarted_head_is_reached_again_by_its_nodes_and_drivers() {
    let mut c = Cluster::with_head("head-restart", 1);
    c.worker(1, Some("a"));
    c.wait_alive(2);
    let mut d = c.start_driver("the_head_restarts", 1);
    d.reached("head-restarted");
    c.restart_head();
    c.wait_alive(3);
    d.go("head-restarted");
    d.finish(Duration::from_secs(180));
}

#[test]
fn a_node_restarted_on_a_new_port_is_reached() {
    let mut c = Cluster::with_head("node-restart", 1);
    c.worker(1, Some("a"));
    c.wait_alive(2);
    let mut d = c.start_driver("a_node_restarts_on_a_new_port", 1);
    d.reached("node-replaced");
    c.kill("a");
    c.worker(1, Some("a"));
    d.go("node-replaced");
    d.finish(Duration::from_secs(180));
}

#[test]
fn more_concurrent_pulls_than_a_node_serves_at_once_all_complete() {
    let mut c = Cluster::with_head("many-pulls", 1);
    c.worker(1, Some("a"));
    c.wait_alive(2);
    c.drive(
        "many_concurrent_pulls_from_one_node",
        1,
        Duration::from_secs(180),
    );
}

/// The soak test: a head and two worker nodes on loopback with mDNS off and a driver, each its
/// own process, run the mixed workload of `soak` for `RAYA_SOAK_SECS` seconds (20 in the test
/// suite; the long run is `RAYA_SOAK_SECS=600 cargo test -p raya-cli --test topology soak --
/// --nocapture`), then the leak check. Prints the workload's figures.
#[test]
fn soak_test() {
    let secs = std::env::var("RAYA_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20);
    let mut c = Cluster::with_head("soak", 1);
    c.worker(2, Some("a"));
    c.worker(2, Some("b"));
    c.wait_alive(3);
    c.setting("TEST_SOAK_SECS", &secs.to_string());
    c.drive("soak", 2, Duration::from_secs(secs + 300));
    let summary = std::fs::read_to_string(c.tmp.join("soak-summary.txt")).unwrap();
    eprint!("{summary}");
}
