//! Why a process could not be started: here ([`SpawnError`]) or on another node
//! ([`RemoteSpawnError`]).

use std::time::Duration;

use thiserror::Error;

use super::GlobalError;
use crate::{ExitReason, NodeId, Pid};

/// Why a process could not be started. `E` is the behaviour's
/// [`InitError`](crate::GenServer::InitError).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SpawnError<E> {
    /// `init` returned this error.
    #[error("init failed: {0}")]
    InitFailed(E),
    /// `init` panicked with this message.
    #[error("init panicked: {0}")]
    InitPanicked(String),
    /// `init` did not finish within the init timeout (5 s by default); the process was killed.
    #[error("init timed out")]
    InitTimeout,
    /// The process ended during `init` because of an exit signal (for example its linked
    /// parent died).
    #[error("the process exited during init: {0}")]
    Exited(ExitReason),
    /// The requested name is held by another process; no process was started.
    #[error("the name {name:?} is already registered to {holder}")]
    NameTaken {
        /// The name that was requested.
        name: String,
        /// The process that holds it.
        holder: Pid,
    },
    /// The global name could not be settled in time: a connected node did not answer
    /// (see [`GLOBAL_TIMEOUT`](crate::GLOBAL_TIMEOUT)); no process was started.
    #[error("the global name {name:?} could not be registered in time")]
    RegistrationTimeout {
        /// The name.
        name: String,
    },
    /// The global name could not be registered, for another reason than those above
    /// (it is too long, or this node is hidden); no process was started.
    #[error("the global name could not be registered: {0}")]
    GlobalName(GlobalError),
    /// The node is shutting down: it was before the spawn, or it shut down as the new
    /// process's `init` ran (which ended it).
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl<E> SpawnError<E> {
    /// Converts the `Init` error with `f`, keeping every other variant.
    pub fn map_init<F>(self, f: impl FnOnce(E) -> F) -> SpawnError<F> {
        match self {
            SpawnError::InitFailed(e) => SpawnError::InitFailed(f(e)),
            SpawnError::InitPanicked(msg) => SpawnError::InitPanicked(msg),
            SpawnError::InitTimeout => SpawnError::InitTimeout,
            SpawnError::Exited(reason) => SpawnError::Exited(reason),
            SpawnError::NameTaken { name, holder } => SpawnError::NameTaken { name, holder },
            SpawnError::RegistrationTimeout { name } => SpawnError::RegistrationTimeout { name },
            SpawnError::GlobalName(error) => SpawnError::GlobalName(error),
            SpawnError::ShuttingDown => SpawnError::ShuttingDown,
        }
    }
}

/// Why a process could not be spawned on another node ([`Node::spawn_on`](crate::Node::spawn_on)
/// and its kin). Whatever the error, no process is left running on the target node: one
/// that started too late for its spawner, or whose spawner gave up, is ended there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RemoteSpawnError {
    /// The node is not connected, or its connection was lost before the request left
    /// this node: it was not asked.
    #[error("node {node} is not connected")]
    NoConnection {
        /// The node.
        node: NodeId,
    },
    /// The connection to the node was lost after it was asked: the process may have
    /// started there, and runs until that node sees the connection lost (then it is
    /// ended, as one whose spawner gave up). Starting it again elsewhere at once could
    /// run it twice for that long.
    #[error("the connection to node {node} was lost during the spawn")]
    ConnectionLost {
        /// The node.
        node: NodeId,
    },
    /// No behaviour of that name is registered on the node (was `register_all!` called
    /// there?).
    #[error("no behaviour named {behavior:?} is registered on {node}")]
    BehaviorNotFound {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
    },
    /// The behaviour is declared `#[behavior(local)]`: it cannot be spawned on another
    /// node.
    #[error("behaviour {behavior:?} is local-only")]
    LocalOnly {
        /// The behaviour's name.
        behavior: String,
    },
    /// The arguments did not decode there as the behaviour's init arguments (the two
    /// nodes run different builds).
    #[error("the arguments of {behavior:?} do not decode on {node} as {args_type}: {error}")]
    BadArgs {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The type the arguments should have there.
        args_type: String,
        /// The decoder's complaint.
        error: String,
    },
    /// `init` returned an error.
    #[error("init of {behavior:?} on {node} failed: {error}")]
    InitFailed {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The error, as text.
        error: String,
    },
    /// `init` panicked.
    #[error("init of {behavior:?} on {node} panicked: {message}")]
    InitPanicked {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The panic message.
        message: String,
    },
    /// `init` did not finish within its init timeout; the process was killed.
    #[error("init of {behavior:?} on {node} did not finish within {timeout:?}")]
    InitTimeout {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The init timeout.
        timeout: Duration,
    },
    /// The spawn did not complete within its timeout.
    #[error("spawning {behavior:?} on {node} took longer than {timeout:?}")]
    Timeout {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The spawn timeout.
        timeout: Duration,
    },
    /// The spawn timeout ran out before the request left this node (the connection to
    /// the node was backed up: its queue full, or not written to in time): the node was
    /// not asked, and no process was started there — the request was taken back, it is
    /// never sent. Another node may be tried at once. (A request the connection had begun
    /// to send may have been read there: its spawn fails with [`Timeout`](Self::Timeout).)
    #[error("spawning {behavior:?} on {node}: the request was not sent within {timeout:?}")]
    NotSent {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The spawn timeout.
        timeout: Duration,
    },
    /// The requested name is registered to another process: on the node, or — for a
    /// global name — anywhere in the cluster.
    #[error("the name {name:?} asked of {node} is already registered to {holder}")]
    NameTaken {
        /// The name.
        name: String,
        /// The node.
        node: NodeId,
        /// The process that holds it.
        holder: Pid,
    },
    /// The process ended during `init` because of an exit signal (its spawner's link,
    /// say).
    #[error("{behavior:?} exited during init on {node}: {reason}")]
    Exited {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// Why it ended.
        reason: ExitReason,
    },
    /// The global name could not be settled in time (a node of the cluster did not
    /// answer); no process was started.
    #[error("the global name {name:?} could not be registered in time on {node}")]
    RegistrationTimeout {
        /// The name.
        name: String,
        /// The node.
        node: NodeId,
    },
    /// The global name could not be registered, for another reason than those above (it
    /// is longer than [`MAX_NAME_LEN`](crate::MAX_NAME_LEN)); no process was started.
    #[error("the global name could not be registered on {node}: {error}")]
    GlobalName {
        /// The node.
        node: NodeId,
        /// Why.
        error: GlobalError,
    },
    /// The node is shutting down.
    #[error("node {node} is shutting down")]
    NodeShuttingDown {
        /// The node.
        node: NodeId,
    },
    /// The init arguments, encoded with the request, are larger than the node takes (its
    /// max message size, [`ClusterConfig::limits`](crate::ClusterConfig::limits)): the
    /// request was not sent, no process was started, and the connection is unaffected.
    /// A node with a larger limit may take it.
    #[error("spawning {behavior:?} on {node}: the request ({size} bytes encoded) is larger than the node takes ({limit} bytes)")]
    TooLarge {
        /// The behaviour's name.
        behavior: String,
        /// The node.
        node: NodeId,
        /// The request's encoded size, in bytes (the arguments with the request's header).
        size: usize,
        /// The largest message the node takes, in bytes.
        limit: usize,
    },
    /// The node is a hidden node (see
    /// [`ClusterConfig::hidden`](crate::ClusterConfig::hidden)), which hosts no processes
    /// for other nodes.
    #[error("node {node} is a hidden node and hosts no processes for other nodes")]
    HiddenNode {
        /// The node.
        node: NodeId,
    },
}
