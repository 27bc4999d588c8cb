//! Dial loops: connecting to one address until connected, refused for good, or forgotten.
//!
//! A dial loop retries with exponential backoff and jitter until it connects, or until
//! the peer is connected through a connection of its own. A refusal for good — a wrong
//! secret, another protocol version, another node than expected at that address, a
//! certificate refused, or something that does not speak the protocol — ends it if the
//! node at the address had proved itself first (its challenge carried the proof of the
//! cluster secret: see `handshake`), unless the address is a seed. A seed is tried again
//! every 30 s (its node may be fixed and restarted without knowing of this one), and so is
//! any address refused before the node there proved itself: anyone who answers at a lost
//! peer's address (a stray process that took its port, an impostor) can send a refusal,
//! or garbage, and must not stop this node from ever dialling that peer again. (Another
//! node than expected is found before any proof — a proof names no address, and anyone
//! could relay another member's — and a TLS certificate is no such proof either: only
//! the secret's is.) Each refusal is reported once per loop (see `refused`).
//!
//! An address whose node has not proved itself for
//! [`ClusterConfig::forget_unreachable_after`] — silent, or answered only by something
//! that did not prove itself (a refusal, an `AlreadyConnected` that no connection
//! follows) — is forgotten, unless it is a configured seed; it is tried one last time as
//! that time runs out. So an impostor cannot keep an address dialled for ever either. A
//! dial refused because the peer is connecting to this node (`AlreadyConnected`) tries
//! again shortly, until that connection exists.
//!
//! A dial that reached this node itself, under another address (a seed list shared by
//! every node names each), ends at once and quietly — known by this node's own listener
//! having received its hello over its connection (see `pending`), never by what the
//! other end says: a `DuplicateNode` refusal not so confirmed (anyone who answers at the
//! address can send one, or a node with this node's id) is retried as a failed
//! connection is.
//!
//! Addresses learnt from peers' member lists are dialled by at most
//! [`ClusterConfig::max_dials`] loops at once (a lost peer and a seed always get one), so a
//! member list cannot make a node dial without bound; the others wait for a loop to end
//! (see `membership`).
//!
//! [`ClusterConfig::forget_unreachable_after`]: super::ClusterConfig::forget_unreachable_after
//! [`ClusterConfig::max_dials`]: super::ClusterConfig::max_dials

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::connect::{Begin, DialKind};
use super::handshake::{self, ConnectError, Established, HandshakeError};
use super::node_id::NodeId;
use super::pending::Dialling;
use super::refused::{classify, RefusedReason};
use super::transport::Stream;
use super::wire::{Refusal, WireError};

/// After this many `AlreadyConnected` refusals in a row with no connection to show for
/// them, a dial loop goes back to its backoff.
const MAX_TIES: u32 = 20;

/// A seed that refused this node, or an address refused before its node proved itself,
/// is tried again this often (or every `reconnect_max`, if longer).
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// How one attempt to connect ended.
enum Attempt {
    Connected(Established, Stream),
    /// Refused because the peer is connected, or connecting, to this node: where the
    /// socket led and the node the peer says it is (to recognise the peer by them).
    Tied(Option<SocketAddr>, Option<NodeId>),
    /// Reached this node itself (see `pending`).
    Itself,
    /// Refused, by either side; `proven` if after the peer proved itself (see
    /// [`ConnectError`]).
    Refused {
        reason: RefusedReason,
        by_peer: bool,
        proven: bool,
        error: String,
    },
    /// Failed; `proven` if after the peer proved itself.
    Failed {
        error: String,
        proven: bool,
    },
}

/// Dials `address` until connected, refused for good, forgotten, or the node stops.
pub(super) async fn dial_loop(
    cluster: &Weak<Cluster>,
    address: &str,
    id: u64,
    expected: Option<NodeId>,
) {
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
    // When the node at the address last proved itself (or the loop began, or was renewed).
    let mut last_proof = Instant::now();
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
            (last_proof, backoff, ties) = (Instant::now(), min, 0);
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
                    proven: false,
                }
            })
            .await;
        // The slow retry of a final refusal, instead of the backoff.
        let mut slow = None;
        match attempt {
            Attempt::Connected(established, stream) => {
                let peer = established.peer.clone();
                strong.lock().listings.reached(address, &peer);
                let registered = strong.register(established, stream, true);
                strong.end_handshake(address, id);
                // Not installed, and no connection to the node either (the link was cut
                // as the handshake ended, say): tried again, as a failed attempt.
                let unconnected = !registered && strong.peer(peer.as_str()).is_none();
                if unconnected && !strong.is_stopping() {
                    tracing::debug!(%address, "connected, but the connection was not kept");
                } else {
                    match strong.finish_dial(address, id) {
                        true => return,
                        false => continue,
                    }
                }
            }
            // Said before any proof: it counts as no answer for forgetting the address.
            Attempt::Tied(resolved, claimed) => {
                strong.end_handshake(address, id);
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
            Attempt::Itself => {
                strong.end_handshake(address, id);
                tracing::info!(%address, "this address leads to this node itself; no longer dialling it");
                give_up(&strong, address, id);
                return;
            }
            Attempt::Refused {
                reason,
                by_peer,
                proven,
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
                    if proven && kind != DialKind::Seed {
                        tracing::error!(%address, %error, "refused for good; no longer dialling it");
                        give_up(&strong, address, id);
                        return;
                    }
                    // A seed is tried again, slowly: its node may be fixed and restarted
                    // without knowing of this one. So is an address refused before its
                    // node proved itself, until forgotten: anyone there could say it.
                    let retry = REFUSED_RETRY.max(max);
                    slow = Some(retry);
                    if new {
                        tracing::error!(%address, %error, "refused; trying again every {retry:?}");
                    }
                }
            }
            Attempt::Failed { error, proven } => {
                strong.end_handshake(address, id);
                ties = 0;
                if proven {
                    last_proof = Instant::now();
                }
                if !warned {
                    tracing::warn!(%address, %error, "cannot connect; retrying with backoff");
                    warned = true;
                } else {
                    tracing::debug!(%address, %error, "cannot connect");
                }
            }
        }
        let left = forget_after.saturating_sub(last_proof.elapsed());
        if kind != DialKind::Seed && left.is_zero() {
            if strong.finish_dial(address, id) {
                tracing::info!(%address, "no answer from its node for {forget_after:?}; no longer dialling it");
                return;
            }
            continue;
        }
        let delay = match slow {
            Some(retry) => jitter(retry),
            None => {
                let delay = jitter(backoff);
                backoff = backoff.saturating_mul(2).min(max);
                delay
            }
        };
        drop(strong);
        // Not a seed: tried one last time as its time runs out.
        let delay = match kind {
            DialKind::Seed => delay,
            _ => delay.min(left),
        };
        smol::Timer::after(delay).await;
    }
}

/// Ends dial `id` of `address` for good: not dialled again while a discovery source
/// lists it.
fn give_up(cluster: &Cluster, address: &str, id: u64) {
    let mut state = cluster.lock();
    if state.dials.get(address).is_some_and(|dial| dial.id == id) {
        state.dials.remove(address);
    }
    state.listings.refused(address);
}

/// Connects to `address` and runs the handshake.
async fn attempt(cluster: &Cluster, address: &str, expected: Option<&NodeId>) -> Attempt {
    if cluster.refuse_connections.load(Ordering::Relaxed) {
        return Attempt::Failed {
            error: "connections refused (fault injection)".to_owned(),
            proven: false,
        };
    }
    // A partition is between live nodes: it heals, and is no reason to forget one.
    if expected.is_some_and(|id| cluster.is_partitioned(id.as_str())) {
        return Attempt::Failed {
            error: "partitioned (fault injection)".to_owned(),
            proven: true,
        };
    }
    let tcp = match TcpStream::connect(address).await {
        Ok(stream) => stream,
        Err(error) => {
            return Attempt::Failed {
                error: error.to_string(),
                proven: false,
            }
        }
    };
    // Recorded from before the hello is sent until the attempt ends, so that this node's
    // listener knows the hello if the dial reached this node itself.
    let nonce = handshake::nonce();
    let dialling = tcp
        .local_addr()
        .ok()
        .map(|from| cluster.inbound.dialling(nonce, from));
    let mut stream = match cluster.secure_dialled(address, tcp).await {
        Ok(stream) => stream,
        Err(error) => {
            let error = HandshakeError::Wire(WireError::Io(error));
            return refused_or(&error, false);
        }
    };
    let local = cluster.local();
    #[cfg(feature = "tls")]
    let identity = cluster
        .config
        .tls
        .as_ref()
        .and_then(|tls| tls.peer_identity(&stream));
    let check = |_peer: &NodeId| {
        #[cfg(feature = "tls")]
        if let Some(identity) = &identity {
            identity.check(_peer)?;
        }
        Ok(())
    };
    let ConnectError { error, proven } =
        match handshake::connect(&mut stream, &local, nonce, expected, check).await {
            Ok(established) => return Attempt::Connected(established, stream),
            Err(failed) => failed,
        };
    match error {
        HandshakeError::RefusedByPeer(Refusal::DuplicateNode)
            if dialling.as_ref().is_some_and(Dialling::reached_itself) =>
        {
            Attempt::Itself
        }
        HandshakeError::RefusedByPeer(Refusal::AlreadyConnected { node }) => {
            Attempt::Tied(stream.tcp().peer_addr().ok(), node.parse().ok())
        }
        error @ HandshakeError::RefusedByPeer(Refusal::ShuttingDown) => Attempt::Failed {
            error: error.to_string(),
            proven,
        },
        // A wrong secret or version, another node at that address, a certificate refused,
        // or something that does not speak the protocol: for good, if the peer had proved
        // itself. A lost connection is tried again.
        error => refused_or(&error, proven),
    }
}

/// A refusal, if `error` is one; otherwise a failure. `proven`: after the peer proved
/// itself.
fn refused_or(error: &HandshakeError, proven: bool) -> Attempt {
    match classify(error) {
        Some((reason, by_peer)) => Attempt::Refused {
            reason,
            by_peer,
            proven,
            error: error.to_string(),
        },
        None => Attempt::Failed {
            error: error.to_string(),
            proven,
        },
    }
}

/// `delay` ±20 %.
fn jitter(delay: Duration) -> Duration {
    let random = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
    crate::timer::scaled(delay, 0.8 + 0.4 * random)
}
