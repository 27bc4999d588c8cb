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
//! The dial loops themselves are `dial_loop`'s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::cluster::Cluster;
use super::dial_loop::dial_loop;
use super::node_id::NodeId;
use super::wire::Refusal;

/// A dial loop.
pub(super) struct Dial {
    /// Which loop this is: a loop whose entry was removed (its node forgotten) and
    /// replaced by another's ends at its next look rather than run beside it.
    pub(super) id: u64,
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
    pub(super) fn renewal(&self, address: &str, id: u64) -> Option<(DialKind, bool)> {
        let mut state = self.lock();
        let dial = state.dials.get_mut(address).filter(|dial| dial.id == id)?;
        Some((dial.kind, std::mem::take(&mut dial.renewed)))
    }

    /// Ends the dial of `address` — unless it was asked for again meanwhile (then `false`:
    /// the loop goes on). Decided under the lock that `dial` takes, so that no request to
    /// dial is lost to a loop ending.
    pub(super) fn finish_dial(&self, address: &str, id: u64) -> bool {
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
    pub(super) fn begin_handshake(
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
