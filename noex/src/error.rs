//! The errors of noex's operations, one enum per kind of operation.
//!
//! Transport-level failures (the target is gone, a timeout ran out) are these enums. A
//! handler's own errors are not: a `Reply` type of `Result<T, E>` reaches the caller as that
//! `Result`, inside `Ok`.

use std::time::Duration;

use thiserror::Error;

use crate::{ExitReason, Pid};

mod spawn;

pub use spawn::{RemoteSpawnError, SpawnError};

/// The process a request or message was for: a pid, or a registered name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A process, by pid.
    Pid(Pid),
    /// Whatever process is registered under `name` on `node` (`None`: the node that sent
    /// the request).
    Name {
        /// The name.
        name: String,
        /// The node, `name@host:port`.
        node: Option<String>,
    },
    /// Whatever process holds the global `name`.
    Global {
        /// The name.
        name: String,
    },
}

impl Target {
    /// A name on this node.
    pub(crate) fn name(name: &str) -> Target {
        Target::Name {
            name: name.to_owned(),
            node: None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Pid(pid) => write!(f, "{pid}"),
            Target::Name { name, node: None } => write!(f, "{name:?}"),
            Target::Name {
                name,
                node: Some(node),
            } => write!(f, "{name:?} on {node}"),
            Target::Global { name } => write!(f, "global {name:?}"),
        }
    }
}

/// Why a [`call`](crate::ServerRef::call) produced no reply.
///
/// # `NoProc` and `Exited`: a deliberate difference from OTP
///
/// `gen_server:call` exits with the server's exit reason whenever the server dies before
/// replying, whether or not it had begun on the request. noex tells the two cases apart,
/// because they call for different action: [`NoProc`](CallError::NoProc) means the
/// request was never handled — the server was not running, or it ended with the request
/// still in its mailbox — so it had no effect and can be sent again (to a restarted
/// server, say) without risk of doing it twice; [`Exited`](CallError::Exited) means a
/// handler had taken it, so it may have had effects. The reason the server ended is not
/// lost: [`ServerRef::exited`](crate::ServerRef::exited) and monitors report it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CallError {
    /// No reply arrived within the call's timeout (5 s by default). The server may still
    /// handle the request; its late reply is dropped.
    #[error("the call timed out after {timeout:?}")]
    Timeout {
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The server was not running when the call was made, or it ended before taking the
    /// request from its mailbox: the request was never handled.
    #[error("no such process: {target}")]
    NoProc {
        /// The process the call was for.
        target: Target,
    },
    /// The server's node is not connected (or its connection was lost during the call).
    #[error("node {node} is not connected")]
    NoConnection {
        /// The node, `name@host:port`.
        node: String,
    },
    /// The server ended while handling the request (or after deferring its reply) with this
    /// reason: the request may have had effects.
    #[error("the server exited while handling the call: {0}")]
    Exited(ExitReason),
    /// A process called itself, which could only time out.
    #[error("a process cannot call itself")]
    CallingSelf,
    /// The server took the request and a handler dropped its
    /// [`ReplyTo`](crate::ReplyTo) unanswered, the server running on: no reply will come.
    /// (A reply dropped as the server ends — a crash, a kill, a reply still deferred in its
    /// state — gives [`Exited`](Self::Exited) instead.)
    #[error("the server dropped the call without replying")]
    NoReply,
    /// The server answered with the reply of another request: the caller and the server
    /// disagree on the behaviour's messages (for example, two different builds).
    #[error("the server answered with a reply to another request")]
    BadReply,
    /// The server runs on another node, and its behaviour is local-only
    /// (`#[behavior(local)]`): its messages cannot cross nodes.
    #[error("behaviour {behavior} is local-only: it cannot be called on another node")]
    LocalOnly {
        /// The behaviour.
        behavior: String,
    },
    /// The request or its reply of a call to another node could not be encoded or
    /// decoded, here or on the server's node (`step` says which): the two nodes disagree
    /// on the behaviour's messages (two builds of it), or a `Serialize` impl failed. The
    /// request was not handled, unless its reply is what failed.
    #[error("{step}: {error}")]
    Codec {
        /// Which message failed, and where.
        step: CodecStep,
        /// The codec's complaint.
        error: String,
    },
    /// The process found under a name runs a different behaviour than the caller expects.
    #[error("{name:?} runs behaviour {found}, not {expected}")]
    WrongBehavior {
        /// The name that was looked up.
        name: String,
        /// The behaviour the caller expected.
        expected: String,
        /// The behaviour the process actually runs.
        found: String,
    },
    /// The request, encoded, is larger than the server's node takes (its max message
    /// size, [`ClusterConfig::limits`](crate::ClusterConfig::limits)): it was not sent, so
    /// it was not handled. The connection is unaffected.
    #[error(
        "the request ({size} bytes encoded) is larger than the server's node takes ({limit} bytes)"
    )]
    TooLarge {
        /// The request's encoded size, in bytes (with its frame's header).
        size: usize,
        /// The largest message the server's node takes, in bytes.
        limit: usize,
    },
    /// The server handled the request, and its reply, encoded, is larger than this node
    /// takes (its max message size, [`ClusterConfig::limits`](crate::ClusterConfig::limits)):
    /// the server's node did not send it, and answered this instead. The request may have
    /// had effects. The connection is unaffected.
    #[error("the reply ({size} bytes encoded) is larger than this node takes ({limit} bytes)")]
    ReplyTooLarge {
        /// The reply's encoded size, in bytes (with its frame's header).
        size: usize,
        /// The largest message this node takes, in bytes.
        limit: usize,
    },
}

/// Which message of a call to another node could not be encoded or decoded (see
/// [`CallError::Codec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecStep {
    /// The request did not encode, on this node: it was not sent.
    EncodeRequest,
    /// The request did not decode on the server's node: it was not handled.
    DecodeRequest,
    /// The reply did not encode on the server's node: the request was handled.
    EncodeReply,
    /// The reply did not decode on this node: the request was handled.
    DecodeReply,
}

impl std::fmt::Display for CodecStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodecStep::EncodeRequest => "the request does not encode",
            CodecStep::DecodeRequest => "the request does not decode on the server's node",
            CodecStep::EncodeReply => "the reply does not encode on the server's node",
            CodecStep::DecodeReply => "the reply does not decode",
        })
    }
}

/// Why a [`cast`](crate::ServerRef::cast) or another one-way send was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The target process is not running.
    #[error("no such process: {target}")]
    NoProc {
        /// The process the message was for.
        target: Target,
    },
    /// The target's node is not connected.
    #[error("node {node} is not connected")]
    NoConnection {
        /// The node, `name@host:port`.
        node: String,
    },
    /// The way to the target is full.
    #[error("the target is overloaded")]
    Overloaded,
    /// The target runs on another node, and its behaviour is local-only
    /// (`#[behavior(local)]`): its messages cannot cross nodes.
    #[error("behaviour {behavior} is local-only: it cannot be sent to on another node")]
    LocalOnly {
        /// The behaviour.
        behavior: String,
    },
    /// The process found under a name runs a different behaviour than the sender expects.
    #[error("{name:?} runs behaviour {found}, not {expected}")]
    WrongBehavior {
        /// The name that was looked up.
        name: String,
        /// The behaviour the sender expected.
        expected: String,
        /// The behaviour the process actually runs.
        found: String,
    },
    /// A handler asked to stop its own process and wait for the end
    /// ([`ServerRef::stop`](crate::ServerRef::stop), [`Node::stop`](crate::Node::stop)),
    /// which cannot come while the handler waits: nothing was asked. A handler ends its
    /// process with [`Ctx::stop`](crate::Ctx::stop).
    #[error("a process cannot stop itself and wait for its end: use Ctx::stop")]
    StoppingSelf,
    /// The message, for a process of another node, could not be encoded (its `Serialize`
    /// impl failed): it was not sent. (A message large enough to be encoded off the
    /// sender's thread is sent first and, should it fail to encode there, counted as
    /// dropped.)
    #[error("the message could not be encoded: {error}")]
    Codec {
        /// The codec's complaint.
        error: String,
    },
    /// The message, for a process of another node, is larger encoded than that node takes
    /// (its max message size, [`ClusterConfig::limits`](crate::ClusterConfig::limits)): it
    /// was not sent, and the connection is unaffected. (A message large enough to be
    /// encoded off the sender's thread, past 1 MiB, is measured there, after a plain
    /// `cast` or `send` has returned: one too large is then dropped, logged and counted in
    /// [`TrafficStats::casts_dropped`](crate::TrafficStats::casts_dropped).)
    #[error(
        "the message ({size} bytes encoded) is larger than the target's node takes ({limit} bytes)"
    )]
    TooLarge {
        /// The message's encoded size, in bytes (with its frame's header).
        size: usize,
        /// The largest message the target's node takes, in bytes.
        limit: usize,
    },
}

/// Why a cast was not queued, with the message handed back: what
/// [`try_cast`](crate::ServerRef::try_cast) and [`cast_wait`](crate::ServerRef::cast_wait)
/// (and the generated `try_<cast>` / `<cast>_wait` methods) fail with, like
/// `async_channel::TrySendError`.
///
/// The message was not sent: send it again later, to another process, or wait for room
/// with `cast_wait`. `?` turns it into a [`SendError`], dropping the message.
///
/// ```
/// use noex::{CastError, SendError};
///
/// let refused = CastError::new(SendError::Overloaded, "hello".to_string());
/// assert!(refused.is_overloaded());
/// assert_eq!(refused.error(), &SendError::Overloaded);
/// assert_eq!(refused.to_string(), "the target is overloaded");
/// assert_eq!(refused.into_inner(), "hello");
///
/// fn send() -> Result<(), SendError> {
///     Err(CastError::new(SendError::Overloaded, 7u64))?
/// }
/// assert_eq!(send(), Err(SendError::Overloaded));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CastError<M> {
    error: SendError,
    message: M,
}

impl<M> CastError<M> {
    /// The error `error`, with `message` handed back.
    pub fn new(error: SendError, message: M) -> Self {
        CastError { error, message }
    }

    /// Why the message was not queued.
    pub fn error(&self) -> &SendError {
        &self.error
    }

    /// `true` if the way to the target was full ([`SendError::Overloaded`]): the target
    /// may well be running, and [`cast_wait`](crate::ServerRef::cast_wait) would wait for
    /// room.
    pub fn is_overloaded(&self) -> bool {
        self.error == SendError::Overloaded
    }

    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        self.message
    }

    /// The error and the message.
    pub fn into_parts(self) -> (SendError, M) {
        (self.error, self.message)
    }

    /// The error, dropping the message.
    pub fn into_error(self) -> SendError {
        self.error
    }

    /// The same error with the message converted by `f`.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> CastError<N> {
        CastError {
            error: self.error,
            message: f(self.message),
        }
    }
}

impl<M> From<CastError<M>> for SendError {
    fn from(error: CastError<M>) -> Self {
        error.error
    }
}

/// Shows the error, not the message (which need not be `Debug`).
impl<M> std::fmt::Debug for CastError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CastError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> std::fmt::Display for CastError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl<M> std::error::Error for CastError<M> {}

/// Why a name or pid could not be looked up as a process of a given behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No process runs under the name (or pid).
    #[error("no process runs as {0}")]
    NotFound(String),
    /// The name is registered on another node.
    #[error("{0:?} is registered on another node")]
    OnAnotherNode(String),
    /// The pid is of another node, and the behaviour's messages cannot cross nodes.
    #[error("behaviour {0} is local-only: it cannot be reached on another node")]
    LocalOnly(String),
    /// The process runs another behaviour.
    #[error("{name} runs behaviour {found}, not {expected}")]
    WrongBehavior {
        /// The name (or pid) that was looked up.
        name: String,
        /// The behaviour the caller expected.
        expected: String,
        /// The behaviour the process actually runs.
        found: String,
    },
}

impl From<LookupError> for CallError {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::NotFound(name) | LookupError::OnAnotherNode(name) => CallError::NoProc {
                target: Target::name(&name),
            },
            LookupError::LocalOnly(behavior) => CallError::LocalOnly { behavior },
            LookupError::WrongBehavior {
                name,
                expected,
                found,
            } => CallError::WrongBehavior {
                name,
                expected,
                found,
            },
        }
    }
}

impl From<LookupError> for SendError {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::NotFound(name) | LookupError::OnAnotherNode(name) => SendError::NoProc {
                target: Target::name(&name),
            },
            LookupError::LocalOnly(behavior) => SendError::LocalOnly { behavior },
            LookupError::WrongBehavior {
                name,
                expected,
                found,
            } => SendError::WrongBehavior {
                name,
                expected,
                found,
            },
        }
    }
}

/// Why an operation of the global registry or of a process group failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GlobalError {
    /// Another process holds the name, somewhere in the cluster.
    #[error("the global name {name:?} is registered to {holder}")]
    NameTaken {
        /// The name.
        name: String,
        /// The process that holds it.
        holder: Pid,
    },
    /// The process is not running.
    #[error("no such process: {pid}")]
    NoProc {
        /// The process.
        pid: Pid,
    },
    /// The process's node is not connected.
    #[error("node {node} is not connected")]
    NoConnection {
        /// The node, `name@host:port`.
        node: String,
    },
    /// A connected node did not answer in time (see [`GLOBAL_TIMEOUT`](crate::GLOBAL_TIMEOUT)).
    #[error("the cluster did not settle {name:?} within {timeout:?}")]
    Timeout {
        /// The name (or group).
        name: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The name (or group) is longer than [`MAX_NAME_LEN`](crate::global::MAX_NAME_LEN).
    #[error("a name of {len} bytes (the limit is {max})")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A hidden node (see [`ClusterConfig::hidden`](crate::ClusterConfig::hidden)) takes no
    /// part in the global registry and groups: neither its processes nor, on it, any
    /// process can be registered or join a group.
    #[error("node {node} is a hidden node, outside the global registry")]
    HiddenNode {
        /// The node, `name@host:port`.
        node: String,
    },
}

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another process holds the name.
    #[error("the name {name:?} is already registered to {holder}")]
    NameTaken {
        /// The name that was requested.
        name: String,
        /// The process that holds it.
        holder: Pid,
    },
    /// The process already has a name (a process has at most one).
    #[error("{pid} is already registered as {name:?}")]
    AlreadyNamed {
        /// The process.
        pid: Pid,
        /// Its current name.
        name: String,
    },
    /// The process is not running.
    #[error("no such process")]
    NoProc,
    /// The process runs on another node: a node's names are for its own processes (a
    /// name the cluster shares is [`Node::register_global`](crate::Node::register_global)'s).
    #[error("{pid} is a process of another node; register it there, or globally")]
    NotLocal {
        /// The process.
        pid: Pid,
    },
}
