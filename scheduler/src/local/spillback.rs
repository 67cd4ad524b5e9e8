//! Spillback: what the local scheduler of a cluster node hands to the global scheduler — tasks
//! it can never run, and queued tasks it cannot start now while another node has the resources
//! free — keeping their `ObjectRef` arguments alive until their first result is back here.

use actix::prelude::*;
use raya_cluster::gcs::nodes::NodeState;
use raya_common::TaskId;
use raya_store::RawRef;

use super::LocalScheduler;
use crate::global::ScheduleTask;
use crate::task_spec::{TaskArg, TaskSpec};

/// Releases the arguments pinned for a task that went to another node (its first result is
/// back).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ReleasePinnedArgs(pub(super) TaskId);

impl Handler<ReleasePinnedArgs> for LocalScheduler {
    type Result = ();
    fn handle(&mut self, ReleasePinnedArgs(task): ReleasePinnedArgs, _: &mut Context<Self>) {
        self.pinned.remove(&task);
    }
}

impl LocalScheduler {
    /// Hands `spec` to the global scheduler, keeping its reference arguments alive until its
    /// first result is back here.
    pub(super) fn send_to_global(&mut self, spec: TaskSpec, ctx: &mut Context<Self>) {
        let Some(global) = &self.global else {
            return;
        };
        let args: Vec<RawRef> = spec
            .args
            .iter()
            .filter_map(|a| match a {
                TaskArg::Ref(r) => Some(r.clone()),
                TaskArg::Value(_) => None,
            })
            .collect();
        if !args.is_empty()
            && let Some(first) = spec.return_ids().next()
        {
            let me = ctx.address();
            let task = spec.task_id;
            self.pinned.insert(task, args);
            self.store
                .on_ready(first, Box::new(move || me.do_send(ReleasePinnedArgs(task))));
        }
        global.do_send(ScheduleTask { spec });
    }

    /// Sends queued tasks this node cannot start now to other nodes with free resources.
    pub(super) fn spill(&mut self, ctx: &mut Context<Self>) {
        if self.cluster.is_none() || self.global.is_none() || self.peers.is_empty() {
            return;
        }
        for qi in 0..self.ready.shapes.len() {
            if self.ready.shapes[qi].tasks.is_empty() {
                continue;
            }
            let shape = self.ready.shapes[qi].shape.clone();
            let mut keep = std::collections::VecDeque::new();
            let mut out = Vec::new();
            while let Some(spec) = self.ready.shapes[qi].tasks.pop_back() {
                if self.placed.contains(&spec.task_id) {
                    keep.push_front(spec);
                    continue;
                }
                match self.peers.iter_mut().find(|(_, a)| shape.fits_in(a)) {
                    Some((_, a)) => {
                        a.subtract(&shape);
                        out.push(spec);
                    }
                    None => {
                        keep.push_front(spec);
                        break;
                    }
                }
            }
            self.ready.shapes[qi].tasks.extend(keep);
            for spec in out {
                self.dequeued();
                self.send_to_global(spec, ctx);
            }
        }
    }

    /// Refreshes the view of the other nodes' free resources, then spills.
    pub(super) fn refresh_peers(&mut self, ctx: &mut Context<Self>) {
        if self.cluster.is_none() {
            return;
        }
        let Some(gcs) = self.gcs.clone() else { return };
        let me = self.cfg.node;
        ctx.spawn(
            async move { gcs.cached_nodes().await.unwrap_or_default() }
                .into_actor(self)
                .map(move |nodes, this, ctx| {
                    this.peers = nodes
                        .into_iter()
                        .filter(|n| n.node_id != me && n.state == NodeState::Alive)
                        .map(|n| (n.node_id, n.resources_available))
                        .collect();
                    this.spill(ctx);
                }),
        );
    }
}
