//! The members a node counts as its cluster, and forgetting one that is gone for good.
//!
//! A node's members are the nodes it has been connected to since it started, hidden
//! nodes aside, but those that left with a goodbye. A distributed supervisor moves a
//! child lost with its node only while it sees a strict majority of them (see
//! `supervisor::placement`), so a member lost without a goodbye counts against the
//! majority until it comes back — which one that crashed for good, or came back under
//! another id (a new port or address each time), never does. [`Node::forget_node`] is
//! how an operator who knows that says so, as Akka's manual downing is.
//!
//! [`Node::forget_node`]: crate::Node::forget_node

use thiserror::Error;

use super::cluster::Cluster;
use super::connect::DialKind;
use super::node_id::NodeId;

/// Why [`Node::forget_node`](crate::Node::forget_node) did not forget a node.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ForgetError {
    /// The node is connected: it is a member, alive as far as this node can tell.
    #[error("node {node} is connected: only a node gone for good can be forgotten")]
    Connected {
        /// The node.
        node: NodeId,
    },
}

impl Cluster {
    /// How many members this node has (itself aside).
    pub(crate) fn known_members(&self) -> usize {
        self.lock().known.len()
    }

    /// The members of this node (itself aside), sorted.
    pub(crate) fn members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> = self.lock().known.values().cloned().collect();
        members.sort_unstable();
        members
    }

    /// Forgets `node`, not connected: it is no longer a member, nor dialled (unless a
    /// discovery source lists it), and what this node keeps per node about it goes (but
    /// its incarnations, which tell its pids' processes gone). `false` if it was not a
    /// member.
    pub(crate) fn forget(&self, node: &NodeId) -> Result<bool, ForgetError> {
        let mut state = self.lock();
        if state.peers.contains_key(node.as_str()) {
            return Err(ForgetError::Connected { node: node.clone() });
        }
        let member = state.known.remove(node.as_str()).is_some();
        state.lost_at.remove(node.as_str());
        // Its reconnections stay in the totals, which never go backwards.
        if let Some(reconnects) = state.reconnects.remove(node.as_str()) {
            state.departed.reconnects += reconnects;
        }
        if state.listings.addresses_of(node).is_empty() {
            // Its dial loop, if any, ends at its next look (`renewal` finds no dial).
            let address = node.address();
            if state
                .dials
                .get(address)
                .is_some_and(|d| d.kind != DialKind::Seed)
            {
                state.dials.remove(address);
            }
            state.waiting.remove(node);
        }
        drop(state);
        if member {
            tracing::info!(%node, "forgotten: no longer a member of this node's cluster");
        }
        Ok(member)
    }
}
