//! How membership spreads: the member lists nodes send each other, and the addresses they
//! learn from them.
//!
//! # One list each way per connection
//!
//! When a connection is up, each side sends the other the ids of the nodes it is connected
//! to (`Members`), once; the receiver dials those it is not connected to. Nothing else
//! spreads membership: a node that learns of a member does not pass it on, and a join is
//! not announced. So a node joining a mesh of `n` meets the members through its seed's
//! list and makes `n` connections, which carry `2n` lists in all, each naming at most `n`
//! nodes. (Before, each new connection made a node send its list to every peer, who
//! dialled the newcomer and did the same: about `n²` lists per join and `n³ / 2` to form a
//! mesh of `n`, which made forming a mesh of 80 nodes take seconds.)
//!
//! Why that is enough for a full mesh: take two nodes connected to a common third. The
//! third's two connections came up one after the other, and the later one's list, taken
//! under the lock that installed it, names the earlier one's peer: one of the two learns
//! of the other and dials it. So every two nodes with a common neighbour get connected,
//! and a connected cluster closes into a full mesh, however it was seeded (a node seeded
//! only with the one started before it included). A node that restarts or is lost and
//! comes back starts over through its seeds, and its peers re-dial it (see `connect`).
//! Hidden nodes (observers) are the exception: they are named in no list and name no
//! one, so the argument above does not reach them. A node tells each of its hidden peers
//! of every visible member that connects to it after them (a list naming that one node),
//! so an observer reaches the members that join after it started: one list per hidden
//! peer and join.
//!
//! What this does not do is tell anyone again: an address a node gave up dialling
//! (refused for good, or silent for `forget_unreachable_after`) is learnt again only from
//! a list on a later connection.
//!
//! # Learnt addresses beyond `max_dials`
//!
//! Since no list names a node twice, an address learnt while `max_dials` loops already
//! dial learnt addresses is not dropped: it waits, and is dialled when a loop ends. At
//! most `max_members` addresses wait (the most one list may name); past that they are
//! dropped.
//!
//! # Counters
//!
//! Every node counts the lists and node ids it sent and received
//! ([`MembershipCounts`]), so that a test asserts how they grow with the cluster.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::cluster::{Cluster, State};
use super::connect::DialKind;
use super::node_id::NodeId;
use super::peer::Peer;
use super::status::NodeDownReason;
use super::wire::WireMessage;

/// Counts of the member lists (`Members` messages) one node sent and received since it
/// started, from [`Faults::membership`](crate::Faults::membership): what a test or a
/// benchmark looks at to see how the membership traffic grows with the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MembershipCounts {
    /// Member lists sent.
    pub lists_sent: u64,
    /// Node ids named in the lists sent, all together.
    pub ids_sent: u64,
    /// Member lists received.
    pub lists_received: u64,
    /// Node ids named in the lists received, all together.
    pub ids_received: u64,
}

/// The counters behind [`MembershipCounts`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    lists_sent: AtomicU64,
    ids_sent: AtomicU64,
    lists_received: AtomicU64,
    ids_received: AtomicU64,
}

impl Counters {
    fn sent(&self, ids: usize) {
        self.lists_sent.fetch_add(1, Ordering::Relaxed);
        self.ids_sent.fetch_add(ids as u64, Ordering::Relaxed);
    }

    fn received(&self, ids: usize) {
        self.lists_received.fetch_add(1, Ordering::Relaxed);
        self.ids_received.fetch_add(ids as u64, Ordering::Relaxed);
    }

    fn get(&self) -> MembershipCounts {
        MembershipCounts {
            lists_sent: self.lists_sent.load(Ordering::Relaxed),
            ids_sent: self.ids_sent.load(Ordering::Relaxed),
            lists_received: self.lists_received.load(Ordering::Relaxed),
            ids_received: self.ids_received.load(Ordering::Relaxed),
        }
    }
}

/// Learnt nodes waiting for one of the `max_dials` dial loops, oldest first; at most
/// `max_members` of them.
#[derive(Default)]
pub(super) struct Waiting {
    nodes: VecDeque<NodeId>,
    addresses: HashSet<String>,
}

impl Waiting {
    /// No longer keeps `node` to dial (it was forgotten).
    pub(super) fn remove(&mut self, node: &NodeId) {
        if self.addresses.remove(node.address()) {
            self.nodes
                .retain(|waiting| waiting.address() != node.address());
        }
    }
}

impl Cluster {
    /// Keeps `node` to dial once a learnt address's dial loop ends (called with
    /// `max_dials` of them running).
    pub(super) fn wait_to_dial(&self, state: &mut State, node: NodeId) {
        let waiting = &mut state.waiting;
        if waiting.addresses.contains(node.address()) {
            return;
        }
        if waiting.nodes.len() >= self.config.max_members {
            tracing::debug!(%node, "not dialled: as many learnt addresses wait");
            return;
        }
        waiting.addresses.insert(node.address().to_owned());
        waiting.nodes.push_back(node);
    }

    /// A dial loop ended: dials the nodes waiting for one, as many as may be dialled now.
    pub(super) fn dial_waiting(self: &Arc<Self>) {
        let ready = {
            let mut state = self.lock();
            if state.waiting.nodes.is_empty() || self.is_stopping() {
                return;
            }
            let learned = state
                .dials
                .values()
                .filter(|d| d.kind == DialKind::Learned)
                .count();
            let mut ready = Vec::new();
            while learned + ready.len() < self.config.max_dials {
                let Some(node) = state.waiting.nodes.pop_front() else {
                    break;
                };
                state.waiting.addresses.remove(node.address());
                let known = state.peers.contains_key(node.as_str())
                    || state.dials.contains_key(node.address());
                if !known {
                    ready.push(node);
                }
            }
            ready
        };
        for node in ready {
            self.dial(node.address().to_owned(), Some(node), DialKind::Learned);
        }
    }

    /// Sends `peer` the ids of `nodes`.
    pub(super) fn send_members(&self, peer: &Peer, nodes: Vec<String>) {
        let count = nodes.len();
        if peer
            .queue
            .push_control(&WireMessage::Members { nodes })
            .is_ok()
        {
            self.membership.sent(count);
        }
    }

    /// Connects to nodes a peer told us about. A list that names too many nodes, or
    /// anything but node ids, is a protocol error.
    pub(crate) fn learn(self: &Arc<Self>, nodes: &[String]) -> Result<(), NodeDownReason> {
        self.membership.received(nodes.len());
        if nodes.len() > self.config.max_members {
            return Err(NodeDownReason::ProtocolError(format!(
                "a member list of {} nodes (the limit is {})",
                nodes.len(),
                self.config.max_members
            )));
        }
        let ids = nodes
            .iter()
            .map(|text| text.parse::<NodeId>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                NodeDownReason::ProtocolError(format!("a member list names {error}"))
            })?;
        if self.is_stopping() {
            return Ok(());
        }
        for id in ids {
            if id == self.id || self.peer(id.as_str()).is_some() {
                continue;
            }
            // If both sides dial, the handshakes' tie-break keeps one connection.
            self.dial(id.address().to_owned(), Some(id), DialKind::Learned);
        }
        Ok(())
    }

    /// The member lists this node sent and received.
    pub(crate) fn membership(&self) -> MembershipCounts {
        self.membership.get()
    }
}
