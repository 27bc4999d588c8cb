//! How membership spreads: the member lists nodes send each other, and the addresses they
//! learn from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::cluster::Cluster;
use super::config::NodeDownReason;
use super::connect::DialKind;
use super::node_id::NodeId;
use super::peer::Peer;
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

impl Cluster {
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
