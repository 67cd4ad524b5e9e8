//! The actor's life: constructing it (on a pool thread), restarting it after a crash, and its
//! death, with what each step owes the scheduler (placement and lifetime resources), the store
//! (the creation object) and the GCS (the actor's state).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use raya_cluster::gcs::GcsError;
use raya_cluster::gcs::actors::{ActorState, UpdateActor};
use raya_common::{TaskError, TaskErrorKind, TaskFrame, TaskId, Value};
use raya_scheduler::{CancelTask, ReleaseResources, TaskDone, TaskOutcome, TaskSpec};

use super::ActorHost;
use super::call::ActorCall;
use super::control::Constructed;
use crate::api::actor::{ActorClass, Context as MethodContext, creation_object};
use crate::core_worker::call_sender::{CallSender, MovedHere};
use crate::execution::args::Args;
use crate::execution::context::{self, ExecCtx};
use crate::execution::panic::{catch, panic_message};

/// How many times an actor's state report is sent when the head cannot be reached (each after
/// the link's own delivery bound ran out).
const REPORT_ATTEMPTS: u32 = 5;

/// The pause before a state report is sent again.
const REPORT_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Where an actor is in its life (see the diagram in the module docs of the host).
#[derive(Debug)]
pub(super) enum Lifecycle {
    /// Created, waiting to be placed: no constructor has run; calls queue.
    Placing,
    /// The first constructor runs here; calls queue.
    Starting,
    /// Constructed: calls run. The actor holds its lifetime resources.
    Alive,
    /// The constructor runs again after a crash or a kill with restarts left; calls queue. The
    /// lifetime resources stay held (or, placed here again after the actor's node died, the
    /// placement's resources until the constructor reports).
    Restarting,
    /// Constructed on another node: calls and controls are forwarded there.
    Remote(Addr<CallSender>),
    /// The instance here stopped because the head records the actor on another node, which is
    /// being looked up: calls queue, a kill waits to be forwarded. Nothing here reports the
    /// actor dead (it lives on elsewhere).
    Relocating,
    /// Dead for good, with the cause: calls fail.
    Dead(Arc<TaskError>),
}

impl Lifecycle {
    /// Whether the first construction has not ended yet (the creation object is pending and the
    /// placement may still hold resources).
    pub(super) fn before_creation(&self) -> bool {
        matches!(self, Lifecycle::Placing | Lifecycle::Starting)
    }

    /// Whether the actor was constructed here (it holds its lifetime resources).
    pub(super) fn constructed(&self) -> bool {
        matches!(self, Lifecycle::Alive | Lifecycle::Restarting)
    }
}

impl<A: ActorClass> ActorHost<A> {
    /// The creation task (the id the actor was placed as).
    pub(super) fn creation_task(&self) -> TaskId {
        TaskId(self.id.0)
    }

    pub(super) fn died_error(&self, cause: &TaskError) -> TaskError {
        TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} ({}) is dead: {}",
                self.id, self.opts.class, cause.message
            ),
        )
    }

    fn can_restart(&self) -> bool {
        self.opts.max_restarts < 0 || self.restarts < self.opts.max_restarts as u64
    }

    /// Tells the GCS the actor's state here. A death is told and done (the head records what
    /// dies with its node either way). A report that the actor lives here (`Alive`,
    /// `Restarting`) must be acknowledged: one the head could not be reached for is sent again
    /// while it is still the latest ([`REPORT_ATTEMPTS`]), and one the head refuses, because
    /// it records the actor on another node, stops the instance here
    /// ([`Self::placed_elsewhere`]); one it refuses because it records the actor dead makes
    /// the actor die here too.
    fn report_state(&mut self, state: ActorState, cause: Option<String>, ctx: &mut Context<Self>) {
        self.reports += 1;
        let report = UpdateActor {
            actor_id: self.id,
            state,
            node: Some(self.env.node),
            num_restarts: self.restarts,
            death_cause: cause,
        };
        if state == ActorState::Dead {
            self.env.gcs.notify(report);
        } else {
            self.send_report(report, self.reports, 1, ctx);
        }
    }

    fn send_report(&self, report: UpdateActor, seq: u64, attempt: u32, ctx: &mut Context<Self>) {
        let answer = self.env.gcs.notify_acknowledged(report.clone());
        let generation = self.generation;
        ctx.spawn(answer.into_actor(self).map(move |answer, this, ctx| {
            let latest = this.reports == seq && this.generation == generation;
            match answer {
                Ok(()) => {}
                Err(GcsError::ActorElsewhere(why)) if latest => this.placed_elsewhere(&why, ctx),
                Err(GcsError::ActorDead(cause)) if latest => {
                    tracing::warn!(actor = %this.id, class = this.opts.class, %cause, "the head records this actor dead: stopping the instance here");
                    this.die(TaskError::new(TaskErrorKind::ActorDied, cause), ctx);
                }
                // The node left: the head no longer takes its reports (nor needs them).
                Err(GcsError::Unavailable) if this.env.gcs.has_left() => {}
                Err(GcsError::Unavailable) if latest && attempt < REPORT_ATTEMPTS => {
                    tracing::debug!(actor = %this.id, attempt, "the head did not answer the actor's state report: sending it again");
                    ctx.run_later(REPORT_PAUSE, move |this, ctx| {
                        if this.reports == seq && this.generation == generation {
                            this.send_report(report, seq, attempt + 1, ctx);
                        }
                    });
                }
                Err(e) if latest => {
                    tracing::error!(actor = %this.id, state = ?report.state, error = %e, "the GCS did not take the actor's state")
                }
                // A later report says more.
                Err(_) => {}
            }
        }));
    }

    /// The head refused to record the actor here: it records it on, or placed it on, another
    /// node it knows (it was placed again there while the placement here went unconfirmed).
    /// The instance here stops and gives back what it held, with no death reported (the actor
    /// lives on elsewhere); its calls go to the node the head records, once found
    /// ([`Lifecycle::Relocating`]).
    fn placed_elsewhere(&mut self, why: &str, ctx: &mut Context<Self>) {
        if !self.lifecycle.constructed() {
            return;
        }
        tracing::warn!(actor = %self.id, class = self.opts.class, reason = %why, "the head records this actor on another node: stopping the instance here");
        self.bump_generation();
        let err = TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} ({}) was stopped on this node, the head records it elsewhere: {why}",
                self.id, self.opts.class
            ),
        );
        self.rerun_running(&err, ctx);
        self.clear_state();
        self.give_back_held(true);
        self.lifecycle = Lifecycle::Relocating;
        self.relocate(0, ctx);
    }

    fn bump_generation(&mut self) {
        self.generation += 1;
        self.shared_generation
            .store(self.generation, Ordering::SeqCst);
    }

    /// `Construct`: the scheduler placed the actor here.
    /// A creation task that places the actor again after its node died (its restart count
    /// above 0) finds the host placing (started for it) or forwarding (the creator's) and
    /// constructs it as a restart.
    pub(super) fn start_construction(&mut self, spec: TaskSpec, ctx: &mut Context<Self>) {
        let restarts = match &spec.kind {
            raya_scheduler::TaskKind::ActorCreation { options, .. } => options.restarts,
            _ => 0,
        };
        let placing = matches!(self.lifecycle, Lifecycle::Placing);
        let relocating = matches!(self.lifecycle, Lifecycle::Relocating);
        if placing && restarts == 0 {
            self.ctor_args = spec.args;
            self.lifecycle = Lifecycle::Starting;
            self.construct(ctx);
        } else if relocating && restarts > 0 && self.relocated_kill == Some(true) {
            // Killed for good while it was looked for, and now placed here: it dies here.
            self.relocated_kill = None;
            self.env.scheduler.do_send(TaskDone {
                worker: None,
                task_id: spec.task_id,
                outcome: TaskOutcome::Failed,
            });
            self.die(killed(), ctx);
        } else if restarts > 0
            && (placing || relocating || matches!(self.lifecycle, Lifecycle::Remote(_)))
        {
            // A kill that allowed a restart, sent while the host looked for the actor, is
            // this restart.
            self.relocated_kill = None;
            tracing::info!(actor = %self.id, class = self.opts.class, restarts, "constructing the actor here: its node died");
            self.ctor_args = spec.args;
            self.restarts = restarts;
            self.placed_restart = true;
            self.bump_generation();
            let was = std::mem::replace(&mut self.lifecycle, Lifecycle::Restarting);
            if let Lifecycle::Remote(sender) = was {
                // The creator's host: what it forwarded and the sender still holds comes back
                // here first.
                sender.do_send(MovedHere);
            }
            self.construct(ctx);
        } else {
            if restarts > 0 && self.lifecycle.constructed() {
                // Placed here again (a placement the head could not confirm, sent once more):
                // the actor is here already; the GCS hears so again.
                let state = match self.lifecycle {
                    Lifecycle::Alive => ActorState::Alive,
                    _ => ActorState::Restarting,
                };
                self.report_state(state, None, ctx);
            }
            self.env.scheduler.do_send(TaskDone {
                worker: None,
                task_id: spec.task_id,
                outcome: TaskOutcome::Failed,
            });
        }
    }

    /// Runs the constructor on a pool thread; [`Constructed`] reports the result.
    fn construct(&mut self, ctx: &mut Context<Self>) {
        let args = self.ctor_args.clone();
        let cell = Arc::clone(&self.cell);
        let env = Arc::clone(&self.env);
        let me = ctx.address();
        let generation = self.generation;
        let shared_gen = Arc::clone(&self.shared_generation);
        let (id, class, restarts) = (self.id, self.opts.class, self.restarts);
        let creation_task = self.creation_task();
        self.env.threads.execute(move || {
            let _g = context::enter(ExecCtx::actor_call(
                creation_task,
                id,
                Arc::new(AtomicBool::new(false)),
            ));
            let mut args = Args::new(args, Arc::clone(&env.store), class.into(), 1);
            let built = catch(|| {
                let mut a = A::construct(&mut args)?;
                a.started(&mut MethodContext::new(id, env.node, restarts));
                Ok::<A, TaskError>(a)
            });
            let result = match built {
                Ok(Ok(a)) => {
                    // Installed only if no kill or restart happened meanwhile.
                    if shared_gen.load(Ordering::SeqCst) == generation {
                        let old = cell.replace(Some(a));
                        drop(old);
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(msg) => Err(TaskError::new(
                    TaskErrorKind::Panic,
                    format!("constructor of {class} panicked: {msg}"),
                )),
            };
            me.do_send(Constructed { generation, result });
        });
    }

    /// Drops the actor's state on a pool thread (a call still running may be using it), running
    /// its `stopped` hook.
    fn clear_state(&self) {
        let cell = Arc::clone(&self.cell);
        let (id, node, restarts) = (self.id, self.env.node, self.restarts);
        self.env.threads.execute(move || {
            if let Some(mut a) = cell.replace(None)
                && let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    a.stopped(&mut MethodContext::new(id, node, restarts))
                }))
            {
                tracing::warn!(actor = %id, panic = %panic_message(p), "the actor's stopped() hook panicked");
            }
        });
    }

    /// The actor dies before its first construction ended (killed, out of scope, or placed on
    /// a node that cannot be found): the creation object fails, the placement's resources go
    /// back, then it [dies](Self::die).
    pub(super) fn abort_creation(&mut self, cause: TaskError, ctx: &mut Context<Self>) {
        self.env
            .store
            .fail(creation_object(self.id), Arc::new(self.died_error(&cause)));
        // The placement may still be queued (the cancel drops it) or already granted, its
        // `Construct` in flight to a host that is about to stop: the `TaskDone` gives the
        // placement resources back either way (it is a no-op for a task no longer running).
        let task_id = self.creation_task();
        self.env.scheduler.do_send(CancelTask {
            task_id,
            force: false,
            recursive: false,
        });
        self.env.scheduler.do_send(TaskDone {
            worker: None,
            task_id,
            outcome: TaskOutcome::Failed,
        });
        self.die(cause, ctx);
    }

    /// The actor dies for good: queued and running calls fail, its state is dropped, what it
    /// held goes back, the GCS records it dead.
    pub(super) fn die(&mut self, cause: TaskError, ctx: &mut Context<Self>) {
        if matches!(self.lifecycle, Lifecycle::Dead(_)) {
            return;
        }
        tracing::debug!(actor = %self.id, class = self.opts.class, cause = %cause, "actor died");
        let died = self.died_error(&cause);
        let was = std::mem::replace(
            &mut self.lifecycle,
            Lifecycle::Dead(Arc::new(cause.clone())),
        );
        self.bump_generation();
        for call in std::mem::take(&mut self.queue) {
            self.fail_call(&call, &died);
        }
        self.abandon_running(&died, ctx);
        self.clear_state();
        self.give_back_held(was.constructed());
        self.report_state(ActorState::Dead, Some(cause.message.clone()), ctx);
        self.env.directory.release_keep_alive(self.id);
        if self.handles_dropped {
            ctx.stop();
        }
    }

    /// The actor this host was looking for ([`Lifecycle::Relocating`]) is dead or gone from the
    /// head's records: its calls here fail. Unlike [`Self::die`] nothing is reported (the node
    /// it lived on, or the head, recorded its end) and nothing is held here any more.
    pub(super) fn gone(&mut self, cause: TaskError, ctx: &mut Context<Self>) {
        tracing::debug!(actor = %self.id, class = self.opts.class, cause = %cause, "the actor this host looked for is gone");
        let died = self.died_error(&cause);
        self.lifecycle = Lifecycle::Dead(Arc::new(cause));
        self.bump_generation();
        self.relocated_kill = None;
        for call in std::mem::take(&mut self.queue) {
            self.fail_call(&call, &died);
        }
        self.env.directory.release_keep_alive(self.id);
        if self.handles_dropped {
            ctx.stop();
        }
    }

    /// Gives back what the instance here held: the placement of a restart placed here and
    /// not constructed yet (the lifetime resources were never taken), else, when it was
    /// `constructed`, its lifetime resources.
    fn give_back_held(&mut self, constructed: bool) {
        if std::mem::take(&mut self.placed_restart) {
            self.env.scheduler.do_send(TaskDone {
                worker: None,
                task_id: self.creation_task(),
                outcome: TaskOutcome::Failed,
            });
        } else if constructed {
            self.env
                .scheduler
                .do_send(ReleaseResources(self.opts.lifetime.clone()));
        }
    }

    fn restart(&mut self, reason: &str, ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.bump_generation();
        self.lifecycle = Lifecycle::Restarting;
        let err = TaskError::new(
            TaskErrorKind::ActorDied,
            format!(
                "actor {} ({}) restarted while running the call: {reason}",
                self.id, self.opts.class
            ),
        );
        self.rerun_running(&err, ctx);
        tracing::info!(actor = %self.id, class = self.opts.class, restarts = self.restarts, %reason, "restarting actor");
        self.report_state(ActorState::Restarting, None, ctx);
        self.construct(ctx);
    }

    /// A call crashed the actor (a panic): retry the call if allowed, restart or die.
    pub(super) fn crashed(
        &mut self,
        call: Option<ActorCall<A>>,
        msg: String,
        ctx: &mut Context<Self>,
    ) {
        let can_restart = self.can_restart();
        if let Some(mut call) = call {
            let retries = self.opts.max_task_retries;
            if can_restart && (retries < 0 || (call.attempt as i64) < retries) {
                call.attempt += 1;
                self.queue.push_front(call);
            } else {
                let err = TaskError::new(TaskErrorKind::Panic, msg.clone());
                self.fail_call(&call, &err);
            }
        }
        if can_restart {
            self.restart(&msg, ctx);
        } else {
            self.die(TaskError::new(TaskErrorKind::Panic, msg), ctx);
        }
    }

    /// `Kill`: restart when allowed and asked, else die.
    pub(super) fn kill(&mut self, no_restart: bool, ctx: &mut Context<Self>) {
        match self.lifecycle {
            Lifecycle::Dead(_) => {}
            Lifecycle::Alive | Lifecycle::Restarting if !no_restart && self.can_restart() => {
                self.restart("killed with restart allowed", ctx)
            }
            Lifecycle::Placing | Lifecycle::Starting => self.abort_creation(killed(), ctx),
            // Where the actor is is not known yet: the kill goes there once it is.
            Lifecycle::Relocating => {
                self.relocated_kill = Some(self.relocated_kill.unwrap_or(false) || no_restart)
            }
            _ => self.die(killed(), ctx),
        }
    }

    /// `HandlesDropped`: the actor is out of scope.
    pub(super) fn last_handle_dropped(&mut self, ctx: &mut Context<Self>) {
        self.handles_dropped = true;
        match self.lifecycle {
            Lifecycle::Dead(_) => ctx.stop(),
            Lifecycle::Alive if self.idle() => self.pump(ctx),
            Lifecycle::Placing | Lifecycle::Starting if self.idle() => {
                self.abort_creation(out_of_scope(), ctx)
            }
            _ => {}
        }
    }

    /// `CreatorGone`: the node that created this actor (not detached) died or left: the actor
    /// dies with it, and what it held goes back.
    pub(super) fn creator_gone(&mut self, creator: raya_common::NodeId, ctx: &mut Context<Self>) {
        let cause = TaskError::new(
            TaskErrorKind::ActorDied,
            format!("its creator, node {creator}, is gone (the actor was not detached)"),
        );
        tracing::info!(actor = %self.id, class = self.opts.class, %creator, "the actor's creator is gone: the actor dies with it");
        if matches!(self.lifecycle, Lifecycle::Relocating) {
            // The node the actor lives on hears of the creator's death itself.
            self.gone(cause, ctx);
        } else if self.lifecycle.before_creation() {
            self.abort_creation(cause, ctx);
        } else {
            self.die(cause, ctx);
        }
        // Nobody is left to drop its handles.
        self.handles_dropped = true;
        if matches!(self.lifecycle, Lifecycle::Dead(_)) {
            ctx.stop();
        }
    }

    /// `CreationFailed`: the actor could not be placed (the creation object holds why).
    pub(super) fn creation_failed(&mut self, error: TaskError, ctx: &mut Context<Self>) {
        if self.lifecycle.before_creation() {
            self.die(error, ctx);
        }
    }
}

impl<A: ActorClass> Handler<Constructed> for ActorHost<A> {
    type Result = ();
    fn handle(&mut self, m: Constructed, ctx: &mut Context<Self>) {
        if m.generation != self.generation {
            return;
        }
        let first = matches!(self.lifecycle, Lifecycle::Starting);
        if std::mem::take(&mut self.placed_restart) {
            // The placement's resources become the actor's lifetime resources, whatever the
            // constructor did (a failure is a crash of the restarted actor).
            self.env.scheduler.do_send(TaskDone {
                worker: None,
                task_id: self.creation_task(),
                outcome: TaskOutcome::ActorCreated {
                    keep: self.opts.lifetime.clone(),
                },
            });
        }
        match m.result {
            Ok(()) => {
                self.lifecycle = Lifecycle::Alive;
                if first {
                    if let Err(e) = self
                        .env
                        .store
                        .complete(creation_object(self.id), Value::new(()))
                    {
                        tracing::warn!(actor = %self.id, error = %e, "could not record the actor as ready");
                    }
                    self.env.scheduler.do_send(TaskDone {
                        worker: None,
                        task_id: self.creation_task(),
                        outcome: TaskOutcome::ActorCreated {
                            keep: self.opts.lifetime.clone(),
                        },
                    });
                }
                self.report_state(ActorState::Alive, None, ctx);
                self.pump(ctx);
            }
            Err(e) if first && e.kind == TaskErrorKind::Panic && self.can_restart() => {
                // A panicking constructor is a crash, the first one too: constructed again
                // (an `Err` it returns is the actor refusing to start, as in Ray: not retried).
                self.restarts += 1;
                self.bump_generation();
                tracing::info!(actor = %self.id, class = self.opts.class, restarts = self.restarts, error = %e.message, "constructor panicked: constructing again");
                self.report_state(ActorState::Restarting, None, ctx);
                self.construct(ctx);
            }
            Err(e) if first => {
                // The constructor's own error is what `ready()` and every call report.
                let e = e.with_frame(TaskFrame {
                    task: self.creation_task(),
                    function: self.opts.class.to_string(),
                    node: Some(self.env.node),
                });
                self.env
                    .store
                    .fail(creation_object(self.id), Arc::new(e.clone()));
                self.env.scheduler.do_send(TaskDone {
                    worker: None,
                    task_id: self.creation_task(),
                    outcome: TaskOutcome::Failed,
                });
                self.die(e, ctx);
            }
            Err(e) => self.crashed(
                None,
                format!("constructor failed on restart: {}", e.message),
                ctx,
            ),
        }
    }
}

fn killed() -> TaskError {
    TaskError::new(TaskErrorKind::ActorDied, "killed by raya::kill")
}

/// The cause of death of an actor whose handles are all gone.
pub(super) fn out_of_scope() -> TaskError {
    TaskError::new(
        TaskErrorKind::ActorDied,
        "all handles to the actor were dropped",
    )
}
