//! Accepting connections: the accept loop, and the handshake of each accepted connection
//! (TLS first, if this node has it), bounded in number, shared fairly among the sources
//! once the bound is reached, and bounded in time (see `pending`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::handshake::{self, HandshakeError};
use super::node_id::NodeId;
use super::pending::{InboundHandshake, MAX_INBOUND_HANDSHAKES};
use super::refused::InboundEnd;
use super::wire::{Refusal, WireError};

pub(super) async fn accept_loop(cluster: Weak<Cluster>, listener: TcpListener) {
    loop {
        let stopped = {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            // Listen before checking, so a stop in between is not missed.
            let stopped = cluster.stopped.listen();
            if cluster.is_stopping() {
                return;
            }
            stopped
        };
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                stopped.await;
                None
            })
            .await;
        // Stopped: returning drops (closes) the listener, freeing the port.
        let Some(accepted) = accepted else {
            return;
        };
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if cluster.is_stopping() {
            return;
        }
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                smol::Timer::after(Duration::from_millis(10)).await;
                continue;
            }
        };
        if cluster.refuse_connections.load(Ordering::Relaxed) {
            drop(stream);
            continue;
        }
        let Ok(pending) = cluster.inbound.begin_handshake(from.ip()) else {
            tracing::debug!(%from, "closed: {MAX_INBOUND_HANDSHAKES} handshakes under way");
            drop(stream);
            continue;
        };
        let weak = Arc::downgrade(&cluster);
        cluster.spawn(accept_one(weak, stream, from, pending));
    }
}

/// How an accepted connection's handshake ended.
enum End<T> {
    Done(T),
    TimedOut,
    /// Closed for a connection from a source holding fewer handshakes (see `pending`).
    Evicted,
}

async fn accept_one(
    cluster: Weak<Cluster>,
    tcp: TcpStream,
    from: SocketAddr,
    pending: InboundHandshake,
) {
    let Some(strong) = cluster.upgrade() else {
        return;
    };
    let timeout = strong.config.connect_timeout;
    // While the handshake is under way, this node does not begin one of its own with the
    // same peer (see the module docs); dropped at the end, whatever the end.
    let mut admitted = None;
    // The node the dialler says it is, once it has (for the logs).
    let mut claimed: Option<NodeId> = None;
    // The hello is one of this node's own dials' (see `pending`): not reported.
    let mut itself = false;
    let handshake = async {
        let mut stream = match strong.secure_accepted(tcp).await {
            Ok(stream) => stream,
            Err(error) => return Some(Err(HandshakeError::Wire(WireError::Io(error)))),
        };
        let local = strong.local();
        #[cfg(feature = "tls")]
        let identity = strong
            .config
            .tls
            .as_ref()
            .and_then(|tls| tls.peer_identity(&stream));
        let admit = |peer: &NodeId, incarnation| {
            claimed = Some(peer.clone());
            #[cfg(feature = "tls")]
            if let Some(identity) = &identity {
                identity.check(peer)?;
            }
            admitted = Some(strong.admit(peer, incarnation)?);
            Ok(())
        };
        let confirm = |peer: &NodeId, incarnation| strong.confirm(peer, incarnation);
        let own = |nonce: &[u8; 32]| itself = strong.inbound.own_hello(nonce, from);
        let hold = strong.handshake_hold();
        let established = handshake::accept(&mut stream, &local, own, admit, hold, confirm);
        Some(established.await.map(|established| (established, stream)))
    };
    let result = async { End::Done(handshake.await) }
        .or(async {
            smol::Timer::after(timeout).await;
            End::TimedOut
        })
        .or(async {
            pending.evicted().await;
            End::Evicted
        })
        .await;
    // Authenticated or not, the connection no longer counts as in its handshake.
    drop(pending);
    let peer = claimed.as_ref().map(NodeId::as_str);
    let result = match result {
        End::Done(result) => result,
        End::Evicted => {
            tracing::debug!(%from, ?peer, "closed in its handshake, for a connection from another source");
            drop(admitted);
            return;
        }
        End::TimedOut => None,
    };
    match result {
        Some(Ok((established, stream))) => {
            strong.register(established, stream, false);
        }
        Some(Err(HandshakeError::Refused(Refusal::AlreadyConnected { .. }))) => {
            tracing::debug!(%from, ?peer, "refused a duplicate connection");
        }
        Some(Err(_)) if itself => {
            tracing::debug!(%from, "refused a dial of this node itself");
        }
        // Not refusals, but as frequent (a port scanner, a health check): rate-limited.
        Some(Err(error)) => {
            if !strong.report_inbound_refusal(from, &error) {
                let what = "an accepted connection failed in its handshake";
                if strong.inbound_report_due(from, InboundEnd::Failed) {
                    tracing::warn!(%from, ?peer, %error, "{what}");
                } else {
                    tracing::debug!(%from, ?peer, %error, "{what}");
                }
            }
        }
        None => {
            let what = "a connection did not complete its handshake in time";
            if strong.inbound_report_due(from, InboundEnd::TimedOut) {
                tracing::warn!(%from, ?peer, "{what}");
            } else {
                tracing::debug!(%from, ?peer, "{what}");
            }
        }
    }
    drop(admitted);
}
