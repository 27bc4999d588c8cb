//! The cluster side of `Node`: starting a clustered node and looking at its peers.

use std::sync::Arc;

use super::{Node, NodeInner};
use crate::dist::remote::RemoteTarget;
use crate::dist::{
    Cluster, ClusterConfig, ClusterEvent, ForgetError, NodeId, NodeInfo, RemoteStats, StartError,
    TrafficStats,
};
use crate::events::Subscription;
use crate::server::NamedRef;
use crate::RemoteBehavior;

/// A subscription to [`ClusterEvent`]s, from [`Node::cluster_events`].
pub type ClusterEvents = Subscription<ClusterEvent>;

impl Node {
    /// Starts a node that joins a cluster: it listens on the configured address, connects
    /// to its seeds (retrying until they answer), and learns of every other member from
    /// them. Its processes' pids carry its node id, so they can be reached from the others.
    ///
    /// ```
    /// use noex::{ClusterConfig, Node};
    ///
    /// # smol::block_on(async {
    /// let a = Node::start(ClusterConfig::new("a").secret("s3cret")).await.unwrap();
    /// let seed = a.local_node_id().unwrap().to_string();
    /// let b = Node::start(ClusterConfig::new("b").secret("s3cret").seed(seed)).await.unwrap();
    ///
    /// let up = a.cluster_events();
    /// # let _ = up;
    /// # a.shutdown();
    /// # b.shutdown();
    /// # });
    /// ```
    pub async fn start(config: ClusterConfig) -> Result<Node, StartError> {
        let config = config.resolve()?;
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let (listener, id) = Cluster::bind(config.clone()).await?;
        let inner = Arc::new(
            NodeInner::new(id.as_str(), threads, config.busy_wait).map_err(StartError::Threads)?,
        );
        if config.register_behaviors {
            inner.register_behaviors()?;
        }
        let cluster = Arc::new(Cluster::new(
            config,
            id,
            inner.incarnation,
            Arc::downgrade(&inner),
        ));
        // A fresh OnceLock: setting it cannot fail.
        let _ = inner.cluster.set(cluster.clone());
        #[cfg(feature = "metrics")]
        crate::metrics::start(
            &inner,
            cluster.config.metrics_interval,
            Some(cluster.events.subscribe_unbounded()),
        );
        let node = Node { inner };
        node.start_agent().await;
        cluster.run(listener);
        Ok(node)
    }

    /// How many [`members`](Node::members) this node has (0 on a node that is not
    /// clustered).
    pub(crate) fn known_members(&self) -> usize {
        self.cluster().map_or(0, |c| c.known_members())
    }

    /// When this node last lost a connection to a member (`None` if never, or not
    /// clustered).
    pub(crate) fn last_loss(&self) -> Option<std::time::Instant> {
        self.cluster().and_then(|c| c.last_loss())
    }

    /// `true` if this node's connection to the node of `pid` was lost at `since` or later
    /// (it may be connected again by now).
    pub(crate) fn lost_since(&self, pid: &crate::Pid, since: std::time::Instant) -> bool {
        self.cluster()
            .is_some_and(|c| c.lost_since(pid.node(), since))
    }

    /// `true` if the node of `pid`, in the pid's incarnation, announced that it leaves
    /// the cluster (see `dist::leaving`).
    pub(crate) fn left(&self, pid: &crate::Pid) -> bool {
        self.cluster().is_some_and(|c| c.left(pid))
    }

    /// Starts the node's agent, which answers observers of other nodes (see `observe`).
    async fn start_agent(&self) {
        let options = crate::SpawnOptions::default().name(crate::observe::AGENT_NAME);
        match self.spawn_with::<crate::observe::Agent>((), options).await {
            Ok(agent) => {
                let _ = self.inner.agent.set(agent.pid().serial());
            }
            Err(error) => tracing::warn!(%error, "the node's observer agent did not start"),
        }
    }

    fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.inner.cluster.get()
    }

    /// This node's id in its cluster; `None` for a local node (`Node::new`).
    pub fn local_node_id(&self) -> Option<&NodeId> {
        self.cluster().map(|cluster| &cluster.id)
    }

    /// The nodes this node is connected to, sorted by id — hidden nodes aside (see
    /// [`hidden_nodes`](Node::hidden_nodes)).
    pub fn connected_nodes(&self) -> Vec<NodeInfo> {
        self.cluster()
            .map(|c| c.connected(false))
            .unwrap_or_default()
    }

    /// The hidden nodes (observers, see [`ClusterConfig::hidden`]) this node is connected
    /// to, sorted by id.
    pub fn hidden_nodes(&self) -> Vec<NodeInfo> {
        self.cluster()
            .map(|c| c.connected(true))
            .unwrap_or_default()
    }

    /// The members of this node's cluster, itself aside, sorted: every node it has been
    /// connected to since it started (hidden nodes aside), connected now or not, but those
    /// that left with a goodbye (a [`shutdown`](Node::shutdown)) and those
    /// [forgotten](Node::forget_node). Empty on a local node.
    ///
    /// A [distributed supervisor](crate::DistributedSupervisor) on this node moves a child
    /// lost with its node only while it sees a strict majority of these members and
    /// itself, so that the two sides of a partition never both do. A member that crashed
    /// counts against that majority until it comes back under its id.
    pub fn members(&self) -> Vec<NodeId> {
        self.cluster().map(|c| c.members()).unwrap_or_default()
    }

    /// Forgets `node`, a member of this node's cluster that is gone for good: it no
    /// longer counts towards the majority a distributed supervisor needs (see
    /// [`members`](Node::members)), nor is it dialled again (unless a discovery source
    /// lists it). Returns `false` if it was not a member; fails if it is connected.
    ///
    /// A member lost without a goodbye stays one, because this node cannot tell a crashed
    /// node from one cut off by a partition, where it may still run. So a cluster whose
    /// nodes crash and come back under new ids (a new port or pod address each time)
    /// grows its membership, until its live nodes are no majority of it and their
    /// supervisors wait for ever: forget the old ids as they are known to be gone, as an
    /// operator downs a node in Akka. Forget them on each node that runs a distributed
    /// supervisor (each counts its own members).
    ///
    /// Forget only a node known to be dead (its process or machine gone). A node forgotten
    /// while it runs on the other side of a partition is a member again once it connects,
    /// but meanwhile this side counts a smaller cluster: both sides may then see a
    /// majority, and a supervised child run on both.
    ///
    /// ```
    /// use noex::{ClusterConfig, ForgetError, Node};
    ///
    /// # smol::block_on(async {
    /// let config = |name| ClusterConfig::new(name).secret("s3cret");
    /// let a = Node::start(config("a")).await.unwrap();
    /// let seed = a.local_node_id().unwrap().to_string();
    /// let b = Node::start(config("b").seed(seed)).await.unwrap();
    /// # while a.connected_nodes().is_empty() { smol::Timer::after(std::time::Duration::from_millis(5)).await; }
    /// let b_id = b.local_node_id().unwrap().clone();
    /// assert_eq!(a.members(), vec![b_id.clone()]);
    ///
    /// // A connected node is alive as far as `a` can tell: it cannot be forgotten.
    /// assert_eq!(a.forget_node(&b_id), Err(ForgetError::Connected { node: b_id.clone() }));
    ///
    /// // Once its machine is known to be gone for good (here: a node that never was one).
    /// let gone = "c@127.0.0.1:1".parse().unwrap();
    /// assert_eq!(a.forget_node(&gone), Ok(false));
    /// # a.shutdown();
    /// # b.shutdown();
    /// # });
    /// ```
    pub fn forget_node(&self, node: &NodeId) -> Result<bool, ForgetError> {
        self.cluster().map_or(Ok(false), |c| c.forget(node))
    }

    /// `true` for a hidden node (see [`ClusterConfig::hidden`]).
    pub fn is_hidden(&self) -> bool {
        self.cluster().is_some_and(|c| c.config.hidden)
    }

    /// Subscribes to `NodeUp` / `NodeDown` events from now on. A local node never has any.
    ///
    /// To know every peer, subscribe first, then read
    /// [`connected_nodes`](Node::connected_nodes): a peer that connected before (or while)
    /// subscribing is in the list, and every later change arrives as an event.
    ///
    /// The subscription holds up to [`EVENT_QUEUE`](crate::EVENT_QUEUE) unread events (see
    /// [`Subscription::missed`]).
    pub fn cluster_events(&self) -> ClusterEvents {
        match self.cluster() {
            Some(cluster) => cluster.events.subscribe(),
            None => crate::events::EventBus::default().subscribe(),
        }
    }

    /// Counters of this node's work with processes of other nodes.
    pub fn remote_stats(&self) -> RemoteStats {
        self.cluster().map(|c| c.remote_stats()).unwrap_or_default()
    }

    /// Traffic counters of all this node's connections together, since it started: those
    /// of lost connections stay counted (queued bytes and pending calls are those of the
    /// current connections).
    pub fn cluster_stats(&self) -> TrafficStats {
        self.cluster().map(|c| c.totals()).unwrap_or_default()
    }

    /// A reference to whatever process is registered as `name` on `node`, resolved there at
    /// each message: Erlang's `{Name, Node}`. On this node's own id, the same as
    /// [`named`](Node::named); from a node not in a cluster, every message to another
    /// node fails with `NoConnection`.
    pub fn named_on<B: RemoteBehavior>(
        &self,
        name: impl Into<String>,
        node: &NodeId,
    ) -> NamedRef<B> {
        let name = name.into();
        if self.local_node_id() == Some(node) {
            return self.named(name);
        }
        let codec = <B as RemoteBehavior>::codec();
        let cluster = self.cluster().map(Arc::downgrade).unwrap_or_default();
        let target = RemoteTarget::by_name(node.as_arc(), &name, cluster, codec);
        NamedRef::on_node(self.clone(), name, target)
    }

    /// Fault injection for tests: makes links misbehave on purpose.
    #[doc(hidden)]
    pub fn faults(&self) -> Faults<'_> {
        Faults { node: self }
    }
}

/// Fault injection for tests, from [`Node::faults`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Faults<'a> {
    node: &'a Node,
}

impl Faults<'_> {
    /// Drops (or stops dropping) everything this node writes to `peer`, heartbeats
    /// included: to the peer, this node falls silent with its socket open.
    pub fn silence(&self, peer: &NodeId, silent: bool) -> bool {
        self.node.cluster().is_some_and(|c| c.silence(peer, silent))
    }

    /// Stops (or resumes) writing to `peer`, as if it stopped reading: the outbound queue
    /// fills up.
    pub fn stall(&self, peer: &NodeId, stalled: bool) -> bool {
        self.node.cluster().is_some_and(|c| c.stall(peer, stalled))
    }

    /// Refuses every new connection, in and out (as if the network were cut).
    pub fn refuse_connections(&self, refuse: bool) {
        if let Some(cluster) = self.node.cluster() {
            cluster.refuse_connections(refuse);
        }
    }

    /// Cuts (or heals) the link to `peer`: the connection is dropped as a network failure
    /// would, and neither node connects to the other until healed (the dial loops go on,
    /// so a healed link comes back within their backoff). Cut both ways for a clean
    /// partition: call it on both nodes.
    pub fn partition(&self, peer: &NodeId, cut: bool) {
        if let Some(cluster) = self.node.cluster() {
            cluster.partition(peer, cut);
        }
    }

    /// Records in this node's global name table, the losers of conflicts included.
    pub fn global_records(&self) -> usize {
        self.node.inner.global.records()
    }

    /// Claims (this node's, and other nodes' it has asked a holder's node about) and
    /// forwarded operations of the global registry under way on this node.
    pub fn global_pending(&self) -> (usize, usize) {
        self.node.inner.global.pending()
    }

    /// Claims of other nodes to global names this node has taken (granted, kept back or
    /// asked about): a test waits for a claim to have arrived.
    pub fn global_claims_taken(&self) -> u64 {
        self.node.inner.global.claims_taken()
    }

    /// Messages of the global registry's protocol (names and groups) this node has taken
    /// from its peers.
    pub fn global_messages_received(&self) -> u64 {
        self.node.inner.global.messages_received()
    }

    /// Drops the connection to `peer` as a network failure would.
    pub fn disconnect(&self, peer: &NodeId) -> bool {
        self.node.cluster().is_some_and(|c| c.disconnect(peer))
    }

    /// Holds (or releases) every admitted inbound handshake before this node answers it,
    /// so that a test can make handshakes cross.
    pub fn hold_handshakes(&self, hold: bool) {
        if let Some(cluster) = self.node.cluster() {
            cluster.hold_handshakes(hold);
        }
    }

    /// How many handshakes [`hold_handshakes`](Self::hold_handshakes) holds now.
    pub fn handshakes_held(&self) -> usize {
        self.node.cluster().map_or(0, |c| c.handshakes_held())
    }

    /// How many addresses this node is dialling (connecting or waiting to retry).
    pub fn dials(&self) -> usize {
        self.node.cluster().map_or(0, |c| c.dials())
    }

    /// Dials `address` (`host:port`) as if it were a seed given without a node id.
    pub fn dial(&self, address: &str) {
        if let Some(cluster) = self.node.cluster() {
            cluster.dial(address.to_owned(), None, crate::dist::DialKind::Seed);
        }
    }

    /// The member lists this node sent and received since it started.
    pub fn membership(&self) -> crate::dist::MembershipCounts {
        self.node
            .cluster()
            .map(|c| c.membership())
            .unwrap_or_default()
    }

    /// The bytes of the buffers this node keeps for its next large messages.
    pub fn spare_bytes(&self) -> usize {
        self.node.cluster().map_or(0, |c| c.spares.kept())
    }

    /// How many connections this node still holds in memory, with their sockets — open
    /// ones and closed ones something still refers to.
    pub fn connections_held(&self) -> usize {
        self.node.cluster().map_or(0, |c| c.held.count())
    }
}
