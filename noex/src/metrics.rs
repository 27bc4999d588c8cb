//! Metrics of each node through the [`metrics`](https://docs.rs/metrics) facade (the
//! `metrics` feature): install the exporter you already use — Prometheus, StatsD, … — as
//! the `metrics` recorder, and every node of the program reports to it.
//!
//! A node samples what it already keeps, in a task of its own, every
//! [`DEFAULT_METRICS_INTERVAL`] (set with
//! [`NodeBuilder::metrics_interval`](crate::NodeBuilder::metrics_interval) or
//! [`ClusterConfig::metrics_interval`](crate::ClusterConfig::metrics_interval);
//! [`Duration::ZERO`] turns it off): sending and handling a message costs nothing more than
//! without the feature. Supervisor restarts and node up/down events are counted as they
//! happen. Each sample walks the node's processes once (to add up the messages they have
//! handled) and its registered names: a few milliseconds for a hundred thousand processes,
//! on one of the node's threads; a longer interval makes it rarer.
//!
//! Every metric has the label `node`: the node's name (its id, `name@host:port`, for a
//! node of a cluster). Those of a peer also have `peer`, its node id; those of a named
//! process, `name`. Nodes of one program that share a name share their series and mix
//! their figures: give local nodes distinct names
//! ([`NodeBuilder::name`](crate::NodeBuilder::name); every [`Node::new`](crate::Node::new)
//! is `nonode`). Hidden nodes (observers, see
//! [`ClusterConfig::hidden`](crate::ClusterConfig::hidden)) are no peers here: neither
//! counted in `noex_peers_connected` nor reported per peer, and no up/down is counted for
//! them.
//!
//! | metric | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `noex_processes` | gauge | `node` | processes running |
//! | `noex_messages_handled_total` | counter | `node` | messages the node's processes have handled (those of ended processes included) |
//! | `noex_mailbox_length` | gauge | `node`, `name` | messages waiting for the process registered as `name` (0 once the name is gone) |
//! | `noex_restarts_total` | counter | `node` | children restarted by the node's supervisors |
//! | `noex_peers_connected` | gauge | `node` | nodes connected |
//! | `noex_node_up_total` | counter | `node`, `peer` | connections to `peer` that came up |
//! | `noex_node_down_total` | counter | `node`, `peer`, `reason` | connections to `peer` lost; `reason` is `connection_closed`, `heartbeat_timeout`, `shutdown` or `protocol_error` |
//! | `noex_peer_messages_sent_total` | counter | `node`, `peer` | messages sent to `peer` (user messages and replies) |
//! | `noex_peer_messages_received_total` | counter | `node`, `peer` | messages received from `peer` |
//! | `noex_peer_bytes_sent_total` | counter | `node`, `peer` | bytes written to `peer`'s connection |
//! | `noex_peer_bytes_received_total` | counter | `node`, `peer` | bytes read from `peer`'s connection |
//! | `noex_peer_queued_bytes` | gauge | `node`, `peer` | bytes waiting in the outbound queue to `peer` (0 while not connected) |
//! | `noex_peer_calls_pending` | gauge | `node`, `peer` | calls to `peer`'s processes waiting for a reply |
//! | `noex_peer_calls_timed_out_total` | counter | `node`, `peer` | calls to `peer`'s processes that timed out |
//! | `noex_peer_casts_dropped_total` | counter | `node`, `peer` | casts and sends to `peer` that could not be queued |
//! | `noex_peer_messages_undelivered_total` | counter | `node`, `peer` | casts and sends from `peer` that no process took (ended, another behaviour, undecodable) |
//!
//! The per-peer counters add up the traffic of each connection to the peer, a connection
//! that replaces a lost one included; what a connection carried in its last interval
//! before it was lost is not counted.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use noex::Node;
//!
//! // Install your exporter as the recorder first, e.g. with
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install()`.
//! let node = Node::builder()
//!     .name("worker")
//!     .metrics_interval(Duration::from_secs(5))
//!     .build();
//! # node.shutdown();
//! ```
//!
//! A recorder set with [`metrics::set_global_recorder`] is
//! seen by every node; one set with `metrics::with_local_recorder` only by code on that
//! thread, which the nodes' own threads are not.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use crate::dist::{ClusterEvent, NodeDownReason, TrafficStats};
use crate::events::Subscription;
use crate::node::NodeInner;

/// How often a node samples its metrics unless configured otherwise.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// Counts a restart by a supervisor of `node`.
pub(crate) fn restarted(node: &NodeInner) {
    ::metrics::counter!("noex_restarts_total", "node" => node.name.to_string()).increment(1);
}

/// Starts the sampler of `node` (unless `interval` is zero), with the node's cluster
/// events if it has a cluster (subscribed before the cluster runs, so that no event is
/// missed).
pub(crate) fn start(
    node: &Arc<NodeInner>,
    interval: Duration,
    events: Option<Subscription<ClusterEvent>>,
) {
    if interval.is_zero() {
        return;
    }
    describe();
    let sampler = Sampler {
        node: Arc::downgrade(node),
        label: node.name.to_string(),
        messages: 0,
        names: HashSet::new(),
        peers: HashMap::new(),
    };
    node.executors.spawn(sampler.run(interval, events)).detach();
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_gauge!("noex_processes", "Processes running");
    describe_counter!(
        "noex_messages_handled_total",
        "Messages the node's processes have handled"
    );
    describe_gauge!(
        "noex_mailbox_length",
        "Messages waiting for a registered process"
    );
    describe_counter!(
        "noex_restarts_total",
        "Children restarted by the node's supervisors"
    );
    describe_gauge!("noex_peers_connected", "Nodes connected");
    describe_counter!("noex_node_up_total", "Connections to a peer that came up");
    describe_counter!("noex_node_down_total", "Connections to a peer lost");
    describe_counter!("noex_peer_messages_sent_total", "Messages sent to a peer");
    describe_counter!(
        "noex_peer_messages_received_total",
        "Messages received from a peer"
    );
    describe_counter!("noex_peer_bytes_sent_total", "Bytes written to a peer");
    describe_counter!("noex_peer_bytes_received_total", "Bytes read from a peer");
    describe_gauge!(
        "noex_peer_queued_bytes",
        "Bytes waiting in the outbound queue to a peer"
    );
    describe_gauge!(
        "noex_peer_calls_pending",
        "Calls to a peer's processes waiting for a reply"
    );
    describe_counter!(
        "noex_peer_calls_timed_out_total",
        "Calls to a peer's processes that timed out"
    );
    describe_counter!(
        "noex_peer_casts_dropped_total",
        "Casts and sends to a peer that could not be queued"
    );
    describe_counter!(
        "noex_peer_messages_undelivered_total",
        "Casts and sends from a peer that no process took"
    );
}

/// A connection's counters as last sampled.
struct PeerSample {
    incarnation: u64,
    stats: TrafficStats,
}

/// The sampling task of one node.
struct Sampler {
    node: Weak<NodeInner>,
    /// The `node` label.
    label: String,
    /// `noex_messages_handled_total` as last published.
    messages: u64,
    /// The registered names last published.
    names: HashSet<String>,
    /// The connected peers last published.
    peers: HashMap<String, PeerSample>,
}

/// What woke the sampler.
enum Woke {
    Tick,
    Event(Option<ClusterEvent>),
}

impl Sampler {
    async fn run(mut self, interval: Duration, mut events: Option<Subscription<ClusterEvent>>) {
        let mut next = Instant::now();
        loop {
            let tick = async {
                smol::Timer::at(next).await;
                Woke::Tick
            };
            let woke = match &events {
                Some(subscription) => {
                    tick.or(async { Woke::Event(subscription.recv().await) })
                        .await
                }
                None => tick.await,
            };
            let Some(node) = self.node.upgrade() else {
                return;
            };
            if node.is_shutting_down() {
                return;
            }
            match woke {
                Woke::Tick => {
                    self.sample(&node);
                    next = crate::timer::instant_after(interval);
                }
                Woke::Event(Some(event)) => self.event(event),
                // The cluster is gone.
                Woke::Event(None) => events = None,
            }
        }
    }

    fn event(&self, event: ClusterEvent) {
        let node = self.label.clone();
        match event {
            ClusterEvent::NodeUp { node: peer, .. } => {
                let peer = peer.to_string();
                ::metrics::counter!("noex_node_up_total", "node" => node, "peer" => peer)
                    .increment(1);
            }
            ClusterEvent::NodeDown { node: peer, reason } => {
                let reason = match reason {
                    NodeDownReason::ConnectionClosed => "connection_closed",
                    NodeDownReason::HeartbeatTimeout => "heartbeat_timeout",
                    NodeDownReason::Shutdown => "shutdown",
                    NodeDownReason::ProtocolError(_) => "protocol_error",
                };
                let peer = peer.to_string();
                ::metrics::counter!(
                    "noex_node_down_total",
                    "node" => node,
                    "peer" => peer,
                    "reason" => reason
                )
                .increment(1);
            }
            _ => {}
        }
    }

    fn sample(&mut self, node: &NodeInner) {
        let label = &self.label;
        ::metrics::gauge!("noex_processes", "node" => label.clone())
            .set(node.process_count() as f64);

        // Ended processes first: one that ends meanwhile is then missed for this sample
        // (it has left the table), never counted twice; and the counter never goes back.
        let ended = node.ended_messages.load(Ordering::Relaxed);
        let running: u64 = node
            .table
            .all()
            .iter()
            .map(|process| process.core().message_count())
            .sum();
        self.messages = self.messages.max(ended + running);
        ::metrics::counter!("noex_messages_handled_total", "node" => label.clone())
            .absolute(self.messages);

        let mut names = HashSet::new();
        for (name, pid) in node.registry.all() {
            let Some(process) = node.resolve(&pid) else {
                continue;
            };
            let length = process.mailbox_len() as f64;
            ::metrics::gauge!("noex_mailbox_length", "node" => label.clone(), "name" => name.clone())
                .set(length);
            names.insert(name);
        }
        for gone in self.names.difference(&names) {
            ::metrics::gauge!("noex_mailbox_length", "node" => label.clone(), "name" => gone.clone())
                .set(0.0);
        }
        self.names = names;

        if let Some(cluster) = node.cluster.get() {
            self.sample_peers(cluster.connected(false));
        }
    }

    fn sample_peers(&mut self, connected: Vec<crate::NodeInfo>) {
        let label = &self.label;
        ::metrics::gauge!("noex_peers_connected", "node" => label.clone())
            .set(connected.len() as f64);
        let mut peers = HashMap::new();
        for info in connected {
            let peer = info.id.to_string();
            let stats = info.stats;
            let last = self.peers.get(&peer);
            // A connection's counters start at zero: those of a new one count whole. One
            // that replaced a lost one since the last sample is told by the peer's count of
            // losses (its counters may have passed the old one's already).
            let fresh = last.is_none_or(|last| {
                last.incarnation != info.incarnation
                    || stats.reconnects != last.stats.reconnects
                    || stats.messages_sent < last.stats.messages_sent
                    || stats.messages_received < last.stats.messages_received
                    || stats.bytes_sent < last.stats.bytes_sent
                    || stats.bytes_received < last.stats.bytes_received
                    || stats.calls_timed_out < last.stats.calls_timed_out
                    || stats.casts_dropped < last.stats.casts_dropped
                    || stats.messages_undelivered < last.stats.messages_undelivered
            });
            let before = match (fresh, last) {
                (false, Some(last)) => last.stats,
                _ => TrafficStats::default(),
            };
            let labels = [("node", label.clone()), ("peer", peer.clone())];
            let counters = [
                (
                    "noex_peer_messages_sent_total",
                    stats.messages_sent - before.messages_sent,
                ),
                (
                    "noex_peer_messages_received_total",
                    stats.messages_received - before.messages_received,
                ),
                (
                    "noex_peer_bytes_sent_total",
                    stats.bytes_sent - before.bytes_sent,
                ),
                (
                    "noex_peer_bytes_received_total",
                    stats.bytes_received - before.bytes_received,
                ),
                (
                    "noex_peer_calls_timed_out_total",
                    stats.calls_timed_out - before.calls_timed_out,
                ),
                (
                    "noex_peer_casts_dropped_total",
                    stats.casts_dropped - before.casts_dropped,
                ),
                (
                    "noex_peer_messages_undelivered_total",
                    stats.messages_undelivered - before.messages_undelivered,
                ),
            ];
            for (name, delta) in counters {
                ::metrics::counter!(name, &labels).increment(delta);
            }
            ::metrics::gauge!("noex_peer_queued_bytes", &labels).set(stats.queued_bytes as f64);
            ::metrics::gauge!("noex_peer_calls_pending", &labels).set(stats.calls_pending as f64);
            peers.insert(
                peer,
                PeerSample {
                    incarnation: info.incarnation,
                    stats,
                },
            );
        }
        for gone in self.peers.keys().filter(|peer| !peers.contains_key(*peer)) {
            let labels = [("node", label.clone()), ("peer", gone.clone())];
            ::metrics::gauge!("noex_peer_queued_bytes", &labels).set(0.0);
            ::metrics::gauge!("noex_peer_calls_pending", &labels).set(0.0);
        }
        self.peers = peers;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    use ::metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;
    use crate::dist::{NodeStatus, TieStats};

    /// Keeps the counters by name (the tests here use one peer).
    #[derive(Default)]
    struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

    impl Counters {
        fn get(&self, name: &str) -> u64 {
            let counters = self.0.lock().unwrap();
            counters.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
        }
    }

    impl Recorder for Counters {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let mut counters = self.0.lock().unwrap();
            let counter = counters.entry(key.name().to_owned()).or_default();
            Counter::from_arc(counter.clone())
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn peer(messages_sent: u64, reconnects: u64) -> crate::NodeInfo {
        crate::NodeInfo {
            id: "b@127.0.0.1:1".parse().unwrap(),
            incarnation: 1,
            status: NodeStatus::Connected,
            process_count: 0,
            uptime: Duration::ZERO,
            last_seen: Duration::ZERO,
            stats: TrafficStats {
                messages_sent,
                reconnects,
                ..TrafficStats::default()
            },
            ties: TieStats::default(),
            round_trip: None,
            hidden: false,
        }
    }

    #[test]
    fn a_connection_that_replaced_a_lost_one_between_samples_counts_whole() {
        let counters = Counters::default();
        let mut sampler = Sampler {
            node: Weak::new(),
            label: "a".to_owned(),
            messages: 0,
            names: HashSet::new(),
            peers: HashMap::new(),
        };
        ::metrics::with_local_recorder(&counters, || {
            sampler.sample_peers(vec![peer(100, 0)]);
            // Lost and connected again (the same incarnation) since: the new connection
            // has sent 150 already, more than the old one had.
            sampler.sample_peers(vec![peer(150, 1)]);
        });
        assert_eq!(counters.get("noex_peer_messages_sent_total"), 250);
    }
}
