//! The reply slot of a call: a one-shot channel from the server back to its caller.
//!
//! The caller keeps the receiving end; the request carries the sending end, inside a
//! [`ReplyTo`]. What the caller sees depends on how the `ReplyTo` goes away:
//!
//! * [`ReplyTo::send`] delivers the reply;
//! * a request dropped unhandled (still queued when the server ended) reports
//!   [`Failure::Unhandled`]: the caller returns [`CallError::NoProc`](crate::CallError::NoProc);
//! * a `ReplyTo` dropped unanswered by a handler, as it runs (discarded, or replaced in
//!   the state by another), reports [`Failure::Discarded`]: the caller returns
//!   [`CallError::NoReply`](crate::CallError::NoReply) at once — nobody can answer it;
//! * a `ReplyTo` dropped unanswered otherwise after the handler took it (the handler
//!   crashed or was killed, the process ended with the reply deferred in its state, or a
//!   task it was handed to dropped it) reports [`Failure::Abandoned`]: the caller waits
//!   for the server to end and returns [`CallError::Exited`](crate::CallError::Exited)
//!   with its reason, or times out.
//!
//! For a call from another node, the slot is a function that encodes the outcome and sends
//! it back over the connection.

use std::fmt;
use std::sync::{Mutex, PoisonError};

/// What travels back through a reply slot.
pub(crate) type Outcome<R> = Result<R, Failure>;

/// Why a call got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request was dropped before a handler took it.
    Unhandled,
    /// A handler took the request but will not answer it: the process is ending, or the
    /// `ReplyTo` went where this is not known.
    Abandoned,
    /// A handler of the process, running, dropped the `ReplyTo` unanswered.
    Discarded,
}

/// The sending end of a reply slot, as carried by a queued request.
pub(crate) type Slot<R> = super::slot::Sender<Outcome<R>>;

/// Where the reply to one call goes. Given to [`GenServer::handle_call`](crate::GenServer::handle_call).
///
/// Answer with [`send`](ReplyTo::send), now or later: a `ReplyTo` can be stored in the
/// server's state and answered from another message (a *deferred* reply), or handed to
/// another process. If a handler drops it unanswered, the call fails at once with
/// [`CallError::NoReply`](crate::CallError::NoReply); if it is dropped as the server ends
/// (a crash, a kill, a reply still deferred in the state), the call fails with
/// [`CallError::Exited`](crate::CallError::Exited) once the server has ended.
pub struct ReplyTo<R> {
    sink: Option<Sink<R>>,
    /// Whether a handler has taken the request (decides what dropping it means): 0 or 1.
    /// A whole word (the padding it sits in) rather than a `bool`: a `ReplyTo` is moved
    /// right after it is marked, and that move's wide read of a one-byte write just made
    /// stalled on store forwarding (some 3 % of a local call, perf).
    taken: usize,
}

/// Where a reply goes: the caller's slot, or a conversion on the way to it.
enum Sink<R> {
    Slot(Slot<R>),
    /// The mutex is never contended (the sink is used once, by value); it makes a `ReplyTo`
    /// stored in a state shareable (`Sync`) whatever the conversion captures.
    Adapted(Mutex<Box<dyn Forward<R>>>),
}

/// Where the outcome of a call goes when it is not straight to a local caller: through a
/// conversion ([`ReplyTo::adapt`]; any `FnOnce` is one), or back to a remote caller.
pub(crate) trait Forward<R>: Send {
    /// Hands the outcome on.
    fn deliver(self: Box<Self>, outcome: Outcome<R>);

    /// A handler has taken the request.
    fn taken(&mut self) {}
}

impl<R, F: FnOnce(Outcome<R>) + Send> Forward<R> for F {
    fn deliver(self: Box<Self>, outcome: Outcome<R>) {
        (*self)(outcome)
    }
}

impl<R> Sink<R> {
    #[inline]
    fn deliver(self, outcome: Outcome<R>) {
        match self {
            // A caller that gave up has left the slot: the reply is dropped with it.
            Sink::Slot(slot) => slot.send(outcome),
            Sink::Adapted(forward) => forward
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .deliver(outcome),
        }
    }
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(slot: Slot<R>) -> Self {
        ReplyTo {
            sink: Some(Sink::Slot(slot)),
            taken: 0,
        }
    }

    /// A `ReplyTo` that hands the outcome to `forward` (a remote caller's connection).
    pub(crate) fn forward(forward: impl Forward<R> + 'static) -> Self {
        ReplyTo {
            sink: Some(Sink::Adapted(Mutex::new(Box::new(forward)))),
            taken: 0,
        }
    }

    /// Marks the request as taken by a handler.
    pub(crate) fn taken(mut self) -> Self {
        self.taken = 1;
        if let Some(Sink::Adapted(forward)) = &mut self.sink {
            forward
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .taken();
        }
        self
    }

    /// Sends the reply. If the caller has stopped waiting (its call timed out), the reply is
    /// dropped.
    #[inline]
    pub fn send(mut self, reply: R) {
        if let Some(sink) = self.sink.take() {
            sink.deliver(Ok(reply));
        }
    }

    /// A `ReplyTo` for a value that `convert` turns into this one's reply: how a method of
    /// one reply type answers a call whose reply type is an enum of several.
    ///
    /// ```
    /// # fn demo(reply: noex::ReplyTo<Result<u64, String>>) {
    /// let count: noex::ReplyTo<u64> = reply.adapt(Ok);
    /// count.send(42); // the caller receives Ok(42)
    /// # }
    /// ```
    #[must_use = "the adapted ReplyTo answers the call: dropping it fails the call with NoReply"]
    pub fn adapt<U>(mut self, convert: impl FnOnce(U) -> R + Send + 'static) -> ReplyTo<U>
    where
        R: Send + 'static,
    {
        let sink = self.sink.take();
        ReplyTo {
            taken: self.taken,
            sink: sink.map(|sink| {
                let forward = move |outcome: Outcome<U>| sink.deliver(outcome.map(convert));
                Sink::Adapted(Mutex::new(Box::new(forward)))
            }),
        }
    }
}

impl<R> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            let failure = if self.taken == 0 {
                Failure::Unhandled
            } else if super::run::in_handler() && !std::thread::panicking() {
                // Dropped by a handler as it runs (a process's end drops what it holds
                // outside its handlers; a panic unwinds through them).
                Failure::Discarded
            } else {
                Failure::Abandoned
            };
            sink.deliver(Err(failure));
        }
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("answered", &self.sink.is_none())
            .finish()
    }
}
