//! Conflicts a node sees between two other nodes' registrations: telling the loser's node.
//!
//! With the link a–c cut and b reaching both, a and c can each register one name at the
//! same moment: b takes both claims before either is registered and grants both, and a
//! and c do not hear of each other. Only b's replica holds both registrations. So b,
//! applying the conflict rule to them, tells the loser's node (`Superseded`), which
//! applies the rule to its own process as if it had seen the winner's registration: its
//! process gives the name up and is told with an exit signal. It records nothing of the
//! winner — it may not reach the winner's node, whose records it would never see go.
//!
//! A node tells the loser's node whenever its replica settles a conflict between two
//! peers' registrations; where the loser's node reaches the winner's, it applies the
//! rule itself too, and whichever comes second finds nothing to do. The loser's node
//! checks that its process still holds the name by the registration the verdict names
//! (its stamp), and that the winner's stamp goes first, so a late verdict never ends a
//! later registration.

use std::sync::Arc;

use super::protocol::GlobalMessage;
use super::replica::{Entry, Stamp};
use super::{Global, GlobalEvent};
use crate::dist::wire::WireMessage;
use crate::node::NodeInner;
use crate::Pid;

/// A conflict between two peers' registrations, settled by this node's replica: for the
/// loser's node.
pub(super) struct Verdict {
    loser_node: Arc<str>,
    message: GlobalMessage,
}

impl Verdict {
    pub(super) fn new(name: &str, loser: &Entry, winner: &Entry) -> Self {
        Verdict {
            loser_node: loser.pid.node_arc(),
            message: GlobalMessage::Superseded {
                name: name.to_owned(),
                serial: loser.pid.serial(),
                time: loser.stamp.time,
                winner: winner.pid.clone(),
                winner_time: winner.stamp.time,
            },
        }
    }

    /// Sends the verdict to the loser's node, if connected (once it connects, it hears
    /// of the winner from that node's own records, or from this one's verdict again).
    /// Called without the tables' locks: the cluster's lock is taken before them.
    pub(super) fn tell(self, node: &NodeInner) {
        let Some(cluster) = node.cluster.get() else {
            return;
        };
        let peer = cluster.peer(&self.loser_node);
        if let Some(peer) = peer.filter(|p| cluster.shares_with(p)) {
            let _ = peer
                .queue
                .push_control(&WireMessage::Global(Box::new(self.message)));
        }
    }
}

impl Global {
    /// A peer's replica shows this node's process `serial` losing `name` to `winner`: if
    /// that process still holds the name by the registration stamped `time`, and the
    /// winner's stamp goes first, it gives the name up, as on a conflict seen here.
    pub(super) fn superseded(
        &self,
        node: &NodeInner,
        name: &str,
        (serial, time): (u64, u64),
        (winner, winner_time): (Pid, u64),
    ) {
        let first = Stamp {
            time: winner_time,
            node: winner.node_arc(),
        };
        let mut names = self.names();
        let loser = match names.get(name) {
            Some(entry)
                if entry.pid.node() == &*node.name
                    && entry.pid.serial() == serial
                    && entry.stamp.time == time
                    && first < entry.stamp =>
            {
                entry.pid.clone()
            }
            _ => return,
        };
        let change = names.release(name, &loser);
        drop(names);
        self.events.publish(GlobalEvent::Conflict {
            name: name.to_owned(),
            winner: winner.clone(),
            loser: loser.clone(),
        });
        self.lost(node, name, &loser, &winner);
        self.released(name, &loser, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::global::protocol::round_trip;

    #[test]
    fn a_verdict_crosses_the_wire_and_truncations_are_errors() {
        round_trip(GlobalMessage::Superseded {
            name: "x".repeat(255),
            serial: 1 << 40,
            time: u64::MAX >> 2,
            winner: Pid::new(Arc::from("a@127.0.0.1:4000"), 3, 12),
            winner_time: 17,
        });
    }
}
