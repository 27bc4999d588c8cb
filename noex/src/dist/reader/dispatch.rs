//! Handing each message from the peer to whatever it is for: a local process, a caller
//! waiting for its reply, the connection itself, the cluster.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::inbound::{Payload, Resolver};
use super::super::peer::Peer;
use super::super::status::NodeDownReason;
use super::super::wire::{self, WireMessage};
use super::Unreported;

/// Handles one message from the peer; an error ends the connection.
#[inline]
pub(super) fn dispatch(
    cluster: &Arc<Cluster>,
    peer: &Arc<Peer>,
    message: WireMessage,
    payload: Payload<'_>,
    (unreported, resolver): (&mut Unreported, &mut Resolver),
) -> Result<usize, NodeDownReason> {
    let mut target = 0;
    match message {
        WireMessage::Heartbeat {
            process_count,
            uptime_ms,
            stamp_us,
            echo_us,
            held_us,
        } => {
            peer.process_count.store(process_count, Ordering::Relaxed);
            peer.uptime_ms.store(uptime_ms, Ordering::Relaxed);
            peer.round_trip.heard(stamp_us, echo_us, held_us);
        }
        WireMessage::Members { nodes } => cluster.learn(&nodes)?,
        WireMessage::Goodbye => return Err(NodeDownReason::Shutdown),
        WireMessage::Leaving => cluster.peer_leaving(peer),
        WireMessage::FragmentAck { bytes } => peer.queue.acknowledged(bytes as usize),
        WireMessage::Reply { id, outcome } => {
            unreported.messages += 1;
            target = peer.answer(id, outcome, payload);
        }
        message @ (WireMessage::Call { .. }
        | WireMessage::Cast { .. }
        | WireMessage::Info { .. }
        | WireMessage::Stop(_)) => {
            unreported.messages += 1;
            target = super::super::inbound::deliver(cluster, peer, message, payload, resolver);
        }
        WireMessage::Hello(_)
        | WireMessage::Challenge(_)
        | WireMessage::Proof { .. }
        | WireMessage::Welcome
        | WireMessage::Refused { .. } => {
            return Err(NodeDownReason::ProtocolError(
                "a handshake message on an established connection".into(),
            ))
        }
        WireMessage::Fragment { .. } => {
            return Err(NodeDownReason::ProtocolError(
                "a fragment inside a fragment".into(),
            ))
        }
        WireMessage::Signal(signal) => {
            unreported.messages += 1;
            cluster.receive_signal(peer, *signal);
        }
        WireMessage::Spawn(request) => {
            unreported.messages += 1;
            cluster.receive_spawn(peer, *request, payload);
        }
        WireMessage::SpawnReply { id, result } => {
            unreported.messages += 1;
            cluster.spawn_answered(peer, id, result);
        }
        WireMessage::SpawnAck { id, keep } => cluster.spawn_confirmed(peer, id, keep),
        WireMessage::Global(message) => {
            if let Some(node) = cluster.node() {
                node.global.receive(&node, peer, *message);
            }
        }
        WireMessage::Trace(traced) => {
            return traced_message(cluster, peer, *traced, payload, (unreported, resolver))
        }
    }
    Ok(target)
}

/// Handles a message that came in a `Trace`: with its context on a node built with the
/// `tracing-context` feature, as if the context were not there on others.
#[cold]
fn traced_message(
    cluster: &Arc<Cluster>,
    peer: &Arc<Peer>,
    traced: wire::Traced,
    payload: Payload<'_>,
    (unreported, resolver): (&mut Unreported, &mut Resolver),
) -> Result<usize, NodeDownReason> {
    #[cfg(feature = "tracing-context")]
    {
        resolver.trace = crate::trace::received(&traced, &peer.id);
    }
    // Decoding refuses a trace inside a trace: this goes one level deep at most.
    let target = dispatch(
        cluster,
        peer,
        traced.message,
        payload,
        (unreported, resolver),
    );
    #[cfg(feature = "tracing-context")]
    {
        resolver.trace = None;
    }
    target
}
