//! The typed half of a process: its mailbox of calls, casts and infos.

use std::any::Any;
use std::sync::Arc;

use super::reply::{Failure, Forward, Outcome, ReplyTo};
use super::{GenServer, Info};
use crate::dist::inbound::{
    Owed, Payload, RemoteDelivery, RemoteKind, Responder, RunFrame, Staging, Undelivered,
};
use crate::dist::peer::Peer;
use crate::dist::remote::{Bounded, Codec, HandleCast};
use crate::dist::wire::RemoteOutcome;
use crate::process::mailbox::Mailbox;
use crate::process::{AnyProcess, Core, Identity, SystemInfo};

/// Remote messages at least this large are decoded off the scheduler threads.
const DECODE_APART: usize = 1 << 20;

/// One message in a server's mailbox.
pub(crate) enum Envelope<B: GenServer> {
    Call(B::Call, ReplyTo<B::Reply>),
    Cast(B::Cast),
    Info(Info<B::Info>),
    /// A large message from another node, still encoded (see [`Encoded`]).
    Encoded(Box<Encoded<B>>),
    /// A run of casts and infos from another node, still encoded (see [`Frames`]).
    Frames(Box<Frames<B>>),
    /// A message from another node that came with a trace context (the
    /// `tracing-context` feature): handled in a span that continues the trace.
    #[cfg(feature = "tracing-context")]
    Traced(Box<Traced<B>>),
}

/// A message from another node and the trace context it came with.
#[cfg(feature = "tracing-context")]
pub(crate) struct Traced<B: GenServer> {
    context: crate::trace::TraceContext,
    envelope: Envelope<B>,
}

#[cfg(feature = "tracing-context")]
impl<B: GenServer> Envelope<B> {
    /// `envelope` with the trace context it came with, if any.
    fn traced(envelope: Envelope<B>, context: Option<Box<crate::trace::TraceContext>>) -> Self {
        match context {
            Some(context) => Envelope::Traced(Box::new(Traced {
                context: *context,
                envelope,
            })),
            None => envelope,
        }
    }

    /// The message without its trace context, and the handling of the trace: the span its
    /// handler runs in.
    pub(crate) fn untraced(self) -> (Envelope<B>, Option<crate::trace::Handling>) {
        let Envelope::Traced(traced) = self else {
            return (self, None);
        };
        let Traced { context, envelope } = *traced;
        let kind = match envelope {
            Envelope::Call(..) => "call",
            Envelope::Cast(_) => "cast",
            _ => "info",
        };
        (envelope, Some(crate::trace::Handling::new(context, kind)))
    }
}

/// A large message from another node, queued as it arrived: the process decodes it when
/// it reaches it, on a blocking-pool thread, so a long decode neither holds up the
/// connection it came on nor the other processes of the thread — and it keeps its place
/// in the mailbox.
pub(crate) struct Encoded<B: GenServer> {
    process: Arc<Process<B>>,
    codec: Codec<B>,
    kind: RemoteKind,
    payload: Payload<'static>,
    /// Where it is counted if it is a cast or an info that does not decode.
    undelivered: Undelivered,
    #[cfg(feature = "tracing-context")]
    trace: Option<Box<crate::trace::TraceContext>>,
}

impl<B: GenServer> Encoded<B> {
    /// The message decoded, or `None` if it did not decode (a call is then answered).
    pub(crate) async fn decode(self) -> Option<Envelope<B>> {
        let Encoded {
            process,
            codec,
            kind,
            payload,
            undelivered,
            #[cfg(feature = "tracing-context")]
            trace,
        } = self;
        let one_way = !matches!(kind, RemoteKind::Call(..));
        let envelope = smol::unblock(move || {
            payload.decode(|bytes| remote_envelope(&process, codec, kind, bytes))
        })
        .await;
        if envelope.is_none() && one_way {
            undelivered.count();
        }
        #[cfg(feature = "tracing-context")]
        let envelope = envelope.map(|envelope| Envelope::traced(envelope, trace));
        envelope
    }
}

/// Decodes a message from another node into an envelope for `process`; `None` if it does
/// not decode (a call is then answered with the error).
#[inline]
fn remote_envelope<B: GenServer>(
    process: &Arc<Process<B>>,
    codec: Codec<B>,
    kind: RemoteKind,
    payload: &[u8],
) -> Option<Envelope<B>> {
    match kind {
        RemoteKind::Call(responder, owed) => {
            let request = match decode_remote(codec.decode_call, payload) {
                Ok(request) => request,
                Err(error) => {
                    responder.respond(RemoteOutcome::NotDecoded(error));
                    return None;
                }
            };
            let reply = ReplyTo::forward(RemoteReply {
                responder,
                encode: codec.encode_reply,
                process: process.clone(),
                owed: Some(owed),
            });
            Some(Envelope::Call(request, reply))
        }
        RemoteKind::Cast => one_way_envelope(codec, false, payload),
        RemoteKind::Info => one_way_envelope(codec, true, payload),
    }
}

/// Decodes a payload from another node with `decode`. A `Deserialize` impl that panics on
/// it (an assertion on what it reads, say) makes a message that does not decode, like one
/// that errors: bad input from the network never unwinds through the connection's reader
/// (which stopped, leaving the connection unread until it was found silent).
#[inline]
fn decode_remote<T>(
    decode: fn(&[u8]) -> Result<T, postcard::Error>,
    payload: &[u8],
) -> Result<T, String> {
    match std::panic::catch_unwind(|| decode(payload)) {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("its decoding panicked".to_owned()),
    }
}

/// Decodes a cast (or, with `info`, an info) from another node; `None` (logged) if it does
/// not decode.
#[inline]
fn one_way_envelope<B: GenServer>(
    codec: Codec<B>,
    info: bool,
    payload: &[u8],
) -> Option<Envelope<B>> {
    if info {
        match decode_remote(codec.decode_info, payload) {
            Ok(message) => Some(Envelope::Info(Info::Message(message))),
            Err(error) => {
                tracing::warn!(%error, "dropped an undecodable remote message");
                None
            }
        }
    } else {
        match decode_remote(codec.decode_cast, payload) {
            Ok(message) => Some(Envelope::Cast(message)),
            Err(error) => {
                tracing::warn!(%error, "dropped an undecodable remote cast");
                None
            }
        }
    }
}

/// Runs of at least this many casts and infos from another node are queued encoded, as one
/// [`Frames`]; shorter ones are decoded as they are queued.
const DECODE_LATE: usize = 8;

/// A run of casts and infos from another node, queued encoded: the process decodes each
/// just before handling it. Decoding a long run up front would allocate all its messages'
/// buffers, then free them all as they are handled — more than a thread's allocator cache
/// holds (glibc's keeps 7 blocks of a size), so each allocation and free would take the
/// allocator's slower, atomic path; decoded one by one, each message's buffers are freed
/// before the next one's are made. One allocation holds the whole run's bytes, copied at
/// once.
pub(crate) struct Frames<B: GenServer> {
    codec: Codec<B>,
    /// The run's frames, as they lay in the read buffer (copied at once).
    bytes: Vec<u8>,
    /// Where each payload lies in `bytes`, and whether it is an info.
    payloads: Vec<(u32, u32, bool)>,
    /// The next message's index in `payloads`.
    next: usize,
    /// Where those that do not decode are counted.
    undelivered: Undelivered,
}

impl<B: GenServer> Frames<B> {
    /// The next message, decoded (`Some(None)`: it does not decode, and is dropped);
    /// `None` once all are taken.
    pub(crate) fn next(&mut self) -> Option<Option<Envelope<B>>> {
        let &(start, end, info) = self.payloads.get(self.next)?;
        self.next += 1;
        let envelope =
            one_way_envelope(self.codec, info, &self.bytes[start as usize..end as usize]);
        if envelope.is_none() {
            self.undelivered.count();
        }
        Some(envelope)
    }

    /// The cast [`next_cast`](Self::next_cast) gave did not decode: it is dropped (and
    /// counted).
    #[cold]
    pub(crate) fn undecoded(&self) {
        self.undelivered.count();
    }

    /// The next message if it is a cast: its payload, with the function that decodes and
    /// handles it; `None` if it is an info, or once all are taken.
    #[inline]
    pub(crate) fn next_cast(&mut self) -> Option<(HandleCast<B>, &[u8])> {
        let &(start, end, info) = self.payloads.get(self.next)?;
        if info {
            return None;
        }
        self.next += 1;
        Some((
            self.codec.handle_cast,
            &self.bytes[start as usize..end as usize],
        ))
    }

    /// `true` once every message has been taken.
    pub(crate) fn is_done(&self) -> bool {
        self.next == self.payloads.len()
    }
}

/// Where the outcome of a call from another node goes: encoded, back over the connection
/// it came on.
struct RemoteReply<B: GenServer> {
    responder: Responder,
    encode: Bounded<B::Reply>,
    process: Arc<Process<B>>,
    /// Counts the call against its connection until a handler takes it.
    owed: Option<Owed>,
}

impl<B: GenServer> Forward<B::Reply> for RemoteReply<B> {
    fn deliver(self: Box<Self>, outcome: Outcome<B::Reply>) {
        let RemoteReply {
            responder,
            encode,
            process,
            ..
        } = *self;
        match outcome {
            Ok(reply) => responder.reply(reply, encode),
            Err(Failure::Unhandled) => responder.respond(RemoteOutcome::NoProc),
            Err(Failure::Abandoned) => responder.respond_when_exited(process),
            Err(Failure::Discarded) => responder.respond(RemoteOutcome::NoReply),
        }
    }

    fn taken(&mut self) {
        self.owed = None;
    }
}

/// A process running behaviour `B`: its shared core plus its typed mailbox.
pub(crate) struct Process<B: GenServer> {
    pub(crate) core: Core,
    pub(crate) mailbox: Mailbox<Envelope<B>>,
}

impl<B: GenServer> Process<B> {
    pub(crate) fn new(id: Identity) -> Self {
        Process {
            core: Core::new(id),
            mailbox: Mailbox::new(),
        }
    }

    /// Queues a message and wakes the process, or hands the message back if it has ended.
    pub(crate) fn deliver(&self, envelope: Envelope<B>) -> Result<(), Envelope<B>> {
        if self.mailbox.push(envelope)? {
            self.core.waker.wake();
        }
        Ok(())
    }

    /// Logs `count` one-way messages from another node that this process cannot take
    /// (counted by the connection: `TrafficStats::messages_undelivered`); `false`.
    #[cold]
    fn refused(&self, why: &'static str, count: usize) -> bool {
        let pid = self.core.pid();
        tracing::warn!(%pid, count, "{why}");
        false
    }
}

impl<B: GenServer> AnyProcess for Process<B> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn behavior(&self) -> &'static str {
        std::any::type_name::<B>()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn mailbox_len(&self) -> usize {
        // Queued, plus taken but not yet handled: every message taken is counted once
        // handled (one decoded apart, when its decoding ends). The handled count is read
        // after the other two, so that the length is never under-reported.
        let (queued, taken) = self.mailbox.queued_and_taken();
        let in_hand = taken.saturating_sub(self.core.message_count());
        queued + in_hand as usize
    }

    fn deliver_system(&self, info: SystemInfo) -> bool {
        let info = match info {
            SystemInfo::Exit { from, reason } => Info::Exit { from, reason },
            SystemInfo::Down {
                monitor,
                pid,
                reason,
            } => Info::Down {
                monitor,
                pid,
                reason,
            },
            SystemInfo::NodeDown { node } => Info::NodeDown { node },
        };
        self.deliver(Envelope::Info(info)).is_ok()
    }

    fn behavior_tag(&self) -> (&'static str, u32) {
        match B::__remote_codec() {
            Some(codec) => (codec.name, codec.hash),
            None => (std::any::type_name::<B>(), 0),
        }
    }

    fn deliver_remote(self: Arc<Self>, delivery: RemoteDelivery<'_>) -> bool {
        let RemoteDelivery {
            peer,
            kind,
            behavior,
            payload,
            #[cfg(feature = "tracing-context")]
            trace,
        } = delivery;
        let Some(codec) = B::__remote_codec() else {
            return match kind {
                RemoteKind::Call(responder, _) => {
                    let behavior = std::any::type_name::<B>().to_owned();
                    responder.respond(RemoteOutcome::LocalOnly(behavior));
                    true
                }
                _ => self.refused("dropped a remote message for a local-only behaviour", 1),
            };
        };
        if behavior != codec.hash {
            return match kind {
                RemoteKind::Call(responder, _) => {
                    let found = codec.name.to_owned();
                    responder.respond(RemoteOutcome::WrongBehavior { found });
                    true
                }
                _ => self.refused("dropped a remote message meant for another behaviour", 1),
            };
        }
        let one_way = !matches!(kind, RemoteKind::Call(..));
        let envelope = match payload {
            Payload::Owned(..) if payload.bytes().len() >= DECODE_APART => {
                Envelope::Encoded(Box::new(Encoded {
                    process: self.clone(),
                    codec,
                    kind,
                    payload: payload.into_owned(),
                    undelivered: Undelivered::new(peer),
                    #[cfg(feature = "tracing-context")]
                    trace,
                }))
            }
            payload => match remote_envelope(&self, codec, kind, payload.bytes()) {
                #[cfg(feature = "tracing-context")]
                Some(envelope) => Envelope::traced(envelope, trace),
                #[cfg(not(feature = "tracing-context"))]
                Some(envelope) => envelope,
                // A call is answered with the error.
                None => return !one_way,
            },
        };
        // A closed mailbox drops the envelope: a call's ReplyTo then answers NoProc.
        self.deliver(envelope).is_ok() || !one_way
    }

    fn deliver_run(
        &self,
        bytes: &[u8],
        run: &[RunFrame],
        staging: &mut Staging,
        peer: &Arc<Peer>,
    ) -> u32 {
        let Some(codec) = B::__remote_codec() else {
            self.refused(
                "dropped remote messages for a local-only behaviour",
                run.len(),
            );
            return run.len() as u32;
        };
        if let (true, Some(first), Some(last)) = (run.len() >= DECODE_LATE, run.first(), run.last())
        {
            // Frames lie one after the other: the run is copied at once, with the headers
            // between its payloads.
            let base = first.start;
            let mut frames = Frames {
                codec,
                bytes: bytes[base..last.end].to_vec(),
                payloads: Vec::with_capacity(run.len()),
                next: 0,
                undelivered: Undelivered::new(peer),
            };
            for frame in run {
                if frame.behavior != codec.hash {
                    self.refused("dropped a remote message meant for another behaviour", 1);
                    continue;
                }
                let (start, end) = (frame.start - base, frame.end - base);
                frames.payloads.push((start as u32, end as u32, frame.info));
            }
            let count = frames.payloads.len();
            // Those of another behaviour, and — if the process has ended — all.
            let refused = (run.len() - count) as u32;
            if count == 0 {
                return refused;
            }
            return match self
                .mailbox
                .push_several(Envelope::Frames(Box::new(frames)), count)
            {
                Ok(wake) => {
                    if wake {
                        self.core.waker.wake();
                    }
                    refused
                }
                Err(_) => run.len() as u32,
            };
        }
        let staged = staging.queue::<Envelope<B>>();
        for frame in run {
            let payload = &bytes[frame.start..frame.end];
            if frame.behavior != codec.hash {
                self.refused("dropped a remote message meant for another behaviour", 1);
                continue;
            }
            if let Some(envelope) = one_way_envelope(codec, frame.info, payload) {
                staged.push_back(envelope);
            }
        }
        let refused = (run.len() - staged.len()) as u32;
        if staged.is_empty() {
            return refused;
        }
        match self.mailbox.push_all(staged) {
            Ok(wake) => {
                if wake {
                    self.core.waker.wake();
                }
                refused
            }
            Err(_) => run.len() as u32,
        }
    }

    fn close_mailbox(&self) {
        // Dropping queued calls closes their reply slots: those callers see `NoProc`.
        drop(self.mailbox.close());
    }
}
