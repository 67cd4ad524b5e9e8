//! `ActorHost<A>`: the Actix actor hosting one user actor (Ray's actor worker process).
//!
//! A host is started on one of the node's actor event loops when the actor is created here
//! ([`create()`]) or when the cluster placed here an actor another node created
//! ([`start_host`]). It serves:
//!
//! - calls, local ([`ActorCall`]) or from another node ([`WireActorCall`](wire::WireActorCall)): queued in arrival
//!   order, each waiting for its `ObjectRef` arguments, then run within the actor's concurrency
//!   — synchronous methods in batches on the node's [`thread_pool`], `async` methods on the
//!   host's event loop ([`mailbox`]);
//! - controls ([`HostControl`]): construct, kill, cancel a call, the last handle dropped, the
//!   creation failed or happened elsewhere.
//!
//! Its [`Lifecycle`]:
//!
//! ```text
//!   Placing ──Construct──▶ Starting ──constructed──▶ Alive ◀──constructed── Restarting
//!      │                    │    ▲ │                   │                        ▲
//!      │ Placed elsewhere   │    │ │ constructor       │ crash, or kill with    │
//!      ▼                    └────┘ │ returned Err      │ restarts left ─────────┘
//!   Remote (forwards) ◀── found ── Relocating ◀── the head records it elsewhere (Alive)
//!                                   │  │ placed here again ──▶ Restarting
//!                                   │  └ recorded dead or gone ──▶ Dead (nothing reported)
//!                      constructor │                   ▼
//!                      panicked,   ▼
//!                      restarts   Dead ◀── kill, crash past max_restarts, last handle dropped
//!                      left
//! ```
//!
//! A restart keeps the queued calls for the new instance; `async` calls that were running run
//! again there when `max_task_retries` allows, synchronous ones finish on their thread.
//!
//! When the actor's node dies, the head places its creation task again (with the restart
//! count) and the host started there (or the creator's own forwarding host, when it lands on
//! its creator) goes straight to `Restarting`; the callers' [`CallSender`]s find it there.
//!
//! [`CallSender`]: crate::core_worker::call_sender::CallSender
//!
//! Every state change is reported to the GCS actor table; a dead actor's calls fail with
//! `ActorDied`, and its host stops once its handles are gone. A report that the actor lives
//! here waits for the head's answer: sent again while the head cannot be reached, and, when the
//! head records the actor on another node it knows (placed again there while the placement
//! here went unconfirmed), the instance here stops, gives back its resources and goes to
//! `Relocating`: it asks the head where the actor is (again, with a growing pause, while the
//! head cannot say), queueing calls and a kill meanwhile, then forwards them there (`Remote`).
//! Nothing it does there reports the actor dead. One the head records dead is told so and
//! dies here too.

mod call;
mod control;
mod create;
pub(crate) mod directory;
pub(crate) mod env;
mod lifecycle;
mod mailbox;
mod proxy;
pub(crate) mod thread_pool;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

pub(crate) use call::ActorCall;
pub(crate) use control::HostControl;
pub(crate) use create::create;
pub use create::{HostStart, start_host};

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix::prelude::*;
use raya_common::{ActorAddress, ActorId, FastHashMap, TaskId};
use raya_scheduler::TaskArg;

use crate::api::actor::{ActorCell, ActorClass};
use env::HostEnv;
use lifecycle::Lifecycle;
use mailbox::{Running, Slots};

/// How one actor runs (from its options, fixed for its life).
#[derive(Debug)]
struct HostOptions {
    class: &'static str,
    max_concurrency: u32,
    max_restarts: i64,
    max_task_retries: i64,
    max_pending: usize,
    /// Resources held while the actor lives.
    lifetime: raya_common::ResourceSet,
}

/// The Actix actor hosting one user actor (see the module docs).
pub(crate) struct ActorHost<A: ActorClass> {
    id: ActorId,
    env: Arc<HostEnv>,
    cell: Arc<ActorCell<A>>,
    opts: HostOptions,
    lifecycle: Lifecycle,
    /// Calls not yet running, in arrival order.
    queue: VecDeque<ActorCall<A>>,
    /// Calls running (on pool threads or the event loop), by task.
    running: FastHashMap<TaskId, Running<A>>,
    /// How much of the actor's concurrency the running calls use.
    slots: Slots,
    /// The pending argument the front call waits for (a callback is registered for it).
    front_waits_on: Option<raya_common::ObjectId>,
    /// The incarnation: bumped at each restart and at death, so that the late reports of an
    /// earlier incarnation's calls and constructors are ignored.
    generation: u64,
    /// `generation`, for constructors running on pool threads.
    shared_generation: Arc<AtomicU64>,
    restarts: u64,
    /// The constructor's arguments, kept to run it again on restart.
    ctor_args: Vec<TaskArg>,
    /// Every handle was dropped: the actor dies once idle, and the host stops once it is dead.
    handles_dropped: bool,
    /// The head placed the actor here again after its node died, and the constructor has not
    /// reported yet: the placement still holds its resources.
    placed_restart: bool,
    /// Queued calls of other nodes whose results this node already keeps for their owner (kept
    /// when queued, so the owner's lease on this node sees them being made while they wait).
    kept_early: std::cell::RefCell<std::collections::HashSet<TaskId>>,
    /// State reports sent to the GCS: a report is sent again only while it is the latest.
    reports: u64,
    /// A kill that came while the host looked for the actor's node (`Some(no_restart)`),
    /// forwarded there once found.
    relocated_kill: Option<bool>,
}

impl<A: ActorClass> std::fmt::Debug for ActorHost<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHost")
            .field("class", &self.opts.class)
            .field("id", &self.id)
            .field("lifecycle", &self.lifecycle)
            .field("queued", &self.queue.len())
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl<A: ActorClass> ActorHost<A> {
    fn address(&self) -> ActorAddress {
        ActorAddress {
            node: self.env.node,
            actor: self.id,
        }
    }
}

impl<A: ActorClass> Actor for ActorHost<A> {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.env.directory.remove(self.id);
    }
}

impl<A: ActorClass> Handler<HostControl> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, m: HostControl, ctx: &mut Context<Self>) {
        if let Lifecycle::Remote(sender) = &self.lifecycle
            && !matches!(m, HostControl::Construct(_))
        {
            proxy::forward_control(sender, m, ctx);
            return;
        }
        match m {
            HostControl::Placed => self.placed(ctx),
            HostControl::Construct(spec) => self.start_construction(*spec, ctx),
            HostControl::Kill { no_restart } => self.kill(no_restart, ctx),
            HostControl::Cancel { task_id, force } => self.cancel(task_id, force, ctx),
            HostControl::HandlesDropped => self.last_handle_dropped(ctx),
            HostControl::CreationFailed(e) => self.creation_failed((*e).clone(), ctx),
            HostControl::CreatorGone(node) => self.creator_gone(node, ctx),
        }
    }
}
