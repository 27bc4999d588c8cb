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

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cluster::Cluster;
use super::config::ClusterEvent;
use super::outbound::PushError;
use super::peer::{ConnectionLost, Counters, Peer};
use super::wire::{Address, RemoteOutcome, WireMessage};
use crate::behavior::BehaviorName;
use crate::error::{CallError, SendError};
use crate::process::AnyProcess;
use crate::server::deadline::CallDeadline;
use crate::server::{run, GenServer};
use crate::{ExitReason, Pid};

/// How the messages of behaviour `B` are encoded on the wire. Built by
/// `RemoteBehavior::codec` (which `#[behavior]` writes).
#[doc(hidden)]
pub struct Codec<B: GenServer> {
    pub(crate) name: &'static str,
    pub(crate) hash: u32,
    encode_call: fn(&B::Call) -> Result<Vec<u8>, postcard::Error>,
    pub(crate) decode_call: fn(&[u8]) -> Result<B::Call, postcard::Error>,
    pub(crate) encode_reply: fn(&B::Reply) -> Result<Vec<u8>, postcard::Error>,
    decode_reply: fn(&[u8]) -> Result<B::Reply, postcard::Error>,
    encode_cast: fn(&B::Cast) -> Result<Vec<u8>, postcard::Error>,
    pub(crate) decode_cast: fn(&[u8]) -> Result<B::Cast, postcard::Error>,
    encode_info: fn(&B::Info) -> Result<Vec<u8>, postcard::Error>,
    pub(crate) decode_info: fn(&[u8]) -> Result<B::Info, postcard::Error>,
}

impl<B: GenServer> Clone for Codec<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: GenServer> Copy for Codec<B> {}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
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
        hash: crate::__private::tag(B::NAME, ""),
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

/// A process of another node — by pid or by registered name — with its behaviour's codec.
pub(crate) struct RemoteTarget<B: GenServer> {
    node: Arc<str>,
    address: Address,
    cluster: Weak<Cluster>,
    codec: Codec<B>,
}

impl<B: GenServer> RemoteTarget<B> {
    pub(crate) fn by_pid(pid: &Pid, cluster: Weak<Cluster>, codec: Codec<B>) -> Self {
        RemoteTarget {
            node: pid.node_arc(),
            address: Address::Pid {
                serial: pid.serial(),
                incarnation: pid.incarnation(),
            },
            cluster,
            codec,
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
            cluster,
            codec,
        }
    }

    /// The connection to the target's node; `NoProc` if the target belongs to an earlier
    /// incarnation of that node.
    fn peer(&self) -> Result<(Arc<Cluster>, Arc<Peer>), Unreachable> {
        let cluster = self.cluster.upgrade().ok_or(Unreachable::NoConnection)?;
        let peer = cluster.peer(&self.node).ok_or(Unreachable::NoConnection)?;
        if let Address::Pid { incarnation, .. } = &self.address {
            if *incarnation != peer.incarnation {
                return Err(Unreachable::NoProc);
            }
        }
        Ok((cluster, peer))
    }

    /// `true` while the target's node is connected (with the target's incarnation).
    pub(crate) fn is_reachable(&self) -> bool {
        self.peer().is_ok()
    }

    pub(crate) async fn call(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> Result<B::Reply, CallError> {
        let (cluster, peer) = self.peer().map_err(CallError::from)?;
        let payload = (self.codec.encode_call)(&request)
            .map_err(|error| CallError::Remote(format!("the request does not encode: {error}")))?;
        let id = cluster.next_id();
        let reply = peer.expect_reply(id);
        let message = WireMessage::Call {
            id,
            to: self.address.clone(),
            behavior: self.codec.hash,
            payload,
        };
        let mut deadline = CallDeadline::after(timeout);
        match deadline
            .run(peer.send(&message, run::current_sender()))
            .await
        {
            None => {
                peer.forget_call(id);
                return Err(CallError::Timeout);
            }
            Some(Err(_)) => return Err(CallError::NoConnection),
            Some(Ok(())) => {}
        }
        let outcome = match deadline.run(reply).await {
            None => {
                peer.forget_call(id);
                return Err(CallError::Timeout);
            }
            Some(Ok(Ok(outcome))) => outcome,
            Some(Ok(Err(ConnectionLost)) | Err(_)) => return Err(CallError::NoConnection),
        };
        match outcome {
            RemoteOutcome::Reply(bytes) => (self.codec.decode_reply)(&bytes)
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

    fn one_way(&self, make: impl FnOnce(Address, u32) -> WireMessage) -> Result<(), SendError> {
        let (_, peer) = self.peer().map_err(SendError::from)?;
        let message = make(self.address.clone(), self.codec.hash);
        match peer.try_send(&message, run::current_sender()) {
            Ok(()) => Ok(()),
            Err(error) => {
                Counters::add(&peer.counters.casts_dropped, 1);
                Err(match error {
                    PushError::Full => SendError::Overloaded,
                    PushError::Closed => SendError::NoConnection,
                })
            }
        }
    }

    pub(crate) fn cast(&self, message: B::Cast) -> Result<(), SendError> {
        let payload = (self.codec.encode_cast)(&message).map_err(|_| SendError::NoConnection)?;
        self.one_way(|to, behavior| WireMessage::Cast {
            to,
            behavior,
            payload,
        })
    }

    pub(crate) fn send(&self, message: B::Info) -> Result<(), SendError> {
        let payload = (self.codec.encode_info)(&message).map_err(|_| SendError::NoConnection)?;
        self.one_way(|to, behavior| WireMessage::Info {
            to,
            behavior,
            payload,
        })
    }

    /// Asks the target's node to stop it; resolves with the reason it ended with.
    pub(crate) async fn stop(
        &self,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        let (cluster, peer) = self.peer().map_err(SendError::from)?;
        let id = cluster.next_id();
        let reply = peer.expect_reply(id);
        let message = WireMessage::Stop {
            id,
            to: self.address.clone(),
            reason,
            grace_ms: grace.map(|g| g.as_millis() as u64),
        };
        peer.send(&message, run::current_sender())
            .await
            .map_err(|_| SendError::NoConnection)?;
        match reply.await {
            Ok(Ok(RemoteOutcome::Exited(reason))) => Ok(reason),
            Ok(Ok(RemoteOutcome::NoProc)) => Err(SendError::NoProc),
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
            Address::Pid { serial, .. } => format!("<{}.{}>", self.node, serial),
            Address::Name(name) => format!("{name} on {}", self.node),
        }
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

/// Answers one remote call, through the connection it came from.
pub(crate) struct Responder {
    peer: Arc<Peer>,
    id: u64,
    cluster: Weak<Cluster>,
}

impl Responder {
    pub(crate) fn respond(self, outcome: RemoteOutcome) {
        let reply = WireMessage::Reply {
            id: self.id,
            outcome,
        };
        // Replies are bounded by the calls in flight: they never wait for room.
        if let Ok(body) = super::wire::encode(&reply) {
            let _ = self.peer.queue.force_push(body, run::current_sender());
        }
    }

    /// Answers with the process's exit reason once it has ended (its handler dropped the
    /// reply, which means it is ending or chose not to answer).
    pub(crate) fn respond_when_exited(self, process: Arc<dyn AnyProcess>) {
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        cluster.spawn(async move {
            let reason = process.core().exited().await;
            self.respond(RemoteOutcome::Exited(reason));
        });
    }
}

/// A message from another node for a local process.
pub(crate) enum RemoteDelivery {
    Call {
        behavior: u32,
        payload: Vec<u8>,
        responder: Responder,
    },
    Cast {
        behavior: u32,
        payload: Vec<u8>,
    },
    Info {
        behavior: u32,
        payload: Vec<u8>,
    },
}

/// Delivers a message that arrived from `peer` to the local process it is for.
pub(crate) fn deliver(cluster: &Arc<Cluster>, peer: &Arc<Peer>, message: WireMessage) {
    let responder = |id| Responder {
        peer: peer.clone(),
        id,
        cluster: Arc::downgrade(cluster),
    };
    match message {
        WireMessage::Call {
            id,
            to,
            behavior,
            payload,
        } => match resolve(cluster, &to) {
            Some(process) => process.deliver_remote(RemoteDelivery::Call {
                behavior,
                payload,
                responder: responder(id),
            }),
            None => responder(id).respond(RemoteOutcome::NoProc),
        },
        WireMessage::Cast {
            to,
            behavior,
            payload,
        } => {
            if let Some(process) = resolve(cluster, &to) {
                process.deliver_remote(RemoteDelivery::Cast { behavior, payload });
            }
        }
        WireMessage::Info {
            to,
            behavior,
            payload,
        } => {
            if let Some(process) = resolve(cluster, &to) {
                process.deliver_remote(RemoteDelivery::Info { behavior, payload });
            }
        }
        WireMessage::Stop {
            id,
            to,
            reason,
            grace_ms,
        } => {
            let responder = responder(id);
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
        }
        _ => {}
    }
}

/// The local process an address names.
fn resolve(cluster: &Cluster, address: &Address) -> Option<Arc<dyn AnyProcess>> {
    let node = cluster.node()?;
    match address {
        Address::Pid {
            serial,
            incarnation,
        } => {
            if *incarnation != node.incarnation {
                return None;
            }
            node.table.get(*serial)
        }
        Address::Name(name) => {
            let pid = node.registry.whereis(name)?;
            node.resolve(&pid)
        }
    }
}
