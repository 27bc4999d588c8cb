//! Why a clustered node did not start: [`StartError`], and the settings of a
//! [`ClusterConfig`](super::ClusterConfig) that contradict each other ([`ConfigError`]).

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use super::node_id::NodeIdError;
use super::wire::FRAGMENT_SIZE;

/// The smallest frame limit a node accepts
/// ([`ClusterConfig::limits`](crate::ClusterConfig::limits)): every node sends a message of
/// up to 64 KiB in one frame, and a larger one in fragments of 64 KiB, each with a header
/// of a few bytes.
pub const MIN_FRAME_SIZE: usize = FRAGMENT_SIZE + 1024;

/// Why a clustered node did not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {error}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The node id (name, advertised host) or a seed is invalid.
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
    /// The settings contradict each other, or cannot give the node an id.
    #[error("invalid cluster configuration: {0}")]
    Config(ConfigError),
    /// The behaviours could not be registered (two share a name).
    #[error(transparent)]
    Behaviors(#[from] crate::behavior::RegistryError),
    /// The node's scheduler threads could not be started (the OS is out of threads or
    /// file descriptors).
    #[error("cannot start the node's scheduler threads: {0}")]
    Threads(std::io::Error),
    /// The node would listen beyond loopback with no cluster secret: anyone who can reach
    /// the port could join.
    #[error(
        "a node listening on {address} needs a cluster secret: set one with \
         ClusterConfig::secret, secret_file or secret_env (make one with \
         `openssl rand -base64 32`)"
    )]
    MissingSecret {
        /// The address it would listen on.
        address: SocketAddr,
    },
    /// The secret could not be read from where the configuration says it is kept.
    #[error("cannot read the cluster secret from {from}: {error}")]
    Secret {
        /// Where from (a file, an environment variable).
        from: String,
        /// Why.
        error: String,
    },
}

// Not `#[from]`, which would make the `ConfigError` the `source()` too: its message is
// already this error's, and a report (`anyhow`'s `{:?}`) would print it twice.
impl From<ConfigError> for StartError {
    fn from(error: ConfigError) -> Self {
        StartError::Config(error)
    }
}

/// Settings of a [`ClusterConfig`](crate::ClusterConfig) that contradict each other, or
/// cannot give the node an id: [`StartError::Config`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The node is bound to every interface (`0.0.0.0` or `::`), and no
    /// [`advertise_host`](crate::ClusterConfig::advertise_host) says which address other nodes
    /// reach it at.
    #[error("bound to {bound}: set advertise_host to an address other nodes can reach")]
    NoAdvertisedHost {
        /// The address bound.
        bound: SocketAddr,
    },
    /// The heartbeat interval is zero, or the timeout is not longer than it.
    #[error(
        "the heartbeat timeout ({timeout:?}) must be longer than the (non-zero) interval \
         ({interval:?})"
    )]
    Heartbeat {
        /// The interval.
        interval: Duration,
        /// The timeout.
        timeout: Duration,
    },
    /// The connect timeout is zero: every handshake would fail.
    #[error("the connect timeout must be longer than zero")]
    ZeroConnectTimeout,
    /// The max frame size is under [`MIN_FRAME_SIZE`]: messages sent whole (up to the
    /// fragment size) or fragments would not fit in a frame.
    #[error(
        "the max frame size ({max_frame_size} bytes) must be at least {MIN_FRAME_SIZE} bytes: \
         a message up to {FRAGMENT_SIZE} bytes is sent whole, and a larger one in fragments \
         of that size"
    )]
    FrameSize {
        /// The max frame size given.
        max_frame_size: usize,
    },
    /// The reassembly limit is under the max message size: a message of that size could
    /// never be put back together.
    #[error(
        "the reassembly limit ({reassembly_limit} bytes) must be at least the max message \
         size ({max_message_size} bytes)"
    )]
    ReassemblyLimit {
        /// The reassembly limit.
        reassembly_limit: usize,
        /// The max message size.
        max_message_size: usize,
    },
}
