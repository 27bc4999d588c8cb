//! Fault injection, for tests (`Node::faults`): links that fall silent, stall, are cut
//! or dropped, and connections refused — the failures the cluster must survive.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::cluster::Cluster;
use super::node_id::NodeId;
use super::status::NodeDownReason;

impl Cluster {
    /// Fault injection: drop everything written to `node` (it then sees us as silent).
    pub(crate) fn silence(&self, node: &NodeId, silent: bool) -> bool {
        match self.peer(node.as_str()) {
            Some(peer) => {
                peer.silenced.store(silent, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Fault injection: stop (or resume) writing to `node`, as if it stopped reading.
    pub(crate) fn stall(&self, node: &NodeId, stalled: bool) -> bool {
        match self.peer(node.as_str()) {
            Some(peer) => {
                peer.stall(stalled);
                true
            }
            None => false,
        }
    }

    /// Fault injection: refuse (close at once) every new connection, both ways.
    pub(crate) fn refuse_connections(&self, refuse: bool) {
        self.refuse_connections.store(refuse, Ordering::Relaxed);
    }

    /// Fault injection: cut (or heal) the link to `node`: its connection is dropped as if
    /// the network failed, and no new one is made either way until healed.
    pub(crate) fn partition(self: &Arc<Self>, node: &NodeId, cut: bool) {
        {
            let mut state = self.lock();
            match cut {
                true => state.partitioned.insert(node.as_str().to_owned()),
                false => state.partitioned.remove(node.as_str()),
            };
        }
        if cut {
            self.disconnect(node);
        }
    }

    /// `true` if the link to `node` is cut on purpose.
    pub(super) fn is_partitioned(&self, node: &str) -> bool {
        self.lock().partitioned.contains(node)
    }

    /// Fault injection: drop the connection to `node` as if the network failed.
    pub(crate) fn disconnect(self: &Arc<Self>, node: &NodeId) -> bool {
        match self.peer(node.as_str()) {
            Some(peer) => {
                self.peer_down(
                    &peer,
                    NodeDownReason::ConnectionClosed,
                    "disconnected on purpose",
                );
                true
            }
            None => false,
        }
    }
}
