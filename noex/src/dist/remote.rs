//! Remote calls, casts and sends: routing a message to the node that runs its target, and
//! delivering messages from other nodes to local processes.
//!
//! A behaviour usable across nodes has a [`Codec`]: its messages encoded with postcard
//! (`#[behavior]` writes it). A reference to a remote process encodes the message, queues it
//! on the connection to the process's node and, for a call, waits for the `Reply` with the
//! same id. The receiving node decodes the message with the target process's own codec —
//! the frame names the behaviour it expects, so a message for another behaviour is refused
//! rather than misread — and queues it in the process's mailbox like a local message. The
//! reply to a remote call travels back through a `ReplyTo` that encodes it.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cluster::Cluster;
use super::config::ClusterEvent;
use super::outbound::PushError;
use super::peer::{ConnectionLost, Counters, Peer};
use super::wire::{self, Address, RemoteOutcome, Stop, WireMessage};
use crate::behavior::BehaviorName;
use crate::error::{CallError, SendError};
use crate::process::AnyProcess;
use crate::server::deadline::Deadline;
use crate::server::{run, GenServer};
use crate::{ExitReason, Pid};

/// How the messages of behaviour `B` are encoded on the wire. Built by
/// `RemoteBehavior::codec` (which `#[behavior]` writes).
#[doc(hidden)]
pub struct Codec<B: GenServer> {
    pub(crate) name: &'static str,
    pub(crate) hash: u32,
    encode_call: Encode<B::Call>,
    pub(crate) decode_call: Decode<B::Call>,
    pub(crate) encode_reply: Encode<B::Reply>,
    decode_reply: Decode<B::Reply>,
    encode_cast: Encode<B::Cast>,
    pub(crate) decode_cast: Decode<B::Cast>,
    encode_info: Encode<B::Info>,
    pub(crate) decode_info: Decode<B::Info>,
}

/// Appends a value, encoded, to a buffer.
type Encode<T> = fn(&T, &mut Vec<u8>) -> Result<(), postcard::Error>;

/// Decodes a value from bytes.
type Decode<T> = fn(&[u8]) -> Result<T, postcard::Error>;

impl<B: GenServer> Clone for Codec<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: GenServer> Copy for Codec<B> {}

fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    wire::append(value, out)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The codec of a behaviour whose messages are serde types.
#[doc(hidden)]
pub fn codec<B>() -> Codec<B>
where
    B: GenServer + BehaviorName,
    B::Call: Serialize + DeserializeOwned,
    B::Reply: Serialize + DeserializeOwned,
    B::Cast: Serialize + DeserializeOwned,
    B::Info: Serialize + DeserializeOwned,
{
    Codec {
        name: B::NAME,
        hash: const { crate::__private::tag(B::NAME, "") },
        encode_call: encode::<B::Call>,
        decode_call: decode::<B::Call>,
        encode_reply: encode::<B::Reply>,
        decode_reply: decode::<B::Reply>,
        encode_cast: encode::<B::Cast>,
        decode_cast: decode::<B::Cast>,
        encode_info: encode::<B::Info>,
        decode_info: decode::<B::Info>,
    }
}

/// The payload of a message from another node: where it lies in the frame just read, or
/// a reassembled message of which it is the part from `start` on.
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>, usize),
}

impl Payload<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Payload::Borrowed(bytes) => bytes,
            Payload::Owned(bytes, start) => &bytes[*start..],
        }
    }

    pub(crate) fn into_owned(self) -> Payload<'static> {
        match self {
            Payload::Borrowed(bytes) => Payload::Owned(bytes.to_vec(), 0),
            Payload::Owned(bytes, start) => Payload::Owned(bytes, start),
        }
    }
}

thread_local! {
    /// A buffer casts are encoded in before being copied into a connection's queue (so a
    /// cast allocates nothing). Taken out while in use, so a re-entrant cast gets another.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A process of another node — by pid or by registered name — with its behaviour's codec.
pub(crate) struct RemoteTarget<B: GenServer> {
    node: Arc<str>,
    address: Address,
    /// For a pid: the incarnation of its node, which the connection must be to.
    incarnation: Option<u64>,
    cluster: Weak<Cluster>,
    codec: Codec<B>,
    /// The connection last used (weak: a reference does not keep a closed socket open).
    connection: Mutex<Weak<Peer>>,
}

impl<B: GenServer> RemoteTarget<B> {
    pub(crate) fn by_pid(pid: &Pid, cluster: Weak<Cluster>, codec: Codec<B>) -> Self {
        RemoteTarget {
            node: pid.node_arc(),
            address: Address::Pid {
                serial: pid.serial(),
            },
            incarnation: Some(pid.incarnation()),
            cluster,
            codec,
            connection: Mutex::new(Weak::new()),
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
            connection: Mutex::new(Weak::new()),
        }
    }

    /// The connection to the target's node; `NoProc` if the target belongs to an earlier
    /// incarnation of that node.
    fn peer(&self) -> Result<Arc<Peer>, Unreachable> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let peer = match connection.upgrade() {
            Some(peer) if !peer.is_closed() => peer,
            _ => {
                let cluster = self.cluster.upgrade().ok_or(Unreachable::NoConnection)?;
                let peer = cluster.peer(&self.node).ok_or(Unreachable::NoConnection)?;
                *connection = Arc::downgrade(&peer);
                peer
            }
        };
        drop(connection);
        if self
            .incarnation
            .is_some_and(|incarnation| incarnation != peer.incarnation)
        {
            return Err(Unreachable::NoProc);
        }
        Ok(peer)
    }

    /// `true` while the target's node is connected (with the target's incarnation).
    pub(crate) fn is_reachable(&self) -> bool {
        self.peer().is_ok()
    }

    fn next_id(&self) -> Result<u64, Unreachable> {
        let cluster = self.cluster.upgrade().ok_or(Unreachable::NoConnection)?;
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
        let mut frame = Vec::new();
        wire::encode_frame_with(&message, &mut frame, |out| {
            (self.codec.encode_call)(&request, out)
        })
        .map_err(|error| CallError::Remote(format!("the request does not encode: {error}")))?;
        let (pending, reply) = PendingCall::expect(&peer, id);
        let mut deadline = Deadline::after(timeout);
        match deadline.run(peer.send(frame, run::current_sender())).await {
            None => return Err(pending.timed_out()),
            Some(Err(_)) => return Err(CallError::NoConnection),
            Some(Ok(())) => {}
        }
        let (outcome, payload) = match deadline.run(reply).await {
            None => return Err(pending.timed_out()),
            Some(Ok(Ok(outcome))) => outcome,
            Some(Ok(Err(ConnectionLost)) | Err(_)) => return Err(CallError::NoConnection),
        };
        match outcome {
            RemoteOutcome::Reply => (self.codec.decode_reply)(payload.bytes())
                .map_err(|error| CallError::Remote(format!("the reply does not decode: {error}"))),
            RemoteOutcome::NoProc => Err(CallError::NoProc),
            RemoteOutcome::Exited(reason) => Err(CallError::Exited(reason)),
            RemoteOutcome::WrongBehavior { found } => Err(CallError::WrongBehavior {
                name: self.describe(),
                expected: self.codec.name.to_owned(),
                found,
            }),
            RemoteOutcome::Failed(text) => Err(CallError::Remote(text)),
        }
    }

    /// Queues a cast or info: `message` and its payload, encoded by `payload`.
    fn one_way(
        &self,
        message: WireMessage,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), postcard::Error>,
    ) -> Result<(), SendError> {
        let peer = self.peer()?;
        let mut frame = SCRATCH.take();
        frame.clear();
        let queued = match wire::encode_frame_with(&message, &mut frame, payload) {
            // A message that does not encode cannot be delivered.
            Err(_) => Err(PushError::Closed),
            Ok(()) => peer.queue.try_push(&mut frame, run::current_sender()),
        };
        SCRATCH.set(frame);
        queued.map_err(|error| {
            Counters::add(&peer.counters.casts_dropped, 1);
            match error {
                PushError::Full => SendError::Overloaded,
                PushError::Closed => SendError::NoConnection,
            }
        })
    }

    pub(crate) fn cast(&self, message: B::Cast) -> Result<(), SendError> {
        let cast = WireMessage::Cast {
            to: self.address.clone(),
            behavior: self.codec.hash,
        };
        self.one_way(cast, |out| (self.codec.encode_cast)(&message, out))
    }

    pub(crate) fn send(&self, message: B::Info) -> Result<(), SendError> {
        let info = WireMessage::Info {
            to: self.address.clone(),
            behavior: self.codec.hash,
        };
        self.one_way(info, |out| (self.codec.encode_info)(&message, out))
    }

    /// Asks the target's node to stop it; resolves with the reason it ended with.
    pub(crate) async fn stop(
        &self,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        let peer = self.peer()?;
        let id = self.next_id()?;
        let message = WireMessage::Stop(Box::new(Stop {
            id,
            to: self.address.clone(),
            reason,
            grace_ms: grace.map(|g| g.as_millis() as u64),
        }));
        let mut frame = Vec::new();
        wire::encode_frame(&message, &mut frame).map_err(|_| SendError::NoConnection)?;
        let (_pending, reply) = PendingCall::expect(&peer, id);
        peer.send(frame, run::current_sender())
            .await
            .map_err(|_| SendError::NoConnection)?;
        match reply.await {
            Ok(Ok((RemoteOutcome::Exited(reason), _))) => Ok(reason),
            Ok(Ok((RemoteOutcome::NoProc, _))) => Err(SendError::NoProc),
            Ok(Ok(_)) | Ok(Err(ConnectionLost)) | Err(_) => Err(SendError::NoConnection),
        }
    }

    /// Waits until the target's node is no longer connected. (Without a remote monitor,
    /// this is all a node can learn of a remote process's end.)
    pub(crate) async fn unreachable(&self) -> ExitReason {
        let Some(cluster) = self.cluster.upgrade() else {
            return ExitReason::NoConnection;
        };
        let events = cluster.events.subscribe();
        drop(cluster);
        loop {
            match self.peer() {
                Err(Unreachable::NoProc) => return ExitReason::NoProc,
                Err(Unreachable::NoConnection) => return ExitReason::NoConnection,
                Ok(_) => {}
            }
            match events.recv().await {
                Some(ClusterEvent::NodeDown { .. }) | Some(ClusterEvent::NodeUp { .. }) => {}
                None => return ExitReason::NoConnection,
            }
        }
    }

    fn describe(&self) -> String {
        match &self.address {
            Address::Pid { serial } => format!("<{}.{}>", self.node, serial),
            Address::Name(name) => format!("{name} on {}", self.node),
        }
    }
}

/// A request's entry in its connection's table of calls awaiting a reply, removed when
/// the request's future ends, however it ends: answered, timed out, or dropped by its
/// caller (a `select`, a killed process) — so no entry outlives its caller.
struct PendingCall<'a> {
    peer: &'a Peer,
    id: u64,
}

impl<'a> PendingCall<'a> {
    /// Registers request `id` on `peer`; returns the entry and where its reply arrives.
    fn expect(peer: &'a Peer, id: u64) -> (Self, oneshot::AsyncReceiver<super::peer::CallOutcome>) {
        let reply = peer.expect_reply(id);
        (PendingCall { peer, id }, reply)
    }

    /// The call timed out: counted, unless its reply arrived just now.
    fn timed_out(self) -> CallError {
        if self.peer.forget_call(self.id) {
            Counters::add(&self.peer.counters.calls_timed_out, 1);
        }
        CallError::Timeout
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        self.peer.forget_call(self.id);
    }
}

/// Why a remote target cannot be reached.
enum Unreachable {
    NoConnection,
    NoProc,
}

impl From<Unreachable> for CallError {
    fn from(error: Unreachable) -> Self {
        match error {
            Unreachable::NoConnection => CallError::NoConnection,
            Unreachable::NoProc => CallError::NoProc,
        }
    }
}

impl From<Unreachable> for SendError {
    fn from(error: Unreachable) -> Self {
        match error {
            Unreachable::NoConnection => SendError::NoConnection,
            Unreachable::NoProc => SendError::NoProc,
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

    /// Answers with a reply, which `encode` appends.
    pub(crate) fn reply(
        mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), postcard::Error>,
    ) {
        self.answered = true;
        answer(&self.peer, self.id, RemoteOutcome::Reply, encode);
    }

    /// The handler dropped the reply: the server is ending, or chose not to answer. As for
    /// a local caller, the answer is the server's exit reason if it ends while the caller
    /// still waits; if it lives on, the caller is left to its own timeout. What waits here
    /// holds the connection weakly (so a closed connection's socket is released at once)
    /// and gives up when the caller does.
    pub(crate) fn respond_when_exited(mut self, process: Arc<dyn AnyProcess>) {
        self.answered = true;
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        let (peer, id, timeout) = (Arc::downgrade(&self.peer), self.id, self.timeout);
        drop(self);
        cluster.spawn(async move {
            let mut deadline = Deadline::after(timeout);
            let exited = deadline.run(process.core().exited()).await;
            if let (Some(reason), Some(peer)) = (exited, peer.upgrade()) {
                answer(&peer, id, RemoteOutcome::Exited(reason), |_| Ok(()));
            }
        });
    }
}

/// Sends the answer to call `id` on `peer`: `outcome`, and the payload `payload` appends.
fn answer(
    peer: &Peer,
    id: u64,
    outcome: RemoteOutcome,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), postcard::Error>,
) {
    let reply = WireMessage::Reply { id, outcome };
    let mut frame = Vec::new();
    if let Err(error) = wire::encode_frame_with(&reply, &mut frame, payload) {
        let failed = WireMessage::Reply {
            id,
            outcome: RemoteOutcome::Failed(format!("the reply does not encode: {error}")),
        };
        if wire::encode_frame(&failed, &mut frame).is_err() {
            return;
        }
    }
    // Written at once if this is the server's last message for now (a reply among many
    // waits for the writer's next batch, with the others). A reply never waits for room:
    // the reader bounds replies by taking no more calls while too many are queued.
    if run::more_to_handle() || !peer.write_now(&frame) {
        let _ = peer.queue.push_reply(&mut frame, run::current_sender());
    }
}

/// What a message from another node asks of a local process.
pub(crate) enum RemoteKind {
    Call(Responder),
    Cast,
    Info,
}

/// A message from another node for a local process.
pub(crate) struct RemoteDelivery<'a> {
    pub(crate) kind: RemoteKind,
    /// The FNV-1a hash of the behaviour name the sender expects.
    pub(crate) behavior: u32,
    pub(crate) payload: Payload<'a>,
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
            (to, RemoteKind::Call(responder), behavior)
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
            process.deliver_remote(RemoteDelivery {
                kind,
                behavior,
                payload,
            });
            home
        }
        None => {
            if let RemoteKind::Call(responder) = kind {
                responder.respond(RemoteOutcome::NoProc);
            }
            0
        }
    }
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
}

impl Resolver {
    fn resolve(&mut self, cluster: &Cluster, address: &Address) -> Option<Arc<dyn AnyProcess>> {
        let key = match address {
            Address::Pid { serial } => Some(*serial),
            Address::Name(_) => None,
        };
        if let (Some((last, process)), Some(key)) = (&self.last, key) {
            if *last == key {
                if let Some(process) = process.upgrade() {
                    return Some(process);
                }
            }
        }
        let process = resolve(cluster, address)?;
        if let Some(key) = key {
            self.last = Some((key, Arc::downgrade(&process)));
        }
        Some(process)
    }
}

/// The local process an address names.
fn resolve(cluster: &Cluster, address: &Address) -> Option<Arc<dyn AnyProcess>> {
    let node = cluster.node()?;
    match address {
        Address::Pid { serial } => node.table.get(*serial),
        Address::Name(name) => {
            let pid = node.registry.whereis(name)?;
            node.resolve(&pid)
        }
    }
}
