//! Messages from other nodes, delivered to the local processes they are for, and the
//! answers to their calls.
//!
//! The receiving node decodes a message with the target process's own codec — the frame
//! names the behaviour its sender expects, so a message for another behaviour is refused
//! rather than misread — and queues it in the process's mailbox like a local message. The
//! reply to a remote call travels back through a [`Responder`], over the connection the
//! call came on. A message that takes a process to its mailbox limit holds the connection
//! back until the process has worked through its backlog (see [`hold_back`]).

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::outbound::{Frame, PushError};
use super::peer::{Counters, Peer};
use super::remote::{encode_whole_unawaited, Bounded, ENCODE_APART};
use super::scratch::Scratch;
use super::spares::Pooled;
use super::wire::{self, Address, RemoteOutcome, Stop, WireMessage};
use crate::process::AnyProcess;
use crate::server::deadline::Deadline;
use crate::server::run;

/// The payload of a message from another node: where it lies in the frame just read, or
/// a reassembled message of which it is the part from `start` on.
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    /// Shared: a [`Bytes`](crate::Bytes) decoded from it may keep it.
    Owned(Arc<Pooled>, usize),
    /// A small payload kept whole in place (the reply to most calls): its first `len`
    /// bytes.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
}

/// A payload of at most this many bytes is kept in place when owned (see
/// [`Payload::into_owned`]): no allocation, and the enum no larger.
const INLINE: usize = 22;

impl Payload<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Payload::Borrowed(bytes) => bytes,
            Payload::Owned(bytes, start) => &bytes.bytes()[*start..],
            Payload::Inline { len, bytes } => &bytes[..usize::from(*len)],
        }
    }

    /// Decodes the payload with `decode`: a [`Bytes`](crate::Bytes) in an owned payload is
    /// decoded as a view of it, without a copy.
    pub(crate) fn decode<T>(&self, decode: impl FnOnce(&[u8]) -> T) -> T {
        match self {
            Payload::Owned(buffer, start) => {
                crate::bytes::sharing(buffer, || decode(&buffer.bytes()[*start..]))
            }
            payload => decode(payload.bytes()),
        }
    }

    pub(crate) fn into_owned(self) -> Payload<'static> {
        match self {
            Payload::Borrowed(small) if small.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..small.len()].copy_from_slice(small);
                Payload::Inline {
                    len: small.len() as u8,
                    bytes,
                }
            }
            Payload::Borrowed(bytes) => {
                Payload::Owned(Arc::new(Pooled::unpooled(bytes.to_vec())), 0)
            }
            Payload::Owned(bytes, start) => Payload::Owned(bytes, start),
            Payload::Inline { len, bytes } => Payload::Inline { len, bytes },
        }
    }
}

/// Answers one remote call, through the connection it came from. One dropped without
/// answering — with a request that never reached a handler, say a large one still encoded
/// in the mailbox of a process that died — answers `NoProc`, so no caller waits for its
/// timeout.
pub(crate) struct Responder {
    peer: Arc<Peer>,
    id: u64,
    /// How long the caller waits for the answer.
    timeout: Duration,
    cluster: Weak<Cluster>,
    answered: bool,
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            answer(&self.peer, self.id, RemoteOutcome::NoProc, |_| Ok(()));
        }
    }
}

impl Responder {
    pub(crate) fn new(peer: Arc<Peer>, id: u64, timeout: Duration, cluster: Weak<Cluster>) -> Self {
        Responder {
            peer,
            id,
            timeout,
            cluster,
            answered: false,
        }
    }

    /// Answers with an outcome other than a reply.
    pub(crate) fn respond(mut self, outcome: RemoteOutcome) {
        self.answered = true;
        answer(&self.peer, self.id, outcome, |_| Ok(()));
    }

    /// Answers with `reply`, encoded by `encode` on this thread — or, a reply that outgrows
    /// [`ENCODE_APART`], on the `blocking` thread pool, its place in the connection's queue
    /// kept meanwhile behind what this process sent before (as a large cast's is): a long
    /// encode does not hold up the other processes of this thread.
    pub(crate) fn reply<R: Send + 'static>(mut self, reply: R, encode: Bounded<R>) {
        self.answered = true;
        let (peer, id) = (&self.peer, self.id);
        let header = WireMessage::Reply {
            id,
            outcome: RemoteOutcome::Reply,
        };
        let mut frame = Scratch::take();
        // A `Serialize` impl that panics fails the encoding: the caller is answered with
        // the failure (as for a reply encoded apart), rather than left to its timeout.
        let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
            wire::encode_frame_with(&header, &mut frame, |out| encode(&reply, out, ENCODE_APART))
        }));
        match encoded.unwrap_or(Err(postcard::Error::SerdeSerCustom)) {
            Ok(()) => send_reply(peer, id, &mut frame),
            Err(postcard::Error::SerializeBufferFull) => {
                drop(frame);
                reply_apart(peer.clone(), header, reply, encode);
            }
            Err(error) => {
                frame.clear();
                if wire::encode_frame(&not_encoded(id, &error), &mut frame).is_ok() {
                    send_answer(peer, &mut frame);
                }
            }
        }
    }

    /// The handler dropped the reply: the server is ending, or chose not to answer. As for
    /// a local caller, the answer is the server's exit reason if it ends while the caller
    /// still waits; if it lives on, the caller is left to its own timeout. What waits here
    /// gives up at the caller's timeout, or as soon as the connection closes (releasing
    /// its socket).
    pub(crate) fn respond_when_exited(mut self, process: Arc<dyn AnyProcess>) {
        self.answered = true;
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        let (peer, id, timeout) = (self.peer.clone(), self.id, self.timeout);
        drop(self);
        cluster.spawn(async move {
            let exited = async { Some(process.core().exited().await) };
            let closed = async {
                peer.closed().await;
                None
            };
            let mut deadline = Deadline::after(timeout);
            if let Some(Some(reason)) = deadline.run(exited.or(closed)).await {
                answer(&peer, id, RemoteOutcome::Exited(reason), |_| Ok(()));
            }
        });
    }
}

/// Sends the answer to call `id` on `peer`: `outcome`, and the payload `payload` appends.
/// An answer given on the process's behalf rather than by its handler (it does not run,
/// it ended, it was stopped, the request did not decode...) goes behind everything
/// queued, as a signal of no process does: it never overtakes that process's last
/// messages (a large one still being encoded or sent), as its `Down` does not.
fn answer(
    peer: &Peer,
    id: u64,
    outcome: RemoteOutcome,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), postcard::Error>,
) {
    let reply = WireMessage::Reply { id, outcome };
    let mut frame = Scratch::take();
    if let Err(error) = wire::encode_frame_with(&reply, &mut frame, payload) {
        frame.clear();
        if wire::encode_frame(&not_encoded(id, &error), &mut frame).is_err() {
            return;
        }
    }
    if run::more_to_handle() || !peer.write_now(&frame) {
        let _ = peer.queue.push_answer(&mut frame);
    }
}

/// The answer to call `id` whose reply did not encode.
fn not_encoded(id: u64, error: &postcard::Error) -> WireMessage {
    WireMessage::Reply {
        id,
        outcome: RemoteOutcome::NotEncoded(error.to_string()),
    }
}

/// Sends an answer's frame: written at once if this is the server's last message for now
/// (a reply among many waits for the writer's next batch, with the others). A reply never
/// waits for room: the reader bounds replies by taking no more calls while too many are
/// queued.
fn send_answer(peer: &Peer, frame: &mut Vec<u8>) {
    if run::more_to_handle() || !peer.write_now(frame) {
        let _ = peer.queue.push_reply(frame, run::current_sender());
    }
}

/// Sends the frame of the reply to call `id` as [`send_answer`] does — or, if it is larger
/// than the caller's node takes, the answer that says so in its place.
fn send_reply(peer: &Peer, id: u64, frame: &mut Vec<u8>) {
    if let Err(PushError::TooLarge { size, limit }) = peer.queue.check_size(frame.len()) {
        frame.clear();
        if wire::encode_frame(&too_large(id, size, limit), frame).is_err() {
            return;
        }
    }
    send_answer(peer, frame);
}

/// The answer to call `id` whose reply, of `size` bytes, is larger than the caller's node
/// takes (`limit`).
fn too_large(id: u64, size: usize, limit: usize) -> WireMessage {
    WireMessage::Reply {
        id,
        outcome: RemoteOutcome::TooLarge {
            size: size as u64,
            limit: limit as u64,
        },
    }
}

/// Encodes a large reply (`header`, then `reply`) on the `blocking` thread pool into a
/// place kept for it in `peer`'s queue; a reply that does not encode, or is larger than
/// the caller's node takes, leaves the failure's answer in its place.
fn reply_apart<R: Send + 'static>(
    peer: Arc<Peer>,
    header: WireMessage,
    reply: R,
    encode: Bounded<R>,
) {
    let Ok(slot) = peer.queue.hold_reply(run::current_sender()) else {
        return; // The connection is closed: the caller hears of that.
    };
    smol::unblock(move || {
        let WireMessage::Reply { id, .. } = header else {
            unreachable!("a reply's header")
        };
        let encoded = match encode_whole_unawaited(&header, &reply, encode, peer.queue.spares()) {
            Ok(frame) => match peer.queue.check_size(frame.len()) {
                Err(PushError::TooLarge { size, limit }) => Err(too_large(id, size, limit)),
                _ => Ok(frame),
            },
            Err(error) => Err(not_encoded(id, &error)),
        };
        let frame = match encoded {
            Ok(frame) => frame,
            Err(failure) => {
                let mut frame = Vec::new();
                if wire::encode_frame(&failure, &mut frame).is_err() {
                    peer.queue.fill(slot, None);
                    return;
                }
                Frame::owned(frame)
            }
        };
        drop(reply);
        peer.queue.fill(slot, Some(frame));
    })
    .detach();
}

/// A call from another node handed to a local process and not yet taken by a handler:
/// counted against its connection (it will add a reply; see `Outbound::holding_back`)
/// until dropped.
pub(crate) struct Owed(Arc<Peer>);

impl Owed {
    fn new(peer: &Arc<Peer>) -> Self {
        peer.queue.owe_reply();
        Owed(peer.clone())
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        self.0.queue.reply_owed_taken();
    }
}

/// What a message from another node asks of a local process.
pub(crate) enum RemoteKind {
    Call(Responder, Owed),
    Cast,
    Info,
}

/// Where a message from another node that its process finds undecodable, decoding it
/// itself (a large one, or one of a long run), is counted: its connection's
/// `messages_undelivered`. Weak: a message waiting in a mailbox does not keep its
/// connection.
pub(crate) struct Undelivered(Weak<Peer>);

impl Undelivered {
    pub(crate) fn new(peer: &Arc<Peer>) -> Self {
        Undelivered(Arc::downgrade(peer))
    }

    /// Counts one message dropped.
    #[cold]
    pub(crate) fn count(&self) {
        if let Some(peer) = self.0.upgrade() {
            Counters::add(&peer.counters.messages_undelivered, 1);
        }
    }
}

/// A message from another node for a local process.
pub(crate) struct RemoteDelivery<'a> {
    /// The connection it came on.
    pub(crate) peer: &'a Arc<Peer>,
    pub(crate) kind: RemoteKind,
    /// The FNV-1a hash of the behaviour name the sender expects.
    pub(crate) behavior: u32,
    pub(crate) payload: Payload<'a>,
    /// The trace context it came with (see `crate::trace`).
    #[cfg(feature = "tracing-context")]
    pub(crate) trace: Option<Box<crate::trace::TraceContext>>,
}

/// A cast or info of a run for one process (see `reader::run`): where its payload lies in
/// the bytes read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunFrame {
    /// An info, not a cast.
    pub(crate) info: bool,
    /// The FNV-1a hash of the behaviour name the sender expects.
    pub(crate) behavior: u32,
    /// The payload's bounds.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Where a connection's reader has a run of messages decoded before they are queued in
/// their process's mailbox together: a queue of the process's own message type, kept
/// from one run to the next (a reader's runs mostly go to processes of one behaviour).
#[derive(Default)]
pub(crate) struct Staging(Option<Box<dyn Any + Send>>);

impl Staging {
    /// The queue for messages of type `M`, empty.
    pub(crate) fn queue<M: Send + 'static>(&mut self) -> &mut VecDeque<M> {
        if !self
            .0
            .as_ref()
            .is_some_and(|queue| queue.is::<VecDeque<M>>())
        {
            self.0 = Some(Box::new(VecDeque::<M>::new()));
        }
        match self
            .0
            .as_mut()
            .and_then(|queue| queue.downcast_mut::<VecDeque<M>>())
        {
            Some(queue) => {
                // (Left with messages only by a decode that panicked.)
                queue.clear();
                queue
            }
            None => unreachable!("a queue of `M` was put there above"),
        }
    }
}

/// Delivers a message that arrived from `peer` to the local process it is for. Returns the
/// scheduler thread that process runs on (0 if none or not known).
#[inline]
pub(crate) fn deliver(
    cluster: &Arc<Cluster>,
    peer: &Arc<Peer>,
    message: WireMessage,
    payload: Payload<'_>,
    resolver: &mut Resolver,
) -> usize {
    #[cfg(feature = "tracing-context")]
    let trace = resolver.trace.take();
    let responder =
        |id, timeout| Responder::new(peer.clone(), id, timeout, Arc::downgrade(cluster));
    let (to, kind, behavior) = match message {
        WireMessage::Call {
            id,
            to,
            behavior,
            timeout_ms,
        } => {
            let responder = responder(id, Duration::from_millis(timeout_ms));
            (to, RemoteKind::Call(responder, Owed::new(peer)), behavior)
        }
        WireMessage::Cast { to, behavior } => (to, RemoteKind::Cast, behavior),
        WireMessage::Info { to, behavior } => (to, RemoteKind::Info, behavior),
        WireMessage::Stop(stop) => {
            let Stop {
                id,
                to,
                reason,
                grace_ms,
            } = *stop;
            // A stop's answer is not kept waiting for (see `respond_when_exited`).
            let responder = responder(id, Duration::ZERO);
            match resolve(cluster, &to) {
                Some(process) => cluster.spawn(async move {
                    let grace = grace_ms.map(Duration::from_millis);
                    let outcome =
                        match crate::node::stop_process(process.core(), reason, grace).await {
                            Ok(reason) => RemoteOutcome::Exited(reason),
                            Err(_) => RemoteOutcome::NoProc,
                        };
                    responder.respond(outcome);
                }),
                None => responder.respond(RemoteOutcome::NoProc),
            }
            return 0;
        }
        _ => return 0,
    };
    match resolver.resolve(cluster, &to) {
        Some(process) => {
            let home = process.core().home();
            let behind = resolver.behind(&process, cluster.config.mailbox_limit, 0);
            let taken = process.deliver_remote(RemoteDelivery {
                peer,
                kind,
                behavior,
                payload,
                #[cfg(feature = "tracing-context")]
                trace,
            });
            if !taken {
                Counters::add(&peer.counters.messages_undelivered, 1);
            }
            if let Some(process) = behind {
                hold_back(cluster, peer, process, cluster.config.mailbox_limit);
            }
            home
        }
        None => {
            match kind {
                RemoteKind::Call(responder, _) => responder.respond(RemoteOutcome::NoProc),
                _ => Counters::add(&peer.counters.messages_undelivered, 1),
            }
            0
        }
    }
}

/// Holds `peer`'s messages back (see `Outbound::holding_back`) until `process`, just handed
/// one, has fewer than `limit` messages waiting or ends: a slow process slows down the nodes
/// that send to it instead of growing its mailbox (see `ClusterConfig::mailbox_limit`).
#[cold]
pub(crate) fn hold_back(
    cluster: &Cluster,
    peer: &Arc<Peer>,
    process: Arc<dyn AnyProcess>,
    limit: usize,
) {
    if !peer.queue.hold_for_backlog() {
        return;
    }
    let peer = peer.clone();
    cluster.spawn(async move {
        let core = process.core();
        let drained = core.drain.until(|| process.mailbox_len() < limit);
        let ended = async {
            core.exited().await;
        };
        drained.or(ended).or(peer.closed()).await;
        peer.queue.backlog_cleared();
    });
}

/// Resolves addresses for one connection's reader, remembering the last process found by
/// pid: a stream of messages to one process looks it up once. (Serials are never reused,
/// so a remembered process is the right one; if it has ended, its closed mailbox refuses
/// the message just as a failed lookup would.)
#[derive(Default)]
pub(crate) struct Resolver {
    /// The serial of the last pid resolved, and its process (weak: the cache does not keep
    /// a process that ended alive).
    last: Option<(u64, Weak<dyn AnyProcess>)>,
    /// How many more messages the last process can be handed before its mailbox may
    /// reach its limit, as far as this connection knows (its own messages are the only
    /// ones it counts): until then, its mailbox need not be looked at.
    room: usize,
    /// The trace context of the message about to be delivered, set by the reader when
    /// the message came in a `Trace` (see `crate::trace`).
    #[cfg(feature = "tracing-context")]
    pub(crate) trace: Option<Box<crate::trace::TraceContext>>,
}

impl Resolver {
    fn resolve(&mut self, cluster: &Cluster, address: &Address) -> Option<Arc<dyn AnyProcess>> {
        match address {
            Address::Pid { serial } => self.resolve_pid(cluster, *serial),
            Address::Name(_) => resolve(cluster, address),
        }
    }

    /// The local process with pid serial `serial`.
    pub(crate) fn resolve_pid(
        &mut self,
        cluster: &Cluster,
        serial: u64,
    ) -> Option<Arc<dyn AnyProcess>> {
        if let Some((last, process)) = &self.last {
            if *last == serial {
                if let Some(process) = process.upgrade() {
                    return Some(process);
                }
            }
        }
        let process = resolve(cluster, &Address::Pid { serial })?;
        self.last = Some((serial, Arc::downgrade(&process)));
        self.room = 0;
        Some(process)
    }

    /// `process`, if the message about to be handed to it takes its mailbox to `limit`
    /// (see `hold_back`), counting `staged` messages of this connection that are about to
    /// be queued there too. The mailbox is looked at (a lock) only once the room known to
    /// be left is used up, so a process far from its limit costs one comparison.
    #[inline]
    pub(crate) fn behind(
        &mut self,
        process: &Arc<dyn AnyProcess>,
        limit: usize,
        staged: usize,
    ) -> Option<Arc<dyn AnyProcess>> {
        let last = match &self.last {
            Some((_, last)) => std::ptr::addr_eq(last.as_ptr(), Arc::as_ptr(process)),
            None => false,
        };
        if last && self.room > 0 {
            self.room -= 1;
            return None;
        }
        let waiting = process.mailbox_len() + staged;
        if last {
            // Each message adds one at most; the process only takes them away.
            self.room = limit.saturating_sub(waiting + 2);
        }
        (waiting + 1 >= limit).then(|| process.clone())
    }
}

/// The local process an address names.
pub(crate) fn resolve(cluster: &Cluster, address: &Address) -> Option<Arc<dyn AnyProcess>> {
    let node = cluster.node()?;
    match address {
        Address::Pid { serial } => node.table.get(*serial),
        Address::Name(name) => {
            let pid = node.registry.whereis(name)?;
            node.resolve(&pid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_payload_is_owned_in_place_and_the_enum_stays_three_words() {
        assert_eq!(std::mem::size_of::<Payload<'_>>(), 24);
        for len in [0, 1, INLINE, INLINE + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let owned = Payload::Borrowed(&bytes).into_owned();
            assert_eq!(owned.bytes(), &bytes[..]);
            assert_eq!(matches!(owned, Payload::Inline { .. }), len <= INLINE);
            assert_eq!(owned.decode(|decoded| decoded.len()), len);
        }
    }
}
