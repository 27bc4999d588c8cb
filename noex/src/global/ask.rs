//! Claims to a name held by a process of a third node: asking the holder's node.
//!
//! Node b takes a claim of node a to a name its replica has held by a process P of node
//! c. Either a does not reach c (a partial partition: a dropped c's names when it lost c)
//! or one of the replicas is a moment behind (P gave the name up, or c was lost, and a saw
//! it first). b cannot tell which, so it asks c, the authority for its own processes'
//! names (`Ask`), and keeps its answer to a back meanwhile:
//!
//! - c answers that its process holds the name: b refuses the claim (`Held`), and a's
//!   registration fails with `NameTaken` naming that process. a records nothing: it does
//!   not reach c, and hears of the holder from c once it does.
//! - c answers that none holds it: c sent its `Unregistered` before the answer, so b's
//!   replica is up to date; b decides on the claim as on any other (below).
//! - b loses c before the answer: c's names leave b's tables, and b decides on the claim
//!   the same way.
//!
//! Deciding on a claim is what `claimed` did before the question: grant it, or keep it
//! back behind b's own earlier claim to the name (Ricart–Agrawala, unchanged); b asks
//! only a node other than a and b, and not again the node that has just answered. A claim
//! asked about is not in b's `deferred` lists until then; a claim b has kept back is
//! granted as before.

use std::sync::Arc;

use super::protocol::GlobalMessage;
use super::{Global, State};
use crate::dist::peer::Peer;
use crate::dist::wire::WireMessage;
use crate::error::GlobalError;
use crate::node::NodeInner;
use crate::Pid;

/// A claim of another node that this node answers once the holder's node has answered.
pub(crate) struct Question {
    /// The claim: its node's connection, its id and its stamp's time.
    pub(super) claimant: Arc<Peer>,
    pub(super) claim: u64,
    pub(super) time: u64,
    pub(super) name: Arc<str>,
    /// The node asked: the holder's, in this node's replica.
    pub(super) asked: Arc<str>,
}

impl Question {
    fn ask(&self, id: u64) -> GlobalMessage {
        GlobalMessage::Ask {
            id,
            name: self.name.to_string(),
        }
    }
}

fn push(peer: &Peer, message: GlobalMessage) -> bool {
    let message = WireMessage::Global(Box::new(message));
    peer.queue.push_control(&message).is_ok()
}

impl Global {
    /// Asks the node `question.asked` (a third node's, holding the name in this node's
    /// replica) if this node shares the tables with it: `true` if it did (the claim is
    /// answered with its answer), `false` if the claim is to be decided on now.
    pub(super) fn ask(&self, node: &NodeInner, state: &mut State, question: Question) -> bool {
        let Some(cluster) = node.cluster.get() else {
            return false;
        };
        let asked = cluster.peer(&question.asked);
        let Some(asked) = asked.filter(|p| cluster.shares_with(p)) else {
            return false;
        };
        let id = state.next_id();
        if !push(&asked, question.ask(id)) {
            return false;
        }
        state.questions.insert(id, question);
        true
    }

    /// `peer` asks whether a process of this node holds `name`: this node's table says,
    /// and the answer follows everything this node told `peer` before.
    pub(super) fn asked(&self, node: &NodeInner, peer: &Peer, id: u64, name: &str) {
        let holder = self
            .names()
            .get(name)
            .filter(|entry| entry.pid.node() == &*node.name)
            .map(|entry| entry.pid.serial());
        push(peer, GlobalMessage::Answer { id, holder });
    }

    /// `peer` answered question `id`: the claim asked about is refused, or decided on.
    pub(super) fn answered(
        &self,
        node: &NodeInner,
        state: &mut State,
        peer: &Peer,
        (id, holder): (u64, Option<u64>),
    ) {
        let from_asked = |q: &Question| *q.asked == *peer.id.as_str();
        if !state.questions.get(&id).is_some_and(from_asked) {
            return;
        }
        let question = state.questions.remove(&id).expect("just seen");
        let claim = (&question.claimant, question.claim);
        match holder {
            Some(serial) => {
                let holder = peer.pid_of(serial);
                tracing::debug!(name = %question.name, %holder, claimant = %question.claimant.id,
                    "a claim to a name held beyond a cut link is refused");
                push(
                    claim.0,
                    GlobalMessage::Held {
                        id: claim.1,
                        holder,
                    },
                );
            }
            None => {
                let skip = Some(peer.id.as_str());
                self.consider(node, state, claim, (&question.name, question.time), skip)
            }
        }
    }

    /// A peer refused this node's claim `id`: `holder`, a process of a node this one does
    /// not reach, holds the name. The claim fails now, and the claims it kept back go.
    pub(super) fn refused(&self, state: &mut State, peer: &Peer, id: u64, holder: Pid) {
        let asked = |claim: &super::Claim| claim.waiting.iter().any(|n| **n == *peer.id.as_str());
        if !state.claims.get(&id).is_some_and(asked) {
            return;
        }
        let claim = state.claims.remove(&id).expect("just seen");
        let name = claim.name.to_string();
        self.finish(state, claim, Err(GlobalError::NameTaken { name, holder }));
    }

    /// Node `lost` is gone (its connection lost, none of its shared any more): the claims
    /// of its node asked about are dropped, and those asked of it are decided on (its
    /// names have left the tables).
    pub(super) fn questions_lose(&self, node: &NodeInner, state: &mut State, lost: &str) {
        state
            .questions
            .retain(|_, q| q.claimant.id.as_str() != lost);
        let ids: Vec<u64> = state
            .questions
            .iter()
            .filter(|(_, q)| &*q.asked == lost)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let question = state.questions.remove(&id).expect("just seen");
            let claim = (&question.claimant, question.claim);
            self.consider(node, state, claim, (&question.name, question.time), None);
        }
    }

    /// A new connection to `peer`'s node is up: the claims of its node asked about are
    /// dropped (its node sends them again over the new connection), and the questions
    /// asked of it are asked again, after its tables.
    pub(super) fn questions_meet(&self, state: &mut State, peer: &Peer) {
        let node = peer.id.as_str();
        state
            .questions
            .retain(|_, q| q.claimant.id.as_str() != node);
        for (id, question) in &state.questions {
            if &*question.asked == node {
                push(peer, question.ask(*id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::global::protocol::round_trip;

    #[test]
    fn questions_answers_and_refusals_cross_the_wire_and_truncations_are_errors() {
        round_trip(GlobalMessage::Ask {
            id: u64::MAX,
            name: "x".repeat(300),
        });
        round_trip(GlobalMessage::Answer {
            id: 7,
            holder: Some(1 << 40),
        });
        round_trip(GlobalMessage::Answer {
            id: 8,
            holder: None,
        });
        round_trip(GlobalMessage::Held {
            id: 9,
            holder: Pid::new(Arc::from("c@127.0.0.1:4000"), 3, 12),
        });
    }
}
