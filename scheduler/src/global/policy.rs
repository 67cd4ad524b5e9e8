//! The global scheduler's placement policy: which alive node runs a task.

use std::collections::HashMap;

use raya_common::{NodeId, ResourceSet};

use crate::task_spec::{SchedulingStrategy, TaskSpec};

/// A node as the policy sees it: its id, total and free resources.
pub(super) type NodeView = (NodeId, ResourceSet, ResourceSet);

/// Picks a node for `spec` among `(node, total, available)`.
///
/// - `NodeAffinity`: that node when it can ever fit the task; else, when soft, as `Default`.
/// - `Spread`: among the nodes with the task's resources free now (else all that could fit it),
///   the one given the fewest spread tasks and actors so far (`spread`), then the freest; so
///   a burst spreads evenly even while the free resources the head sees lag behind.
/// - `Default`: among the nodes with the task's resources free, those holding more of its
///   arguments' bytes (`local_bytes`), then the freest; node `avoid` (the one that handed the
///   task over) only when no other node can take it.
pub(super) fn pick(
    spec: &TaskSpec,
    nodes: &[NodeView],
    local_bytes: &HashMap<NodeId, u64>,
    spread: &HashMap<NodeId, u64>,
    avoid: Option<NodeId>,
) -> Option<NodeId> {
    let feasible = |n: &&NodeView| spec.resources.fits_in(&n.1);
    match &spec.strategy {
        SchedulingStrategy::NodeAffinity { node, soft } => {
            if let Some(n) = nodes.iter().filter(feasible).find(|n| n.0 == *node) {
                return Some(n.0);
            }
            if !soft {
                return None;
            }
        }
        SchedulingStrategy::Spread => return pick_spread(spec, nodes, spread),
        SchedulingStrategy::Default => {}
    }
    let total_bytes: u64 = local_bytes.values().copied().max().unwrap_or(0);
    let score = |node: &NodeId, avail: &ResourceSet| -> f64 {
        let free = freeness(spec, avail);
        // Data locality weighs only among nodes that can start the task now.
        let locality = if total_bytes > 0 && spec.resources.fits_in(avail) {
            1000.0 * local_bytes.get(node).copied().unwrap_or(0) as f64 / total_bytes as f64
        } else {
            0.0
        };
        free + locality
    };
    let best = |skip: Option<NodeId>| {
        nodes
            .iter()
            .filter(feasible)
            .filter(|n| Some(n.0) != skip)
            .max_by(|a, b| score(&a.0, &a.2).total_cmp(&score(&b.0, &b.2)))
            .map(|n| n.0)
    };
    best(avoid).or_else(|| best(None))
}

/// Free CPUs plus the free amounts of what `spec` asks for: how free a node is for it.
fn freeness(spec: &TaskSpec, avail: &ResourceSet) -> f64 {
    spec.resources
        .iter()
        .map(|(name, _)| avail.get(name))
        .sum::<f64>()
        + avail.get("CPU")
}

fn pick_spread(
    spec: &TaskSpec,
    nodes: &[NodeView],
    spread: &HashMap<NodeId, u64>,
) -> Option<NodeId> {
    let feasible: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| spec.resources.fits_in(&n.1))
        .collect();
    let free_now: Vec<&NodeView> = feasible
        .iter()
        .copied()
        .filter(|n| spec.resources.fits_in(&n.2))
        .collect();
    let candidates = if free_now.is_empty() {
        feasible
    } else {
        free_now
    };
    candidates
        .into_iter()
        .min_by(|a, b| {
            let given = |n: &NodeView| spread.get(&n.0).copied().unwrap_or(0);
            given(a)
                .cmp(&given(b))
                .then(freeness(spec, &b.2).total_cmp(&freeness(spec, &a.2)))
                .then(a.0.cmp(&b.0))
        })
        .map(|n| n.0)
}

#[cfg(test)]
mod tests {
    use raya_common::{ResourceSet, TaskId};

    use super::*;

    fn spec() -> TaskSpec {
        crate::task_spec::test_spec(TaskId(7))
    }

    #[test]
    fn nodes_holding_the_arguments_win_among_those_with_free_resources() {
        let (a, b) = (NodeId::random(), NodeId::random());
        let cpus = |n| ResourceSet::cpus(n).unwrap();
        let nodes = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(4.0), cpus(1.0))];
        // Without data, the node with more free CPUs.
        assert_eq!(
            pick(&spec(), &nodes, &HashMap::new(), &HashMap::new(), None),
            Some(a)
        );
        // With the arguments on b, b (it can start the task now).
        let on_b = HashMap::from([(b, 64 << 20)]);
        assert_eq!(pick(&spec(), &nodes, &on_b, &HashMap::new(), None), Some(b));
        // But not when b has nothing free: locality never makes a task wait.
        let busy = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(4.0), cpus(0.0))];
        assert_eq!(pick(&spec(), &busy, &on_b, &HashMap::new(), None), Some(a));
        // The node that handed the task over only when no other can take it.
        assert_eq!(
            pick(&spec(), &nodes, &HashMap::new(), &HashMap::new(), Some(a)),
            Some(b)
        );
        let only_a = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(0.5), cpus(0.5))];
        assert_eq!(
            pick(&spec(), &only_a, &HashMap::new(), &HashMap::new(), Some(a)),
            Some(a)
        );
        // Infeasible everywhere: nobody.
        let small = vec![(a, cpus(0.5), cpus(0.5))];
        assert_eq!(
            pick(&spec(), &small, &HashMap::new(), &HashMap::new(), None),
            None
        );
    }

    #[test]
    fn spread_tasks_go_evenly_over_the_nodes_even_when_the_free_resources_seen_lag() {
        let (a, b, c) = (NodeId::random(), NodeId::random(), NodeId::random());
        let cpus = |n| ResourceSet::cpus(n).unwrap();
        let mut s = spec();
        s.strategy = SchedulingStrategy::Spread;
        // c can never fit the task; a and b look equally free (a stale view).
        let nodes = vec![
            (a, cpus(8.0), cpus(8.0)),
            (b, cpus(8.0), cpus(8.0)),
            (c, cpus(0.5), cpus(0.5)),
        ];
        let mut given: HashMap<NodeId, u64> = HashMap::new();
        for _ in 0..8 {
            let n = pick(&s, &nodes, &HashMap::new(), &given, None).expect("a node");
            *given.entry(n).or_default() += 1;
        }
        assert_eq!(given.get(&a), Some(&4));
        assert_eq!(given.get(&b), Some(&4));
        assert_eq!(given.get(&c), None);
        // A node with the resources free now wins over one without, whatever it was given.
        let busy = vec![(a, cpus(8.0), cpus(0.0)), (b, cpus(8.0), cpus(8.0))];
        let lots_on_b = HashMap::from([(b, 100)]);
        assert_eq!(pick(&s, &busy, &HashMap::new(), &lots_on_b, None), Some(b));
        // Spread overrides locality.
        let on_a = HashMap::from([(a, 64 << 20)]);
        let once_on_a = HashMap::from([(a, 1)]);
        assert_eq!(pick(&s, &nodes, &on_a, &once_on_a, None), Some(b));
    }
}
