//! How a node's local scheduler reaches the global scheduler: on the head (or an embedded node)
//! through its mailbox, on every other node over the ordered link to the head. Either way the
//! answer says whether the global scheduler took the task: a task the head never got fails
//! where it was submitted instead of vanishing.

use std::future::Future;
use std::pin::Pin;

use actix::Addr;
use raya_cluster::transport::Network;

use super::{GlobalScheduler, ScheduleTask};

/// Where a node's tasks for the global scheduler go.
#[derive(Clone)]
pub enum GlobalRoute {
    /// The global scheduler runs on this node.
    Here(Addr<GlobalScheduler>),
    /// It runs on the head, reached through the network (the head as the network knows it
    /// when a task is sent, so a restarted head is found again).
    Head(Network),
}

impl std::fmt::Debug for GlobalRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GlobalRoute::Here(_) => f.write_str("GlobalRoute::Here"),
            GlobalRoute::Head(_) => f.write_str("GlobalRoute::Head"),
        }
    }
}

/// The global scheduler's answer to one [`ScheduleTask`]: taken, or why it could not be given.
pub type Taken = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

impl GlobalRoute {
    /// Hands `msg` to the global scheduler now (in order with the tasks handed before) and
    /// returns its answer.
    pub fn schedule(&self, msg: ScheduleTask) -> Taken {
        match self {
            GlobalRoute::Here(addr) => {
                let sent = addr.send(msg);
                Box::pin(async move {
                    sent.await
                        .map_err(|e| format!("the global scheduler stopped: {e}"))
                })
            }
            GlobalRoute::Head(net) => {
                let Some(head) = net.head() else {
                    return Box::pin(async {
                        Err("the head, which runs the global scheduler, is unknown".to_string())
                    });
                };
                let sent = net.send_ordered(head, msg);
                Box::pin(async move {
                    sent.await.map_err(|e| {
                        format!("the head's global scheduler could not be given the task: {e}")
                    })
                })
            }
        }
    }
}
