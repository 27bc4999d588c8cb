//! Discovery: where a node finds the members it connects to.
//!
//! A clustered node connects to the addresses its discovery sources list, and learns the
//! rest of the cluster from those it reaches (every connection starts with an exchange of
//! member lists). A source is anything that implements [`Discovery`]; noex has two:
//!
//! * [`StaticSeeds`]: a fixed list. [`ClusterConfig::seed`](crate::ClusterConfig::seed)
//!   feeds one, so configured seeds are the static source.
//! * [`DnsSeeds`]: a DNS name and a port, such as a Kubernetes headless service
//!   (`noex.default.svc.cluster.local:4370`). Every address the name resolves to is
//!   dialled, and the name is resolved again every [`DEFAULT_DISCOVERY_INTERVAL`]
//!   (5 s; see [`DnsSeeds::interval`]), so that members that appear later are found.
//!
//! Plug sources in with [`ClusterConfig::discovery`](crate::ClusterConfig::discovery);
//! there may be several, and each is followed on its own.
//!
//! # What the node does with a source
//!
//! When the node starts, it asks each source for its [`addresses`](Discovery::addresses),
//! then waits for the source's [`changed`](Discovery::changed) and asks again, until the
//! node shuts down (the waits end then too: no task outlives the node). A *polled* source
//! makes `changed` a timer — the default waits [`DEFAULT_DISCOVERY_INTERVAL`]; a *pushed*
//! source resolves it when it learns of a change.
//!
//! * **Listed**: at each answer of a source, every address it lists that the node is not
//!   connected to is dialled as a seed: retried with the reconnect backoff until it
//!   answers, however long that takes. (A polled source's address whose connection is
//!   lost is thus a seed again at the next poll; a static seed is asked for once, and a
//!   lost one — by failure or by its goodbye — is dialled again as a seed, at the address
//!   listed (not the one in its id, if that differs), however long it stays silent, so
//!   that a partition longer than `forget_unreachable_after` still heals and a seed that
//!   restarts knowing no one is joined again.) Left alone are the
//!   node's own address (a DNS name for a whole cluster lists the node itself) and an
//!   address found to lead to the node itself under another name (its own listener
//!   received the dial's hello), for as long as it stays listed.
//! * **Bounded**: of one answer, at most
//!   [`max_members`](crate::ClusterConfig::max_members) addresses are taken (1,024 by
//!   default: the largest cluster the node can be part of), in the order listed, the
//!   node's own and invalid entries left out first; the rest are not dialled, and the
//!   first answer of a run that is cut so is logged as a warning (the next at debug
//!   level). So a source that lists thousands of addresses (a DNS name gone wrong) makes
//!   the node dial at most that many.
//! * **No longer listed** by any source: it is no longer a seed. A connection to it stays
//!   up — membership is decided by connections and heartbeats, not by the listing — and a
//!   dial of it goes on as for a peer lost by failure, given up once the address has not
//!   answered for [`forget_unreachable_after`](crate::ClusterConfig::forget_unreachable_after)
//!   (at its next attempt, if it has been silent that long already). Listed again, it is
//!   a seed again.
//! * **A failure** of a source (a DNS lookup that fails, a file that cannot be read) is
//!   logged with `tracing` — a warning for the first of a run, then at debug level —
//!   and the addresses it listed before stay listed. The source is asked again at its
//!   next change, or after the reconnect backoff
//!   ([`reconnect_backoff`](crate::ClusterConfig::reconnect_backoff)), whichever comes
//!   first. A listed entry that is not `host:port` or `name@host:port` is logged and
//!   skipped.
//!
//! Several sources are combined as a union: an address is listed while any source lists
//! it.
//!
//! # Off the scheduler threads
//!
//! [`DnsSeeds`] resolves its name with [`async_net::resolve`], which runs the system
//! resolver on the `blocking` crate's thread pool, never on a scheduler thread: a slow DNS
//! server delays discovery, not the node's processes. A custom source must do the same
//! with anything that blocks (file or network I/O without an async API): run it with
//! [`smol::unblock`], or use an async library.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use thiserror::Error;

mod listing;
mod sources;

pub(crate) use listing::Listings;
pub(super) use listing::{discover, own_addresses};
pub use sources::{DnsSeeds, StaticSeeds};

/// How long a polled source waits before it is asked again, unless it says otherwise:
/// 5 s (libcluster's DNS strategies' default). [`DnsSeeds`] resolves its name this often.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// A source of the addresses of cluster members: what a node dials to join its cluster.
///
/// The node asks for [`addresses`](Self::addresses) when it starts, then each time
/// [`changed`](Self::changed) resolves, until it shuts down. A listed address is dialled
/// until it answers; one no longer listed is given up if it does not answer (see the
/// [module docs](crate::discovery) for the details). A source may be polled (the default
/// `changed` is a timer of [`DEFAULT_DISCOVERY_INTERVAL`]) or push its changes (make
/// `changed` wait for one). Plug one in with
/// [`ClusterConfig::discovery`](crate::ClusterConfig::discovery).
///
/// A source given to a configuration that starts several nodes (clones of it) is shared
/// by them: each node asks it, and waits on its `changed`, on its own.
///
/// # Example
///
/// A source that reads one address per line from a file, every 10 seconds (off the
/// scheduler threads: file I/O blocks):
///
/// ```
/// use std::path::PathBuf;
/// use std::time::Duration;
/// use noex::{ClusterConfig, Discovery, DiscoveryError, Node};
///
/// #[derive(Debug)]
/// struct FileSeeds {
///     path: PathBuf,
/// }
///
/// impl Discovery for FileSeeds {
///     async fn addresses(&self) -> Result<Vec<String>, DiscoveryError> {
///         let path = self.path.clone();
///         let text = smol::unblock(move || std::fs::read_to_string(path)).await?;
///         let lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
///         Ok(lines.map(String::from).collect())
///     }
///
///     async fn changed(&self) {
///         smol::Timer::after(Duration::from_secs(10)).await;
///     }
/// }
///
/// # smol::block_on(async {
/// let a = Node::start(ClusterConfig::new("a").secret("s3cret")).await.unwrap();
/// let path = std::env::temp_dir().join(format!("noex-members-{}", std::process::id()));
/// std::fs::write(&path, format!("{}\n", a.local_node_id().unwrap().address())).unwrap();
///
/// let config = ClusterConfig::new("b")
///     .secret("s3cret")
///     .discovery(FileSeeds { path: path.clone() });
/// let b = Node::start(config).await.unwrap();
/// let events = b.cluster_events();
/// if b.connected_nodes().is_empty() {
///     events.recv().await; // NodeUp of a
/// }
/// assert_eq!(b.connected_nodes()[0].id.name(), "a");
/// # std::fs::remove_file(path).unwrap();
/// # a.shutdown();
/// # b.shutdown();
/// # });
/// ```
pub trait Discovery: Debug + Send + Sync + 'static {
    /// The addresses to connect to now, each `host:port` or `name@host:port` (as for
    /// [`ClusterConfig::seed`](crate::ClusterConfig::seed); with a name, the node there
    /// must have that id). The whole current set: an address left out is no longer
    /// listed by this source. An error keeps the set of the last success.
    fn addresses(&self) -> impl Future<Output = Result<Vec<String>, DiscoveryError>> + Send;

    /// Resolves when the addresses may have changed: the node then asks for them again.
    /// Called after each answer of [`addresses`](Self::addresses), so a pushed source
    /// must remember a change made meanwhile (a channel does; an `event_listener::Event`
    /// notified before `changed` listens does not). The default waits
    /// [`DEFAULT_DISCOVERY_INTERVAL`].
    fn changed(&self) -> impl Future<Output = ()> + Send {
        async {
            smol::Timer::after(DEFAULT_DISCOVERY_INTERVAL).await;
        }
    }
}

/// Why a [`Discovery`] source could not list its addresses.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// A DNS name could not be resolved.
    #[error("cannot resolve {name}: {error}")]
    Resolve {
        /// The name, `host:port`.
        name: String,
        /// Why (already in this error's message, so not its `source()`).
        error: std::io::Error,
    },
    /// Reading the addresses failed (a file, a socket).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Any other failure of a source.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A boxed future borrowing its source.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Discovery`] as a trait object, so that a configuration can hold sources of any type.
pub(crate) trait Source: Debug + Send + Sync + 'static {
    fn addresses(&self) -> Boxed<'_, Result<Vec<String>, DiscoveryError>>;
    fn changed(&self) -> Boxed<'_, ()>;
}

impl<D: Discovery> Source for D {
    fn addresses(&self) -> Boxed<'_, Result<Vec<String>, DiscoveryError>> {
        Box::pin(Discovery::addresses(self))
    }

    fn changed(&self) -> Boxed<'_, ()> {
        Box::pin(Discovery::changed(self))
    }
}
