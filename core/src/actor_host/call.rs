//! One call of an actor method, and how it runs and ends through the
//! [execution path](crate::execution): its context, its arguments, its panic, its results.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Message;
use raya_cluster::gcs::task_events::{TaskEvent, TaskKind as EventKind, TaskState};
use raya_common::{ActorId, NodeId, TaskError, TaskErrorKind, TaskId};
use raya_scheduler::TaskArg;

use super::env::HostEnv;
use crate::api::actor::{ActorCell, ActorClass, Context as MethodContext, Method, MethodKind};
use crate::execution::args::Args;
use crate::execution::context::{self, ExecCtx};
use crate::execution::panic::catch;
use crate::execution::results::{Returns, fail_returns, store_output};
use crate::registry::Output;

/// One call of an actor method.
pub(crate) struct ActorCall<A> {
    /// The node that owns the call's results (the caller's).
    pub(crate) owner: NodeId,
    pub(crate) task_id: TaskId,
    pub(crate) method: Method<A>,
    pub(crate) args: Vec<TaskArg>,
    pub(crate) num_returns: u32,
    /// 0 first; one more for each retry after a crash.
    pub(crate) attempt: u32,
    /// The task (or driver) that made the call.
    pub(crate) parent: TaskId,
}

impl<A> Clone for ActorCall<A> {
    fn clone(&self) -> Self {
        ActorCall {
            owner: self.owner,
            task_id: self.task_id,
            method: self.method,
            args: self.args.clone(),
            num_returns: self.num_returns,
            attempt: self.attempt,
            parent: self.parent,
        }
    }
}

impl<A: 'static> Message for ActorCall<A> {
    type Result = ();
}

/// The parts of a call needed to report its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallMeta {
    pub(crate) task_id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) name: &'static str,
    pub(crate) num_returns: u32,
    pub(crate) parent: TaskId,
}

impl CallMeta {
    fn returns(&self) -> Returns<'static> {
        Returns {
            task_id: self.task_id,
            num_returns: self.num_returns,
            name: self.name,
        }
    }
}

impl<A> ActorCall<A> {
    pub(crate) fn meta(&self) -> CallMeta {
        CallMeta {
            task_id: self.task_id,
            attempt: self.attempt,
            name: self.method.name,
            num_returns: self.num_returns,
            parent: self.parent,
        }
    }
}

/// Records that a call of `actor` entered `state`.
pub(crate) fn record_call(env: &HostEnv, actor: ActorId, call: CallMeta, state: TaskState) {
    env.events
        .record(call.task_id, call.attempt, state, || TaskEvent {
            task_id: call.task_id,
            attempt: call.attempt,
            job: env.job,
            name: call.name.to_string(),
            kind: EventKind::ActorTask,
            state,
            node: Some(env.node),
            worker: None,
            actor: Some(actor),
            parent: (!call.parent.is_driver()).then_some(call.parent),
            error: None,
            times: Vec::new(),
        });
}

/// Stores a finished call's output (or error) as its results and records how it ended.
pub(crate) fn finish_call(env: &HostEnv, actor: ActorId, call: CallMeta, output: Output) {
    let stored = store_output(&env.store, call.returns(), output);
    let state = match &stored {
        Ok(()) => TaskState::Finished,
        Err(e) if e.is_cancelled() => TaskState::Cancelled,
        Err(_) => TaskState::Failed,
    };
    record_call(env, actor, call, state);
    if let Err(e) = stored {
        let e = fail_returns(
            &env.store,
            &env.events,
            env.node,
            call.returns(),
            call.attempt,
            e,
        );
        if call.num_returns == 0 {
            tracing::warn!(%actor, error = %e, "a call sent with tell failed");
        }
    }
}

/// What a call running on a pool thread needs.
pub(crate) struct CallEnv<A> {
    pub(crate) id: ActorId,
    pub(crate) restarts: u64,
    pub(crate) cell: Arc<ActorCell<A>>,
    pub(crate) env: Arc<HostEnv>,
    /// Whether a retry may need the arguments again.
    pub(crate) keep_args: bool,
}

/// Runs one synchronous call on the current (pool) thread. A panic hands the call back with
/// its message: the actor crashed.
pub(crate) fn run_sync<A: ActorClass>(
    call_env: &CallEnv<A>,
    mut call: ActorCall<A>,
    cancel: Arc<AtomicBool>,
) -> Result<(), Box<(ActorCall<A>, String)>> {
    let env = &call_env.env;
    let _g = context::enter(ExecCtx::actor_call(call.task_id, call_env.id, cancel));
    record_call(env, call_env.id, call.meta(), TaskState::Running);
    let args = if call_env.keep_args {
        call.args.clone()
    } else {
        std::mem::take(&mut call.args)
    };
    let mut args = Args::new(
        args,
        Arc::clone(&env.store),
        call.method.name.into(),
        call.num_returns,
    );
    let mut ctx = MethodContext::new(call_env.id, env.node, call_env.restarts);
    let cell = &call_env.cell;
    let out = catch(|| match call.method.kind {
        MethodKind::Mut(f) => cell
            .write()
            .and_then(|mut a| f(&mut a, &mut ctx, &mut args)),
        MethodKind::Ref(f) => cell.read().and_then(|a| f(&a, &ctx, &mut args)),
        MethodKind::AsyncMut(_) | MethodKind::AsyncRef(_) => Err(TaskError::new(
            TaskErrorKind::System,
            "async method dispatched to a thread",
        )),
    });
    match out {
        Ok(output) => {
            finish_call(env, call_env.id, call.meta(), output);
            Ok(())
        }
        Err(msg) => Err(Box::new((call, msg))),
    }
}
