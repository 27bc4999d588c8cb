//! What `#[behavior]` adds to a `GenServer`: a name, wire tags, typed client methods and a
//! registry entry for spawning by name.
//!
//! The traits here are implemented by the macros. A hand-written `GenServer` may implement
//! [`BehaviorName`] itself, but not [`RemoteBehavior`], whose codec is noex's own: put
//! [`#[noex::remote]`](macro@crate::remote) on its `impl GenServer` block, which implements
//! both. See the [`behavior`](macro@crate::behavior) attribute for what is generated.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{CallError, CastError, SendError};
use crate::server::{GenServer, NamedRef, ServerRef};
use crate::{Node, Pid};

/// A behaviour's name: what identifies it in the behaviour registry and on the wire.
///
/// `#[behavior]` on a struct implements it with the type's module path
/// (`my_crate::workers::Worker`), or the name given as `#[behavior(name = "worker")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a behaviour",
    label = "`{Self}` has no behaviour name",
    note = "put #[behavior] on the struct too, not only on its impl block"
)]
pub trait BehaviorName {
    /// The name. Two behaviours of one program must not share it.
    const NAME: &'static str;
}

/// A behaviour whose messages can cross the network: they are serde types, and each has a
/// stable wire tag derived from the behaviour's name and the method's name.
///
/// `#[behavior]` implements it (unless the behaviour is `local`), and
/// [`#[noex::remote]`](macro@crate::remote) for a hand-written `GenServer`; its codec is
/// noex's own, so it is not implemented by hand.
#[diagnostic::on_unimplemented(
    message = "the messages of `{Self}` cannot be sent to another node",
    note = "see the errors about its argument and reply types, or declare the behaviour \
            local-only with #[behavior(local)]"
)]
pub trait RemoteBehavior: GenServer + BehaviorName {
    /// Every message's wire tag, as (method name, tag), in declaration order.
    const TAGS: &'static [(&'static str, u32)];

    /// How the behaviour's messages are encoded.
    #[doc(hidden)]
    fn codec() -> crate::dist::remote::Codec<Self>;
}

/// Something calls and casts to a behaviour `B` can go through: a [`ServerRef`] or a
/// [`NamedRef`]. The methods `#[behavior]` generates work on every handle.
pub trait ServerHandle<B: GenServer>: Sync {
    /// Calls the server; see [`ServerRef::call_with_timeout`].
    fn call_with_timeout(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> impl Future<Output = Result<B::Reply, CallError>> + Send;

    /// Casts to the server; see [`ServerRef::cast`].
    fn cast_message(&self, message: B::Cast) -> Result<(), SendError>;

    /// Casts to the server, handing the message back if it is not queued; see
    /// [`ServerRef::try_cast`].
    fn try_cast_message(&self, message: B::Cast) -> Result<(), CastError<B::Cast>>;

    /// Casts to the server, waiting for room; see [`ServerRef::cast_wait`].
    fn cast_message_wait(
        &self,
        message: B::Cast,
    ) -> impl Future<Output = Result<(), CastError<B::Cast>>> + Send;
}

impl<B: GenServer> ServerHandle<B> for ServerRef<B> {
    fn call_with_timeout(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> impl Future<Output = Result<B::Reply, CallError>> + Send {
        self.call_with_timeout(request, timeout)
    }

    #[inline]
    fn cast_message(&self, message: B::Cast) -> Result<(), SendError> {
        self.cast(message)
    }

    fn try_cast_message(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        self.try_cast(message)
    }

    fn cast_message_wait(
        &self,
        message: B::Cast,
    ) -> impl Future<Output = Result<(), CastError<B::Cast>>> + Send {
        self.cast_wait(message)
    }
}

impl<B: GenServer> ServerHandle<B> for NamedRef<B> {
    fn call_with_timeout(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> impl Future<Output = Result<B::Reply, CallError>> + Send {
        self.call_with_timeout(request, timeout)
    }

    #[inline]
    fn cast_message(&self, message: B::Cast) -> Result<(), SendError> {
        self.cast(message)
    }

    fn try_cast_message(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        self.try_cast(message)
    }

    fn cast_message_wait(
        &self,
        message: B::Cast,
    ) -> impl Future<Output = Result<(), CastError<B::Cast>>> + Send {
        self.cast_wait(message)
    }
}

/// The future of a registry entry's spawn function.
pub type SpawnFuture<'a> = Pin<Box<dyn Future<Output = Result<Pid, SpawnByNameError>> + Send + 'a>>;

/// How a process spawned by name starts: its options, and its ties to a spawner of another
/// node. Built by noex; a registry entry's spawn function passes it on.
pub struct SpawnParams {
    pub(crate) options: crate::SpawnOptions,
    pub(crate) remote: Option<Box<crate::server::spawn::RemoteSpawner>>,
    /// A spawner of this node to link with before `init`.
    pub(crate) linked: Option<std::sync::Arc<dyn crate::process::AnyProcess>>,
}

impl SpawnParams {
    pub(crate) fn local(options: crate::SpawnOptions) -> Self {
        SpawnParams {
            options,
            remote: None,
            linked: None,
        }
    }
}

impl fmt::Debug for SpawnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnParams")
            .field("options", &self.options)
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

/// A behaviour in the registry that [`Node::register_behaviors`] fills: everything needed to
/// spawn it from its name and postcard-encoded init arguments.
///
/// `#[behavior]` submits one for every behaviour that is not `local`; you rarely build one.
pub struct BehaviorEntry {
    /// The behaviour's [`BehaviorName::NAME`].
    pub name: &'static str,
    /// The Rust type of the behaviour (for error messages).
    pub type_name: &'static str,
    /// The Rust type of its init arguments (for error messages and tools).
    pub args_type: &'static str,
    /// Decodes the arguments and spawns the behaviour on `node`.
    pub spawn: for<'a> fn(&'a Node, &'a [u8], SpawnParams) -> SpawnFuture<'a>,
}

/// A behaviour declared `#[behavior(local)]`, listed so that a request to spawn it by name
/// (from another node, say) is answered "local-only" rather than "not registered".
#[derive(Debug)]
pub struct LocalBehaviorEntry {
    /// The behaviour's [`BehaviorName::NAME`].
    pub name: &'static str,
    /// The Rust type of the behaviour.
    pub type_name: &'static str,
}

inventory::collect!(LocalBehaviorEntry);

impl fmt::Debug for BehaviorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BehaviorEntry")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("args_type", &self.args_type)
            .finish()
    }
}

inventory::collect!(BehaviorEntry);

/// Why a behaviour could not be spawned by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnByNameError {
    /// No registered behaviour has this name (was `register_all!` called?).
    #[error("no behaviour named {0:?} is registered")]
    NotFound(String),
    /// The behaviour is declared `#[behavior(local)]`: its arguments and messages cannot
    /// cross nodes, so it is not spawned by name.
    #[error("behaviour {0:?} is local-only")]
    LocalOnly(String),
    /// The init arguments did not decode as the behaviour's `Args`.
    #[error("the init arguments of {behavior:?} do not decode as {args_type}: {error}")]
    BadArgs {
        /// The behaviour's name.
        behavior: String,
        /// The type the arguments should have.
        args_type: &'static str,
        /// The decoder's complaint.
        error: String,
    },
    /// `init` returned an error.
    #[error("init of {behavior:?} failed: {error}")]
    InitFailed {
        /// The behaviour's name.
        behavior: String,
        /// The error, as text.
        error: String,
    },
    /// `init` panicked.
    #[error("init of {behavior:?} panicked: {message}")]
    InitPanicked {
        /// The behaviour's name.
        behavior: String,
        /// The panic message.
        message: String,
    },
    /// `init` did not finish within the init timeout; the process was killed.
    #[error("init of {behavior:?} timed out")]
    InitTimeout {
        /// The behaviour's name.
        behavior: String,
    },
    /// The requested name is held by another process; no process was started.
    #[error("the name {name:?} is already registered to {holder}")]
    NameTaken {
        /// The name.
        name: String,
        /// The process that holds it.
        holder: Pid,
    },
    /// The process ended during `init` because of an exit signal.
    #[error("{behavior:?} exited during init: {reason}")]
    Exited {
        /// The behaviour's name.
        behavior: String,
        /// Why it ended.
        reason: crate::ExitReason,
    },
    /// The global name could not be settled in time; no process was started.
    #[error("the global name {name:?} could not be registered in time")]
    RegistrationTimeout {
        /// The name.
        name: String,
    },
    /// The global name could not be registered, for another reason than those above;
    /// no process was started.
    #[error("the global name could not be registered: {0}")]
    GlobalName(crate::GlobalError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl SpawnByNameError {
    /// The error of a typed spawn of behaviour `name`, for a spawn by name.
    pub(crate) fn from_spawn<E: fmt::Display>(name: &str, error: crate::SpawnError<E>) -> Self {
        use crate::SpawnError;
        let behavior = name.to_owned();
        match error {
            SpawnError::InitFailed(error) => SpawnByNameError::InitFailed {
                behavior,
                error: error.to_string(),
            },
            SpawnError::InitPanicked(message) => {
                SpawnByNameError::InitPanicked { behavior, message }
            }
            SpawnError::InitTimeout => SpawnByNameError::InitTimeout { behavior },
            SpawnError::Exited(reason) => SpawnByNameError::Exited { behavior, reason },
            SpawnError::NameTaken { name, holder } => SpawnByNameError::NameTaken { name, holder },
            SpawnError::RegistrationTimeout { name } => {
                SpawnByNameError::RegistrationTimeout { name }
            }
            SpawnError::GlobalName(error) => SpawnByNameError::GlobalName(error),
            SpawnError::ShuttingDown => SpawnByNameError::ShuttingDown,
        }
    }
}

/// Why the behaviour registry could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two behaviours of the program have the same name.
    #[error(
        "two behaviours are named {name:?}: {first} and {second}; \
         give one another name with #[behavior(name = \"...\")]"
    )]
    DuplicateName {
        /// The shared name.
        name: String,
        /// One behaviour's type.
        first: &'static str,
        /// The other's.
        second: &'static str,
    },
}

/// A registered behaviour, as listed by [`Node::behaviors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BehaviorInfo {
    /// Its name.
    pub name: &'static str,
    /// Its Rust type.
    pub type_name: &'static str,
    /// The Rust type of its init arguments, as written in the source (`u64`,
    /// `(u64, String)`).
    pub args_type: &'static str,
}
