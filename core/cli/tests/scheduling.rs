//! Scheduling strategies on real processes (loopback, mDNS off): a head from `raya start
//! --head`, worker nodes and a driver that is not the head. `Spread` tasks and actors go evenly
//! over the nodes that can run them (Ray's `test_spread_scheduling_strategy`: 8 actors on two
//! nodes land 4 and 4); a hard `NodeAffinity` to a node that died fails as unschedulable,
//! naming the node, and a soft one runs elsewhere (Ray's node-affinity tests).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use raya::prelude::*;
use raya::{SchedulingStrategy, TaskErrorKind};
use support::Cluster;

// ---------------------------------------------------------------------------------------------
// The user's code: what worker nodes and drivers link.

/// The name the harness gave the node this runs on.
fn here() -> String {
    std::env::var("TEST_NODE_NAME").unwrap_or_else(|_| "driver".into())
}

#[raya::remote]
fn node_name() -> String {
    here()
}

#[raya::remote]
fn node_id() -> String {
    raya::runtime_context().unwrap().node_id.to_string()
}

/// An actor that says where it lives.
#[raya::actor]
struct Resident;

#[raya::actor]
impl Resident {
    fn new() -> Self {
        Resident
    }
    fn node(&self) -> String {
        here()
    }
}

/// Where it ran, after `ms`: long enough that a burst of them runs at once.
#[raya::remote]
fn node_name_after(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    here()
}

fn counts(names: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for n in names {
        *c.entry(n).or_default() += 1;
    }
    c
}

/// Eight `Spread` actors and eight `Spread` tasks that only `w1` and `w2` can run land four on
/// each; a hard affinity to `w3` once it died fails as unschedulable, a soft one runs elsewhere.
fn spread_and_affinity() {
    let w3 = raya::get(&node_id::options().resource("only3", 1.0).remote()).unwrap();
    let actors: Vec<ActorHandle<Resident>> = (0..8)
        .map(|_| {
            Resident::options()
                .resource("w", 0.01)
                .scheduling_strategy(SchedulingStrategy::Spread)
                .remote()
                .unwrap()
        })
        .collect();
    let even = BTreeMap::from([("w1".to_string(), 4), ("w2".to_string(), 4)]);
    let homes = counts(actors.iter().map(|a| raya::get(&a.node()).unwrap()));
    assert_eq!(homes, even, "spread actors");
    let tasks: Vec<ObjectRef<String>> = (0..8)
        .map(|_| {
            node_name::options()
                .resource("w", 0.01)
                .scheduling_strategy(SchedulingStrategy::Spread)
                .remote()
        })
        .collect();
    let ran = counts(tasks.iter().map(|t| raya::get(t).unwrap()));
    assert_eq!(ran, even, "spread tasks");
    let on_w3 = |soft| SchedulingStrategy::NodeAffinity {
        node: w3.parse().unwrap(),
        soft,
    };
    // While w3 lives, an affinity to it (soft as well as hard) runs there, though the driver
    // could run it itself.
    for soft in [true, false] {
        let there = node_name::options()
            .scheduling_strategy(on_w3(soft))
            .remote();
        assert_eq!(raya::get(&there).unwrap(), "w3", "soft: {soft}");
    }
    support::step("w3-known");
    // The test killed w3 and the head declared it dead.
    let hard = node_name::options()
        .scheduling_strategy(on_w3(false))
        .remote();
    match raya::get_timeout(&hard, Duration::from_secs(60)) {
        Err(raya::Error::Task(e)) => {
            assert_eq!(e.kind, TaskErrorKind::Unschedulable, "{e}");
            assert!(
                e.message.contains(&w3),
                "the error does not name the node: {e}"
            );
        }
        other => panic!("a hard affinity to a dead node got {other:?}"),
    }
    let soft = node_name::options()
        .scheduling_strategy(on_w3(true))
        .remote();
    let ran = raya::get_timeout(&soft, Duration::from_secs(60)).expect("the soft affinity ran");
    assert_ne!(ran, "w3");
}

/// Tasks and actors with label selectors run on the nodes whose labels match: `w1` is
/// `region=us-west`, `w2` `region=us-east`.
fn labels_pick_the_node() {
    let on = |expr: &str| {
        node_name::options()
            .resource("w", 0.01)
            .label_selector("region", expr)
            .remote()
    };
    for _ in 0..4 {
        assert_eq!(raya::get(&on("us-east")).unwrap(), "w2");
        assert_eq!(raya::get(&on("in(us-west)")).unwrap(), "w1");
        assert_eq!(raya::get(&on("!us-west")).unwrap(), "w2");
        assert_eq!(raya::get(&on("!in(us-east,eu)")).unwrap(), "w1");
    }
    let a = Resident::options()
        .resource("w", 0.01)
        .label_selector("region", "us-west")
        .remote()
        .unwrap();
    assert_eq!(raya::get(&a.node()).unwrap(), "w1");
    let nowhere = on("mars");
    match raya::get_timeout(&nowhere, Duration::from_secs(60)) {
        Err(raya::Error::Task(e)) => {
            assert_eq!(e.kind, TaskErrorKind::Infeasible, "{e}");
            assert!(e.message.contains("region=mars"), "{e}");
        }
        other => panic!("a selector no node matches got {other:?}"),
    }
}

/// Ray's `test_hybrid_policy`, on a driver of 10 CPUs beside `w1` of 10: up to half its CPUs
/// the driver packs the work onto itself; past that, the work spreads to `w1`.
fn hybrid_packs_then_spreads() {
    // The driver hears of w1's free CPUs (its view of the others is refreshed as it runs).
    assert_eq!(
        raya::get(&node_name::options().resource("w", 0.01).remote()).unwrap(),
        "w1"
    );
    let burst = |n: usize| -> BTreeMap<String, usize> {
        let refs: Vec<ObjectRef<String>> = (0..n).map(|_| node_name_after::remote(1500)).collect();
        counts(refs.iter().map(|r| raya::get(r).unwrap()))
    };
    assert_eq!(
        burst(5),
        BTreeMap::from([("driver".to_string(), 5)]),
        "below the threshold the work packs onto the submitting node"
    );
    // Past it, both nodes run some (how many each depends on when the first burst's CPUs came
    // back, as in Ray's test, which asserts both nodes are used).
    let spread = burst(10);
    assert!(
        spread.get("driver").is_some_and(|n| *n >= 1) && spread.get("w1").is_some_and(|n| *n >= 1),
        "past the threshold the work spreads: {spread:?}"
    );
}

fn run_scenario(name: &str) {
    match name {
        "hybrid_packs_then_spreads" => hybrid_packs_then_spreads(),
        "spread_and_affinity" => spread_and_affinity(),
        "labels_pick_the_node" => labels_pick_the_node(),
        other => panic!("no scenario {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points of the processes a test starts (ignored when the suite runs them directly).

support::entry_points!(run_scenario);

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn spread_work_goes_evenly_over_the_nodes_and_a_hard_affinity_to_a_dead_node_is_unschedulable() {
    let mut c = Cluster::with_head_args("spread", 1, &["--node-timeout-ms", "3000"]);
    c.named_worker("w1", 8, "w");
    c.named_worker("w2", 8, "w");
    c.named_worker("w3", 1, "only3");
    c.wait_alive(4);
    let mut driver = c.start_driver("spread_and_affinity", 1);
    driver.reached("w3-known");
    c.kill("w3");
    c.wait_for("DEAD", 1);
    driver.go("w3-known");
    driver.finish(Duration::from_secs(180));
}

#[test]
fn tasks_and_actors_with_a_label_selector_run_on_the_nodes_whose_labels_match() {
    let mut c = Cluster::with_head_args("labels", 1, &["--labels", "zone=head"]);
    c.labelled_worker("w1", 1, "w", "region=us-west");
    c.labelled_worker("w2", 1, "w", "region=us-east");
    c.wait_alive(3);
    let status = c.status();
    for shown in ["labels    zone=head", "labels    region=us-west"] {
        assert!(
            status.contains(shown),
            "raya status does not show {shown:?}:\n{status}"
        );
    }
    c.drive("labels_pick_the_node", 1, Duration::from_secs(180));
}

#[test]
fn default_work_packs_onto_its_node_up_to_half_its_resources_then_spreads() {
    let mut c = Cluster::with_head("hybrid", 1);
    c.named_worker("w1", 10, "w");
    c.wait_alive(2);
    c.drive("hybrid_packs_then_spreads", 10, Duration::from_secs(180));
}
