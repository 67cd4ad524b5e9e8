//! How many placements the global scheduler has on the way to each node at once.
//!
//! A placement waits for its node's answer within the link's delivery bound, counted from
//! when it was queued. A burst (thousands of tasks handed over at once, or the queue of a node
//! that died moved to the others) queued on one link at once would wait past that bound behind
//! the others and fail as unanswered, though the node is alive and taking them. So at most
//! [`WINDOW`] placements are on the way to one node; the others wait at the head, in order,
//! until an answer lets the next one go, [`MAX_HELD`] in all at most. Those waiting for a node
//! that turns out unreachable are placed elsewhere at once.

use std::collections::{HashMap, VecDeque};

use raya_common::NodeId;

use crate::task_spec::TaskSpec;

/// Placements on the way to one node at once, at most (a link's batch).
pub(super) const WINDOW: usize = 1024;

/// Placements waiting at the head for a node's window, at most (past it, a task fails as
/// unreachable).
pub(super) const MAX_HELD: usize = 1 << 20;

/// A placement waiting for its node's window: the task, the node that handed it over, and
/// the nodes it was offered to before.
pub(super) struct Held {
    pub(super) spec: Box<TaskSpec>,
    pub(super) from: NodeId,
    pub(super) tried: Vec<NodeId>,
}

/// The placements on the way and waiting, per node.
#[derive(Default)]
pub(super) struct Window {
    on_the_way: HashMap<NodeId, usize>,
    waiting: HashMap<NodeId, VecDeque<Held>>,
    held: usize,
}

impl Window {
    /// A placement for `node`: handed back to be sent now, kept to wait its turn (`None`), or
    /// refused when the head holds [`MAX_HELD`] already.
    pub(super) fn admit(&mut self, node: NodeId, p: Held) -> Result<Option<Held>, Held> {
        let n = self.on_the_way.entry(node).or_default();
        if *n < WINDOW {
            *n += 1;
            return Ok(Some(p));
        }
        if self.held >= MAX_HELD {
            return Err(p);
        }
        self.held += 1;
        self.waiting.entry(node).or_default().push_back(p);
        Ok(None)
    }

    /// Takes every placement waiting for `node` (it cannot be reached: they go elsewhere).
    pub(super) fn drain(&mut self, node: NodeId) -> Vec<Held> {
        let drained: Vec<Held> = self.waiting.remove(&node).unwrap_or_default().into();
        self.held -= drained.len();
        drained
    }

    /// `node` answered a placement (or its link gave up): the next one waiting for it, if
    /// any, takes its place on the way.
    pub(super) fn answered(&mut self, node: NodeId) -> Option<Held> {
        let next = self.waiting.get_mut(&node).and_then(VecDeque::pop_front);
        match &next {
            Some(_) => self.held -= 1,
            None => {
                self.waiting.remove(&node);
                match self.on_the_way.get_mut(&node) {
                    Some(n) if *n > 1 => *n -= 1,
                    _ => {
                        self.on_the_way.remove(&node);
                    }
                }
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_spec::test_spec;
    use raya_common::TaskId;

    fn held(i: u128) -> Held {
        Held {
            spec: Box::new(test_spec(TaskId(i))),
            from: NodeId::random(),
            tried: Vec::new(),
        }
    }

    #[test]
    fn a_node_has_at_most_a_window_on_the_way_and_the_rest_go_in_order() {
        let mut w = Window::default();
        let node = NodeId::random();
        for i in 0..WINDOW as u128 {
            assert!(matches!(w.admit(node, held(i)), Ok(Some(_))));
        }
        for i in 0..3u128 {
            assert!(matches!(w.admit(node, held(100_000 + i)), Ok(None)));
        }
        // Another node has a window of its own.
        assert!(matches!(w.admit(NodeId::random(), held(7)), Ok(Some(_))));
        for i in 0..3u128 {
            let next = w.answered(node).expect("a waiting placement goes");
            assert_eq!(next.spec.task_id, TaskId(100_000 + i));
        }
        // A node found unreachable hands back what waits for it.
        assert!(matches!(w.admit(node, held(200_000)), Ok(None)));
        let drained = w.drain(node);
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].spec.task_id, TaskId(200_000));
        for _ in 0..WINDOW {
            assert!(w.answered(node).is_none());
        }
        assert!(!w.on_the_way.contains_key(&node) && w.waiting.is_empty());
        assert_eq!(w.held, 0);
    }
}
