//! Monitors of nodes (`Node::monitor_node`): which processes hear of a node's loss. The
//! watchers are told, once each, when the connection is reported down
//! (`Cluster::report_down`).

use std::sync::Arc;

use super::cluster::Cluster;
use super::node_id::NodeId;
use crate::process::{AnyProcess, Core, SystemInfo};

impl Cluster {
    /// `process` monitors `node`: it gets one `NodeDown` when the node is lost — at once if
    /// it is not connected now.
    pub(crate) fn monitor_node(&self, process: &dyn AnyProcess, node: &NodeId) {
        let core = process.core();
        let key = node.as_arc();
        if !core.add_monitored_node(&key) {
            return;
        }
        let connected = {
            let mut state = self.lock();
            let connected = state.peers.contains_key(&key);
            if connected {
                let serial = core.pid().serial();
                state.node_watchers.entry(key).or_default().push(serial);
            }
            connected
        };
        if !connected {
            process.deliver_system(SystemInfo::NodeDown { node: node.clone() });
        }
    }

    /// Removes one monitor of `node` held by the process of `serial`; `true` if it held
    /// one.
    pub(crate) fn demonitor_node(&self, core: &Core, node: &NodeId) -> bool {
        if !core.remove_monitored_node(node.as_str()) {
            return false;
        }
        self.forget_node_monitors(core.pid().serial(), &[node.as_arc()]);
        true
    }

    /// Forgets one monitor of each of `nodes` held by the process of `serial`.
    pub(crate) fn forget_node_monitors(&self, serial: u64, nodes: &[Arc<str>]) {
        let mut state = self.lock();
        for node in nodes {
            if let Some(watchers) = state.node_watchers.get_mut(node) {
                if let Some(at) = watchers.iter().position(|&w| w == serial) {
                    watchers.swap_remove(at);
                }
                if watchers.is_empty() {
                    state.node_watchers.remove(node);
                }
            }
        }
    }
}
