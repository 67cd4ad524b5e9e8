//! Handles to actors: [`ActorHandle`] (what users hold and pass around), the counted
//! [`HandleRef`] inside it, and the calls that create, find and kill actors.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use raya_cluster::gcs::actors::{ActorState, GetNamedActor};
use raya_common::{ActorAddress, ActorId, NodeId, TaskError, TaskErrorKind, Value};
use raya_scheduler::TaskArg;
use raya_store::RawRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::actor::{
    ActorClass, ActorOptions, Handler, Message, Method, creation_object, handler_method,
};
use super::args::IntoArg;
use super::object::ObjectRef;
use crate::actor_host::{ActorHost, HostControl};
use crate::core_worker::CoreWorker;
use crate::core_worker::call_sender::{CallSender, RELOCATE_WAIT};
use crate::error::{Error, Result};
use crate::execution::context::check_may_block;

/// A counted reference to an actor: what handles and generated method structs hold.
pub struct HandleRef<A: ActorClass> {
    inner: Arc<HandleInner<A>>,
}

/// Where one actor is, as a handle knows it.
pub(crate) struct HandleInner<A: ActorClass> {
    pub(crate) id: ActorId,
    pub(crate) node: NodeId,
    /// The actor's `max_task_retries`: how often a call that may have run is sent again.
    pub(crate) max_task_retries: i64,
    /// The actor's creation object: every handle holds a reference to it, so the store's
    /// reference counting (including handles inside values and spilled objects) says when the
    /// last handle is gone.
    pub(crate) ready: RawRef,
    /// The actor's host, when it is on this node.
    pub(crate) host: Option<actix::Addr<ActorHost<A>>>,
    /// Where calls go when the actor's host is on another node.
    pub(crate) remote: Option<actix::Addr<CallSender>>,
    pub(crate) core: Arc<CoreWorker>,
}

impl<A: ActorClass> Clone for HandleRef<A> {
    fn clone(&self) -> Self {
        HandleRef {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<A: ActorClass> fmt::Debug for HandleRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandleRef<{}>({})", A::CLASS_NAME, self.inner.id)
    }
}

/// Which actor a handle names, where it lives, and the option its callers keep to.
pub(crate) struct HandleTarget {
    pub(crate) id: ActorId,
    pub(crate) node: NodeId,
    pub(crate) max_task_retries: i64,
}

impl<A: ActorClass> HandleRef<A> {
    pub(crate) fn new(
        core: Arc<CoreWorker>,
        target: HandleTarget,
        ready: RawRef,
        host: Option<actix::Addr<ActorHost<A>>>,
    ) -> Self {
        let HandleTarget {
            id,
            node,
            max_task_retries,
        } = target;
        // No host here: the actor lives on `node`, reached through the network.
        let remote = match &host {
            None if node != core.node && core.clustered() => {
                Some(core.host_env.remote.sender(id, node, max_task_retries))
            }
            _ => None,
        };
        HandleRef {
            inner: Arc::new(HandleInner {
                id,
                node,
                max_task_retries,
                ready,
                host,
                remote,
                core,
            }),
        }
    }

    /// The actor's id.
    pub fn actor_id(&self) -> ActorId {
        self.inner.id
    }

    /// Calls `method` with `args`; the reply goes to the returned object. Used by generated code.
    pub fn call<R>(&self, method: Method<A>, args: Vec<TaskArg>) -> ObjectRef<R> {
        let r = self
            .inner
            .core
            .call_actor(&self.inner, method, args, 1)
            .pop()
            .expect("one return requested");
        ObjectRef::from_raw(r)
    }

    /// Calls `method` without keeping its reply. A call the actor's `max_task_retries` lets
    /// run again is followed like any other, through a result this node keeps until it
    /// settles (then lets go): that result is how a call lost with the actor's node is known,
    /// and sent again to the restarted actor. A call that may not run again needs none.
    pub fn call_no_reply(&self, method: Method<A>, args: Vec<TaskArg>) {
        if self.inner.max_task_retries == 0 {
            self.inner.core.call_actor(&self.inner, method, args, 0);
            return;
        }
        let store = &self.inner.core.store;
        let actor = self.inner.id;
        for r in self.inner.core.call_actor(&self.inner, method, args, 1) {
            let id = r.id();
            store.on_ready(
                id,
                Box::new(move || {
                    // Nobody reads this result: its failure is told here, as an untracked
                    // tell's is where it ran (not one cancelled, or failed because this node
                    // stopped: those say nothing new).
                    if r.store().status(r.id()) == raya_store::Status::Failed
                        && !r.store().stopped()
                        && let raya_store::Lookup::Failed(e) = r.store().get(r.id())
                        && !e.is_cancelled()
                    {
                        tracing::warn!(%actor, error = %e, "a call sent with tell failed");
                    }
                }),
            );
        }
    }
}

/// A handle to an actor: cheap to clone, `Send`, serializable (so it can be passed into tasks and
/// other actors, or inside values). Derefs to the methods generated by `#[raya::actor]`.
pub struct ActorHandle<A: ActorClass> {
    methods: A::Methods,
}

impl<A: ActorClass> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            methods: self.methods.clone(),
        }
    }
}

impl<A: ActorClass> Deref for ActorHandle<A> {
    type Target = A::Methods;
    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: ActorClass> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorHandle<{}>({})", A::CLASS_NAME, self.actor_id())
    }
}

impl<A: ActorClass> PartialEq for ActorHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.actor_id() == other.actor_id()
    }
}

impl<A: ActorClass> ActorHandle<A> {
    pub(crate) fn from_ref(r: HandleRef<A>) -> Self {
        ActorHandle {
            methods: A::Methods::from(r),
        }
    }

    fn href(&self) -> &HandleRef<A> {
        self.methods.as_ref()
    }

    /// The actor's id.
    pub fn actor_id(&self) -> ActorId {
        self.href().inner.id
    }

    /// The actor's node-qualified address.
    pub fn address(&self) -> ActorAddress {
        ActorAddress {
            node: self.href().inner.node,
            actor: self.href().inner.id,
        }
    }

    /// An object that becomes ready when the actor is constructed, or holds the error that
    /// prevented it (infeasible resources, a failing constructor).
    pub fn ready(&self) -> ObjectRef<()> {
        ObjectRef::from_raw(self.href().inner.ready.clone())
    }

    /// Sends `msg` to the actor's [`Handler`]; the reply goes to the returned object.
    pub fn send<M>(&self, msg: M) -> ObjectRef<M::Result>
    where
        M: Message,
        A: Handler<M>,
    {
        self.href()
            .call(handler_method::<A, M>(), vec![msg.into_arg()])
    }

    /// Sends `msg` and waits for the reply.
    pub fn ask<M>(&self, msg: M) -> impl Future<Output = Result<M::Result>> + Send + 'static
    where
        M: Message,
        A: Handler<M>,
    {
        let reply = self.send(msg);
        async move { reply.await }
    }

    /// Sends `msg` without waiting for or keeping the reply. Like any call, one the actor's
    /// node took and lost when it died is sent again to the restarted actor when the actor's
    /// `max_task_retries` allows (at least once).
    pub fn tell<M>(&self, msg: M)
    where
        M: Message,
        A: Handler<M>,
    {
        self.href()
            .call_no_reply(handler_method::<A, M>(), vec![msg.into_arg()]);
    }
}

#[derive(Serialize, Deserialize)]
struct WireHandle {
    address: ActorAddress,
    class: String,
    ready: RawRef,
    max_task_retries: i64,
}

impl<A: ActorClass> Serialize for ActorHandle<A> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireHandle {
            address: self.address(),
            class: A::CLASS_NAME.to_string(),
            ready: self.href().inner.ready.clone(),
            max_task_retries: self.href().inner.max_task_retries,
        }
        .serialize(s)
    }
}

impl<'de, A: ActorClass> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireHandle::deserialize(d)?;
        if w.class != A::CLASS_NAME {
            return Err(D::Error::custom(format!(
                "actor handle of type {} read as {}",
                w.class,
                A::CLASS_NAME
            )));
        }
        let core = crate::runtime::current().map_err(D::Error::custom)?;
        let host = core.host_env.directory.host::<A>(w.address.actor);
        Ok(ActorHandle::from_ref(HandleRef::new(
            core,
            HandleTarget {
                id: w.address.actor,
                node: w.address.node,
                max_task_retries: w.max_task_retries,
            },
            w.ready,
            host,
        )))
    }
}

/// Creates an actor of type `A` with `options`, its constructor run on `ctor_args`. Used by the
/// generated `MyActor::remote` and `MyActor::options().remote`.
pub fn create_actor<A: ActorClass>(
    options: ActorOptions,
    ctor_args: Vec<TaskArg>,
) -> Result<ActorHandle<A>> {
    let core = crate::runtime::current_or_start()?;
    crate::actor_host::create::<A>(&core, options, ctor_args)
}

/// The live actor of type `A` named `name` in the job's namespace.
///
/// Fails with [`Error::ActorNotFound`] when there is none, [`Error::TypeMismatch`] when the
/// actor has another type, and [`Error::InvalidArgument`] for an empty name (as Ray refuses
/// one). An actor being restarted on another node after its node died is waited for until it
/// is alive there (at most 300 s).
pub fn get_actor<A: ActorClass>(name: &str) -> Result<ActorHandle<A>> {
    let ns = crate::runtime::current()?.namespace.clone();
    get_actor_in::<A>(name, &ns)
}

/// [`get_actor`] in a given namespace.
pub fn get_actor_in<A: ActorClass>(name: &str, namespace: &str) -> Result<ActorHandle<A>> {
    check_may_block("get_actor")?;
    crate::block_on::block_on(get_actor_in_async::<A>(name, namespace))
}

/// The async form of [`get_actor`].
pub async fn get_actor_async<A: ActorClass>(name: &str) -> Result<ActorHandle<A>> {
    let ns = crate::runtime::current()?.namespace.clone();
    get_actor_in_async::<A>(name, &ns).await
}

/// The async form of [`get_actor_in`].
pub async fn get_actor_in_async<A: ActorClass>(
    name: &str,
    namespace: &str,
) -> Result<ActorHandle<A>> {
    if name.is_empty() || namespace.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "an actor is looked up by a name and a namespace that are not empty (got name \"{name}\", namespace \"{namespace}\")"
        )));
    }
    let core = crate::runtime::current()?;
    let not_found = || Error::ActorNotFound {
        name: name.to_string(),
        namespace: namespace.to_string(),
    };
    let lookup = || {
        core.gcs.request(GetNamedActor {
            name: name.to_string(),
            namespace: namespace.to_string(),
        })
    };
    let mut info = lookup().await?.ok_or_else(not_found)?;
    // Restarting after its node died, on no node yet: found once it is alive again.
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(50);
    while info.node.is_none() && info.state == ActorState::Restarting {
        if started.elapsed() > RELOCATE_WAIT {
            return Err(Error::ActorNotFound {
                name: format!(
                    "{name} (restarting, not alive again within {} s)",
                    RELOCATE_WAIT.as_secs()
                ),
                namespace: namespace.to_string(),
            });
        }
        crate::timer::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
        info = lookup().await?.ok_or_else(not_found)?;
    }
    if info.class_name != A::CLASS_NAME {
        return Err(Error::TypeMismatch {
            expected: A::CLASS_NAME.to_string(),
            found: info.class_name,
        });
    }
    let node = info.node.unwrap_or(core.node);
    let host = core.host_env.directory.host::<A>(info.actor_id);
    if host.is_none() && (node == core.node || !core.clustered()) {
        return Err(not_found());
    }
    let ready = core.store.add_ref(creation_object(info.actor_id));
    if host.is_none() {
        // Its creation object lives with its creator; here it is ready as soon as the actor is
        // known alive.
        let _ = core.store.complete(ready.id(), Value::new(()));
    }
    Ok(ActorHandle::from_ref(HandleRef::new(
        Arc::clone(&core),
        HandleTarget {
            id: info.actor_id,
            node,
            max_task_retries: info.max_task_retries,
        },
        ready,
        host,
    )))
}

/// Kills the actor: queued and running calls fail with an actor-died error, and it is not
/// restarted. Works on detached actors too.
pub fn kill<A: ActorClass>(handle: &ActorHandle<A>) -> Result<()> {
    kill_with(handle, false)
}

/// Kills the actor, letting it restart when `restart` is true and it has restarts left.
pub fn kill_with<A: ActorClass>(handle: &ActorHandle<A>, restart: bool) -> Result<()> {
    let core = crate::runtime::current()?;
    let delivered = core.host_env.directory.control(
        handle.actor_id(),
        HostControl::Kill {
            no_restart: !restart,
        },
    );
    if !delivered && let Some(r) = &handle.href().inner.remote {
        r.do_send(crate::actor_host::wire::WireControl::Kill {
            no_restart: !restart,
        });
    }
    Ok(())
}

/// A handle to an actor that could not be created: its `ready()` object and every call report
/// `error`.
pub(crate) fn dead_handle<A: ActorClass>(error: Error) -> ActorHandle<A> {
    let core = crate::runtime::current_or_start().unwrap_or_else(|e| {
        panic!(
            "Raya could not start to create an actor of {}: {e}",
            A::CLASS_NAME
        )
    });
    let id = core.ids.actor_id();
    let ready = core.store.add_ref(creation_object(id));
    let err = TaskError::new(
        TaskErrorKind::ActorDied,
        format!("actor of {} could not be created: {error}", A::CLASS_NAME),
    );
    core.store.fail(ready.id(), Arc::new(err));
    let node = core.node;
    let target = HandleTarget {
        id,
        node,
        max_task_retries: 0,
    };
    ActorHandle::from_ref(HandleRef::new(Arc::clone(&core), target, ready, None))
}

#[cfg(test)]
mod tests {
    use crate::actor_host::ActorCall;
    use crate::actor_host::wire::WireActorCall;
    use crate::api::actor::ActorClass;
    use crate::prelude::*;
    use raya_common::{ObjectId, TaskErrorKind, codec};

    #[crate::actor]
    struct Tally {
        n: u64,
    }

    #[crate::actor]
    impl Tally {
        fn new(n: u64) -> Self {
            Tally { n }
        }
        fn add(&mut self, k: u64) -> u64 {
            self.n += k;
            self.n
        }
    }

    #[test]
    fn calls_cross_as_bytes_and_run_on_the_far_side() {
        let _node = crate::runtime::TestNode::start(crate::Config::default().num_cpus(1));
        let t = Tally::remote(10);
        let core = crate::runtime::current().unwrap();
        let task_id = core.ids.task_id();
        // What a caller on another node would send: the method by name, arguments encoded.
        let call = ActorCall::<Tally> {
            owner: core.node,
            task_id,
            method: <Tally as ActorClass>::method("Tally::add").unwrap(),
            args: vec![crate::IntoArg::<u64>::into_arg(5u64)],
            num_returns: 1,
            attempt: 0,
            parent: core.driver_task,
        };
        let bytes = codec::encode(&call.to_wire(t.address())).unwrap();
        let wire: WireActorCall = codec::decode(&bytes).unwrap();
        let result = core.store.add_ref(ObjectId::for_return(task_id, 0));
        assert!(core.host_env.directory.deliver(wire).is_ok());
        assert_eq!(crate::get(&ObjectRef::<u64>::from_raw(result)).unwrap(), 15);
        // A method the type does not have is an error value, not a crash.
        let mut bad = call.to_wire(t.address());
        bad.method = "Tally::nope".into();
        bad.task_id = core.ids.task_id();
        let result = core.store.add_ref(ObjectId::for_return(bad.task_id, 0));
        core.host_env.directory.deliver(bad).unwrap();
        let e = crate::get(&ObjectRef::<u64>::from_raw(result)).unwrap_err();
        assert!(e.to_string().contains("no method \"Tally::nope\""), "{e}");
        assert_eq!(crate::get(&t.add(1)).unwrap(), 16);
        crate::shutdown();
    }

    #[test]
    fn a_call_asking_for_more_results_than_the_method_makes_is_an_application_error() {
        // The same rule as for tasks: the execution path stores results for both.
        let _node = crate::runtime::TestNode::start(crate::Config::default().num_cpus(1));
        let t = Tally::remote(1);
        let core = crate::runtime::current().unwrap();
        let call = ActorCall::<Tally> {
            owner: core.node,
            task_id: core.ids.task_id(),
            method: <Tally as ActorClass>::method("Tally::add").unwrap(),
            args: vec![crate::IntoArg::<u64>::into_arg(1u64)],
            num_returns: 2,
            attempt: 0,
            parent: core.driver_task,
        };
        let results: Vec<_> = (0..2)
            .map(|i| core.store.add_ref(ObjectId::for_return(call.task_id, i)))
            .collect();
        core.host_env
            .directory
            .deliver(call.to_wire(t.address()))
            .unwrap();
        for r in results {
            let e = crate::get(&ObjectRef::<u64>::from_raw(r)).unwrap_err();
            assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Application), "{e}");
            assert!(e.to_string().contains("returned 1 values but 2"), "{e}");
        }
        // The actor is fine: the method ran, its one value had nowhere to go.
        assert_eq!(crate::get(&t.add(0)).unwrap(), 2);
        crate::shutdown();
    }
}
