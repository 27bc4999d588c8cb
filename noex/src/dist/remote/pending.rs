//! A remote call's entry in its connection's table of calls awaiting a reply.

use std::time::Duration;

use super::super::peer::{CallOutcome, Counters, Peer};
use crate::error::CallError;
use crate::server::slot;

/// A request's entry in its connection's table of calls awaiting a reply, removed when
/// the request's future ends, however it ends: answered, timed out, or dropped by its
/// caller (a `select`, a killed process) — so no entry outlives its caller.
pub(super) struct PendingCall<'a> {
    peer: &'a Peer,
    id: u64,
    /// The entry is gone: its answer (or the connection's loss) came.
    settled: bool,
}

impl<'a> PendingCall<'a> {
    /// Registers request `id` on `peer`; returns the entry and where its reply arrives.
    pub(super) fn expect(peer: &'a Peer, id: u64) -> (Self, slot::Receiver<CallOutcome>) {
        let reply = peer.expect_reply(id);
        let pending = PendingCall {
            peer,
            id,
            settled: false,
        };
        (pending, reply)
    }

    /// The answer came (whoever sends one removes the entry): nothing to forget.
    pub(super) fn settled(mut self) {
        self.settled = true;
    }

    /// The call timed out after `timeout`: counted, unless its reply arrived just now.
    pub(super) fn timed_out(self, timeout: Duration) -> CallError {
        if self.peer.forget_call(self.id) {
            Counters::add(&self.peer.counters.calls_timed_out, 1);
        }
        CallError::Timeout { timeout }
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.peer.forget_call(self.id);
        }
    }
}
