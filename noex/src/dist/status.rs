//! What a node reports about its cluster: the events of its connections, and the
//! statistics of its peers and their traffic.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::node_id::NodeId;
use super::refused::RefusedReason;

/// Why a node was reported down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeDownReason {
    /// The connection closed or failed (the peer's process died, or the network did).
    ConnectionClosed,
    /// Nothing was heard from the peer for the heartbeat timeout.
    HeartbeatTimeout,
    /// The peer left the cluster (said goodbye) or this node shut down.
    Shutdown,
    /// The peer broke the protocol (an undecodable or oversized frame); the text says how.
    ProtocolError(String),
}

impl std::fmt::Display for NodeDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeDownReason::ConnectionClosed => f.write_str("connection closed"),
            NodeDownReason::HeartbeatTimeout => f.write_str("heartbeat timeout"),
            NodeDownReason::Shutdown => f.write_str("shutdown"),
            NodeDownReason::ProtocolError(text) => write!(f, "protocol error: {text}"),
        }
    }
}

/// A change of the cluster, from [`Node::cluster_events`](crate::Node::cluster_events).
///
/// For one peer, a `NodeDown` of an old connection always comes before the `NodeUp` of a
/// new one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A connection to a node is up.
    NodeUp {
        /// The node.
        node: NodeId,
        /// Its incarnation (a restarted node has a new one).
        incarnation: u64,
    },
    /// A node's connection is gone.
    NodeDown {
        /// The node.
        node: NodeId,
        /// Why.
        reason: NodeDownReason,
    },
    /// A connection with another node was refused before it was up: by this node
    /// (`by_peer` false), or by the peer, which said why. Logged too.
    Refused {
        /// The address dialled, or where an accepted connection came from.
        address: String,
        /// `true` if the peer dialled this node.
        inbound: bool,
        /// `true` if the peer refused this node; `false` if this node refused the peer.
        by_peer: bool,
        /// Why.
        reason: RefusedReason,
    },
}

/// The state of a connection to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeStatus {
    /// Connected and authenticated.
    Connected,
    /// Connected, and the node announced that it leaves the cluster (it is shutting
    /// down: its processes stop, then it says goodbye). No new children of a
    /// distributed supervisor are placed there.
    Leaving,
}

/// A connected peer, from [`Node::connected_nodes`](crate::Node::connected_nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Its id.
    pub id: NodeId,
    /// Its incarnation.
    pub incarnation: u64,
    /// The connection's state.
    pub status: NodeStatus,
    /// How many processes it runs (from its last heartbeat).
    pub process_count: u64,
    /// How long it has been up (from its last heartbeat).
    pub uptime: Duration,
    /// How long ago anything was received from it.
    pub last_seen: Duration,
    /// The connection's traffic counters.
    pub stats: TrafficStats,
    /// The monitors and links between processes of the two nodes.
    pub ties: TieStats,
    /// The last round-trip time measured by heartbeats (every 2 s at least); `None` until
    /// the first has come back.
    pub round_trip: Option<Duration>,
    /// `true` for a hidden node (see [`ClusterConfig::hidden`](crate::ClusterConfig::hidden)).
    pub hidden: bool,
}

/// A node's counters of its work with processes of other nodes, from
/// [`Node::remote_stats`](crate::Node::remote_stats). Counted from the node's start, so they
/// only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteStats {
    /// `Down`s delivered for monitors of processes of other nodes (their end, or the loss
    /// of their node).
    pub downs_delivered: u64,
    /// The spawns this node asked of others.
    pub spawns: SpawnStats,
}

/// The spawns a node asked of others ([`Node::spawn_on`](crate::Node::spawn_on) and its
/// kin), from [`RemoteStats::spawns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpawnStats {
    /// Spawns asked for.
    pub started: u64,
    /// Spawns whose process runs.
    pub succeeded: u64,
    /// Spawns that ran out of time (their process, if any, was ended; one whose request
    /// was never sent, [`NotSent`](crate::RemoteSpawnError::NotSent), started none).
    pub timed_out: u64,
    /// Spawns waiting for their answer now.
    pub pending: u64,
    /// Spawns that failed because the node was not reachable, or was lost meanwhile.
    pub unreachable: u64,
    /// Spawns the node refused: behaviour not registered or local-only, arguments that do
    /// not decode, name taken, node shutting down — or arguments larger than it takes
    /// (refused here, the node not asked).
    pub refused: u64,
    /// Spawns whose process failed in `init` (an error, a panic, its init timeout, or an
    /// exit signal).
    pub init_failed: u64,
}

/// The monitors and links between the processes of this node and those of a peer, from
/// [`NodeInfo::ties`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TieStats {
    /// Monitors this node's processes hold on the peer's.
    pub monitors_out: u64,
    /// Monitors the peer's processes hold on this node's.
    pub monitors_in: u64,
    /// Links between processes of the two nodes.
    pub links: u64,
}

/// Traffic counters of one connection, or of all together.
///
/// The receiving counters are brought up to date in batches — whenever the connection's
/// reader pauses, and every hundred-odd frames — so a message just received, and even
/// one being handled, may not be counted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrafficStats {
    /// Messages sent (user messages and replies).
    pub messages_sent: u64,
    /// Bytes written to the socket.
    pub bytes_sent: u64,
    /// Messages received (user messages and replies).
    pub messages_received: u64,
    /// Bytes read from the socket.
    pub bytes_received: u64,
    /// Bytes of messages (replies included) waiting in the outbound queue.
    pub queued_bytes: u64,
    /// Remote calls waiting for their reply.
    pub calls_pending: u64,
    /// Remote calls that timed out.
    pub calls_timed_out: u64,
    /// Casts and sends that could not be queued (overloaded, not connected, or larger
    /// than the peer takes).
    pub casts_dropped: u64,
    /// Casts and sends from the peer that no process took: the process had ended, runs
    /// another behaviour (or a local-only one), or the message did not decode. Each is
    /// logged too (a call that fails so is answered with the error instead).
    pub messages_undelivered: u64,
    /// Connections re-established after a loss.
    pub reconnects: u64,
}
