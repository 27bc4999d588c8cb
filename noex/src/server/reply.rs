//! The reply slot of a call: a one-shot channel from the server back to its caller.
//!
//! The caller keeps the receiving end; the request carries the sending end. What the caller
//! sees depends on how the sending end goes away:
//!
//! * [`ReplyTo::send`] delivers the reply;
//! * a request dropped unhandled (still queued when the server ended) closes the slot
//!   without a word: the caller reports [`CallError::NoProc`](crate::CallError::NoProc);
//! * a [`ReplyTo`] dropped unanswered (the handler crashed, was killed, or discarded it)
//!   marks the slot *abandoned*: the caller waits for the server to end and reports
//!   [`CallError::Exited`](crate::CallError::Exited) with its reason, or times out.

use std::fmt;

/// What travels back through a reply slot.
pub(crate) type Outcome<R> = Result<R, Abandoned>;

/// The server took the request but will not answer it.
#[derive(Debug)]
pub(crate) struct Abandoned;

/// The sending end of a reply slot, as carried by a queued request.
pub(crate) type Slot<R> = oneshot::Sender<Outcome<R>>;

/// Where the reply to one call goes. Given to [`GenServer::handle_call`](crate::GenServer::handle_call).
///
/// Answer with [`send`](ReplyTo::send), now or later: a `ReplyTo` can be stored in the
/// server's state and answered from another message (a *deferred* reply), or handed to
/// another process. If it is dropped unanswered, the caller's call ends when the server ends
/// ([`CallError::Exited`](crate::CallError::Exited)) or at its timeout.
pub struct ReplyTo<R> {
    slot: Option<Slot<R>>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(slot: Slot<R>) -> Self {
        ReplyTo { slot: Some(slot) }
    }

    /// Sends the reply. If the caller has stopped waiting (its call timed out), the reply is
    /// dropped.
    pub fn send(mut self, reply: R) {
        if let Some(slot) = self.slot.take() {
            // An error means the caller gave up; dropping the reply is the contract.
            let _ = slot.send(Ok(reply));
        }
    }

    /// `true` if the caller has stopped waiting, so a reply would be dropped.
    pub fn is_abandoned_by_caller(&self) -> bool {
        self.slot.as_ref().is_none_or(|slot| slot.is_closed())
    }
}

impl<R> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let _ = slot.send(Err(Abandoned));
        }
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("answered", &self.slot.is_none())
            .finish()
    }
}
