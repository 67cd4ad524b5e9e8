//! The global control store: one Actix actor per table, persisted in sled.
//!
//! Start the tables with [`GcsTables::start`] on the head node; reach them through a
//! [`GcsClient`] (an actor) or its cloneable [`GcsHandle`].
//!
//! ```no_run
//! # async fn demo(gcs: raya_cluster::GcsHandle) -> Result<(), raya_cluster::GcsError> {
//! use raya_cluster::gcs::kv::{KvGet, KvPut};
//! gcs.request(KvPut { namespace: "app".into(), key: b"k".to_vec(), value: b"v".to_vec(), overwrite: true }).await?;
//! assert_eq!(gcs.request(KvGet { namespace: "app".into(), key: b"k".to_vec() }).await?, Some(b"v".to_vec()));
//! # Ok(()) }
//! ```

pub mod actors;
pub mod client;
mod error;
mod event;
pub mod functions;
pub mod jobs;
pub mod kv;
pub mod nodes;
pub mod objects;
mod persist;
mod publisher;
pub mod task_events;

use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

pub use client::{GcsClient, GcsHandle};
pub use publisher::GcsPublisher;

pub use error::GcsError;

/// The gossip topic of the GCS's versioned table changes ([`VersionedEvent`]).
pub const GCS_TOPIC: &str = "raya/gcs";
/// The gossip topic of node heartbeats ([`nodes::NodeHeartbeat`]).
pub const HEARTBEAT_TOPIC: &str = "raya/heartbeat";
/// Every gossip topic a node subscribes to.
pub const TOPICS: [&str; 2] = [GCS_TOPIC, HEARTBEAT_TOPIC];

/// What a GCS request does to its table, which decides who may send it and when it is
/// answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads a table: open to any peer holding the cluster key (`raya status` too), answered
    /// at once.
    Read,
    /// A node joining the cluster records itself (its node, its functions, its job): open to
    /// any peer holding the key, since it may only speak for itself; answered once on disk.
    Join,
    /// Changes a table and is sent again anyway (object locations, task records): only from
    /// a member (a registered node the GCS counts alive), answered at once.
    Notify,
    /// Changes a table: only from a member, answered once on disk (a node counts on it after a
    /// head restart).
    Write,
}

/// A typed request to one GCS table. The client forwards it to [`GcsRequest::table`], in this
/// process on the head and over the network elsewhere: every request is a wire message.
pub trait GcsRequest:
    Message<Result = Result<Self::Reply, GcsError>> + crate::transport::WireMessage + Sized
{
    /// What the request returns on success.
    type Reply: Serialize + serde::de::DeserializeOwned + Send + 'static;
    /// The table actor that answers it.
    type Table: Actor<Context = Context<Self::Table>> + Handler<Self>;
    /// A request sent without waiting for its reply goes out by gossip on this topic, when set
    /// (heartbeats), instead of point to point.
    const GOSSIP_TOPIC: Option<&'static str> = None;
    /// What it does to its table: who may send it from another node, and whether it is
    /// answered only once what it changed is on disk.
    const ACCESS: Access = Access::Write;
    /// That table's address.
    fn table(tables: &GcsTables) -> &Addr<Self::Table>;
}

/// Declares the requests one GCS table answers:
///
/// ```text
/// gcs_requests! {
///     NodeTable, nodes:
///     RegisterNode => () as "gcs/RegisterNode", access = Join, where |m, from| from.is(m.0.node_id, "a registration");
///     NodeHeartbeat => () as "gcs/NodeHeartbeat", gossip = HEARTBEAT_TOPIC;
///     GetAllNodes => Vec<NodeInfo> as "gcs/GetAllNodes", access = Read;
/// }
/// ```
///
/// makes each message a [`GcsRequest`] answered by `tables.nodes` with the [`Access`] it says
/// (a [write](Access::Write) when it says none), names it for the wire (with who may send it,
/// as [`crate::wire_message!`]), and defines the table module's `serve`, which
/// [`GcsTables::serve`] calls to register the table's requests with a head's router (all but
/// those that travel by gossip).
macro_rules! gcs_requests {
    ($table:ty, $field:ident: $($msg:ty => $reply:ty as $name:literal $(, gossip = $topic:expr)? $(, access = $access:ident)? $(, where $check:expr)?;)+) => {
        $(
            $crate::wire_message!($msg => $name as archive $(where $check)?);
            impl $crate::gcs::GcsRequest for $msg {
                type Reply = $reply;
                type Table = $table;
                $(const GOSSIP_TOPIC: Option<&'static str> = Some($topic);)?
                $(const ACCESS: $crate::gcs::Access = $crate::gcs::Access::$access;)?
                fn table(tables: &$crate::gcs::GcsTables) -> &actix::Addr<$table> {
                    &tables.$field
                }
            }
        )+

        /// The checks of this table's requests, by wire name (see
        /// [`crate::transport::WireCheck`]).
        pub(super) fn wire_checks() -> Vec<$crate::transport::WireCheck> {
            vec![$((
                <$msg as $crate::transport::WireMessage>::NAME,
                $crate::transport::check_body::<$msg> as $crate::transport::BodyCheck,
            )),+]
        }

        /// Serves this table's requests on `router`, but for those that travel by gossip
        /// (their publisher checks who sent them).
        pub(super) fn serve(tables: &$crate::gcs::GcsTables, router: &$crate::transport::Router) {
            $(
                if <$msg as $crate::gcs::GcsRequest>::GOSSIP_TOPIC.is_none() {
                    $crate::gcs::serve_request::<$msg>(tables, router);
                }
            )+
        }
    };
}
pub(crate) use gcs_requests;

/// Serves request `M` on `router`. The sender must be who the request names
/// ([`crate::transport::WireMessage::check_from`]) and, for a table change, a member (a node
/// the node table counts alive); a refusal is logged and counted like any other. A request
/// that changes a table durably ([`Access::Join`], [`Access::Write`]) is answered only once what
/// it changed is on disk: a node that was told its registration, its named actor or its key is
/// stored can count on it after the head is killed and started again. The flush runs on sled's
/// own threads, never on the tables' event loop.
pub(crate) fn serve_request<M>(tables: &GcsTables, router: &crate::transport::Router)
where
    M: GcsRequest,
    <M::Table as Actor>::Context: actix::dev::ToEnvelope<M::Table, M>,
{
    use crate::transport::WireError;
    let addr = M::table(tables).clone();
    let db = tables.db.clone();
    let members = tables.members.clone();
    let refusals = router.clone();
    router.serve_with(
        M::NAME,
        std::sync::Arc::new(move |from, body| {
            let (addr, db, members, refusals) =
                (addr.clone(), db.clone(), members.clone(), refusals.clone());
            Box::pin(async move {
                let msg = M::decode(&body)?;
                let allowed = msg.check_from(&from).and_then(|()| match M::ACCESS {
                    Access::Read | Access::Join => Ok(()),
                    Access::Notify | Access::Write if members.contains(&from.node()) => Ok(()),
                    Access::Notify | Access::Write => {
                        Err("a table change from a node that is not a member".into())
                    }
                });
                if let Err(reason) = allowed {
                    return Err(refusals.refuse(&from, M::NAME, reason));
                }
                let mut result = addr.send(msg).await.map_err(|_| WireError::ActorGone)?;
                if matches!(M::ACCESS, Access::Join | Access::Write)
                    && result.is_ok()
                    && let Err(e) = db.flush_async().await
                {
                    result = Err(GcsError::Storage(format!("writing to disk: {e}")));
                }
                M::encode_result(&result)
            })
        }),
    );
}

/// The checks of every GCS request and of the head's gossip (`gcs/VersionedEvent`, accepted
/// only from the head), by wire name: what a node runs on them before handling them.
pub fn wire_checks() -> Vec<crate::transport::WireCheck> {
    let mut checks = Vec::new();
    checks.extend(nodes::wire_checks());
    checks.extend(jobs::wire_checks());
    checks.extend(actors::wire_checks());
    checks.extend(functions::wire_checks());
    checks.extend(objects::wire_checks());
    checks.extend(task_events::wire_checks());
    checks.extend(kv::wire_checks());
    checks.push(("gcs/VersionedEvent", |body, from| {
        <VersionedEvent as crate::transport::archive::Archived>::from_archive(body)
            .map_err(|e| e.to_string())?;
        from.is_head()
    }));
    checks
}

pub use event::{GcsEvent, VersionedEvent};

/// Where and how the GCS keeps its tables.
#[derive(Debug, Clone)]
pub struct GcsConfig {
    /// The sled directory. A GCS restarted on the same directory reloads its tables.
    pub dir: PathBuf,
    /// A node that sends no heartbeat for this long is declared dead.
    pub node_timeout: Duration,
    /// At most this many task records are kept; the oldest are dropped first.
    pub max_task_events: usize,
    /// Bytes the key-value table holds at most (namespaces, keys and values); a put past it
    /// fails. [`kv::DEFAULT_MAX_BYTES`] unless set otherwise.
    pub max_kv_bytes: usize,
    /// The node this GCS runs on (the head): the only node recorded as the head, and the only
    /// one whose record is not timed out by heartbeats (it is alive while its GCS runs, however
    /// busy its other threads are). `None` in tests of the tables alone.
    pub head: Option<raya_common::NodeId>,
}

/// Addresses of the running GCS table actors.
#[derive(Clone)]
pub struct GcsTables {
    /// Node table.
    pub nodes: Addr<nodes::NodeTable>,
    /// Job table.
    pub jobs: Addr<jobs::JobTable>,
    /// Actor table.
    pub actors: Addr<actors::ActorTable>,
    /// Function table.
    pub functions: Addr<functions::FunctionTable>,
    /// Object location table.
    pub objects: Addr<objects::ObjectTable>,
    /// Task event table.
    pub task_events: Addr<task_events::TaskEventTable>,
    /// Key-value table.
    pub kv: Addr<kv::KvTable>,
    /// The nodes the node table counts alive: who may change the tables.
    pub members: nodes::Members,
    /// Where the head placed actors' creations (written by its global scheduler).
    pub placements: actors::Placements,
    db: sled::Db,
}

impl GcsTables {
    /// Opens (or creates) the sled database in `config.dir`, loads every table and starts the
    /// table actors on `arbiter`.
    pub fn start(
        config: &GcsConfig,
        arbiter: &actix_rt::ArbiterHandle,
    ) -> Result<GcsTables, GcsError> {
        raya_common::private_fs::create_dir(&config.dir)
            .map_err(|e| GcsError::Storage(format!("{}: {e}", config.dir.display())))?;
        let db = sled::Config::new()
            .path(&config.dir)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|e| GcsError::Storage(format!("{}: {e}", config.dir.display())))?;
        let members = nodes::Members::default();
        let node_state =
            nodes::NodeTable::load(&db, config.node_timeout, members.clone(), config.head)?;
        let job_state = jobs::JobTable::load(&db)?;
        let placements = actors::Placements::open(&db)?;
        let actor_state = actors::ActorTable::load(&db, placements.clone())?;
        let function_state = functions::FunctionTable::load(&db)?;
        let object_state = objects::ObjectTable::load(&db)?;
        let event_state = task_events::TaskEventTable::new(&db, config.max_task_events)?;
        let kv_state = kv::KvTable::load(&db, config.max_kv_bytes)?;

        let actors = actors::ActorTable::start_in_arbiter(arbiter, move |_| actor_state);
        let functions =
            functions::FunctionTable::start_in_arbiter(arbiter, move |_| function_state);
        let objects = objects::ObjectTable::start_in_arbiter(arbiter, move |_| object_state);
        let jobs = jobs::JobTable::start_in_arbiter(arbiter, move |_| job_state);
        let mut node_state = node_state;
        node_state.subscribe(actors.clone().recipient());
        node_state.subscribe(functions.clone().recipient());
        node_state.subscribe(objects.clone().recipient());
        node_state.subscribe(jobs.clone().recipient());
        let nodes = nodes::NodeTable::start_in_arbiter(arbiter, move |_| node_state);
        let task_events =
            task_events::TaskEventTable::start_in_arbiter(arbiter, move |_| event_state);
        let kv = kv::KvTable::start_in_arbiter(arbiter, move |_| kv_state);
        Ok(GcsTables {
            nodes,
            jobs,
            actors,
            functions,
            objects,
            task_events,
            kv,
            members,
            placements,
            db,
        })
    }

    /// Serves every GCS request type over the network with these tables.
    pub fn serve(&self, router: &crate::transport::Router) {
        actors::serve(self, router);
        functions::serve(self, router);
        jobs::serve(self, router);
        kv::serve(self, router);
        nodes::serve(self, router);
        objects::serve(self, router);
        task_events::serve(self, router);
    }

    /// Writes every pending change to disk.
    pub fn flush(&self) -> Result<(), GcsError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| GcsError::Storage(e.to_string()))
    }
}

impl std::fmt::Debug for GcsTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsTables").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
