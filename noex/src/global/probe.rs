//! What tests read of the registry's state (through the hidden `Node::faults`): leak
//! checks and the points a test waits for.

use super::Global;

impl Global {
    /// Records in the name table, those of conflicts' losers included.
    pub(crate) fn records(&self) -> usize {
        self.names().records()
    }

    /// Claims in progress (this node's, and other nodes' waiting for a holder's node to
    /// answer) and forwards awaited: for leak checks.
    pub(crate) fn pending(&self) -> (usize, usize) {
        let state = self.state();
        (
            state.claims.len() + state.claimed.len() + state.questions.len(),
            state.forwards.len(),
        )
    }

    /// Claims of other nodes this node has taken (granted, kept back or asked about).
    pub(crate) fn claims_taken(&self) -> u64 {
        self.state().claims_taken
    }

    /// Messages of the protocol taken from peers.
    pub(crate) fn messages_received(&self) -> u64 {
        self.state().messages_received
    }
}
