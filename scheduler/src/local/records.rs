//! Task records: the events the local scheduler (and the workers) write to the node's task
//! event buffer, and the explanation of an infeasible task.

use raya_cluster::gcs::task_events::{
    TaskEvent, TaskEventBuffer, TaskKind as EventKind, TaskState,
};
use raya_common::{NodeId, ResourceSet};

use crate::task_spec::{SchedulingStrategy, TaskKind, TaskSpec};

/// Records that `spec` (running or to run on `node`) entered `state`.
pub fn record_event(events: &TaskEventBuffer, spec: &TaskSpec, node: NodeId, state: TaskState) {
    events.record(spec.task_id, spec.attempt, state, || TaskEvent {
        task_id: spec.task_id,
        attempt: spec.attempt,
        job: spec.job,
        name: spec.function.name.to_string(),
        kind: match spec.kind {
            TaskKind::Normal => EventKind::Normal,
            TaskKind::ActorCreation { .. } => EventKind::ActorCreation,
        },
        state,
        node: Some(node),
        worker: None,
        actor: match &spec.kind {
            TaskKind::ActorCreation { actor, .. } => Some(*actor),
            TaskKind::Normal => None,
        },
        parent: (!spec.parent.is_driver()).then_some(spec.parent),
        error: None,
        times: Vec::new(),
    });
}

/// Explains why no node can run `spec`, from the nodes' totals.
pub(crate) fn infeasible_reason(spec: &TaskSpec, nodes: &[(NodeId, ResourceSet)]) -> String {
    let mut s = format!(
        "{} requires {} but no node of the cluster can ever provide it",
        spec.function.name, spec.resources
    );
    if let SchedulingStrategy::NodeAffinity { node, soft: false } = &spec.strategy {
        s = format!("{} must run on node {node}, which", spec.function.name);
        match nodes.iter().find(|(n, _)| n == node) {
            Some((_, total)) => s.push_str(&format!(" has {total}, not {}", spec.resources)),
            None => s.push_str(" is not an alive node of the cluster"),
        }
        return s;
    }
    for (node, total) in nodes {
        let short: Vec<String> = spec
            .resources
            .shortfall(total)
            .into_iter()
            .map(|(n, a)| format!("{n} short by {a}"))
            .collect();
        s.push_str(&format!("; node {node} has {total} ({})", short.join(", ")));
    }
    s
}
