//! Spillback: queued tasks a cluster node cannot start now, while another node has the
//! resources free, go to the global scheduler (followed as every task handed over is, see
//! `away`).

use actix::prelude::*;
use raya_cluster::gcs::nodes::NodeState;

use super::LocalScheduler;

impl LocalScheduler {
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
                match self.peers.iter_mut().find(|p| shape.fits_in(&p.available)) {
                    Some(p) => {
                        p.available.subtract(&shape);
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
                        .map(|n| super::hybrid::Peer {
                            total: n.resources_total,
                            available: n.resources_available,
                            labels: n.labels,
                        })
                        .collect();
                    this.spill(ctx);
                }),
        );
    }
}
