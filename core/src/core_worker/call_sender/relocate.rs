//! Finding an actor again after its node died, and what happens to the calls meanwhile.
//!
//! A sender whose actor's node died ([`PeerDied`](super::PeerDied)), or whose batch the link
//! gave up on, asks the GCS where the actor lives (after [`POLL`], then twice as long each
//! time up to [`MAX_POLL`]) until it is alive on a node other than the dead one (the sender
//! sends there from then on, or hands the calls to the host here when the actor came to this
//! node, [`MovedHere`]), dead (every call fails with the cause, which names the node), or
//! [`RELOCATE_WAIT`] passed since the search began (they fail as well). Calls queue meanwhile,
//! [`MAX_QUEUED`](super::MAX_QUEUED) at most.
//!
//! The object manager reports the results of this node's calls that a dead node was making
//! ([`Recover`], through [`LostCalls`], after the local scheduler took those it knows): each
//! sender takes those of its calls it sent there, or passed through the actor's creator, and
//! sends them again when `max_task_retries` allows (at least once: the call may have run), or
//! fails them with `ActorDied` naming the node. Calls of other owners that the creator passed
//! on are sent again by their owners, except those the dead node never confirmed taking
//! (their owners do not know they went there).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use raya_cluster::gcs::actors::{ActorState, GetActor};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, TaskId};
use raya_store::{Loss, Recover, Status};

use super::{CallSender, MAX_TRACKED, MAX_TRACKED_BYTES, Outgoing, RemoteActors};
use crate::actor_host::wire::WireActorCall;

/// How long a sender waits before it first asks the GCS where the actor went.
const POLL: Duration = Duration::from_millis(100);

/// How long it waits between questions, at most.
const MAX_POLL: Duration = Duration::from_secs(2);

/// How long a sender looks for an actor whose node died before failing its calls: long enough
/// for the head to place it again on a busy cluster, and for a restarted head to come back.
pub(crate) const RELOCATE_WAIT: Duration = Duration::from_secs(300);

/// A search for the actor under way.
pub(super) struct Search {
    /// The node that died, which the actor is not looked for on again (none when a batch was
    /// not delivered and the node may be alive).
    avoid: Option<NodeId>,
    started: Instant,
    /// Tells this search's answers from those of an earlier one.
    round: u64,
}

/// What the GCS says of the actor.
enum Found {
    At(NodeId),
    Dead(String),
    GaveUp(String),
}

impl CallSender {
    /// Looks for the actor in the GCS (see the module docs); calls queue until it is found.
    pub(super) fn relocate(&mut self, avoid: Option<NodeId>, ctx: &mut Context<Self>) {
        if self.dead.is_some() {
            return;
        }
        if let Some(search) = &mut self.relocating {
            // A search under way learns that the node died.
            if avoid.is_some() {
                search.avoid = avoid;
            }
            return;
        }
        if let Some(dead) = avoid {
            tracing::info!(actor = %self.actor, node = %dead, "the actor's node died: looking for the actor elsewhere");
        }
        self.rounds += 1;
        self.relocating = Some(Search {
            avoid,
            started: Instant::now(),
            round: self.rounds,
        });
        self.ask_gcs(POLL, ctx);
    }

    /// Asks the GCS where the actor is, after `pause`.
    fn ask_gcs(&mut self, pause: Duration, ctx: &mut Context<Self>) {
        let (gcs, actor) = (self.gcs.clone(), self.actor);
        let round = self.rounds;
        ctx.spawn(
            async move {
                actix_rt::time::sleep(pause).await;
                match gcs.request(GetActor(actor)).await {
                    Ok(Some(info)) => match (info.state, info.node) {
                        (ActorState::Dead, _) => Some(Found::Dead(
                            info.death_cause.unwrap_or_else(|| "it died".into()),
                        )),
                        (ActorState::Alive, Some(n)) => Some(Found::At(n)),
                        _ => None,
                    },
                    Ok(None) => Some(Found::Dead("the GCS does not know it".into())),
                    Err(e) => Some(Found::GaveUp(e.to_string())),
                }
            }
            .into_actor(self)
            .map(move |found, this, ctx| this.answered(round, pause, found, ctx)),
        );
    }

    /// The GCS answered search `round`: the actor was found, or the search goes on (the actor
    /// is not alive yet, the GCS still names the dead node, or the GCS cannot be reached)
    /// until [`RELOCATE_WAIT`] has passed.
    fn answered(
        &mut self,
        round: u64,
        pause: Duration,
        found: Option<Found>,
        ctx: &mut Context<Self>,
    ) {
        let Some(search) = &self.relocating else {
            return;
        };
        if search.round != round {
            return;
        }
        let (avoid, started) = (search.avoid, search.started);
        let settled = match found {
            Some(Found::At(n)) if Some(n) == avoid => None,
            Some(Found::GaveUp(why)) => {
                self.last_error = why;
                None
            }
            other => other,
        };
        match settled {
            Some(found) => self.found(found, ctx),
            None if started.elapsed() < RELOCATE_WAIT => {
                self.ask_gcs((pause * 2).min(MAX_POLL), ctx);
            }
            None => {
                let why = std::mem::take(&mut self.last_error);
                self.found(Found::GaveUp(why), ctx);
            }
        }
    }

    /// The search ended.
    fn found(&mut self, found: Found, ctx: &mut Context<Self>) {
        let avoid = self.relocating.take().and_then(|s| s.avoid);
        match found {
            Found::At(n) => {
                if n != self.node {
                    tracing::info!(actor = %self.actor, from = %self.node, to = %n, "the actor lives on another node now");
                }
                self.node = n;
                self.batch_limit = super::MAX_BATCH;
            }
            Found::Dead(cause) => {
                self.dead = Some(TaskError::new(
                    TaskErrorKind::ActorDied,
                    format!("actor {} is dead: {cause}", self.actor),
                ));
            }
            Found::GaveUp(why) => {
                let node = avoid.unwrap_or(self.node);
                let why = if why.is_empty() {
                    "it was not alive".to_string()
                } else {
                    format!("last: {why}")
                };
                self.dead = Some(TaskError::new(
                    TaskErrorKind::ActorDied,
                    format!(
                        "actor {} lived on node {node}, which died or could not be reached, and \
                         was not found alive on another node within {} s ({why})",
                        self.actor,
                        RELOCATE_WAIT.as_secs()
                    ),
                ));
            }
        }
        if self.dead.is_some() {
            self.fail_queued();
            return;
        }
        self.flush(ctx);
    }

    /// The actor lives on this node now: the queue goes to its host here.
    pub(super) fn deliver_here(&mut self) {
        let mut taken = Vec::new();
        let mut undelivered = Vec::new();
        while let Some(next) = self.queue.pop_front() {
            match next {
                Outgoing::Control(c) => {
                    self.directory.control(self.actor, c.into());
                }
                Outgoing::Call(call) => {
                    let kept = call.clone();
                    if self.directory.deliver(call).is_err() {
                        undelivered.push(kept.task_id);
                    }
                    taken.push(kept);
                }
            }
        }
        self.delivered(taken, &undelivered);
    }

    /// Keeps delivered call `c` of this node until its results are made, letting go of those
    /// that are.
    pub(super) fn track(&mut self, c: WireActorCall, to: NodeId) {
        let size = super::wire_size(&c);
        while let Some((front, _)) = self.delivered.front() {
            let done = self.store.status(ObjectId::for_return(front.task_id, 0)) != Status::Pending;
            let full = self.delivered.len() >= MAX_TRACKED
                || self.delivered_bytes + size > MAX_TRACKED_BYTES;
            if !done && !full {
                break;
            }
            self.delivered_bytes = self.delivered_bytes.saturating_sub(super::wire_size(front));
            self.delivered.pop_front();
        }
        self.delivered_bytes += size;
        self.delivered.push_back((c, to));
    }

    /// Calls node `node` took (or may have taken) and will not finish: sent again, first in
    /// the queue, when `max_task_retries` allows, else failed with `ActorDied` naming it.
    /// Calls of other owners that the node confirmed taking (`acked`) are left to their owners,
    /// which were told they went there.
    pub(super) fn calls_lost(&mut self, calls: Vec<WireActorCall>, node: NodeId, acked: bool) {
        let me = self.me;
        let calls: Vec<WireActorCall> = calls
            .into_iter()
            .filter(|c| !acked || c.owner == me)
            .collect();
        if let Some(e) = &self.dead {
            let err = Arc::new(e.clone());
            for c in &calls {
                self.fail_results(c.task_id, c.num_returns, c.owner, &err);
            }
            return;
        }
        for mut c in calls.into_iter().rev() {
            if self.may_resend(c.attempt) {
                c.attempt = c.attempt.saturating_add(1);
                self.queue.push_front(Outgoing::Call(c));
            } else {
                let err = Arc::new(TaskError::new(
                    TaskErrorKind::ActorDied,
                    format!(
                        "actor {} was running the call on node {node}, which died, and its \
                         max_task_retries ({}) do not allow running it again",
                        self.actor, self.max_task_retries
                    ),
                ));
                self.fail_results(c.task_id, c.num_returns, c.owner, &err);
            }
        }
    }
}

/// The actor came to live on this node (its creation was placed back on its creator, whose
/// host now constructs it): the calls this sender holds go to the host here at once, ahead of
/// the calls local handles make from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct MovedHere;

impl Handler<MovedHere> for CallSender {
    type Result = ();
    fn handle(&mut self, _: MovedHere, ctx: &mut Context<Self>) {
        if self.dead.is_some() {
            return;
        }
        // A search under way is over: its answers are ignored.
        self.relocating = None;
        self.node = self.me;
        self.flush(ctx);
    }
}

/// Calls of this node whose results node `node` was making, lost with it: a sender takes its
/// own and answers with their ids.
#[derive(Message)]
#[rtype(result = "Vec<TaskId>")]
struct RetryLost {
    node: NodeId,
    calls: Arc<HashSet<TaskId>>,
}

impl Handler<RetryLost> for CallSender {
    type Result = MessageResult<RetryLost>;
    fn handle(&mut self, m: RetryLost, ctx: &mut Context<Self>) -> Self::Result {
        if m.node == self.node {
            self.relocate(Some(m.node), ctx);
        }
        let mut taken = Vec::new();
        let mut lost = Vec::new();
        // Only what went to that node, or to the actor's creator, which may have passed it on
        // there (not what was sent since to the node the actor moved to).
        let creator = self.actor.node_tag();
        let went = |to: NodeId| to == m.node || to.tag() == creator;
        let mut freed = 0;
        self.delivered.retain(|(c, to)| {
            if went(*to) && m.calls.contains(&c.task_id) {
                freed += super::wire_size(c);
                lost.push(c.clone());
                false
            } else {
                true
            }
        });
        self.delivered_bytes = self.delivered_bytes.saturating_sub(freed);
        if let Some(f) = self.in_flight.as_mut().filter(|f| went(f.to)) {
            for t in f.calls.iter().filter(|t| m.calls.contains(t)) {
                f.lost.insert(*t);
                taken.push(*t);
            }
        }
        // Calls sent again after a link gave up wait in the queue: they go out anyway.
        taken.extend(self.queue.iter().filter_map(|o| match o {
            Outgoing::Call(c) if m.calls.contains(&c.task_id) => Some(c.task_id),
            _ => None,
        }));
        taken.extend(lost.iter().map(|c| c.task_id));
        self.calls_lost(lost, m.node, true);
        self.flush(ctx);
        MessageResult(taken)
    }
}

/// The object manager's last stop for lost objects ([`Recover`]): actor calls this node made
/// go to their senders, which run them again or fail them; what none of them sent goes back.
pub(crate) struct LostCalls {
    pub(crate) remote: Arc<RemoteActors>,
}

impl Actor for LostCalls {
    type Context = Context<Self>;
}

impl Handler<Recover> for LostCalls {
    type Result = ResponseFuture<Vec<ObjectId>>;
    fn handle(&mut self, m: Recover, _: &mut Context<Self>) -> Self::Result {
        // A result made and lost is not run again (as in Ray, an actor call's result is not
        // rebuilt from lineage); one still being made is.
        let making: HashSet<TaskId> = m
            .lost
            .iter()
            .filter(|(_, l)| *l == Loss::Making)
            .map(|(id, _)| id.task)
            .collect();
        let calls = Arc::new(making);
        let asked: Vec<_> = self
            .remote
            .all()
            .into_iter()
            .map(|s| {
                s.send(RetryLost {
                    node: m.node,
                    calls: Arc::clone(&calls),
                })
            })
            .collect();
        Box::pin(async move {
            let mut taken = HashSet::new();
            for a in asked {
                if let Ok(t) = a.await {
                    taken.extend(t);
                }
            }
            m.lost
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| !taken.contains(&id.task))
                .collect()
        })
    }
}
