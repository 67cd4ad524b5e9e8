//! Creating actors: on the node that creates one ([`create`]: register it in the GCS, start its
//! host, submit its placement as a creation task) and on the node the cluster placed it on
//! ([`start_host`]: start a host from the creation task alone and construct the actor).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix::prelude::*;
use raya_cluster::gcs::actors::{
    ActorInfo, ActorState, KeepActorCreation, MAX_CREATION_BYTES, RegisterActor,
};
use raya_common::{ActorId, FastHashMap, TaskId};
use raya_scheduler::{CreationOptions, FunctionDescriptor, TaskArg, TaskKind, TaskSpec};
use raya_store::Lookup;

use super::control::HostControl;
use super::env::HostEnv;
use super::lifecycle::Lifecycle;
use super::mailbox::Slots;
use super::{ActorHost, HostOptions};
use crate::api::actor::{ActorCell, ActorClass, ActorOptions, Lifetime, creation_object};
use crate::api::handle::{ActorHandle, HandleRef, HandleTarget};
use crate::core_worker::CoreWorker;
use crate::error::{Error, Result};
use crate::execution::context;

/// Creates actor `A` on this node: registers it, starts its host and submits its placement.
pub(crate) fn create<A: ActorClass>(
    core: &Arc<CoreWorker>,
    options: ActorOptions,
    ctor_args: Vec<TaskArg>,
) -> Result<ActorHandle<A>> {
    let (placement, lifetime) = options.resource_sets()?;
    let label_selector = crate::api::task::label_selector(&options.label_selector)
        .map_err(Error::InvalidArgument)?;
    let max_concurrency =
        options
            .max_concurrency
            .unwrap_or(if A::HAS_ASYNC_METHODS { 1000 } else { 1 });
    if max_concurrency == 0 {
        return Err(Error::InvalidArgument(
            "max_concurrency must be at least 1".into(),
        ));
    }
    if options.name.as_deref() == Some("") {
        return Err(Error::InvalidArgument(
            "actor names must not be empty".into(),
        ));
    }
    if options.namespace.as_deref() == Some("") {
        return Err(Error::InvalidArgument(
            "an actor's namespace must not be empty".into(),
        ));
    }
    let id = core.ids.actor_id();
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| core.namespace.clone());
    let detached = options.lifetime == Lifetime::Detached;
    let info = ActorInfo {
        actor_id: id,
        class_name: A::CLASS_NAME.to_string(),
        name: options.name.clone(),
        namespace,
        job: core.job,
        node: Some(core.node),
        state: ActorState::PendingCreation,
        detached,
        max_restarts: options.max_restarts,
        max_task_retries: options.max_task_retries,
        num_restarts: 0,
        death_cause: None,
        resources: lifetime.clone(),
        start_time_ms: raya_common::time::now_ms(),
        end_time_ms: None,
    };
    if info.name.is_some() {
        // The name must be checked before the handle is returned.
        context::check_may_block("creating a named actor")?;
        crate::block_on::block_on(core.gcs.request(RegisterActor(info)))?;
    } else {
        core.gcs.notify(RegisterActor(info));
    }
    let env = &core.host_env;
    let cobj = creation_object(id);
    let ready = core.store.add_ref(cobj);
    let opts = HostOptions {
        class: A::CLASS_NAME,
        max_concurrency,
        max_restarts: options.max_restarts,
        max_task_retries: options.max_task_retries,
        max_pending: env.max_pending_calls,
        lifetime: lifetime.clone(),
    };
    // The host of an actor that may restart keeps the constructor's arguments (and the
    // objects they name) while the actor may be constructed again, here or on another node.
    let kept_args = if options.max_restarts != 0 {
        ctor_args.clone()
    } else {
        Vec::new()
    };
    let host = start_host_actor::<A>(env, id, opts, kept_args);
    env.directory.insert(
        id,
        host.clone(),
        detached.then(|| ready.clone()),
        core.node,
        detached,
    );
    let on_free = host.clone().recipient::<HostControl>();
    core.store.on_free(
        cobj,
        Box::new(move || on_free.do_send(HostControl::HandlesDropped)),
    );
    let on_fail = host.clone().recipient::<HostControl>();
    let store = Arc::clone(&core.store);
    core.store.on_ready(
        cobj,
        Box::new(move || match store.get(cobj) {
            Lookup::Failed(e) => on_fail.do_send(HostControl::CreationFailed(e)),
            _ => on_fail.do_send(HostControl::Placed),
        }),
    );
    let spec = TaskSpec {
        task_id: TaskId(id.0),
        job: core.job,
        parent: core.current_task(),
        origin: core.node,
        function: FunctionDescriptor {
            name: A::CLASS_NAME.into(),
            local_index: None,
        },
        args: ctor_args.clone(),
        num_returns: 1,
        resources: placement,
        strategy: options.scheduling_strategy,
        label_selector,
        max_retries: 0,
        retry_exceptions: false,
        attempt: 0,
        kind: TaskKind::ActorCreation {
            actor: id,
            lifetime,
            options: CreationOptions {
                max_concurrency,
                max_restarts: options.max_restarts,
                max_task_retries: options.max_task_retries,
                detached,
                restarts: 0,
            },
        },
    };
    if options.max_restarts != 0 && core.clustered() {
        keep_creation(core, &spec);
    }
    core.tasks.submit(spec)?;
    Ok(ActorHandle::from_ref(HandleRef::new(
        Arc::clone(core),
        HandleTarget {
            id,
            node: core.node,
            max_task_retries: options.max_task_retries,
        },
        ready,
        Some(host),
    )))
}

/// Keeps the creation task `spec` of an actor that may restart in the GCS, so the head can
/// place it again if the actor's node dies. An actor whose task cannot be kept (too large, or
/// past what the head keeps) still runs, and restarts only where it is. Objects passed to the
/// constructor by reference are kept alive by the creator: an actor restarted after its
/// creator is gone cannot read them.
fn keep_creation(core: &Arc<CoreWorker>, spec: &TaskSpec) {
    let TaskKind::ActorCreation { actor, .. } = &spec.kind else {
        return;
    };
    let encoded = raya_cluster::transport::encode_body(spec);
    match encoded {
        Ok(bytes) if bytes.len() <= MAX_CREATION_BYTES => core.gcs.notify(KeepActorCreation {
            actor: *actor,
            creator: core.node,
            spec: bytes,
        }),
        Ok(bytes) => tracing::warn!(
            %actor,
            bytes = bytes.len(),
            "the actor's creation task is too large to keep: it restarts only on its own node \
             (pass large constructor arguments as ObjectRefs)"
        ),
        Err(e) => tracing::warn!(%actor, error = %e, "the actor's creation task cannot be kept"),
    }
}

/// Starts the host actor of actor `id` on one of the node's actor event loops.
fn start_host_actor<A: ActorClass>(
    env: &Arc<HostEnv>,
    id: ActorId,
    opts: HostOptions,
    ctor_args: Vec<TaskArg>,
) -> Addr<ActorHost<A>> {
    let host_env = Arc::clone(env);
    ActorHost::<A>::start_in_arbiter(&env.loops.next(), move |_| ActorHost {
        id,
        env: host_env,
        cell: Arc::new(ActorCell::new()),
        opts,
        lifecycle: Lifecycle::Placing,
        queue: VecDeque::new(),
        running: FastHashMap::default(),
        slots: Slots::default(),
        front_waits_on: None,
        kept_early: Default::default(),
        relocated_kill: None,
        reports: 0,
        generation: 0,
        shared_generation: Arc::new(AtomicU64::new(0)),
        restarts: 0,
        ctor_args,
        handles_dropped: false,
        placed_restart: false,
    })
}

/// An actor creation placed on this node by the cluster: what its host shares with the node's
/// other hosts, and the task to construct it.
#[derive(Debug)]
pub struct HostStart {
    pub(crate) env: Arc<HostEnv>,
    pub(crate) spec: Box<TaskSpec>,
}

/// Starts the host of an actor of type `A` whose creation another node submitted and the
/// cluster placed here, and runs its constructor. Registered for every actor type by
/// `#[raya::actor]`.
pub fn start_host<A: ActorClass>(start: HostStart) {
    let HostStart { env, spec } = start;
    let TaskKind::ActorCreation {
        actor,
        lifetime,
        options,
    } = spec.kind.clone()
    else {
        tracing::error!(task = %spec.task_id, "asked to host an actor by a task that creates none");
        return;
    };
    let opts = HostOptions {
        class: A::CLASS_NAME,
        max_concurrency: options.max_concurrency.max(1),
        max_restarts: options.max_restarts,
        max_task_retries: options.max_task_retries,
        max_pending: env.max_pending_calls,
        lifetime,
    };
    let host = start_host_actor::<A>(&env, actor, opts, Vec::new());
    env.directory
        .insert(actor, host.clone(), None, spec.origin, options.detached);
    host.do_send(HostControl::Construct(spec));
}
