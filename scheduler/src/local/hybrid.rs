//! Ray's hybrid policy for `Default` tasks and actors in a cluster: a node packs work onto
//! itself while its critical resource utilization (the most used share of any of its
//! resources) is below [`SPREAD_THRESHOLD`]; past it, a task it could start now goes to the
//! head instead when another node is less utilized (below the threshold, or less than this
//! one) and has the task's resources free, so the work spreads. Work the head placed here,
//! work with arguments passed by reference (locality) and work with another strategy stays.

use raya_common::ResourceSet;

use crate::task_spec::{SchedulingStrategy, TaskSpec};

/// The utilization past which `Default` work spreads (Ray's `scheduler_spread_threshold`).
pub(crate) const SPREAD_THRESHOLD: f64 = 0.5;

/// The most used share, on a node with `total` and `available` of it free, of its CPUs, its
/// memory and whatever `spec` asks for (a GPU busy with other work does not make a node look
/// full to a CPU-only task).
pub(crate) fn critical_utilization(
    total: &ResourceSet,
    available: &ResourceSet,
    spec: &TaskSpec,
) -> f64 {
    let used = |name: &str| {
        let t = total.get(name);
        if t > 0.0 {
            (1.0 - available.get(name) / t).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    [ResourceSet::CPU, ResourceSet::MEMORY]
        .into_iter()
        .map(used)
        .chain(spec.resources.iter().map(|(name, _)| used(name)))
        .fold(0.0, f64::max)
}

/// How the hybrid policy ranks a node: utilizations below the threshold count as equal.
pub(crate) fn hybrid_score(utilization: f64) -> f64 {
    if utilization < SPREAD_THRESHOLD {
        0.0
    } else {
        utilization
    }
}

/// Whether `spec`, which this node (`total`, `available` free) could start now, goes to the
/// head instead under the hybrid policy. Only in a cluster (`clustered`), and not for work the
/// head placed here (`placed_here`). When it does, the peer it would go to is charged for it in
/// `peers`, this node's view of the others (so one dispatch does not send a burst to a node on
/// a stale view).
pub(super) fn spreads_elsewhere(
    peers: &mut [Peer],
    total: &ResourceSet,
    available: &ResourceSet,
    clustered: bool,
    placed_here: bool,
    spec: &TaskSpec,
) -> bool {
    if !clustered
        || placed_here
        || !matches!(spec.strategy, SchedulingStrategy::Default)
        || spec.ref_args().next().is_some()
    {
        return false;
    }
    let here = hybrid_score(critical_utilization(total, available, spec));
    if here == 0.0 {
        return false;
    }
    let better = peers
        .iter_mut()
        .filter(|p| spec.resources.fits_in(&p.available))
        .filter(|p| spec.label_selector.matches(&p.labels))
        .map(|p| {
            (
                hybrid_score(critical_utilization(&p.total, &p.available, spec)),
                p,
            )
        })
        .filter(|(score, _)| *score < here)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match better {
        Some((_, p)) => {
            p.available.subtract(&spec.resources);
            true
        }
        None => false,
    }
}

/// Another alive node as this one last heard of it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) total: ResourceSet,
    pub(crate) available: ResourceSet,
    pub(crate) labels: raya_common::labels::NodeLabels,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_is_the_most_used_share_and_below_the_threshold_all_count_alike() {
        let mut total = ResourceSet::cpus(10.0).unwrap();
        total.set("gpu-ish", 2.0).unwrap();
        let mut avail = ResourceSet::cpus(6.0).unwrap();
        avail.set("gpu-ish", 0.0).unwrap();
        let mut spec = crate::task_spec::test_spec(raya_common::TaskId(1));
        // A CPU-only task sees the CPUs (4 of 10 used), not the busy custom resource.
        assert!((critical_utilization(&total, &avail, &spec) - 0.4).abs() < 1e-9);
        spec.resources.set("gpu-ish", 1.0).unwrap();
        assert!((critical_utilization(&total, &avail, &spec) - 1.0).abs() < 1e-9);
        assert_eq!(hybrid_score(0.4), 0.0);
        assert_eq!(hybrid_score(0.0), 0.0);
        assert_eq!(hybrid_score(0.5), 0.5);
        assert_eq!(hybrid_score(0.9), 0.9);
    }
}
