//! Leases on the objects this node owns and another node makes.
//!
//! Four times per object lease the owner asks each node making some of its objects which of
//! them it still makes ([`StillMaking`], `object_manager/StillMaking`; the maker answers from
//! the results it keeps for their owners). An object whose maker has not answered for a whole
//! lease fails as unreachable; one its maker has said, for a whole lease, that it does not make
//! fails as lost. So no `get` waits forever on a node that stalled, was cut off from the owner
//! or lost the task, even while the head still counts that node alive; a node declared dead
//! fails its objects at once (`NodeGone`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::transport::Target;
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind};
use serde::{Deserialize, Serialize};

use super::ObjectManager;
use crate::object_store::Status;

/// Objects asked about in one [`StillMaking`], at most.
pub(super) const MAX_ASKED: usize = 4096;

/// Asks a node which of `ids`, objects of the asking node, it still makes (or keeps for the
/// asker). Answered with one flag per id, in order.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<bool>")]
pub struct StillMaking(pub Vec<ObjectId>);

raya_cluster::wire_message!(
    StillMaking => "object_manager/StillMaking" as archive where |m, from| {
        if m.0.len() > MAX_ASKED {
            return Err(format!("{} objects asked about, more than {MAX_ASKED}", m.0.len()));
        }
        m.0.iter()
            .try_for_each(|id| from.made(id.task.node_tag(), "an object asked about"))
    }
);

/// What the owner knows of the makers of its objects.
#[derive(Default)]
pub(super) struct Leases {
    /// When each maker last answered (or was first expected to make something).
    heard: HashMap<NodeId, Instant>,
    /// Objects a maker said it does not make, since when.
    doubted: HashMap<ObjectId, Instant>,
    /// Makers with a check in flight.
    checking: HashMap<NodeId, usize>,
}

impl Leases {
    /// `node` was just named the maker of an object: its lease starts now if it had none.
    pub(super) fn expect(&mut self, node: NodeId) {
        self.heard.entry(node).or_insert_with(Instant::now);
    }

    /// Forgets a dead node.
    pub(super) fn forget(&mut self, node: NodeId) {
        self.heard.remove(&node);
        self.checking.remove(&node);
    }
}

/// The answer of one maker to one check.
#[derive(Message)]
#[rtype(result = "()")]
struct Answered {
    maker: NodeId,
    ids: Vec<ObjectId>,
    answer: Result<Vec<bool>, String>,
}

/// How often the owner checks its makers for a lease: four times per lease, within bounds.
pub(super) fn check_interval(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(15))
}

impl ObjectManager {
    /// Starts the periodic checks.
    pub(super) fn start_leases(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(check_interval(self.lease), |this, ctx| {
            this.forget_strangers();
            this.expire_subscriptions();
            this.check_makers(ctx)
        });
    }

    /// Asks every maker of pending objects owned here about them.
    fn check_makers(&mut self, ctx: &mut Context<Self>) {
        let core = Arc::clone(&self.core);
        self.expected
            .retain(|id, _| core.status(*id) == Status::Pending);
        let expected = &self.expected;
        self.going.retain(|id| expected.contains_key(id));
        self.leases
            .doubted
            .retain(|id, _| expected.contains_key(id));
        let mut by_maker: HashMap<NodeId, Vec<ObjectId>> = HashMap::new();
        // Work still being sent is bounded by its placement lease, not by asking the node.
        for (id, maker) in self
            .expected
            .iter()
            .filter(|(id, _)| !self.going.contains(id))
        {
            by_maker.entry(*maker).or_default().push(*id);
        }
        self.leases.heard.retain(|n, _| by_maker.contains_key(n));
        let wait = check_interval(self.lease);
        for (maker, ids) in by_maker {
            if self.leases.checking.get(&maker).is_some_and(|n| *n > 0) {
                continue;
            }
            self.leases.expect(maker);
            for chunk in ids.chunks(MAX_ASKED) {
                *self.leases.checking.entry(maker).or_default() += 1;
                let (net, ids) = (self.net.clone(), chunk.to_vec());
                let me = ctx.address();
                self.net.spawn(async move {
                    let asked = net.ask(maker.peer_id(), Target::System, StillMaking(ids.clone()));
                    let answer = match tokio::time::timeout(wait, asked).await {
                        Ok(Ok(flags)) if flags.len() == ids.len() => Ok(flags),
                        Ok(Ok(flags)) => Err(format!(
                            "it answered {} flags for {} objects",
                            flags.len(),
                            ids.len()
                        )),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer within {wait:?}")),
                    };
                    me.do_send(Answered { maker, ids, answer });
                });
            }
        }
    }
}

impl Handler<Answered> for ObjectManager {
    type Result = ();
    fn handle(&mut self, m: Answered, _: &mut Context<Self>) {
        if let Some(n) = self.leases.checking.get_mut(&m.maker) {
            *n = n.saturating_sub(1);
        }
        let now = Instant::now();
        let lease = self.lease;
        let maker = m.maker;
        let mut failed: Vec<(ObjectId, TaskError)> = Vec::new();
        match m.answer {
            Ok(flags) => {
                self.leases.heard.insert(maker, now);
                for (id, still) in m.ids.into_iter().zip(flags) {
                    if still {
                        self.leases.doubted.remove(&id);
                        continue;
                    }
                    let since = *self.leases.doubted.entry(id).or_insert(now);
                    if now.duration_since(since) > lease {
                        failed.push((
                            id,
                            TaskError::new(
                                TaskErrorKind::ObjectLost,
                                format!(
                                    "node {maker}, which was to make this object, has not had it \
                                     for the object lease ({lease:?})"
                                ),
                            ),
                        ));
                    }
                }
            }
            Err(reason) => {
                let since = self.leases.heard.get(&maker).copied().unwrap_or(now);
                if now.duration_since(since) > lease {
                    for id in m.ids {
                        failed.push((
                            id,
                            TaskError::new(
                                TaskErrorKind::Unreachable,
                                format!(
                                    "node {maker}, which was making this object, has not \
                                     answered for the object lease ({lease:?}): {reason}"
                                ),
                            ),
                        ));
                    }
                }
            }
        }
        for (id, error) in failed {
            if self.expected.get(&id) == Some(&maker) {
                self.expected.remove(&id);
                self.leases.doubted.remove(&id);
                tracing::warn!(object = %id, %maker, error = %error.message, "object lease ran out");
                self.core.fail(id, Arc::new(error));
                self.tell_subscribers(id);
            }
        }
    }
}

impl Handler<StillMaking> for ObjectManager {
    type Result = MessageResult<StillMaking>;
    fn handle(&mut self, StillMaking(ids): StillMaking, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            ids.iter()
                .take(MAX_ASKED)
                .map(|id| self.held.contains_key(id))
                .collect(),
        )
    }
}
