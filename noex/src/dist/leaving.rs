//! How a node leaves the cluster, as [`Node::shutdown`](crate::Node::shutdown) does it.
//!
//! 1. **`Leaving`.** The node tells every peer that it leaves (ahead of anything queued,
//!    in the control lane; a connection made meanwhile is told as it comes up). A peer
//!    shows it as [`NodeStatus::Leaving`](super::NodeStatus::Leaving), places no new
//!    children of a distributed supervisor there, and remembers it of that incarnation.
//! 2. **Its processes stop** (see `Node::shutdown`), over the connections still open:
//!    monitors and links held by processes of other nodes see their true reasons
//!    (`Shutdown`, or how they ended), calls in flight to them fail as they would on
//!    the node itself, their global names are released in the normal way. A distributed
//!    supervisor of another node takes the end of a child on a node that announced its
//!    leave for the node's loss, whatever the child's reason, and moves it (see
//!    `supervisor::placement`): a transient child stopped there with `Shutdown` is not
//!    gone for good. Told of its end, it does not wait the migration delay of a lost
//!    node: the node's children move once the last of them there has ended.
//! 3. **`Goodbye`** ([`Cluster::shutdown`]), behind everything queued: the peers report
//!    the node down with [`NodeDownReason::Shutdown`](super::NodeDownReason::Shutdown)
//!    and do not dial it again (unless it is a seed of theirs).
//! 4. Anything still running is killed with the connections closed: its monitors and
//!    links on other nodes see `NoConnection`, as for a node that was lost.
//!
//! A node lost without a goodbye (a crash, a partition) sends none of this: its peers see
//! `NoConnection` for all of its processes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::peer::Peer;
use super::wire::{self, WireMessage};
use crate::Pid;

impl Cluster {
    /// Tells every peer that this node leaves (step 1 above).
    pub(crate) fn announce_leaving(&self) {
        let peers: Vec<_> = {
            let state = self.lock();
            // Set under the lock: `register` reads it there, for a connection not found.
            self.leaving.store(true, Ordering::Release);
            state.peers.values().cloned().collect()
        };
        for peer in peers {
            let _ = peer.queue.push_control(&WireMessage::Leaving);
        }
    }

    /// `peer` announced that it leaves.
    pub(super) fn peer_leaving(&self, peer: &Peer) {
        peer.leaving.store(true, Ordering::Release);
        self.incarnations
            .leaving(peer.id.as_str(), peer.incarnation);
        tracing::info!(node = %peer.id, "node leaving");
    }

    /// `true` if the node of `pid`, in the pid's incarnation, announced that it leaves
    /// (it may be gone by now).
    pub(crate) fn left(&self, pid: &Pid) -> bool {
        self.incarnations.left(pid.node(), pid.incarnation())
    }

    /// Says goodbye to every peer and closes every connection.
    pub(crate) async fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stopped.notify(usize::MAX);
        let peers: Vec<_> = self.lock().peers.drain().map(|(_, p)| p).collect();
        // Behind everything queued (as a signal of no process), not in the control lane:
        // the peer handles what this node sent before its goodbye, then closes.
        let mut goodbye = Vec::new();
        if wire::encode_frame(&WireMessage::Goodbye, &mut goodbye).is_ok() {
            for peer in &peers {
                let _ = peer.queue.push_signal(&mut goodbye.clone(), 0);
            }
        }
        // Give the writers a moment to flush the goodbyes, then close.
        let flushed = async {
            for peer in &peers {
                while peer.queue.queued_bytes() > 0 && !peer.is_closed() {
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
            }
            true
        };
        let timed_out = async {
            smol::Timer::after(Duration::from_millis(500)).await;
            false
        };
        if !flushed.or(timed_out).await {
            // Still sending (processes run until the connections close): a goodbye ahead
            // of the rest, so that the peers still know this node left.
            for peer in &peers {
                let _ = peer.queue.push_control(&WireMessage::Goodbye);
            }
        }
        // Let the last goodbye taken by the writers reach the sockets.
        smol::Timer::after(Duration::from_millis(20)).await;
        self.close(peers);
    }
}
