//! Raya's error type.

use std::time::Duration;

use raya_cluster::GcsError;
use raya_common::{CodecError, ResourceError, TaskError, TaskErrorKind};
use raya_store::StoreError;

/// Everything that can go wrong in Raya.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Raya call was made before `raya::init` (and the runtime could not start by itself).
    #[error("Raya is not running: call raya::init first")]
    NotInitialized,
    /// `raya::init` was called while Raya is running.
    #[error("Raya is already initialized in this process: call raya::shutdown first")]
    AlreadyInitialized,
    /// The task that makes the object failed, was cancelled, or its actor died. The error
    /// carries the message and the chain of tasks it passed through.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A `get` or `wait` with a timeout ran out of time.
    #[error("timed out after {0:?} waiting for the object")]
    GetTimeout(Duration),
    /// The object (or argument, or message) has another type than asked for.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The type asked for.
        expected: String,
        /// The type found.
        found: String,
    },
    /// No remote function or actor type is registered under this name on any node.
    #[error("unknown remote function or actor type {0:?}: no node of the cluster registered it")]
    UnknownFunction(String),
    /// Two remote functions or actor types are registered under the same name.
    #[error(
        "remote function or actor type {0:?} is registered more than once: give one of them another name"
    )]
    DuplicateFunction(String),
    /// The actor name is used by a live actor of the namespace.
    #[error("actor name {name:?} is already taken in namespace {namespace:?}")]
    NameTaken {
        /// The name.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// No live actor has this name in the namespace.
    #[error("no live actor named {name:?} in namespace {namespace:?}")]
    ActorNotFound {
        /// The name.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// The object store refused the object.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The global control store failed.
    #[error(transparent)]
    Gcs(GcsError),
    /// A resource amount is invalid.
    #[error(transparent)]
    Resources(#[from] ResourceError),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An argument of a Raya call is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A bounded queue is full.
    #[error("{0}")]
    QueueFull(String),
    /// A blocking call was made where it would stall other work (inside an async actor method
    /// or on an actor's event loop): use the async form and `.await` it.
    #[error("blocking Raya call `{0}` inside async code: use the async form and .await it")]
    BlockingInAsync(&'static str),
    /// Starting or stopping the node failed.
    #[error("node error: {0}")]
    Node(String),
}

impl Error {
    /// Whether this reports a cancelled task (or a dependent of one).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Task(e) if e.kind == TaskErrorKind::Cancelled)
    }

    /// Whether this is a `get`/`wait` timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::GetTimeout(_))
    }

    /// The task error, when this is one.
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            Error::Task(e) => Some(e),
            _ => None,
        }
    }

    /// The kind of task error, when this is one.
    pub fn task_error_kind(&self) -> Option<TaskErrorKind> {
        self.task_error().map(|e| e.kind)
    }
}

impl From<GcsError> for Error {
    fn from(e: GcsError) -> Self {
        match e {
            GcsError::NameTaken { name, namespace } => Error::NameTaken { name, namespace },
            other => Error::Gcs(other),
        }
    }
}
impl From<raya_common::value::ValueError> for Error {
    fn from(e: raya_common::value::ValueError) -> Self {
        match e {
            raya_common::value::ValueError::TypeMismatch { expected, found } => {
                Error::TypeMismatch {
                    expected: expected.to_string(),
                    found,
                }
            }
            raya_common::value::ValueError::Codec(c) => Error::Codec(c),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
