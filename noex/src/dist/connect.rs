//! Making connections: a dial loop per address this node connects to, and the rules that
//! keep one connection per pair of nodes (accepted connections are `accept`'s).
//!
//! # One connection per pair of nodes
//!
//! Two nodes may dial each other at the same moment. Each node lets only one handshake
//! with a given peer be under way at a time: an inbound one is admitted only if this
//! node's own dial to that peer is not in its handshake — or is, but this node's id is
//! the smaller — and a dial does not begin its handshake while an inbound one from that
//! peer is under way (for at most the connect timeout: the peer is not authenticated yet).
//! So when two handshakes cross, exactly one is refused (`AlreadyConnected`), and it is
//! the same on both sides: the one dialled by the smaller id. A dial that is only waiting
//! for its next attempt never wins a tie: a node that restarts and dials a survivor still
//! re-dialling it is let in at once.
//!
//! Should two connections get through anyway (one node reached the other under two
//! addresses, say a host name and an IP), both nodes keep the one dialled by the greater
//! id, and report the other's loss like any lost connection (see `Cluster::register`).
//!
//! # Dial loops
//!
//! A dial loop retries with exponential backoff and jitter until it connects, or until
//! the peer is connected through a connection of its own. A refusal for good — a wrong
//! secret, another protocol version, another node than expected at that address, a
//! certificate refused, or something that does not speak the protocol — ends it, unless the
//! address is a seed, which is tried again every 30 s (its node may be fixed and
//! restarted without knowing of this one) — but not a seed that turns out to be this node
//! itself under another address (a seed list shared by every node names each). Each refusal is reported once per loop (see
//! `refused`). So does silence: an address that
//! has not answered for [`ClusterConfig::forget_unreachable_after`] is forgotten, unless it
//! is a configured seed. A dial refused because the peer is connecting to this node
//! (`AlreadyConnected`) tries again shortly, until that connection exists.
//!
//! Addresses learnt from peers' member lists are dialled by at most
//! [`ClusterConfig::max_dials`] loops at once (a lost peer and a seed always get one), so a
//! member list cannot make a node dial without bound; the others wait for a loop to end
//! (see `membership`).
//!
//! [`ClusterConfig::forget_unreachable_after`]: super::ClusterConfig::forget_unreachable_after
//! [`ClusterConfig::max_dials`]: super::ClusterConfig::max_dials

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::handshake::{self, Established, HandshakeError};
use super::node_id::NodeId;
use super::refused::{classify, RefusedReason};
use super::transport::Stream;
use super::wire::{Refusal, WireError};

/// A dial loop.
pub(super) struct Dial {
    /// Which loop this is: a loop whose entry was removed (its node forgotten) and
    /// replaced by another's ends at its next look rather than run beside it.
    id: u64,
    pub(super) kind: DialKind,
    /// In its handshake now (not waiting for its next attempt).
    pub(super) handshaking: bool,
    /// Asked for again while the loop runs (the peer was lost anew, say): the loop goes
    /// on, with a fresh clock and backoff, rather than end.
    renewed: bool,
}

/// Why an address is dialled, which decides when its dial loop gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DialKind {
    /// Named by a peer's member list: forgotten once silent for a while, and at most
    /// `max_dials` at once.
    Learned,
    /// A peer lost by failure: forgotten once silent for a while.
    Lost,
    /// A configured seed: dialled until it answers.
    Seed,
}

/// Whether a dial loop may begin a handshake now.
pub(crate) enum Begin {
    Go,
    /// Connected already: the loop ends.
    Connected,
    /// A handshake from that peer is under way: try again shortly.
    Wait,
}

/// An inbound handshake admitted and under way; its end (however it ends) is recorded when
/// this is dropped.
pub(crate) struct Admitted {
    cluster: Weak<Cluster>,
    address: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.upgrade() {
            let mut state = cluster.lock();
            if let Some(count) = state.accepting.get_mut(&self.address) {
                *count -= 1;
                if *count == 0 {
                    state.accepting.remove(&self.address);
                }
            }
        }
    }
}

impl Cluster {
    /// Dials `address` (unless already connected or dialling) in a dial loop (see
    /// `connect`). A learnt address is not dialled while `max_dials` of them are.
    pub(crate) fn dial(
        self: &Arc<Self>,
        address: String,
        expected: Option<NodeId>,
        kind: DialKind,
    ) {
        let id = {
            let mut state = self.lock();
            if let Some(id) = &expected {
                if state.peers.contains_key(id.as_str()) {
                    return;
                }
            }
            if let Some(dial) = state.dials.get_mut(&address) {
                // Already dialled: it goes on, and gives up only as the stronger reason
                // allows.
                dial.kind = dial.kind.max(kind);
                // A peer lost anew starts the loop's clock and backoff over; a seed listed
                // again (discovery asks at every poll) does not.
                dial.renewed |= kind == DialKind::Lost;
                return;
            }
            if kind == DialKind::Learned {
                let learned = state.dials.values().filter(|d| d.kind == kind).count();
                if learned >= self.config.max_dials {
                    // Dialled when a loop ends: no list names it again (see `membership`).
                    if let Some(id) = expected {
                        self.wait_to_dial(&mut state, id);
                    }
                    return;
                }
            }
            let dial = Dial {
                id: self.next_id(),
                kind,
                handshaking: false,
                renewed: false,
            };
            let id = dial.id;
            state.dials.insert(address.clone(), dial);
            id
        };
        let cluster = Arc::downgrade(self);
        self.spawn(async move {
            dial_loop(&cluster, &address, id, expected).await;
            if let Some(cluster) = cluster.upgrade() {
                cluster.dial_waiting();
            }
        });
    }

    /// Dials `node` again, its connection lost — by failure, or by its goodbye (`left`).
    /// A node a discovery source lists (a configured seed) is dialled until it answers,
    /// whichever way it went: else a partition longer than `forget_unreachable_after`
    /// would never heal, nor would a seed that knows no one rejoin after a restart. It is
    /// dialled at the addresses listed for it, which may not be the one in its id (a name
    /// in front of a pod, the only way in). Any other is dialled at its id's address
    /// until forgotten, and not at all if it left.
    pub(super) fn redial(self: &Arc<Self>, node: &NodeId, left: bool) {
        let listed = self.lock().listings.addresses_of(node);
        if listed.is_empty() {
            if !left {
                let address = node.address().to_owned();
                self.dial(address, Some(node.clone()), DialKind::Lost);
            }
            return;
        }
        for (address, expected) in listed {
            self.dial(address, expected, DialKind::Seed);
        }
    }

    /// The reason of dial `id` of `address`, and whether it was asked for again since
    /// the last look; `None` if there is no such dial.
    fn renewal(&self, address: &str, id: u64) -> Option<(DialKind, bool)> {
        let mut state = self.lock();
        let dial = state.dials.get_mut(address).filter(|dial| dial.id == id)?;
        Some((dial.kind, std::mem::take(&mut dial.renewed)))
    }

    /// Ends the dial of `address` — unless it was asked for again meanwhile (then `false`:
    /// the loop goes on). Decided under the lock that `dial` takes, so that no request to
    /// dial is lost to a loop ending.
    fn finish_dial(&self, address: &str, id: u64) -> bool {
        let mut state = self.lock();
        match state.dials.get_mut(address) {
            Some(dial) if dial.id != id => true,
            Some(dial) if dial.renewed => false,
            _ => {
                state.dials.remove(address);
                true
            }
        }
    }

    /// `true` if connected to the node dialled at `address` (known by its id, by the
    /// address in its id, or by where the socket led).
    pub(super) fn connected_to(
        &self,
        address: &str,
        expected: Option<&NodeId>,
        resolved: Option<SocketAddr>,
    ) -> bool {
        let state = self.lock();
        match expected {
            Some(id) => state.peers.contains_key(id.as_str()),
            None => state.peers.values().any(|peer| {
                let at = peer.id.address();
                at == address || resolved.is_some_and(|r| at.parse() == Ok(r))
            }),
        }
    }

    /// Marks the dial of `address` as in its handshake — unless the peer is connected, or
    /// (unless `waited_out`) its own handshake with this node is under way.
    fn begin_handshake(
        &self,
        (address, id): (&str, u64),
        expected: Option<&NodeId>,
        waited_out: bool,
    ) -> Begin {
        let mut state = self.lock();
        let connected = match expected {
            Some(id) => state.peers.contains_key(id.as_str()),
            None => state
                .peers
                .values()
                .any(|peer| peer.id.address() == address),
        };
        if connected {
            return Begin::Connected;
        }
        if state.accepting.contains_key(address) && !waited_out {
            return Begin::Wait;
        }
        if let Some(dial) = state.dials.get_mut(address).filter(|dial| dial.id == id) {
            dial.handshaking = true;
        }
        Begin::Go
    }

    /// Dial `id` of `address` is no longer in its handshake.
    pub(super) fn end_handshake(&self, address: &str, id: u64) {
        if let Some(dial) = self
            .lock()
            .dials
            .get_mut(address)
            .filter(|dial| dial.id == id)
        {
            dial.handshaking = false;
        }
    }

    /// Decides whether an inbound connection from `peer` may proceed; if it may, the
    /// returned record marks its handshake as under way until dropped.
    pub(super) fn admit(
        self: &Arc<Self>,
        peer: &NodeId,
        incarnation: u64,
    ) -> Result<Admitted, Refusal> {
        if self.is_stopping() {
            return Err(Refusal::ShuttingDown);
        }
        let mut state = self.lock();
        if state.partitioned.contains(peer.as_str()) {
            // As a node that cannot be reached right now (the dialler tries again).
            return Err(Refusal::ShuttingDown);
        }
        if let Some(existing) = state.peers.get(peer.as_str()) {
            if existing.incarnation == incarnation {
                return Err(self.already_connected());
            }
        }
        // Crossing handshakes: the one dialled by the greater id goes on.
        let dialing = state
            .dials
            .get(peer.address())
            .is_some_and(|dial| dial.handshaking);
        if dialing && self.id > *peer {
            return Err(self.already_connected());
        }
        let address = peer.address().to_owned();
        *state.accepting.entry(address.clone()).or_default() += 1;
        Ok(Admitted {
            cluster: Arc::downgrade(self),
            address,
        })
    }

    /// Decides, once an inbound peer has proved it knows the secret, whether its
    /// connection may be set up. An earlier incarnation than the one connected is alive
    /// after all, so two nodes claim one id: refused (let in, each would replace the other
    /// for ever), and that incarnation is noted alive — after authentication, since
    /// anyone who can reach the port could name any incarnation in a hello.
    pub(super) fn confirm(&self, peer: &NodeId, incarnation: u64) -> Result<(), Refusal> {
        let state = self.lock();
        let earlier = state.peers.get(peer.as_str()).is_some_and(|existing| {
            existing.incarnation != incarnation
                && self.incarnations.seen(peer.as_str(), incarnation)
        });
        if earlier {
            self.incarnations.alive(peer.as_str(), incarnation);
            tracing::warn!(node = %peer, "refused: an earlier incarnation of a connected node (two live nodes claim its id)");
            return Err(Refusal::IdInUse);
        }
        Ok(())
    }

    fn already_connected(&self) -> Refusal {
        Refusal::AlreadyConnected {
            node: self.id.to_string(),
        }
    }

    /// Fault injection: resolves once admitted handshakes are not held.
    pub(super) async fn handshake_hold(&self) {
        if !self.hold_handshakes.load(Ordering::Acquire) {
            return;
        }
        struct Holding<'a>(&'a AtomicUsize);
        impl Drop for Holding<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.handshakes_held.fetch_add(1, Ordering::Relaxed);
        let _holding = Holding(&self.handshakes_held);
        loop {
            let released = self.handshakes_released.listen();
            if !self.hold_handshakes.load(Ordering::Acquire) || self.is_stopping() {
                return;
            }
            released.await;
        }
    }

    /// Fault injection: how many handshakes are held now.
    pub(crate) fn handshakes_held(&self) -> usize {
        self.handshakes_held.load(Ordering::Relaxed)
    }

    /// How many addresses are being dialled.
    pub(crate) fn dials(&self) -> usize {
        self.lock().dials.len()
    }

    /// Fault injection: holds admitted inbound handshakes (before this node's challenge)
    /// until released.
    pub(crate) fn hold_handshakes(&self, hold: bool) {
        self.hold_handshakes.store(hold, Ordering::Release);
        if !hold {
            self.handshakes_released.notify(usize::MAX);
        }
    }
}

/// After this many `AlreadyConnected` refusals in a row with no connection to show for
/// them, a dial loop goes back to its backoff.
const MAX_TIES: u32 = 20;

/// A seed that refused this node is tried again this often (or every `reconnect_max`, if
/// longer).
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// How one attempt to connect ended.
enum Attempt {
    Connected(Established, Stream),
    /// Refused because the peer is connected, or connecting, to this node: where the
    /// socket led and the node the peer says it is (to recognise the peer by them).
    Tied(Option<SocketAddr>, Option<NodeId>),
    /// Refused, by either side.
    Refused {
        reason: RefusedReason,
        by_peer: bool,
        error: String,
    },
    /// Failed; `answered` if something at the address replied.
    Failed {
        error: String,
        answered: bool,
    },
}

/// Dials `address` until connected, refused for good, forgotten, or the node stops.
async fn dial_loop(cluster: &Weak<Cluster>, address: &str, id: u64, expected: Option<NodeId>) {
    let Some(strong) = cluster.upgrade() else {
        return;
    };
    let config = &strong.config;
    let (min, max, forget_after, connect_timeout) = (
        config.reconnect_min,
        config.reconnect_max,
        config.forget_unreachable_after,
        config.connect_timeout,
    );
    drop(strong);
    let mut backoff = min;
    let mut last_answer = Instant::now();
    let (mut ties, mut warned) = (0, false);
    // What the last refusal said (each is reported once per loop).
    let mut refused: Option<RefusedReason> = None;
    // Since when an inbound handshake from the peer has kept this dial waiting.
    let mut waiting_since: Option<Instant> = None;
    loop {
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        if strong.is_stopping() {
            return;
        }
        let Some((kind, renewed)) = strong.renewal(address, id) else {
            return;
        };
        if renewed {
            (last_answer, backoff, ties) = (Instant::now(), min, 0);
        }
        // An inbound handshake that never ends (its peer unauthenticated as yet) holds
        // this dial back no longer than a handshake may take.
        let waited_out = waiting_since.is_some_and(|since| since.elapsed() >= connect_timeout);
        match strong.begin_handshake((address, id), expected.as_ref(), waited_out) {
            Begin::Connected => match strong.finish_dial(address, id) {
                true => return,
                false => continue,
            },
            // A handshake from that peer is under way: it will connect us, or fail.
            Begin::Wait => {
                waiting_since.get_or_insert_with(Instant::now);
                drop(strong);
                smol::Timer::after(min).await;
                continue;
            }
            Begin::Go => waiting_since = None,
        }
        let attempt = attempt(&strong, address, expected.as_ref())
            .or(async {
                smol::Timer::after(connect_timeout).await;
                Attempt::Failed {
                    error: "timed out".to_owned(),
                    answered: false,
                }
            })
            .await;
        match attempt {
            Attempt::Connected(established, stream) => {
                strong.lock().listings.reached(address, &established.peer);
                strong.register(established, stream, true);
                strong.end_handshake(address, id);
                match strong.finish_dial(address, id) {
                    true => return,
                    false => continue,
                }
            }
            Attempt::Tied(resolved, claimed) => {
                strong.end_handshake(address, id);
                last_answer = Instant::now();
                // An address dialled without an id (a seed) that is not the one in its
                // node's id is known by the id the node gave.
                let known = expected.as_ref().or(claimed.as_ref());
                if let (None, Some(claimed)) = (&expected, &claimed) {
                    strong.lock().listings.reached(address, claimed);
                }
                if strong.connected_to(address, known, resolved) {
                    match strong.finish_dial(address, id) {
                        true => return,
                        false => continue,
                    }
                }
                ties += 1;
                if ties <= MAX_TIES {
                    drop(strong);
                    smol::Timer::after(min).await;
                    continue;
                }
            }
            Attempt::Refused {
                reason,
                by_peer,
                error,
            } => {
                strong.end_handshake(address, id);
                ties = 0;
                let new = refused.as_ref() != Some(&reason);
                refused = Some(reason.clone());
                if new {
                    strong.report_refused(address, false, by_peer, reason.clone());
                }
                if reason.is_final() {
                    // This node itself, reached under another name (a seed list shared
                    // by every node), or a node with its id: no use trying again.
                    let itself = by_peer && reason == RefusedReason::DuplicateNode;
                    if kind != DialKind::Seed || itself {
                        tracing::error!(%address, %error, "refused for good; no longer dialling it");
                        let mut state = strong.lock();
                        if state.dials.get(address).is_some_and(|dial| dial.id == id) {
                            state.dials.remove(address);
                        }
                        state.listings.refused(address);
                        return;
                    }
                    // A seed is tried again, slowly: its node may be fixed and restarted
                    // without knowing of this one.
                    if new {
                        tracing::error!(%address, %error, "refused; trying again every {REFUSED_RETRY:?}");
                    }
                    drop(strong);
                    smol::Timer::after(jitter(REFUSED_RETRY.max(max))).await;
                    continue;
                }
            }
            Attempt::Failed { error, answered } => {
                strong.end_handshake(address, id);
                ties = 0;
                if answered {
                    last_answer = Instant::now();
                }
                if !warned {
                    tracing::warn!(%address, %error, "cannot connect; retrying with backoff");
                    warned = true;
                } else {
                    tracing::debug!(%address, %error, "cannot connect");
                }
            }
        }
        if kind != DialKind::Seed && last_answer.elapsed() >= forget_after {
            if strong.finish_dial(address, id) {
                tracing::info!(%address, "no answer for {forget_after:?}; no longer dialling it");
                return;
            }
            continue;
        }
        drop(strong);
        smol::Timer::after(jitter(backoff)).await;
        backoff = backoff.saturating_mul(2).min(max);
    }
}

/// Connects to `address` and runs the handshake.
async fn attempt(cluster: &Cluster, address: &str, expected: Option<&NodeId>) -> Attempt {
    if cluster.refuse_connections.load(Ordering::Relaxed) {
        return Attempt::Failed {
            error: "connections refused (fault injection)".to_owned(),
            answered: false,
        };
    }
    if expected.is_some_and(|id| cluster.is_partitioned(id.as_str())) {
        return Attempt::Failed {
            error: "partitioned (fault injection)".to_owned(),
            answered: true,
        };
    }
    let tcp = match TcpStream::connect(address).await {
        Ok(stream) => stream,
        Err(error) => {
            return Attempt::Failed {
                error: error.to_string(),
                answered: false,
            }
        }
    };
    let mut stream = match cluster.secure_dialled(address, tcp).await {
        Ok(stream) => stream,
        Err(error) => {
            let error = HandshakeError::Wire(WireError::Io(error));
            return refused_or(&error, true);
        }
    };
    let local = cluster.local();
    match handshake::connect(&mut stream, &local, expected).await {
        Ok(established) => Attempt::Connected(established, stream),
        Err(HandshakeError::RefusedByPeer(Refusal::AlreadyConnected { node })) => {
            Attempt::Tied(stream.tcp().peer_addr().ok(), node.parse().ok())
        }
        Err(error @ HandshakeError::RefusedByPeer(Refusal::ShuttingDown)) => Attempt::Failed {
            error: error.to_string(),
            answered: true,
        },
        // A wrong secret or version, another node at that address, a certificate refused,
        // or something that does not speak the protocol: for good. A lost connection is
        // tried again.
        Err(error) => refused_or(&error, false),
    }
}

/// A refusal, if `error` is one; otherwise a failure.
fn refused_or(error: &HandshakeError, answered: bool) -> Attempt {
    match classify(error) {
        Some((reason, by_peer)) => Attempt::Refused {
            reason,
            by_peer,
            error: error.to_string(),
        },
        None => Attempt::Failed {
            error: error.to_string(),
            answered,
        },
    }
}

/// `delay` ±20 %.
fn jitter(delay: Duration) -> Duration {
    let random = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
    crate::timer::scaled(delay, 0.8 + 0.4 * random)
}
