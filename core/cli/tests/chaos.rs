//! The chaos scenarios: a head from `raya start --head`, three worker nodes and a driver, each
//! on a host of its own (a network namespace with its own address on one bridge, mDNS off).
//! While the driver's tasks (chains of dependent tasks) and ten stateful actors
//! (`max_restarts = -1`, `max_task_retries = -1`) run across the workers, one thing goes wrong:
//!
//! 1. a worker is killed with `kill -9`;
//! 2. a worker's link is taken down past the node timeout, then up again: it is declared dead,
//!    its work moves, and it rejoins as a new node;
//! 3. the head is killed with `kill -9` and restarted on its session directory.
//!
//! Every task result must be right, every actor's counter must go on from its restart (each
//! call counted once by the instance that answered it, the last instance's count matching its
//! answers), and no call may be lost. (A driver killed while its actors live is in
//! `fault_tolerance.rs`.)
//!
//! CI runs them reduced (`TEST_CHAOS_TASKS`, default 1,000 tasks); the full size is
//!
//! ```sh
//! TEST_CHAOS_TASKS=10000 cargo test -p raya-cli --release --test chaos -- --nocapture --test-threads 1
//! ```
//!
//! which prints the figures of each (tasks, actors, time from the fault until every actor
//! answered again and until every result was back). Needs root (`ip netns`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use raya::SchedulingStrategy;
use raya::prelude::*;
use support::{Cluster, env_usize, signal};

// ---------------------------------------------------------------------------------------------
// The user's code.

#[raya::remote]
fn node_id() -> String {
    raya::runtime_context().unwrap().node_id.to_string()
}

/// The first task of a link: `i²`, after `ms` of work.
#[raya::remote]
fn leaf(i: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    i * i
}

/// A link of a chain: depends on the leaf before and on the link before.
#[raya::remote]
fn link(leaf: u64, before: u64) -> u64 {
    before.wrapping_mul(31).wrapping_add(leaf)
}

/// A counter that tells its instances apart: each construction draws its own `nonce`.
#[raya::actor]
struct Tally {
    nonce: u64,
    n: u64,
}

#[raya::actor]
impl Tally {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Tally {
            nonce: nanos ^ u64::from(std::process::id()).rotate_left(40),
            n: 0,
        }
    }
    /// Counts one call: the instance and the count after it.
    fn add(&mut self) -> (u64, u64) {
        self.n += 1;
        (self.nonce, self.n)
    }
    fn total(&self) -> (u64, u64) {
        (self.nonce, self.n)
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario, run by the driver.

/// Chains the links are dealt to, in turn.
const CHAINS: u64 = 10;

/// What the `n` links must come to, computed here.
fn expected_links(n: u64) -> Vec<u64> {
    let mut before = [0u64; CHAINS as usize];
    (0..n)
        .map(|i| {
            let b = &mut before[(i % CHAINS) as usize];
            *b = b.wrapping_mul(31).wrapping_add(i * i);
            *b
        })
        .collect()
}

/// Checks one actor's answers: `answers` of every call made to it (none lost), and `last`, the
/// instance and count it ends with. Each instance counted its calls once each; the last one
/// answered exactly its count, 1..=n, so nothing ran twice there.
fn check_actor(i: usize, answers: &[(u64, u64)], last: (u64, u64)) -> usize {
    let mut by_instance: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (nonce, n) in answers {
        assert!(
            by_instance.entry(*nonce).or_default().insert(*n),
            "actor {i}: instance {nonce} answered {n} twice"
        );
    }
    let (nonce, total) = last;
    let final_answers = by_instance.get(&nonce).cloned().unwrap_or_default();
    let counted: BTreeSet<u64> = (1..=total).collect();
    assert_eq!(
        final_answers, counted,
        "actor {i}: the last instance's answers do not match its count {total}"
    );
    by_instance.len()
}

/// The job, with `fault` (named `what`) done once a tenth of the chain is made; `loses_w1`:
/// the actors on `w1` must restart elsewhere.
fn chaos_job(what: &str, fault: impl FnOnce(), loses_w1: bool) {
    let tasks = env_usize("TEST_CHAOS_TASKS", 1000) as u64;
    let actors = env_usize("TEST_CHAOS_ACTORS", 10);
    let calls = env_usize("TEST_CHAOS_CALLS", 20);
    let workers: Vec<String> = (1..=3)
        .map(|w| raya::get(&node_id::options().resource(format!("w{w}"), 1.0).remote()).unwrap())
        .collect();
    let tallies: Vec<ActorHandle<Tally>> = (0..actors)
        .map(|i| {
            Tally::options()
                .max_restarts(-1)
                .max_task_retries(-1)
                .resource("a", 0.05)
                .scheduling_strategy(SchedulingStrategy::NodeAffinity {
                    node: workers[i % 3].parse().unwrap(),
                    soft: true,
                })
                .remote()
                .unwrap()
        })
        .collect();
    let mut answers: Vec<Vec<ObjectRef<(u64, u64)>>> = tallies
        .iter()
        .map(|t| (0..calls).map(|_| t.add()).collect())
        .collect();
    raya::get_all(&answers.iter().flatten().cloned().collect::<Vec<_>>()).unwrap();
    // The chains: half the tasks leaves, half links depending on a leaf and on the link
    // before in their chain.
    let links = tasks / 2;
    let mut chain: Vec<ObjectRef<u64>> = Vec::with_capacity(links as usize);
    for i in 0..links {
        let l = leaf::options().resource("x", 0.001).remote(i, 5);
        let next = match i.checked_sub(CHAINS) {
            Some(b) => link::options()
                .resource("x", 0.001)
                .remote(l, chain[b as usize].clone()),
            None => link::options().resource("x", 0.001).remote(l, 0u64),
        };
        chain.push(next);
    }
    // Calls in flight when the node dies.
    for (t, a) in tallies.iter().zip(answers.iter_mut()) {
        a.extend((0..calls).map(|_| t.add()));
    }
    // The fault, once a tenth of the chain is made.
    let tenth = (links / 10).max(1) as usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match raya::wait(&chain, tenth, Some(Duration::from_millis(200))) {
            Ok((ready, _)) if ready.len() >= tenth => break,
            _ => assert!(Instant::now() < deadline, "the chain never got going"),
        }
    }
    let killed = Instant::now();
    fault();
    // Calls made while the fault lasts (the actors on w1 away, the head down).
    for (t, a) in tallies.iter().zip(answers.iter_mut()) {
        a.extend((0..calls).map(|_| t.add()));
    }
    let mut restarted = 0;
    for (i, (t, a)) in tallies.iter().zip(&answers).enumerate() {
        let got: Vec<(u64, u64)> = a
            .iter()
            .map(|r| {
                raya::get_timeout(r, Duration::from_secs(300)).expect("an actor call was lost")
            })
            .collect();
        let last = raya::get_timeout(&t.total(), Duration::from_secs(60)).unwrap();
        if check_actor(i, &got, last) > 1 {
            restarted += 1;
        }
    }
    let actors_back = killed.elapsed();
    let got = raya::get_all_timeout(&chain, Duration::from_secs(600)).expect("a task was lost");
    assert!(got == expected_links(links), "a chain came out wrong");
    let tasks_back = killed.elapsed();
    assert!(!loses_w1 || restarted > 0, "no actor lived on w1");
    let dir = std::path::PathBuf::from(std::env::var("TEST_STEPS").expect("TEST_STEPS"));
    let summary = format!(
        "{} tasks ({links} links in {CHAINS} chains on {links} leaves), {actors} actors ({restarted} \
         restarted from w1), {} calls: {} once a tenth of the chain was made; every actor \
         answered {actors_back:?} and every result was back {tasks_back:?} after that\n",
        2 * links,
        actors * calls * 3,
        what,
    );
    std::fs::write(dir.join("chaos.txt"), summary).unwrap();
}

fn run_scenario(name: &str) {
    match name {
        // `TEST_CHAOS_KILL=0` runs the same job with nobody killed, for the figures to compare.
        "kill_a_worker_mid_job" if env_usize("TEST_CHAOS_KILL", 1) == 0 => {
            chaos_job("nothing killed", || {}, false)
        }
        "kill_a_worker_mid_job" => chaos_job("w1 killed", || signal("w1", "KILL"), true),
        // The test cuts w1 off, lets the job go on, and heals the link once w1 is declared dead.
        "cut_a_worker_off_mid_job" => chaos_job(
            "w1 cut off past the node timeout",
            || support::step("fault"),
            true,
        ),
        // The test kills the head and starts it again on its directory, then lets the job go on.
        "restart_the_head_mid_job" => chaos_job(
            "the head killed and restarted",
            || support::step("fault"),
            false,
        ),
        other => panic!("no scenario {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points of the processes the test starts (ignored when the suite runs them directly).

support::entry_points!(run_scenario);

// ---------------------------------------------------------------------------------------------
// The test.

/// The tests of this file take turns: each runs five processes whose deaths are detected
/// within a few seconds, and two clusters at once on a small machine would delay heartbeats past
/// that.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Head, three workers and the driver, each on a host of its own; the workers counted alive.
fn chaos_cluster(name: &str) -> Cluster {
    let mut c = Cluster::in_netns(name, 1, &["--node-timeout-ms", "3000"], 5);
    for w in 1..=3 {
        c.named_worker(&format!("w{w}"), 2, &format!("x,a,w{w}"));
    }
    c.wait_alive(4);
    c
}

fn print_figures(c: &Cluster) {
    eprint!(
        "{}",
        std::fs::read_to_string(c.tmp.join("chaos.txt")).unwrap()
    );
}

#[test]
fn a_worker_killed_mid_job_loses_no_task_and_no_actor_call() {
    let _turn = turn();
    let mut c = chaos_cluster("chaos");
    c.drive("kill_a_worker_mid_job", 1, Duration::from_secs(900));
    print_figures(&c);
}

#[test]
fn a_worker_cut_off_mid_job_is_fenced_and_loses_no_task_and_no_actor_call() {
    let _turn = turn();
    let mut c = chaos_cluster("chaos-cut");
    let mut driver = c.start_driver("cut_a_worker_off_mid_job", 1);
    driver.reached("fault");
    c.partition("w1", true);
    driver.go("fault");
    c.wait_for("DEAD", 1);
    c.partition("w1", false);
    driver.finish(Duration::from_secs(900));
    // The head, w2, w3 and the new w1 are alive (the driver left).
    c.assert_rejoined("w1", 4);
    print_figures(&c);
}

#[test]
fn the_head_killed_and_restarted_mid_job_loses_no_task_and_no_actor_call() {
    let _turn = turn();
    let mut c = chaos_cluster("chaos-head");
    let mut driver = c.start_driver("restart_the_head_mid_job", 1);
    driver.reached("fault");
    c.restart_head();
    driver.go("fault");
    driver.finish(Duration::from_secs(900));
    // Every worker is back in the restarted head's table.
    c.wait_alive(4);
    print_figures(&c);
}
