//! The lineage of the objects this node owns and other nodes make: the tasks it handed to the
//! global scheduler, each kept whole (function, options, arguments) for as long as one of its
//! results is still pending here — being made elsewhere, or made and held only elsewhere while
//! this node fetches it (an owner fetches every result of the tasks it hands over, so once they
//! are all here the task's lineage is let go) — so that a node dying with the task or its only
//! copy can be answered by running the task again (`Recover`, see `recover`).
//!
//! Kept whole means its arguments are kept too: the values passed by value, and the objects
//! passed by reference stay alive while the task may have to run again. Ray bounds lineage by
//! bytes (`max_lineage_bytes`); so does this: past [`Lineage::max_bytes`] of by-value arguments,
//! the oldest placed tasks let go of their arguments, and an object of theirs that is lost
//! afterwards fails as `ReconstructionFailed` instead of being made again.

use std::collections::VecDeque;
use std::time::Instant;

use raya_common::{FastHashMap, NodeId, TaskId};

use crate::task_spec::{TaskArg, TaskSpec};

/// A task handed to the global scheduler.
pub(super) struct Away {
    /// The task as submitted (its arguments let go when its lineage was evicted).
    pub(super) spec: TaskSpec,
    /// When it was handed over (this attempt).
    pub(super) since: Instant,
    /// The node that has it, once reported.
    pub(super) at: Option<NodeId>,
    /// Cancelled before it was placed: the cancellation goes to its node when known.
    pub(super) cancel: Option<bool>,
    /// Bytes of its by-value arguments, counted against the lineage bound.
    bytes: u64,
    /// Whether its arguments were let go (it cannot run again).
    pub(super) evicted: bool,
    /// The node whose death made it run again (said when it then cannot be placed).
    pub(super) lost_with: Option<NodeId>,
    /// The head acknowledged taking it (it is no longer in the link to the head).
    pub(super) taken: bool,
    /// Where the head said it was sending it, before it confirmed the node had it.
    pub(super) going: Option<NodeId>,
    /// Which insertion this is (an entry of [`Lineage`]'s order names one).
    seq: u64,
}

impl Away {
    /// A task handed over now.
    pub(super) fn new(spec: TaskSpec) -> Away {
        let bytes = spec
            .args
            .iter()
            .map(|a| match a {
                TaskArg::Value(v) => v.size() as u64,
                TaskArg::Ref(_) => 0,
            })
            .sum();
        Away {
            spec,
            since: Instant::now(),
            at: None,
            cancel: None,
            bytes,
            evicted: false,
            lost_with: None,
            taken: false,
            going: None,
            seq: 0,
        }
    }
}

/// The tasks handed over, with the bound on the bytes they keep (see the module docs).
pub(super) struct Lineage {
    tasks: FastHashMap<TaskId, Away>,
    /// Placed tasks in the order they were placed, by insertion (entries of tasks gone or
    /// handed over again are skipped, and dropped when they make up most of it).
    order: VecDeque<(TaskId, u64)>,
    /// Insertions so far.
    seq: u64,
    bytes: u64,
    /// By-value argument bytes kept, at most.
    pub(super) max_bytes: u64,
}

impl Lineage {
    /// An empty lineage keeping at most `max_bytes` of by-value arguments.
    pub(super) fn new(max_bytes: u64) -> Lineage {
        Lineage {
            tasks: FastHashMap::default(),
            order: VecDeque::new(),
            seq: 0,
            bytes: 0,
            max_bytes,
        }
    }

    /// Keeps `away`, replacing an earlier attempt of the same task.
    pub(super) fn insert(&mut self, mut away: Away) {
        let task = away.spec.task_id;
        self.remove(task);
        self.seq += 1;
        away.seq = self.seq;
        self.bytes += away.bytes;
        self.tasks.insert(task, away);
        self.evict();
    }

    /// Stops following `task`.
    pub(super) fn remove(&mut self, task: TaskId) -> Option<Away> {
        let a = self.tasks.remove(&task)?;
        self.bytes -= a.bytes;
        Some(a)
    }

    pub(super) fn get(&self, task: &TaskId) -> Option<&Away> {
        self.tasks.get(task)
    }

    pub(super) fn get_mut(&mut self, task: &TaskId) -> Option<&mut Away> {
        self.tasks.get_mut(task)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&TaskId, &Away)> {
        self.tasks.iter()
    }

    /// Notes that the node that has `task` is `node` (its arguments may be let go now, if the
    /// bound needs it).
    pub(super) fn placed(&mut self, task: TaskId, node: NodeId) {
        if let Some(a) = self.tasks.get_mut(&task) {
            if a.at.is_none() {
                self.order.push_back((task, a.seq));
            }
            a.at = Some(node);
            if self.order.len() > 2 * self.tasks.len() + 1024 {
                let tasks = &self.tasks;
                self.order
                    .retain(|(t, seq)| tasks.get(t).is_some_and(|a| a.seq == *seq));
            }
            self.evict();
        }
    }

    /// The tasks followed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// The by-value argument bytes kept.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lets the oldest placed tasks go of their arguments until the kept bytes are within the
    /// bound. Tasks not placed yet keep theirs (the head may still have to place them again).
    fn evict(&mut self) {
        while self.bytes > self.max_bytes {
            let Some((task, seq)) = self.order.pop_front() else {
                break;
            };
            let Some(a) = self.tasks.get_mut(&task) else {
                continue;
            };
            if a.seq != seq || a.evicted {
                continue;
            }
            a.spec.args.clear();
            a.evicted = true;
            self.bytes -= a.bytes;
            a.bytes = 0;
            tracing::debug!(%task, "lineage bound reached: the task's arguments are let go");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use raya_common::Value;

    use super::*;

    fn spec(seq: u128, bytes: usize) -> TaskSpec {
        TaskSpec {
            args: vec![TaskArg::Value(Value::Bytes(
                Arc::new(vec![0u8; bytes]),
                None,
            ))],
            max_retries: 3,
            ..crate::task_spec::test_spec(TaskId(seq))
        }
    }

    #[test]
    fn past_the_bound_the_oldest_placed_tasks_let_their_arguments_go() {
        let mut l = Lineage::new(1000);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        l.insert(Away::new(spec(1, 600)));
        l.insert(Away::new(spec(2, 600)));
        // Over the bound, but neither is placed: the head may still need to place them again.
        assert_eq!(l.bytes(), 1200);
        assert!(!l.get(&a).unwrap().evicted);
        l.placed(a, NodeId::random());
        let evicted = l.get(&a).unwrap();
        assert!(evicted.evicted && evicted.spec.args.is_empty());
        assert_eq!(l.bytes(), 600);
        // A newer one placed: the older unplaced one keeps its arguments, the bound holds.
        l.insert(Away::new(spec(3, 600)));
        l.placed(c, NodeId::random());
        assert!(!l.get(&b).unwrap().evicted);
        assert!(l.get(&c).unwrap().evicted);
        assert_eq!(l.bytes(), 600);
        // A later attempt replaces the earlier one, counted once.
        l.insert(Away::new(spec(2, 100)));
        assert_eq!(l.bytes(), 100);
        assert_eq!(l.len(), 3);
        l.remove(b);
        assert_eq!((l.bytes(), l.len()), (0, 2));
    }
}
