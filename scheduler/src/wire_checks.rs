//! The checks the schedulers run on their wire messages before handling them, by wire name
//! (see [`raya_cluster::transport::checks`]): who may send each, and, for a task that arrives
//! from another node, [`TaskSpec::check_from_wire`] as its handler runs it.

use raya_cluster::transport::{Caller, WireCheck, WireMessage, check_body};

use crate::global::ScheduleTask;
use crate::local::{CancelTask, PlaceTask, TaskGoing, TaskPlaced, TaskUnschedulable};
use crate::task_spec::TaskSpec;

/// Checks `body` as `M`, then the task it carries.
fn with_task<M: WireMessage>(
    body: &[u8],
    from: &Caller,
    task: fn(&M) -> &TaskSpec,
) -> Result<(), String> {
    let m = M::decode(body).map_err(|e| e.to_string())?;
    m.check_from(from)?;
    task(&m).check_from_wire()
}

/// The scheduler's wire checks.
pub fn wire_checks() -> Vec<WireCheck> {
    vec![
        (PlaceTask::NAME, |b, f| {
            with_task::<PlaceTask>(b, f, |m| &m.0)
        }),
        (TaskPlaced::NAME, check_body::<TaskPlaced>),
        (TaskGoing::NAME, check_body::<TaskGoing>),
        (TaskUnschedulable::NAME, |b, f| {
            with_task::<TaskUnschedulable>(b, f, |m| &m.spec)
        }),
        (CancelTask::NAME, check_body::<CancelTask>),
        (ScheduleTask::NAME, |b, f| {
            with_task::<ScheduleTask>(b, f, |m| &m.spec)
        }),
    ]
}
