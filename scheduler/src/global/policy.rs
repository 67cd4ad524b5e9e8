//! The global scheduler's placement policy: which alive node runs a task.

use std::collections::HashMap;

use raya_common::{NodeId, ResourceSet};

use crate::task_spec::{SchedulingStrategy, TaskSpec};

/// A node as the policy sees it: its id, total and free resources.
pub(super) type NodeView = (NodeId, ResourceSet, ResourceSet);

/// Picks a node for `spec` among `(node, total, available)`, preferring, among the nodes with
/// the task's resources free, those holding more of its arguments' bytes (`local_bytes`).
pub(super) fn pick(
    spec: &TaskSpec,
    nodes: &[NodeView],
    local_bytes: &HashMap<NodeId, u64>,
) -> Option<NodeId> {
    let feasible = |n: &&NodeView| spec.resources.fits_in(&n.1);
    if let SchedulingStrategy::NodeAffinity { node, soft } = &spec.strategy {
        if let Some(n) = nodes.iter().filter(feasible).find(|n| n.0 == *node) {
            return Some(n.0);
        }
        if !soft {
            return None;
        }
    }
    let total_bytes: u64 = local_bytes.values().copied().max().unwrap_or(0);
    let score = |node: &NodeId, avail: &ResourceSet| -> f64 {
        let free = spec
            .resources
            .iter()
            .map(|(name, _)| avail.get(name))
            .sum::<f64>()
            + avail.get("CPU");
        // Data locality weighs only among nodes that can start the task now.
        let locality = if total_bytes > 0 && spec.resources.fits_in(avail) {
            1000.0 * local_bytes.get(node).copied().unwrap_or(0) as f64 / total_bytes as f64
        } else {
            0.0
        };
        free + locality
    };
    nodes
        .iter()
        .filter(feasible)
        .max_by(|a, b| score(&a.0, &a.2).total_cmp(&score(&b.0, &b.2)))
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
        assert_eq!(pick(&spec(), &nodes, &HashMap::new()), Some(a));
        // With the arguments on b, b (it can start the task now).
        let on_b = HashMap::from([(b, 64 << 20)]);
        assert_eq!(pick(&spec(), &nodes, &on_b), Some(b));
        // But not when b has nothing free: locality never makes a task wait.
        let busy = vec![(a, cpus(4.0), cpus(4.0)), (b, cpus(4.0), cpus(0.0))];
        assert_eq!(pick(&spec(), &busy, &on_b), Some(a));
        // Infeasible everywhere: nobody.
        let small = vec![(a, cpus(0.5), cpus(0.5))];
        assert_eq!(pick(&spec(), &small, &HashMap::new()), None);
    }
}
