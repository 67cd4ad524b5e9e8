//! The head's side of the GCS gossip: heartbeats in, numbered node-table changes out.

use actix::prelude::*;

use super::nodes::{NodeHeartbeat, SubscribeNodes};
use super::{GCS_TOPIC, GcsEvent, GcsTables, HEARTBEAT_TOPIC, VersionedEvent};
use crate::transport::WireMessage;
use crate::transport::{NetEvent, Network};

/// The head's side of the gossip: applies the heartbeats nodes publish to the node table, and
/// publishes every node-table change, numbered, for the other nodes' caches.
pub struct GcsPublisher {
    tables: GcsTables,
    net: Network,
    epoch: u64,
    seq: u64,
}

impl GcsPublisher {
    /// A publisher for the head's `tables` on `net`.
    pub fn new(tables: GcsTables, net: Network) -> Self {
        let epoch = (raya_common::time::now_ms() << 16) ^ u64::from(rand_u16());
        GcsPublisher {
            tables,
            net,
            epoch,
            seq: 0,
        }
    }
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ std::process::id()) as u16
}

impl Actor for GcsPublisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.net.subscribe(ctx.address().recipient());
        self.tables
            .nodes
            .do_send(SubscribeNodes(ctx.address().recipient()));
    }
}

impl Handler<GcsEvent> for GcsPublisher {
    type Result = ();
    fn handle(&mut self, event: GcsEvent, _: &mut Context<Self>) {
        self.seq += 1;
        let v = VersionedEvent {
            epoch: self.epoch,
            seq: self.seq,
            event,
        };
        match crate::transport::archive::Archived::to_archive(&v) {
            Ok(b) => {
                if let Err(e) = self.net.publish(GCS_TOPIC, b) {
                    tracing::debug!(error = %e, "GCS change not published");
                }
            }
            Err(e) => tracing::error!(error = %e, "GCS change not encoded"),
        }
    }
}

impl Handler<NetEvent> for GcsPublisher {
    type Result = ();
    fn handle(&mut self, ev: NetEvent, _: &mut Context<Self>) {
        let Some((topic, source, data)) = ev.into_gossip() else {
            return;
        };
        if topic != HEARTBEAT_TOPIC {
            return;
        }
        let Some(source) = source else {
            tracing::warn!("unsigned heartbeat ignored");
            return;
        };
        match NodeHeartbeat::decode(&data) {
            // A node speaks only for itself.
            Ok(hb) => {
                let router = self.net.router();
                let from = router.caller(source);
                match hb.check_from(&from) {
                    Ok(()) => self.tables.nodes.do_send(hb),
                    Err(reason) => {
                        router.refuse(&from, NodeHeartbeat::NAME, reason);
                    }
                }
            }
            Err(e) => tracing::warn!(%source, error = %e, "malformed heartbeat ignored"),
        }
    }
}

impl std::fmt::Debug for GcsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsPublisher").finish_non_exhaustive()
    }
}
