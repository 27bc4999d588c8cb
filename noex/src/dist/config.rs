//! How a clustered node is set up, and what it reports.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::discovery::{Discovery, Source, StaticSeeds};
use super::node_id::{split_address, NodeId, NodeIdError};
use super::start_error::{ConfigError, StartError, MIN_FRAME_SIZE};

/// The settings of a clustered node, for [`Node::start`](crate::Node::start).
///
/// ```
/// use std::time::Duration;
/// use noex::ClusterConfig;
///
/// let config = ClusterConfig::new("worker-1")
///     .bind("0.0.0.0:4370".parse().unwrap())
///     .advertise_host("10.0.0.7")
///     .seed("coordinator@10.0.0.2:4370")
///     .secret("change me")
///     .heartbeat(Duration::from_millis(500), Duration::from_secs(3));
/// # let _ = config;
/// ```
#[derive(Clone)]
#[must_use = "a ClusterConfig does nothing until a node starts with it (Node::start)"]
pub struct ClusterConfig {
    pub(crate) name: String,
    pub(crate) bind: SocketAddr,
    pub(crate) advertise_host: Option<String>,
    pub(crate) seeds: Vec<String>,
    /// Discovery sources besides the seeds.
    discovery: Vec<Arc<dyn Source>>,
    pub(crate) secret: Vec<u8>,
    /// Where the secret is read from at start, if not given in code.
    secret_source: Option<SecretSource>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    /// `None`: twice `max_message_size`.
    pub(crate) reassembly_limit: Option<usize>,
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) mailbox_limit: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) forget_unreachable_after: Duration,
    pub(crate) max_dials: usize,
    pub(crate) max_members: usize,
    pub(crate) threads: Option<usize>,
    pub(crate) busy_wait: Duration,
    pub(crate) register_behaviors: bool,
    pub(crate) hidden: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::TlsConfig>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics_interval: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("advertise_host", &self.advertise_host)
            .field("seeds", &self.seeds)
            .field("discovery", &self.discovery)
            .field("secret", &"<hidden>")
            .field("tls", &self.tls_enabled())
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("reassembly_limit", &self.reassembly_bound())
            .field("outbound_queue_bytes", &self.outbound_queue_bytes)
            .field("mailbox_limit", &self.mailbox_limit)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("forget_unreachable_after", &self.forget_unreachable_after)
            .field("max_dials", &self.max_dials)
            .field("hidden", &self.hidden)
            .field("max_members", &self.max_members)
            .finish()
    }
}

impl ClusterConfig {
    /// A node named `name`, listening on 127.0.0.1 on a free port, with these defaults:
    ///
    /// | setting | default |
    /// |---|---|
    /// | heartbeat interval / failure timeout | 500 ms / 3 s |
    /// | max frame size | 16 MiB |
    /// | max message size (reassembled from fragments) | 256 MiB |
    /// | bytes held in unfinished messages, all peers together | twice the max message size |
    /// | outbound queue per peer | 8 MiB |
    /// | messages waiting in a process past which its senders of other nodes are held back | 65,536 |
    /// | connect timeout | 3 s |
    /// | reconnect backoff | 100 ms doubling to 5 s, ±20 % jitter |
    /// | an address that does not answer is no longer dialled after (seeds: never) | 5 min |
    /// | learnt addresses dialled at once | 128 |
    /// | nodes one member list (or one answer of a discovery source) may name | 1,024 |
    /// | accepted connections in their handshake (fairly shared among sources once full) | 64 |
    /// | a [`DnsSeeds`](crate::DnsSeeds) name is resolved again every | 5 s |
    ///
    /// The cluster secret defaults to empty: set one with [`secret`](Self::secret).
    pub fn new(name: impl Into<String>) -> Self {
        ClusterConfig {
            name: name.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise_host: None,
            seeds: Vec::new(),
            discovery: Vec::new(),
            secret: Vec::new(),
            secret_source: None,
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(3),
            max_frame_size: 16 << 20,
            max_message_size: 256 << 20,
            reassembly_limit: None,
            outbound_queue_bytes: 8 << 20,
            mailbox_limit: 1 << 16,
            connect_timeout: Duration::from_secs(3),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            forget_unreachable_after: Duration::from_secs(5 * 60),
            max_dials: 128,
            max_members: 1024,
            threads: None,
            busy_wait: crate::node::DEFAULT_BUSY_WAIT,
            register_behaviors: false,
            hidden: false,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "metrics")]
            metrics_interval: crate::metrics::DEFAULT_METRICS_INTERVAL,
        }
    }

    /// The address to listen on. Port 0 picks a free port; the node id reports the real one.
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.bind = address;
        self
    }

    /// The host other nodes use to reach this one. Defaults to the bind address's IP; a
    /// node bound to `0.0.0.0` (or `::`) must set it, since it cannot know which of its
    /// addresses the others can reach.
    pub fn advertise_host(mut self, host: impl Into<String>) -> Self {
        self.advertise_host = Some(host.into());
        self
    }

    /// Adds a seed: `name@host:port` or `host:port`. Seeds are connected at start (and
    /// retried with backoff until they answer); the rest of the cluster is learnt from them.
    /// They are the [`StaticSeeds`] source of [`discovery`](Self::discovery). A host name
    /// here is resolved at each attempt, to one address; for a name of several (a
    /// Kubernetes headless service), use [`DnsSeeds`](crate::DnsSeeds).
    pub fn seed(mut self, seed: impl Into<String>) -> Self {
        self.seeds.push(seed.into());
        self
    }

    /// Adds a source of seeds: the node dials every address it lists, while it lists it,
    /// and asks it again at each of its changes (see [`Discovery`] and the
    /// [`discovery`](crate::discovery) module). Sources add up, to the seeds too: an
    /// address is a seed while any of them lists it.
    ///
    /// ```
    /// use noex::{ClusterConfig, DnsSeeds};
    ///
    /// let config = ClusterConfig::new("worker-1")
    ///     .bind("0.0.0.0:4370".parse().unwrap())
    ///     .advertise_host("10.0.0.7")
    ///     .secret_env("NOEX_SECRET")
    ///     .discovery(DnsSeeds::new("noex.default.svc.cluster.local:4370").unwrap());
    /// # let _ = config;
    /// ```
    pub fn discovery(mut self, source: impl Discovery) -> Self {
        self.discovery.push(Arc::new(source));
        self
    }

    /// Every discovery source: the seeds (if any) first.
    pub(crate) fn sources(&self) -> Vec<Arc<dyn Source>> {
        let seeds = (!self.seeds.is_empty())
            .then(|| Arc::new(StaticSeeds::unchecked(self.seeds.clone())) as Arc<dyn Source>);
        seeds
            .into_iter()
            .chain(self.discovery.iter().cloned())
            .collect()
    }

    /// The cluster secret: nodes prove to each other that they know it (HMAC-SHA256
    /// challenges; the secret itself never crosses the network). Every node of a cluster
    /// needs the same one. Make it long and random — 32 bytes from a good source, for
    /// example `openssl rand -base64 32` — and keep it out of the code: see
    /// [`secret_file`](Self::secret_file) and [`secret_env`](Self::secret_env). A node
    /// that listens on anything but a loopback address does not start without one.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = secret.as_ref().to_vec();
        self.secret_source = None;
        self
    }

    /// Reads the cluster secret from a file when the node starts (its content, without
    /// surrounding whitespace, such as the final newline). A file that cannot be read, or
    /// is empty, fails the start with [`StartError::Secret`].
    pub fn secret_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.secret_source = Some(SecretSource::File(path.into()));
        self
    }

    /// Reads the cluster secret from the environment variable `name` when the node starts
    /// (without surrounding whitespace). A variable that is not set, or empty, fails the
    /// start with [`StartError::Secret`].
    pub fn secret_env(mut self, name: impl Into<String>) -> Self {
        self.secret_source = Some(SecretSource::Env(name.into()));
        self
    }

    /// Failure detection: a heartbeat is sent on a link quiet for `interval`; a peer heard
    /// nothing from for `timeout` is declared down (`HeartbeatTimeout`).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Limits: the largest frame read from a peer (at least [`MIN_FRAME_SIZE`]), and the
    /// largest message reassembled from fragments (a message encoded larger than 64 KiB
    /// travels in fragments; smaller ones are always taken).
    ///
    /// The max message size is told to each peer in the handshake, and a peer refuses to
    /// send this node anything larger: that one send fails, with
    /// [`SendError::TooLarge`](crate::SendError::TooLarge) (a cast or send),
    /// [`CallError::TooLarge`](crate::CallError::TooLarge) (a call's request),
    /// [`CallError::ReplyTooLarge`](crate::CallError::ReplyTooLarge) (the caller's, when
    /// the reply to its call is what would be too large for it) or
    /// [`RemoteSpawnError::TooLarge`](crate::RemoteSpawnError::TooLarge) (a remote spawn's
    /// arguments), and the connection carries on. Only a peer that breaks the protocol
    /// (sending more than it was told) is disconnected.
    pub fn limits(mut self, max_frame_size: usize, max_message_size: usize) -> Self {
        self.max_frame_size = max_frame_size;
        self.max_message_size = max_message_size;
        self
    }

    /// The bytes of unfinished messages (large messages still arriving in fragments) this
    /// node holds, from all its peers together; at least the max message size. A peer
    /// whose next message would pass it waits, unread, until other messages are complete.
    /// Defaults to twice the max message size.
    pub fn reassembly_limit(mut self, bytes: usize) -> Self {
        self.reassembly_limit = Some(bytes);
        self
    }

    /// The reassembly limit in force.
    pub(crate) fn reassembly_bound(&self) -> usize {
        self.reassembly_limit
            .unwrap_or_else(|| self.max_message_size.saturating_mul(2))
    }

    /// The bytes of messages queued for one peer, at most (at least 1): past it a cast fails with
    /// `Overloaded`, and a call or a [`cast_wait`](crate::ServerRef::cast_wait) waits for
    /// room (a call up to its timeout). Replies to the peer's
    /// calls are bounded by it too: while that many bytes of them wait to be sent (or
    /// some do, and 256 of the peer's calls still wait for a handler), this node handles
    /// no more of the peer's messages — it reads up to as many bytes again, then leaves
    /// them in the peer's socket. The replies queued then stay within this bound plus the
    /// replies to the calls already handed to processes.
    pub fn outbound_queue(mut self, bytes: usize) -> Self {
        self.outbound_queue_bytes = bytes.max(1);
        self
    }

    /// How many messages may wait in the mailbox of a process of this node before it
    /// holds back the nodes that send to it (at least 1). When a message from a peer
    /// leaves a process with this many messages waiting, the connection to that peer
    /// hands no more messages to processes, whoever they are for, until the process is
    /// under the limit again (or ends): it reads up to the
    /// [outbound-queue](Self::outbound_queue) bound more, then leaves the rest in the
    /// peer's socket, so the peer's queue fills and its senders wait
    /// ([`cast_wait`](crate::ServerRef::cast_wait), calls) or are refused
    /// ([`cast`](crate::ServerRef::cast)). A slow process thus slows down its senders on
    /// other nodes instead of growing its mailbox without bound.
    ///
    /// What fills no mailbox is not held back with the messages: heartbeats (the peer is
    /// not declared down meanwhile), the replies to this node's calls, large ones sent in
    /// fragments included, so that a process past the limit still gets the replies to its
    /// own calls (each reply after the messages held back for its caller, which are handed
    /// on first: a reply never passes what its server sent before it), spawns, the global
    /// registry's traffic, and the signals that act on a process at once rather than
    /// through its mailbox, as they would locally — a kill, a stop, an exit signal the
    /// process does not trap, links and monitors — so that a process stuck behind its
    /// messages can be killed or stopped from the nodes it holds back. (Once the
    /// outbound-queue bound of messages is read and held, nothing more is read until they
    /// are handed on; what the peer sends after them waits in its socket. The peer counts
    /// as heard from meanwhile — its heartbeats wait there too — so a peer lost while a
    /// process holds its connection back is noticed once the process is under the limit
    /// again, within the heartbeat timeout; a process that never drains its mailbox keeps
    /// the loss unnoticed: kill it, and the loss is seen. Messages held back when this
    /// node drops the connection are lost with it.)
    ///
    /// Of a large message held back (64 KiB or more, sent in fragments), no more than the
    /// window of fragments in flight (256 KiB) is read: until the connection is no longer
    /// held back, the peer sends no more of it, no other large message (large replies
    /// included), and nothing its sender sends after it (a process's messages keep their
    /// order). A call whose server sends its caller such a message before replying, or
    /// whose large reply comes behind one, waits that long: if its caller is itself past
    /// the limit with the same peer's messages, it ends at its timeout.
    ///
    /// Messages from this node's own processes are not limited (a mailbox is unbounded).
    /// The price of holding a connection back is that the peer's other messages wait too.
    /// Raise the limit for processes that receive bursts larger than this from other
    /// nodes.
    pub fn mailbox_limit(mut self, messages: usize) -> Self {
        self.mailbox_limit = messages.max(1);
        self
    }

    /// How long a connection attempt (TCP and handshake) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reconnection backoff: the first retry after `min` (at least 1 ms), doubling up to
    /// `max` (`Duration::MAX`: no cap).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// How long an address that does not answer is dialled before this node gives up on
    /// it: a peer lost by failure, or a node another peer announced. Only the node's own
    /// answers count, once it has proved it holds the cluster secret: an address where
    /// only something else replies (a refusal, or garbage, from whatever took the port) is
    /// given up as a silent one is. It is tried one last time as its time runs out. Configured
    /// seeds are dialled until they answer, however long that takes — at start and
    /// whenever their connection is lost, by failure or by their goodbye. (A peer that
    /// comes back later dials its seeds, and the cluster reconnects through them.)
    pub fn forget_unreachable_after(mut self, after: Duration) -> Self {
        self.forget_unreachable_after = after;
        self
    }

    /// The most addresses learnt from peers' member lists that this node dials at once;
    /// more wait (up to [`max_members`](Self::max_members) of them) until some of those
    /// connect or are given up. (Seeds and peers lost by failure are always dialled.)
    pub fn max_dials(mut self, dials: usize) -> Self {
        self.max_dials = dials;
        self
    }

    /// The most nodes one member list from a peer may name: the largest cluster this node
    /// can be part of. A longer list is a protocol error that ends the connection.
    ///
    /// It bounds what a discovery source makes this node dial too: of one answer, the
    /// first `members` addresses are taken (the node's own and invalid entries left out
    /// first), the rest left out, with a warning the first time a source's answer is cut
    /// (see [`discovery`](crate::discovery)).
    pub fn max_members(mut self, members: usize) -> Self {
        self.max_members = members;
        self
    }

    /// Registers every behaviour of the program before the node listens, so that no peer
    /// can ask it to spawn one before it is registered (see
    /// [`Node::register_behaviors`](crate::Node::register_behaviors)). Two behaviours with
    /// one name fail the start with [`StartError::Behaviors`].
    pub fn register_behaviors(mut self) -> Self {
        self.register_behaviors = true;
        self
    }

    /// Makes this node a *hidden* node, as Erlang's `-hidden`: a node that connects to the
    /// members of the cluster to look at them (the `noex-observer` does) without being one
    /// of them. The other nodes do not report it in
    /// [`connected_nodes`](crate::Node::connected_nodes) (it is in
    /// [`hidden_nodes`](crate::Node::hidden_nodes)) nor in their cluster events, do not
    /// name it in the member lists they send, never place a distributed supervisor's child
    /// on it, and do not share the global registry with it; it refuses their spawns
    /// ([`RemoteSpawnError::HiddenNode`](crate::RemoteSpawnError::HiddenNode)). Calls,
    /// casts, monitors and links between its processes and theirs work as between any two
    /// nodes. The global registry and groups refuse it
    /// ([`GlobalError::HiddenNode`](crate::GlobalError::HiddenNode)): its processes cannot
    /// be registered or join a group, on any node, and it registers no process itself —
    /// a name it registered would be known to it alone. (Its
    /// [`whereis_global`](crate::Node::whereis_global) finds nothing of the cluster's.)
    ///
    /// A hidden node itself connects to every member it learns of, as any node does.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// The number of scheduler threads, from 1 to 1,024 (default: one per CPU).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// How long the node's threads busy-wait for work before they sleep (default
    /// [`DEFAULT_BUSY_WAIT`](crate::DEFAULT_BUSY_WAIT); zero turns it off): see
    /// [`NodeBuilder::busy_wait`](crate::NodeBuilder::busy_wait).
    pub fn busy_wait(mut self, busy_wait: Duration) -> Self {
        self.busy_wait = busy_wait;
        self
    }

    /// How often the node samples its [metrics](crate::metrics) (the `metrics` feature);
    /// [`Duration::ZERO`] turns the sampling off. Defaults to
    /// [`DEFAULT_METRICS_INTERVAL`](crate::metrics::DEFAULT_METRICS_INTERVAL).
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// Runs every connection to another node over TLS 1.3 with mutual authentication
    /// (the `tls` feature; see [`TlsConfig`](super::TlsConfig)). Every node of the cluster
    /// needs it: a node with TLS and one without refuse each other
    /// ([`RefusedReason::PeerWithoutTls`](super::RefusedReason::PeerWithoutTls)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    fn tls_enabled(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The node id this config yields once bound to `local` (the real address).
    pub(crate) fn node_id(&self, local: SocketAddr) -> Result<NodeId, StartError> {
        let host = match &self.advertise_host {
            Some(host) => host.clone(),
            None if local.ip().is_unspecified() => {
                return Err(ConfigError::NoAdvertisedHost { bound: local }.into())
            }
            None => match local.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => ip.to_string(),
            },
        };
        Ok(NodeId::new(&self.name, &host, local.port())?)
    }

    /// Checks the settings that do not need the network.
    /// The configuration with its secret read from where it is kept; refuses a node that
    /// listens beyond loopback without a secret.
    pub(crate) fn resolve(mut self) -> Result<Self, StartError> {
        let read = |from: String, text: Result<String, String>| {
            let text = text.map_err(|error| StartError::Secret {
                from: from.clone(),
                error,
            })?;
            match text.trim() {
                "" => Err(StartError::Secret {
                    from,
                    error: "it is empty".into(),
                }),
                secret => Ok(secret.as_bytes().to_vec()),
            }
        };
        match self.secret_source.take() {
            Some(SecretSource::File(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
                self.secret = read(format!("the file {}", path.display()), text)?;
            }
            Some(SecretSource::Env(name)) => {
                let text = std::env::var(&name).map_err(|error| match error {
                    // Its text quotes the value: the secret.
                    std::env::VarError::NotUnicode(_) => "it is not valid UTF-8".to_owned(),
                    error => error.to_string(),
                });
                self.secret = read(format!("the environment variable {name}"), text)?;
            }
            None => {}
        }
        if self.secret.is_empty() && !self.bind.ip().is_loopback() {
            return Err(StartError::MissingSecret { address: self.bind });
        }
        Ok(self)
    }

    pub(crate) fn validate(&self) -> Result<(), StartError> {
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(ConfigError::Heartbeat {
                interval: self.heartbeat_interval,
                timeout: self.heartbeat_timeout,
            }
            .into());
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroConnectTimeout.into());
        }
        if self.max_frame_size < MIN_FRAME_SIZE {
            return Err(ConfigError::FrameSize {
                max_frame_size: self.max_frame_size,
            }
            .into());
        }
        if self.reassembly_bound() < self.max_message_size {
            return Err(ConfigError::ReassemblyLimit {
                reassembly_limit: self.reassembly_bound(),
                max_message_size: self.max_message_size,
            }
            .into());
        }
        for seed in &self.seeds {
            Seed::parse(seed)?;
        }
        Ok(())
    }
}

/// A seed: a node id, or only an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seed {
    Node(NodeId),
    Address(String),
}

impl Seed {
    pub(crate) fn parse(text: &str) -> Result<Seed, NodeIdError> {
        if text.contains('@') {
            Ok(Seed::Node(text.parse()?))
        } else {
            split_address(text)?;
            Ok(Seed::Address(text.to_owned()))
        }
    }

    /// `host:port` to dial.
    pub(crate) fn address(&self) -> &str {
        match self {
            Seed::Node(id) => id.address(),
            Seed::Address(address) => address,
        }
    }
}

/// Where a secret is read from at start.
#[derive(Debug, Clone)]
enum SecretSource {
    File(std::path::PathBuf),
    Env(String),
}
