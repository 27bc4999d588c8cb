//! Distribution: nodes that form a cluster over TCP, so that a `ServerRef` to a process of
//! another node works like a local one.
//!
//! # How it works
//!
//! * **Transport** ([`wire`], `header`, `peer`, `outbound`, `writer`): one TCP connection
//!   per pair of nodes (`TCP_NODELAY`), carrying length-prefixed postcard frames, a user
//!   message's payload after its header so it is encoded and decoded in place. A writer
//!   task per peer drains a bounded queue into batched writes, on the scheduler thread of
//!   the tasks that queue its frames (it follows them there, as a connection's reader
//!   follows the processes it feeds); control traffic (heartbeats, member
//!   lists, acknowledgements) goes first, and large messages are fragmented, with at most
//!   256 KiB of fragments unacknowledged, so that small ones pass them; messages of 1 MiB
//!   or more are encoded (`remote::apart`) and decoded off the scheduler threads, in
//!   their sender's order. The buffers of the last large messages (a sender's frame, a
//!   receiver's reassembly) are kept for the next ones (`spares`: at most two a node,
//!   dropped after 2 s unused), as a fresh buffer of megabytes costs several times its
//!   copy in first touches of its pages.
//! * **Handshake** (`handshake`): protocol version, node ids and incarnations, and mutual
//!   HMAC-SHA256 challenge–response over fresh nonces keyed by the cluster secret, the
//!   proofs binding both nodes' ids, incarnations and hidden flags.
//! * **Discovery** ([`discovery`]): where the seeds come from — a static list, a DNS name
//!   resolved again and again, or any source that implements `Discovery`.
//! * **Membership** (`cluster`, `membership`, `connect`): seeds, a member list sent once
//!   each way on every new connection (a full mesh; a join costs the cluster one
//!   connection and two lists per member), one connection per pair however the dials cross,
//!   reconnection with exponential backoff and jitter, `NodeUp`/`NodeDown` events. What a
//!   node dials is bounded: addresses refused for good or silent for long are dropped, and
//!   learnt addresses have a bounded number of dial loops.
//! * **Failure detection** (`peer`): a heartbeat on every link quiet for an interval; a peer
//!   silent for the timeout is down (`HeartbeatTimeout`), a closed socket at once
//!   (`ConnectionClosed`), a peer's goodbye as `Shutdown`.
//! * **Remote calls** ([`remote`], [`inbound`]): messages encoded by the behaviour's codec,
//!   routed to the owning node, delivered into the target's mailbox; replies return on the
//!   same connection; pending calls fail with `NoConnection` the moment the connection is
//!   lost.
//! * **Bounds** (`outbound`, `reader`, `reassembly`): per peer, the bytes queued to send
//!   (replies included: a peer that calls without reading them is held up in its own
//!   socket); per node, the bytes held in unfinished fragmented messages.
//!
//! # Why not SWIM (`foca`)
//!
//! `foca` is a well-made, runtime-agnostic SWIM implementation, and was evaluated first.
//! It decides membership *for the cluster*: a member is down when the cluster's probes
//! (direct and indirect) say so, which is what lets SWIM scale past a full mesh and avoid
//! false downs from one slow link. noex's semantics are Erlang's instead, and per
//! connection: every node talks to every other over its own TCP connection, and "node down"
//! means *this node's* connection to the peer is gone — at that moment its pending calls
//! fail, its monitors fire and its links break, because nothing more can arrive over that
//! connection. A SWIM verdict can disagree with the connection both ways (a peer reachable
//! only indirectly is alive to SWIM but unusable here; a peer SWIM suspects may still
//! answer us), so it cannot drive those events, and the per-connection heartbeat would be
//! needed anyway. In a full mesh, the member list is exchanged over the connections at no
//! extra cost, so foca would add a second protocol (and its timer runtime) without
//! deciding anything. Past full-mesh sizes, see below.
//!
//! # How far a full mesh goes
//!
//! A full mesh gives every node one connection per peer — a socket, a reader and a writer
//! task, and a heartbeat each interval on every quiet link, so `n(n − 1)` heartbeats per
//! interval across the cluster — and a join makes `n` connections, each starting with one
//! member list each way (see `membership`). Measured with the `scale-cluster` workload of
//! `bench/` (2 cores, all nodes in one OS process with 1 scheduler thread each, every node
//! seeded with the first and started back to back, until each sees all the others), the
//! medians of 15 runs on a busy machine: a mesh of 8 nodes forms in 3.7 ms, 16 in 19 ms,
//! 32 in 56 ms, 64 in 0.23 s and 80 in 0.38 s, sending `n(n − 1)` member lists (6,320 for
//! 80). When every join was announced to every member, who announced their members again,
//! it took 5.2 ms, 30 ms, 0.19 s, 2.8 s and 9.9 s, and `n²(n − 1) / 2` lists (129,024 for
//! 64; at 80 more, as connections were lost under the load and redone).
//!
//! That is what the full mesh is meant for: clusters of up to about a hundred nodes. Past
//! that, the `n²` connections and heartbeats, and the replication to every member (the
//! global registry), cost more than a cluster should pay; Erlang's full mesh meets the
//! same wall (its practical limit is put at 60 to 200 nodes). The path beyond it is a
//! partial-view overlay such as HyParView (Leitão, Pereira and Rodrigues, 2007), as
//! Partisan (Meiklejohn et al., USENIX ATC '19) does for Erlang: each node keeps a small
//! *active view* of peers it is connected to (about `log n`, kept symmetric) and a larger
//! *passive view* refreshed by periodic shuffles, from which it replaces an active peer it
//! loses; membership spreads by gossip over the active views. The overlay would decide
//! *which* nodes a node connects to — where today the answer is "all" — and feed this
//! per-connection layer, which would go on owning connections, handshakes, heartbeats,
//! node-down events and what they fail; a node outside the active view would be reached
//! by a connection opened on demand (as Erlang connects on first use) or by forwarding
//! over the overlay.

mod accept;
mod cluster;
mod config;
mod connect;
mod dial_loop;
pub mod discovery;
mod faults;
mod handshake;
mod header;
pub(crate) mod inbound;
mod incarnations;
mod leaving;
mod members;
mod membership;
pub(crate) mod monitor;
mod node_id;
mod node_monitors;
mod outbound;
pub(crate) mod peer;
mod pending;
mod reader;
mod reassembly;
mod refused;
pub(crate) mod remote;
mod rtt;
mod scratch;
mod socket;
pub(crate) mod spares;
pub(crate) mod spawn;
mod start_error;
mod stats;
mod status;
pub(crate) mod tagged;
#[cfg(test)]
mod testing;
#[cfg(feature = "tls")]
mod tls;
mod transport;
pub(crate) mod wire;
mod writer;

pub(crate) use cluster::Cluster;
pub use config::ClusterConfig;
pub(crate) use connect::DialKind;
pub use discovery::{Discovery, DiscoveryError, DnsSeeds, StaticSeeds, DEFAULT_DISCOVERY_INTERVAL};
/// The rustls crate noex's `tls` feature uses, for [`TlsConfig::from_rustls`].
#[cfg(feature = "tls")]
pub use futures_rustls::rustls;
pub use members::ForgetError;
pub use membership::MembershipCounts;
pub use node_id::{NodeId, NodeIdError};
pub use refused::RefusedReason;
pub use start_error::{ConfigError, StartError, MIN_FRAME_SIZE};
pub use status::{
    ClusterEvent, NodeDownReason, NodeInfo, NodeStatus, RemoteStats, SpawnStats, TieStats,
    TrafficStats,
};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};
