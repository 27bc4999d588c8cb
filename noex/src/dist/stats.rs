//! What a node reports of its connections: the peers connected now, and the traffic of
//! all its connections together, past ones included.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::cluster::Cluster;
use super::status::{NodeInfo, NodeStatus, TrafficStats};

impl Cluster {
    /// The connected peers, hidden ones (`true`) or the others.
    pub(crate) fn connected(&self, hidden: bool) -> Vec<NodeInfo> {
        let state = self.lock();
        let mut nodes: Vec<_> = state
            .peers
            .values()
            .filter(|peer| peer.hidden == hidden)
            .map(|peer| {
                let mut stats = peer.traffic();
                stats.reconnects = state.reconnects.get(peer.id.as_str()).copied().unwrap_or(0);
                NodeInfo {
                    id: peer.id.clone(),
                    incarnation: peer.incarnation,
                    status: match peer.leaving.load(Ordering::Acquire) {
                        true => NodeStatus::Leaving,
                        false => NodeStatus::Connected,
                    },
                    process_count: peer.process_count.load(Ordering::Relaxed),
                    uptime: Duration::from_millis(peer.uptime_ms.load(Ordering::Relaxed)),
                    last_seen: peer.last_seen(),
                    stats,
                    ties: peer.tie_stats(),
                    round_trip: peer.round_trip.last(),
                    hidden: peer.hidden,
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes
    }

    /// Traffic counters of all connections together, past ones included.
    pub(crate) fn totals(&self) -> TrafficStats {
        let (departed, reconnects) = {
            let state = self.lock();
            // (Those of forgotten nodes are kept in `departed`.)
            let current: u64 = state.reconnects.values().sum();
            (state.departed, state.departed.reconnects + current)
        };
        let mut connected = self.connected(false);
        connected.extend(self.connected(true));
        let current = connected
            .iter()
            .fold(departed, |total, node| add(total, node.stats));
        TrafficStats {
            reconnects,
            ..current
        }
    }
}

pub(super) fn add(a: TrafficStats, b: TrafficStats) -> TrafficStats {
    TrafficStats {
        messages_sent: a.messages_sent + b.messages_sent,
        bytes_sent: a.bytes_sent + b.bytes_sent,
        messages_received: a.messages_received + b.messages_received,
        bytes_received: a.bytes_received + b.bytes_received,
        queued_bytes: a.queued_bytes + b.queued_bytes,
        calls_pending: a.calls_pending + b.calls_pending,
        calls_timed_out: a.calls_timed_out + b.calls_timed_out,
        casts_dropped: a.casts_dropped + b.casts_dropped,
        messages_undelivered: a.messages_undelivered + b.messages_undelivered,
        reconnects: a.reconnects + b.reconnects,
    }
}
