//! Remote calls, casts and sends: routing a message to the node that runs its target.
//!
//! A behaviour usable across nodes has a [`Codec`]: its messages encoded with postcard
//! (`#[behavior]` writes it). A reference to a remote process encodes the message, queues it
//! on the connection to the process's node and, for a call, waits for the `Reply` with the
//! same id. The receiving side is `inbound`.
//!
//! A message whose encoding outgrows [`apart::ENCODE_APART`] is encoded on the `blocking`
//! thread pool instead of the sender's scheduler thread, keeping its place among the
//! sender's messages (see [`apart`]).
//!
//! Flow control: the connection's outbound queue is bounded. A call, and an awaited cast
//! (`cast_wait`), wait in line for room (`Outbound::push_waiting`); a plain cast is refused
//! with `Overloaded` instead (`try_cast` hands the message back), also while others wait in
//! line, so that it never passes them. The receiving node in turn stops reading while a
//! process it delivers to is past its mailbox limit (`inbound::hold_back`), which fills
//! this queue: a slow process slows its remote senders down, with bounded memory on both
//! nodes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use spin::mutex::SpinMutex;

use super::cluster::Cluster;
use super::header::PidHead;
use super::outbound::PushError;
use super::peer::{ConnectionLost, Counters, Peer};
use super::wire::{self, Address, RemoteOutcome, Stop, WireMessage};
use crate::bytes::Lent;
use crate::error::{CallError, CastError, CodecStep, SendError, Target};
use crate::server::deadline::Deadline;
use crate::server::{run, GenServer};
use crate::{ExitReason, Pid};

mod apart;
mod codec;
mod connection;
mod pending;

use super::scratch::{self, Scratch};
use apart::{encode_apart, encode_here, encode_here_after, encode_in_place, Encoded};
pub(crate) use apart::{encode_whole_unawaited, Bounded, ENCODE_APART};
pub(crate) use codec::HandleCast;
pub use codec::{codec, tagged_codec, Codec};
pub(crate) use connection::{forget_closed, keep_on_this_thread};
use pending::PendingCall;

/// The spare buffers of `peer`'s node (see `spares`).
fn spares(peer: &Peer) -> Arc<super::spares::Spares> {
    peer.queue.spares().clone()
}

/// A process of another node — by pid or by registered name — with its behaviour's codec.
pub(crate) struct RemoteTarget<B: GenServer> {
    node: Arc<str>,
    address: Address,
    /// For a pid: the incarnation of its node, which the connection must be to.
    incarnation: Option<u64>,
    cluster: Weak<Cluster>,
    codec: Codec<B>,
    /// For a pid: its casts' and infos' header, encoded once.
    pid_head: Option<PidHead>,
    /// The connection last used (weak: a reference does not keep a closed socket open).
    connection: SpinMutex<Weak<Peer>>,
}

impl<B: GenServer> RemoteTarget<B> {
    /// The node it is on, `name@host:port`.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn by_pid(pid: &Pid, cluster: Weak<Cluster>, codec: Codec<B>) -> Self {
        RemoteTarget {
            node: pid.node_arc(),
            address: Address::Pid {
                serial: pid.serial(),
            },
            incarnation: Some(pid.incarnation()),
            cluster,
            pid_head: Some(PidHead::new(pid.serial(), codec.hash)),
            codec,
            connection: SpinMutex::new(Weak::new()),
        }
    }

    pub(crate) fn by_name(
        node: Arc<str>,
        name: &str,
        cluster: Weak<Cluster>,
        codec: Codec<B>,
    ) -> Self {
        RemoteTarget {
            node,
            address: Address::Name(name.to_owned()),
            incarnation: None,
            cluster,
            codec,
            pid_head: None,
            connection: SpinMutex::new(Weak::new()),
        }
    }

    /// Runs `send` with the connection to the target's node (see `connection`), or why
    /// there is none to send on.
    #[inline]
    fn with_peer<R>(&self, send: impl FnOnce(Result<&Arc<Peer>, Missing>) -> R) -> R {
        connection::with_peer(
            &self.cluster,
            &self.node,
            || self.find_peer(),
            |peer| {
                send(match (peer, self.incarnation) {
                    (None, _) => Err(Missing::Connection),
                    (Some(peer), Some(incarnation)) if incarnation != peer.incarnation => {
                        Err(Missing::Incarnation)
                    }
                    (Some(peer), _) => Ok(peer),
                })
            },
        )
    }

    /// The connection to the target's node (see [`with_peer`](Self::with_peer)); `NoProc`
    /// if the target belongs to an earlier incarnation of that node.
    fn peer(&self) -> Result<Arc<Peer>, Unreachable> {
        self.with_peer(|peer| peer.cloned())
            .map_err(|missing| self.unreachable(missing))
    }

    /// The connection to the target's node, found through this reference's own cache.
    fn find_peer(&self) -> Option<Arc<Peer>> {
        // The lock is held for an upgrade (a spin lock: released with a plain store; only
        // senders sharing this reference ever wait for it).
        let cached = self.connection.lock().upgrade();
        match cached {
            Some(peer) if !peer.is_closed() => Some(peer),
            _ => {
                let peer = self.cluster.upgrade()?.peer(&self.node)?;
                *self.connection.lock() = Arc::downgrade(&peer);
                Some(peer)
            }
        }
    }

    #[cold]
    fn unreachable(&self, missing: Missing) -> Unreachable {
        match missing {
            Missing::Connection => self.no_connection(),
            Missing::Incarnation => {
                let earlier = self.incarnation.is_some_and(|incarnation| {
                    let cluster = self.cluster.upgrade();
                    cluster.is_some_and(|c| c.incarnation_ended(&self.node, incarnation))
                });
                match earlier {
                    true => Unreachable::NoProc(self.target()),
                    false => self.no_connection(),
                }
            }
        }
    }

    /// The process the target names, for errors.
    fn target(&self) -> Target {
        match &self.address {
            Address::Pid { serial } => Target::Pid(Pid::new(
                self.node.clone(),
                self.incarnation.unwrap_or_default(),
                *serial,
            )),
            Address::Name(name) => Target::Name {
                name: name.clone(),
                node: Some(self.node.to_string()),
            },
        }
    }

    #[cold]
    fn no_connection(&self) -> Unreachable {
        Unreachable::NoConnection(self.node.to_string())
    }

    /// `true` while the target's node is connected (with the target's incarnation).
    pub(crate) fn is_reachable(&self) -> bool {
        self.peer().is_ok()
    }

    fn next_id(&self) -> Result<u64, Unreachable> {
        let cluster = self.cluster.upgrade().ok_or_else(|| self.no_connection())?;
        Ok(cluster.next_id())
    }

    pub(crate) async fn call(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> Result<B::Reply, CallError> {
        let peer = self.peer()?;
        let id = self.next_id()?;
        let message = WireMessage::Call {
            id,
            to: self.address.clone(),
            behavior: self.codec.hash,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        #[cfg(feature = "tracing-context")]
        let message = crate::trace::wrap(message);
        let not_encoded = |error: postcard::Error| CallError::Codec {
            step: CodecStep::EncodeRequest,
            error: error.to_string(),
        };
        // The scratch buffer stays out while the call waits for room: a cast or call
        // meanwhile on this thread takes an empty one.
        let mut frame = Scratch::take();
        let mut lent = Lent::new();
        let encode = self.codec.encode_call;
        let mut deadline = Deadline::after(timeout);
        if let Encoded::Apart =
            encode_here(&message, &request, encode, &mut frame).map_err(not_encoded)?
        {
            // The caller waits for its frame: nothing it sends can pass this request. The
            // timeout runs meanwhile (a long encoding is given up, and never sent).
            let encoding = encode_apart(message, request, encode, spares(&peer));
            let Some((whole, _)) = deadline.run(encoding).await else {
                Counters::add(&peer.counters.calls_timed_out, 1);
                return Err(CallError::Timeout { timeout });
            };
            let whole = whole.map_err(not_encoded)?;
            (*frame, lent) = (whole.own, whole.lent);
        }
        let (pending, mut reply) = PendingCall::expect(&peer, id);
        let sent = deadline
            .run(peer.send(&mut frame, lent, run::current_sender()))
            .await;
        drop(frame);
        match sent {
            None => return Err(pending.timed_out(timeout)),
            Some(Err(PushError::TooLarge { size, limit })) => {
                return Err(CallError::TooLarge { size, limit })
            }
            Some(Err(_)) => return Err(self.no_connection().into()),
            Some(Ok(())) => {}
        }
        let (outcome, payload) = match deadline.run(&mut reply).await {
            None => return Err(pending.timed_out(timeout)),
            Some(answered) => {
                pending.settled();
                reply.recycle();
                match answered {
                    Some(Ok(outcome)) => outcome,
                    Some(Err(ConnectionLost)) | None => return Err(self.no_connection().into()),
                }
            }
        };
        match outcome {
            RemoteOutcome::Reply => {
                (self.codec.decode_reply)(payload.bytes()).map_err(|error| CallError::Codec {
                    step: CodecStep::DecodeReply,
                    error: error.to_string(),
                })
            }
            RemoteOutcome::NoProc => Err(CallError::NoProc {
                target: self.target(),
            }),
            RemoteOutcome::Exited(reason) => Err(CallError::Exited(reason)),
            RemoteOutcome::NoReply => Err(CallError::NoReply),
            RemoteOutcome::WrongBehavior { found } => Err(CallError::WrongBehavior {
                name: self.describe(),
                expected: self.codec.name.to_owned(),
                found,
            }),
            RemoteOutcome::NotDecoded(error) => Err(CallError::Codec {
                step: CodecStep::DecodeRequest,
                error,
            }),
            RemoteOutcome::NotEncoded(error) => Err(CallError::Codec {
                step: CodecStep::EncodeReply,
                error,
            }),
            RemoteOutcome::LocalOnly(behavior) => Err(CallError::LocalOnly { behavior }),
            RemoteOutcome::TooLarge { size, limit } => Err(CallError::ReplyTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            }),
        }
    }

    /// Queues a cast (or, with `info`, an info) if there is room: its header, then `message`
    /// encoded by `encode`; hands the message back if it is not queued. A message that outgrows
    /// [`apart::ENCODE_APART`] has its place in the queue kept while the
    /// `blocking` thread pool encodes it (see `outbound::apart`), and is counted as dropped
    /// should it fail to encode there.
    fn one_way<T: Send + 'static>(
        &self,
        info: bool,
        message: T,
        encode: Bounded<T>,
    ) -> Result<(), CastError<T>> {
        let traced = self.traced_header(info);
        let sender = run::current_sender();
        // Only a small status comes back through `with_peer` and `scratch::with` — a slot
        // of the large lane if the message is to be encoded apart (the connection is left
        // in `apart`) — and the message is neither moved nor copied until then: a larger
        // value written in pieces by the closures and read back whole, or a copy of the
        // message just written by the caller, stalled the sender on store forwarding
        // (some 10 % of a small cast's time each, perf).
        let mut apart = None;
        let queued = self.with_peer(|peer| {
            let peer = peer.map_err(Refused::Missing)?;
            let held = scratch::with(|frame| {
                let encoded = match (&traced, &self.pid_head) {
                    (None, Some(head)) => {
                        encode_here_after(|out| head.append(info, out), &message, encode, frame)
                    }
                    (Some(header), _) => encode_here(header, &message, encode, frame),
                    (None, None) => {
                        encode_here(&self.one_way_header(info), &message, encode, frame)
                    }
                };
                match encoded {
                    // A message that does not encode cannot be delivered.
                    Err(error) => Err(Refused::Encode(error)),
                    Ok(Encoded::Here) => peer
                        .queue
                        .try_push(frame, sender)
                        .map(|()| None)
                        .map_err(Refused::Push),
                    Ok(Encoded::Apart) => peer.queue.hold(sender).map(Some).map_err(Refused::Push),
                }
            });
            match held {
                Ok(slot) => {
                    if slot.is_some() {
                        apart = Some(peer.clone());
                    }
                    Ok(slot)
                }
                Err(refused) => {
                    if matches!(refused, Refused::Push(_)) {
                        Counters::add(&peer.counters.casts_dropped, 1);
                    }
                    Err(refused)
                }
            }
        });
        match queued {
            Ok(None) => Ok(()),
            Ok(Some(slot)) => {
                let Some(peer) = apart else {
                    unreachable!("the connection is kept with the slot")
                };
                let header = traced.unwrap_or_else(|| self.one_way_header(info));
                encode_in_place(peer, slot, header, message, encode);
                Ok(())
            }
            Err(refused) => Err(CastError::new(self.refused(refused), message)),
        }
    }

    /// The header of a cast (or, with `info`, of an info) to the target in a `Trace`, if
    /// it is sent with a trace context (see `crate::trace::wrap`).
    fn traced_header(&self, info: bool) -> Option<WireMessage> {
        #[cfg(feature = "tracing-context")]
        if let traced @ WireMessage::Trace(_) = crate::trace::wrap(self.one_way_header(info)) {
            return Some(traced);
        }
        let _ = info;
        None
    }

    /// The header of a cast (or, with `info`, of an info) to the target.
    fn one_way_header(&self, info: bool) -> WireMessage {
        let (to, behavior) = (self.address.clone(), self.codec.hash);
        if info {
            WireMessage::Info { to, behavior }
        } else {
            WireMessage::Cast { to, behavior }
        }
    }

    /// The error of a message not queued.
    #[cold]
    fn refused(&self, refused: Refused) -> SendError {
        match refused {
            Refused::Missing(missing) => self.unreachable(missing).into(),
            Refused::Push(PushError::Full) => SendError::Overloaded,
            Refused::Push(PushError::Closed) => self.no_connection().into(),
            Refused::Push(PushError::TooLarge { size, limit }) => {
                SendError::TooLarge { size, limit }
            }
            Refused::Encode(error) => SendError::Codec {
                error: error.to_string(),
            },
        }
    }

    #[inline]
    pub(crate) fn cast(&self, message: B::Cast) -> Result<(), SendError> {
        self.try_cast(message).map_err(|error| error.into_parts().0)
    }

    /// [`cast`](Self::cast), handing the message back if it is not queued.
    #[inline]
    pub(crate) fn try_cast(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        self.one_way(false, message, self.codec.encode_cast)
    }

    /// Queues a cast, waiting in line for room if the connection's queue is full (see
    /// `outbound::line`); hands the message back if the connection is lost first.
    pub(crate) async fn cast_wait(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        let peer = match self.peer() {
            Ok(peer) => peer,
            Err(error) => return Err(CastError::new(error.into(), message)),
        };
        let sender = run::current_sender();
        // The scratch buffer stays out while waiting: a cast meanwhile on this thread
        // takes an empty one.
        let mut frame = Scratch::take();
        let (header, encode) = (self.one_way_header(false), self.codec.encode_cast);
        #[cfg(feature = "tracing-context")]
        let header = crate::trace::wrap(header);
        let (queued, message) = match encode_here(&header, &message, encode, &mut frame) {
            Err(error) => {
                return Err(CastError::new(
                    self.refused(Refused::Encode(error)),
                    message,
                ))
            }
            Ok(Encoded::Here) => (peer.queue.push_waiting(&mut frame, sender).await, message),
            // The sender waits for its frame: nothing it sends can pass this cast.
            Ok(Encoded::Apart) => {
                match encode_apart(header, message, encode, spares(&peer)).await {
                    (Err(error), message) => {
                        return Err(CastError::new(
                            self.refused(Refused::Encode(error)),
                            message,
                        ))
                    }
                    (Ok(whole), message) => {
                        let (mut own, lent) = (whole.own, whole.lent);
                        let queued = peer.queue.push_waiting_lent(&mut own, lent, sender).await;
                        (queued, message)
                    }
                }
            }
        };
        drop(frame);
        queued.map_err(|error| {
            Counters::add(&peer.counters.casts_dropped, 1);
            CastError::new(self.refused(Refused::Push(error)), message)
        })
    }

    pub(crate) fn send(&self, message: B::Info) -> Result<(), SendError> {
        self.one_way(true, message, self.codec.encode_info)
            .map_err(|error| error.into_parts().0)
    }

    /// Asks the target's node to stop it; resolves with the reason it ended with.
    pub(crate) async fn stop(
        &self,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        let peer = self.peer()?;
        let id = self.next_id()?;
        stop_at(
            &peer,
            id,
            self.address.clone(),
            self.target(),
            reason,
            grace,
        )
        .await
    }

    /// Waits until `pid`, the target, has ended (see `Cluster::watch`).
    pub(crate) async fn exited(&self, pid: &Pid) -> ExitReason {
        match self.cluster.upgrade() {
            Some(cluster) => cluster.watch(pid).await,
            None => ExitReason::NoConnection,
        }
    }

    fn describe(&self) -> String {
        match &self.address {
            Address::Pid { serial } => format!("<{}.{}>", self.node, serial),
            Address::Name(name) => format!("{name} on {}", self.node),
        }
    }
}

/// Stops `pid`, a process of another node, gracefully (see `Node::stop`).
pub(crate) async fn stop(
    cluster: &Cluster,
    pid: &Pid,
    reason: ExitReason,
    grace: Option<Duration>,
) -> Result<ExitReason, SendError> {
    let no_connection = || SendError::NoConnection {
        node: pid.node().to_owned(),
    };
    let peer = cluster.peer(pid.node()).ok_or_else(no_connection)?;
    if peer.incarnation != pid.incarnation() {
        return Err(match cluster.other_incarnation(pid) {
            ExitReason::NoProc => SendError::NoProc {
                target: Target::Pid(pid.clone()),
            },
            _ => no_connection(),
        });
    }
    let to = Address::Pid {
        serial: pid.serial(),
    };
    let target = Target::Pid(pid.clone());
    stop_at(&peer, cluster.next_id(), to, target, reason, grace).await
}

/// Asks `peer`'s node to stop the process at `to`; resolves with the reason it ended with.
async fn stop_at(
    peer: &Peer,
    id: u64,
    to: Address,
    target: Target,
    reason: ExitReason,
    grace: Option<Duration>,
) -> Result<ExitReason, SendError> {
    let no_connection = || SendError::NoConnection {
        node: peer.id.to_string(),
    };
    let message = WireMessage::Stop(Box::new(Stop {
        id,
        to,
        reason,
        grace_ms: grace.map(|g| u64::try_from(g.as_millis()).unwrap_or(u64::MAX)),
    }));
    let mut frame = Vec::new();
    wire::encode_frame(&message, &mut frame).map_err(|_| no_connection())?;
    let (pending, reply) = PendingCall::expect(peer, id);
    // Queued like a signal, whatever the queue holds (it is a few bytes, as a kill is):
    // a stop never waits for room, so its grace period bounds it as it does locally.
    peer.queue
        .push_signal(&mut frame, run::current_sender())
        .map_err(|_| no_connection())?;
    let answered = reply.await;
    pending.settled();
    match answered {
        Some(Ok((RemoteOutcome::Exited(reason), _))) => Ok(reason),
        Some(Ok((RemoteOutcome::NoProc, _))) => Err(SendError::NoProc { target }),
        Some(Ok(_)) | Some(Err(ConnectionLost)) | None => Err(no_connection()),
    }
}

/// Why there is no connection to send to a remote target on (see `Unreachable`).
#[derive(Clone, Copy)]
enum Missing {
    /// Its node is not connected.
    Connection,
    /// It belongs to another incarnation of its node than the one connected (an earlier
    /// one, or perhaps a later one: see `Cluster::other_incarnation`).
    Incarnation,
}

/// Why a message was not queued.
enum Refused {
    Missing(Missing),
    Push(PushError),
    /// The message did not encode.
    Encode(postcard::Error),
}

/// Why a remote target cannot be reached.
enum Unreachable {
    /// Its node (named) is not connected.
    NoConnection(String),
    /// It belongs to an earlier incarnation of its node.
    NoProc(Target),
}

impl From<Unreachable> for CallError {
    fn from(error: Unreachable) -> Self {
        match error {
            Unreachable::NoConnection(node) => CallError::NoConnection { node },
            Unreachable::NoProc(target) => CallError::NoProc { target },
        }
    }
}

impl From<Unreachable> for SendError {
    fn from(error: Unreachable) -> Self {
        match error {
            Unreachable::NoConnection(node) => SendError::NoConnection { node },
            Unreachable::NoProc(target) => SendError::NoProc { target },
        }
    }
}
