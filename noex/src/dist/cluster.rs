//! Membership: who is connected, connecting and reconnecting, and the events that say so.
//!
//! Every node keeps one connection to every other (a full mesh). A node connects to its
//! seeds, retrying with backoff until they answer; every connection starts with both sides
//! sending each other, once, the ids of their other peers (`Members`), and each connects to
//! those it does not know, so every node learns of every other and connects to it (why
//! that is enough, and what it costs, is in `membership`).
//!
//! Simultaneous connects end with one connection, the same on both sides (see `connect`,
//! which also owns the dial loops). A peer that reconnects with a new incarnation (it
//! restarted) replaces its old connection: the old one is reported down first.
//!
//! A connection lost by failure is re-dialled with exponential backoff and jitter. One
//! ended by the peer's goodbye is not — the peer left — unless the peer is a configured
//! seed, which is dialled until it answers again.
//!
//! A member list names at most [`ClusterConfig::max_members`] nodes, each a well-formed
//! node id; anything else is a protocol error that ends the connection.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_net::TcpListener;

use super::accept::accept_loop;
use super::config::ClusterConfig;
use super::connect::Dial;
use super::discovery::{self, Listings};
use super::handshake::{Established, Local};
use super::node_id::NodeId;
use super::peer::{self, Held, Peer};
use super::pending::Inbound;
use super::reassembly::Reassembly;
use super::status::{ClusterEvent, NodeDownReason, TrafficStats};
use super::transport::Stream;
use super::wire::WireMessage;
use crate::events::EventBus;
use crate::node::NodeInner;
use crate::process::SystemInfo;
use crate::{ExitReason, Pid};

/// The cluster state of one node.
pub(crate) struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(crate) id: NodeId,
    pub(crate) incarnation: u64,
    node: Weak<NodeInner>,
    state: Mutex<State>,
    pub(crate) events: EventBus<ClusterEvent>,
    /// The bound on bytes held in unfinished messages, shared by every connection.
    pub(crate) reassembly: Arc<Reassembly>,
    started: Instant,
    next_id: AtomicU64,
    pub(super) stopping: AtomicBool,
    /// This node announced that it leaves (see `leaving`).
    pub(super) leaving: AtomicBool,
    /// Notified when the node stops (the accept loop then closes the listener).
    pub(super) stopped: event_listener::Event,
    /// Fault injection: refuse every new connection.
    pub(super) refuse_connections: AtomicBool,
    /// Fault injection: hold admitted inbound handshakes until released.
    pub(super) hold_handshakes: AtomicBool,
    pub(super) handshakes_released: event_listener::Event,
    /// Handshakes held now.
    pub(super) handshakes_held: AtomicUsize,
    /// The connections whose memory is still held.
    pub(crate) held: Held,
    /// Buffers of large messages, kept for the next ones (see `spares`).
    pub(crate) spares: Arc<super::spares::Spares>,
    /// Accepted connections before they are authenticated (see `refused`).
    pub(super) inbound: Arc<Inbound>,
    /// `Down`s delivered for processes of other nodes.
    pub(super) downs_delivered: AtomicU64,
    /// The spawns this node asked of others.
    pub(super) spawn_counters: super::spawn::SpawnCounters,
    /// The member lists sent and received.
    pub(super) membership: super::membership::Counters,
    /// The incarnations of each node this node was connected to.
    pub(super) incarnations: super::incarnations::Incarnations,
}

#[derive(Default)]
pub(super) struct State {
    /// Established connections, by node id text.
    pub(super) peers: HashMap<Arc<str>, Arc<Peer>>,
    /// Dial loops, by the address (`host:port`) they dial.
    pub(super) dials: HashMap<String, Dial>,
    /// The addresses discovery sources list.
    pub(super) listings: Listings,
    /// Inbound handshakes admitted and under way, by the peer's address.
    pub(super) accepting: HashMap<String, usize>,
    /// Reconnections per node.
    pub(super) reconnects: HashMap<Arc<str>, u64>,
    /// When the connection to each node was last lost.
    pub(super) lost_at: HashMap<Arc<str>, Instant>,
    /// The members this node has been connected to, hidden nodes aside, but those that
    /// left with a goodbye or were forgotten (for a distributed supervisor's majority;
    /// see `members`).
    pub(super) known: HashMap<Arc<str>, NodeId>,
    /// Processes (by serial) monitoring a connected node, once per monitor.
    pub(super) node_watchers: HashMap<Arc<str>, Vec<u64>>,
    /// The traffic of connections no longer current, so that totals never go backwards.
    pub(super) departed: TrafficStats,
    /// Fault injection: nodes this node neither connects to nor accepts.
    pub(super) partitioned: std::collections::HashSet<String>,
    /// Learnt nodes waiting for a dial loop.
    pub(super) waiting: super::membership::Waiting,
}

/// A connection that stopped being the one to its peer: what follows once the state lock
/// is released.
#[must_use]
struct Lost {
    peer: Arc<Peer>,
    /// The processes that monitored its node.
    watchers: Vec<u64>,
}

impl Cluster {
    /// Binds the listener and returns the cluster state (not yet running).
    pub(crate) async fn bind(
        config: ClusterConfig,
    ) -> Result<(TcpListener, NodeId), super::StartError> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|error| super::StartError::Bind {
                    address: config.bind,
                    error,
                })?;
        let local = listener
            .local_addr()
            .map_err(|error| super::StartError::Bind {
                address: config.bind,
                error,
            })?;
        let id = config.node_id(local)?;
        Ok((listener, id))
    }

    pub(crate) fn new(
        config: ClusterConfig,
        id: NodeId,
        incarnation: u64,
        node: Weak<NodeInner>,
    ) -> Self {
        Cluster {
            reassembly: Reassembly::new(config.reassembly_bound()),
            config,
            id,
            incarnation,
            node,
            state: Mutex::new(State::default()),
            events: EventBus::default(),
            started: Instant::now(),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            stopped: event_listener::Event::new(),
            refuse_connections: AtomicBool::new(false),
            hold_handshakes: AtomicBool::new(false),
            handshakes_released: event_listener::Event::new(),
            handshakes_held: AtomicUsize::new(0),
            held: Held::default(),
            spares: Arc::default(),
            inbound: Arc::default(),
            downs_delivered: AtomicU64::new(0),
            spawn_counters: Default::default(),
            membership: Default::default(),
            incarnations: Default::default(),
        }
    }

    /// Starts accepting connections and following the discovery sources (the seeds
    /// among them).
    pub(crate) fn run(self: &Arc<Self>, listener: TcpListener) {
        let own = discovery::own_addresses(&self.id, &listener);
        let cluster = Arc::downgrade(self);
        self.spawn(accept_loop(cluster.clone(), listener));
        let stopped = self.stopped.listen();
        self.spawn(super::spares::expire_until(self.spares.clone(), stopped));
        for (index, source) in self.config.sources().into_iter().enumerate() {
            self.spawn(discovery::discover(
                cluster.clone(),
                index,
                source,
                own.clone(),
            ));
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a task on the node's scheduler threads.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(node) = self.node.upgrade() {
            node.executors.spawn(task).detach();
        }
    }

    pub(crate) fn node(&self) -> Option<Arc<NodeInner>> {
        self.node.upgrade()
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn process_count(&self) -> usize {
        self.node.upgrade().map_or(0, |node| node.process_count())
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The connection to `node` (its id text), if established.
    pub(crate) fn peer(&self, node: &str) -> Option<Arc<Peer>> {
        self.lock().peers.get(node).cloned()
    }

    pub(super) fn local(&self) -> Local<'_> {
        Local {
            id: &self.id,
            incarnation: self.incarnation,
            secret: &self.config.secret,
            hidden: self.config.hidden,
            max_message: self.config.max_message_size as u64,
        }
    }

    /// Installs an established connection; reports `NodeUp` (and the `NodeDown` of a
    /// connection it replaces). Returns `false` if the connection was not needed.
    pub(super) fn register(
        self: &Arc<Self>,
        established: Established,
        stream: Stream,
        outbound: bool,
    ) -> bool {
        let _ = stream.tcp().set_nodelay(true);
        let peer = Arc::new(Peer::new(
            established,
            outbound,
            stream,
            self.config.outbound_queue_bytes,
            &self.held,
            &self.spares,
        ));
        let key = peer.id.as_arc();
        let members;
        let mut watchers: Vec<Arc<Peer>> = Vec::new();
        let mut lost = None;
        let leaving;
        let node = self.node();
        {
            // The global state is held while a connection this node shares it over is
            // replaced (see `Replacing`): taken before the cluster's lock, as always, and
            // only when there is such a connection (looked at again if one appeared).
            let mut global = None;
            let mut state = loop {
                let state = self.lock();
                let shared = state.peers.get(&key).is_some_and(|e| self.shares_with(e));
                match node.as_ref().filter(|_| shared && global.is_none()) {
                    None => break state,
                    Some(node) => {
                        drop(state);
                        global = Some(node.global.replacing());
                    }
                }
            };
            if self.is_stopping() || state.partitioned.contains(peer.id.as_str()) {
                drop(state);
                peer.close();
                return false;
            }
            // An earlier incarnation than the one connected is alive after all: two nodes
            // claim one id (see `admit`). The one connected stays.
            let earlier = state.peers.get(&key).is_some_and(|existing| {
                existing.incarnation != peer.incarnation
                    && self.incarnations.seen(&key, peer.incarnation)
            });
            if earlier {
                drop(state);
                self.incarnations.alive(&key, peer.incarnation);
                tracing::warn!(node = %peer.id, "dropped a connection to an earlier incarnation of a connected node (two live nodes claim its id)");
                peer.close();
                return false;
            }
            self.incarnations.record(&key, peer.incarnation);
            if !peer.hidden {
                state.known.insert(key.clone(), peer.id.clone());
            }
            if let Some(existing) = state.peers.get(&key).cloned() {
                if existing.incarnation == peer.incarnation {
                    // Two connections to one peer: keep the one dialled by the greater id.
                    let dialer = |p: &Peer| {
                        if p.outbound {
                            self.id.clone()
                        } else {
                            p.id.clone()
                        }
                    };
                    if dialer(&peer) <= dialer(&existing) {
                        drop(state);
                        peer.close();
                        return false;
                    }
                    // The one in use loses, and with it what was in flight on it: its
                    // calls fail, its links and monitors break. Say so, as for any lost
                    // connection, before the new one is up.
                    existing.close();
                    if let Some(global) = &mut global {
                        global.connection_replaced(&key);
                    }
                    lost = Some(self.report_down(
                        &mut state,
                        &existing,
                        NodeDownReason::ConnectionClosed,
                    ));
                    tracing::warn!(node = %peer.id, "a second connection replaced the one in use");
                    state.peers.insert(key.clone(), peer.clone());
                    self.announce_up(&peer);
                } else {
                    // The peer restarted: its old connection is dead.
                    existing.close();
                    if let Some(global) = &mut global {
                        global.connection_replaced(&key);
                    }
                    state.peers.remove(&key);
                    lost = Some(self.report_down(
                        &mut state,
                        &existing,
                        NodeDownReason::ConnectionClosed,
                    ));
                    tracing::info!(node = %existing.id, "node restarted; old connection dropped");
                    state.peers.insert(key.clone(), peer.clone());
                    self.announce_up(&peer);
                }
            } else {
                state.peers.insert(key.clone(), peer.clone());
                self.announce_up(&peer);
                tracing::info!(node = %peer.id, "node up");
            }
            // Read under the lock, as `announce_leaving` sets it: a connection it did not
            // find is told here.
            leaving = self.leaving.load(Ordering::Acquire);
            // Taken with the connection installed, under the lock: of two connections of
            // this node, the later one's list names the earlier one's peer.
            // Hidden nodes are named to no one, and name no one.
            members = state
                .peers
                .values()
                .filter(|p| p.id.as_str() != &*key && !p.hidden && !self.config.hidden)
                .map(|p| p.id.to_string())
                .collect::<Vec<_>>();
            // A hidden peer (an observer) meets no one through the members' own lists:
            // it is told of each member that joins after it (see `membership`).
            if !peer.hidden && !self.config.hidden {
                watchers = state
                    .peers
                    .values()
                    .filter(|p| p.hidden && p.id.as_str() != &*key)
                    .cloned()
                    .collect();
            }
        }
        if let Some(lost) = lost {
            self.settle(lost);
        }
        // Before the reader takes anything: the peer's first global message meets this
        // node's claims, and this node's table goes out first.
        if let Some(node) = node.filter(|_| self.shares_with(&peer)) {
            node.global.peer_up(&node, &peer);
        }
        peer::run(self, &peer);
        if leaving {
            let _ = peer.queue.push_control(&WireMessage::Leaving);
        }
        // The new peer meets this node's other peers; they are not told (see `membership`),
        // but for hidden ones.
        self.send_members(&peer, members);
        for watcher in watchers {
            self.send_members(&watcher, vec![peer.id.to_string()]);
        }
        true
    }

    /// A connection ended. Reports `NodeDown` if it was the current connection to the
    /// peer, fails its pending calls, and re-dials unless the peer left (a configured
    /// seed is re-dialled even then: see `redial`).
    pub(crate) fn peer_down(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        reason: NodeDownReason,
        detail: &str,
    ) {
        if !peer.close() {
            return;
        }
        // Its node's global names and group members go first, before anyone hears of the
        // loss (`NodeDown`, monitors, links), as a process's are released before its
        // watchers hear of its end. (`settle` asks again: by then only for the claims
        // started meanwhile that still wait for the lost node, which it clears.)
        if let Some(node) = self.node().filter(|_| self.shares_with(peer)) {
            node.global.peer_down(&node, peer);
        }
        let key = peer.id.as_arc();
        let lost = {
            let mut state = self.lock();
            let current = state.peers.get(&key).is_some_and(|p| Arc::ptr_eq(p, peer));
            if !current {
                return;
            }
            state.peers.remove(&key);
            self.report_down(&mut state, peer, reason.clone())
        };
        self.settle(lost);
        match &reason {
            NodeDownReason::Shutdown => tracing::info!(node = %peer.id, "node left"),
            _ => tracing::warn!(node = %peer.id, %reason, detail, "node down"),
        }
        if self.is_stopping() {
            return;
        }
        let left = reason == NodeDownReason::Shutdown;
        if !left {
            *self.lock().reconnects.entry(key).or_default() += 1;
        }
        self.redial(&peer.id, left);
    }

    /// Stops the node's connections at once, without goodbyes (for a shutdown that cannot
    /// wait for them).
    pub(crate) fn close_all(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stopped.notify(usize::MAX);
        let peers: Vec<_> = self.lock().peers.drain().map(|(_, p)| p).collect();
        self.close(peers);
    }

    /// Closes `peers`, taken out of the state as the node stops: what was in flight on
    /// them fails, their monitors and links fire.
    pub(super) fn close(&self, peers: Vec<Arc<Peer>>) {
        for peer in peers {
            peer.close();
            let lost = self.report_down(&mut self.lock(), &peer, NodeDownReason::Shutdown);
            self.settle(lost);
        }
    }

    /// Reports `peer`'s connection down (under the state lock, so that events keep their
    /// order) and returns what must follow once the lock is released.
    fn report_down(&self, state: &mut State, peer: &Arc<Peer>, reason: NodeDownReason) -> Lost {
        state.lost_at.insert(peer.id.as_arc(), Instant::now());
        if reason == NodeDownReason::Shutdown {
            state.known.remove(peer.id.as_str());
        }
        if !peer.hidden {
            self.events.publish(ClusterEvent::NodeDown {
                node: peer.id.clone(),
                reason,
            });
        }
        // Counters only: what waits or is pending went with the connection.
        let traffic = TrafficStats {
            queued_bytes: 0,
            calls_pending: 0,
            ..peer.traffic()
        };
        state.departed = super::stats::add(state.departed, traffic);
        let watchers = state.node_watchers.remove(peer.id.as_str());
        Lost {
            peer: peer.clone(),
            watchers: watchers.unwrap_or_default(),
        }
    }

    /// After a lost connection: the monitors and links made over it fire and break, and
    /// the processes that monitored its node are told.
    fn settle(&self, lost: Lost) {
        self.ties_lost(&lost.peer);
        let Some(node) = self.node() else {
            return;
        };
        if self.shares_with(&lost.peer) {
            node.global.peer_down(&node, &lost.peer);
        }
        for serial in lost.watchers {
            if let Some(process) = node.table.get(serial) {
                process.deliver_system(SystemInfo::NodeDown {
                    node: lost.peer.id.clone(),
                });
            }
        }
    }

    /// Reports a connection up, unless its peer is hidden.
    fn announce_up(&self, peer: &Peer) {
        if !peer.hidden {
            self.events.publish(ClusterEvent::NodeUp {
                node: peer.id.clone(),
                incarnation: peer.incarnation,
            });
        }
    }

    /// `true` if this node shares the cluster's state (the global registry) with `peer`:
    /// neither is hidden.
    pub(crate) fn shares_with(&self, peer: &Peer) -> bool {
        !peer.hidden && !self.config.hidden
    }

    /// The established connections this node shares the cluster's state with (hidden
    /// peers aside, and none at all on a hidden node).
    pub(crate) fn peers(&self) -> Vec<Arc<Peer>> {
        self.lock()
            .peers
            .values()
            .filter(|peer| self.shares_with(peer))
            .cloned()
            .collect()
    }

    /// `true` if the connection to `node` was lost at `since` or later (a loss this node
    /// may have reconnected after).
    pub(crate) fn lost_since(&self, node: &str, since: Instant) -> bool {
        self.lock().lost_at.get(node).is_some_and(|&at| at >= since)
    }

    /// When this node last lost a connection to a member without a goodbye (one not
    /// forgotten since, nor gone with a goodbye since).
    pub(crate) fn last_loss(&self) -> Option<Instant> {
        let state = self.lock();
        let members = state.lost_at.iter();
        let members = members.filter(|(node, _)| state.known.contains_key(&***node));
        members.map(|(_, at)| *at).max()
    }

    /// What a pid of an incarnation of its node other than the one connected means: the
    /// pid's process is gone for good (`NoProc`) if this node was connected to that
    /// incarnation before, else that node cannot be reached (`NoConnection`: it may be a
    /// later incarnation, whose connection this node has not made yet, or an earlier one
    /// found alive and refused, two live nodes claiming one id). See `incarnations`.
    pub(crate) fn other_incarnation(&self, pid: &Pid) -> ExitReason {
        match self.incarnation_ended(pid.node(), pid.incarnation()) {
            true => ExitReason::NoProc,
            false => ExitReason::NoConnection,
        }
    }

    /// `true` if `node`'s incarnation `incarnation` has ended as far as this node knows:
    /// it was connected to it, and has not found it alive since (see `incarnations`).
    pub(crate) fn incarnation_ended(&self, node: &str, incarnation: u64) -> bool {
        self.incarnations.ended(node, incarnation)
    }

    /// `true` while the node of `pid` is connected with the pid's incarnation.
    pub(crate) fn reaches(&self, pid: &Pid) -> bool {
        self.peer(pid.node())
            .is_some_and(|peer| peer.incarnation == pid.incarnation())
    }
}
