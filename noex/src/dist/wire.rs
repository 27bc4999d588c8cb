//! The wire protocol between nodes.
//!
//! A connection carries *frames*: a `u32` big-endian length, then that many bytes holding
//! one postcard-encoded [`WireMessage`], then — for the kinds that carry one — its
//! *payload*: the rest of the frame, raw bytes (a user message encoded by its behaviour's
//! codec, or a piece of a fragmented message). Carrying the payload after the message
//! rather than inside it lets a sender encode a user message straight into the frame and a
//! receiver decode it where it lies, with no copy in between. A frame longer than the
//! receiver's maximum frame size is refused before anything is allocated for it, and the
//! connection is closed.
//!
//! A connection starts with the handshake (`Hello`, `Challenge`, `Proof`, `Welcome`, or
//! `Refused`), then carries everything else in any order. Messages larger than
//! [`FRAGMENT_SIZE`] travel as `Fragment`s, interleaved with smaller traffic, and are
//! decoded once reassembled; the receiver acknowledges fragments (`FragmentAck`) and the
//! sender keeps at most [`FRAGMENT_WINDOW`] bytes unacknowledged, so a large message never
//! fills the sockets' buffers in front of a small one.
//!
//! The handshake also tells each side the largest message the other takes reassembled
//! (`Hello::max_message`, `Challenge::max_message`: the receiver's `max_message_size`):
//! a sender refuses a message larger than that with a typed error, rather than send what
//! the receiver would close the connection over (see `Outbound::check_size`).
//!
//! Versioning: `PROTOCOL_VERSION` is exchanged in `Hello`; nodes of different versions
//! refuse each other. New message kinds get new variants at the end of the enum, so an
//! older node that receives one fails to decode it (an error that closes the connection,
//! never a panic) instead of misreading it.

use futures_lite::{AsyncRead, AsyncReadExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::header;
use crate::ExitReason;

/// The protocol version this build speaks.
pub(crate) const PROTOCOL_VERSION: u16 = 12;

/// Encoded messages longer than this travel in fragments of this size.
pub(crate) const FRAGMENT_SIZE: usize = 64 * 1024;

/// Bytes of fragments a sender may have sent but not yet seen acknowledged: what a small
/// message may find ahead of it in the sockets. (Measured with a 64 MiB message between
/// two nodes of one OS process: 512 KiB made small calls meanwhile wait ~170 µs at the
/// median, 256 KiB ~60 µs for the same transfer time, 128 KiB ~40 µs but a transfer half
/// again as long.)
pub(crate) const FRAGMENT_WINDOW: usize = 256 * 1024;

/// Everything one node says to another.
///
/// The rarely sent large kinds are boxed (postcard writes a box's content as it is, so this
/// changes nothing on the wire): the enum is moved around once per message received, and a
/// small one moves cheaply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum WireMessage {
    /// Handshake step 1, from the connecting node.
    Hello(Box<Hello>),
    /// Handshake step 2, from the accepting node.
    Challenge(Box<Challenge>),
    /// Handshake step 3, from the connecting node: its proof over the accepting node's
    /// nonce.
    Proof {
        /// HMAC-SHA256 keyed by the cluster secret.
        proof: [u8; 32],
    },
    /// Handshake step 4, from the accepting node: the connection is up.
    Welcome,
    /// The handshake is refused, and the connection closes.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// Sent on a link that was otherwise quiet for a heartbeat interval.
    Heartbeat {
        /// How many processes run on the sender.
        process_count: u64,
        /// How long the sender has been up, in milliseconds.
        uptime_ms: u64,
        /// When the sender sent it, in microseconds of its own clock (never 0).
        stamp_us: u64,
        /// The `stamp_us` of the receiver's last heartbeat, echoed (0: none yet)...
        echo_us: u64,
        /// ...and how long the sender held it, in microseconds: the receiver's round-trip
        /// time is its clock now, less `echo_us` and this.
        held_us: u64,
    },
    /// The node ids the sender is connected to (the receiver aside), so that the receiver
    /// connects to them too: sent once by each side when a connection is up.
    Members {
        /// `name@host:port` of each.
        nodes: Vec<String>,
    },
    /// The sender leaves the cluster; the receiver reports it down with reason `Shutdown`.
    Goodbye,
    /// A call to a process of the receiver.
    Call {
        /// The caller's id for the call, echoed in the `Reply`.
        id: u64,
        /// The process.
        to: Address,
        /// The FNV-1a hash of the behaviour name the caller expects.
        behavior: u32,
        /// How long the caller waits for the reply, in milliseconds: how long the
        /// receiver keeps an unanswered request's caller in mind (see
        /// `inbound::Responder::respond_when_exited`).
        timeout_ms: u64,
        // Payload: the request, encoded by the behaviour's codec.
    },
    /// The answer to a `Call` (or a `Stop`).
    Reply {
        /// The call's id.
        id: u64,
        /// What became of it.
        outcome: RemoteOutcome,
        // Payload, if `outcome` is `Reply`: the reply, encoded by the behaviour's codec.
    },
    /// A cast to a process of the receiver.
    Cast {
        /// The process.
        to: Address,
        /// The FNV-1a hash of the behaviour name the sender expects.
        behavior: u32,
        // Payload: the message, encoded by the behaviour's codec.
    },
    /// A plain message (`ServerRef::send`) to a process of the receiver.
    Info {
        /// The process.
        to: Address,
        /// The FNV-1a hash of the behaviour name the sender expects.
        behavior: u32,
        // Payload: the message, encoded by the behaviour's codec.
    },
    /// A request to stop a process of the receiver gracefully; answered with a `Reply`
    /// whose `Exited` outcome carries the reason it ended with.
    Stop(Box<Stop>),
    /// A piece of a large message: the pieces of one `id` arrive in order, the last one
    /// has `last` set, and their payloads joined are one frame's bytes (a message and its
    /// payload, without the length prefix).
    Fragment {
        /// Identifies the message being sent in pieces.
        id: u64,
        /// `true` on the final piece.
        last: bool,
        /// The length of the whole message (its pieces joined), the same in every piece:
        /// the receiver reserves room for it before it takes the first piece.
        size: u64,
        // Payload: the piece.
    },
    /// The receiver of fragments has taken `bytes` more bytes of them off the connection:
    /// the sender may send that many more (see [`FRAGMENT_WINDOW`]).
    FragmentAck {
        /// Payload bytes of the fragments acknowledged.
        bytes: u32,
    },
    /// A link, monitor or exit signal between a process of the sender and one of the
    /// receiver (see `dist::monitor`).
    Signal(Box<RemoteSignal>),
    /// A request to spawn a registered behaviour on the receiver (see `dist::spawn`).
    /// Payload: the init arguments, encoded as the behaviour's `Args`.
    Spawn(Box<SpawnRequest>),
    /// The answer to a `Spawn`.
    SpawnReply {
        /// The request's id.
        id: u64,
        /// What became of it.
        result: SpawnResult,
    },
    /// The spawner's word on a process its `Spawn` started: kept, or given up (its spawn
    /// timed out or was dropped), which ends the process.
    SpawnAck {
        /// The request's id.
        id: u64,
        /// `true` to keep the process.
        keep: bool,
    },
    /// The global registry and process groups (see `global`).
    Global(Box<crate::global::protocol::GlobalMessage>),
    /// A user message that carries a trace context (see [`Traced`]).
    Trace(Box<Traced>),
    /// The sender is leaving the cluster (it is shutting down): it stops its processes
    /// now, their exits following with their reasons, then says `Goodbye`. The receiver
    /// places no new work there, and a distributed supervisor takes the end of a child
    /// there for the node's loss (see `supervisor::placement`).
    Leaving,
}

/// A request to spawn a registered behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpawnRequest {
    /// The request's id, echoed in the `SpawnReply` and `SpawnAck`.
    pub(crate) id: u64,
    /// The behaviour's registered name.
    pub(crate) behavior: String,
    /// A name to register the process under on the receiver, before `init`.
    pub(crate) name: Option<String>,
    /// A global name to register the process under, before `init`.
    pub(crate) global_name: Option<String>,
    /// How long `init` may take, in milliseconds; `None` waits.
    pub(crate) init_timeout_ms: Option<u64>,
    /// How long the spawner waits for the answer, in milliseconds.
    pub(crate) timeout_ms: u64,
    /// The spawner's process to link the new one with (its serial), before `init`.
    pub(crate) link: Option<u64>,
    /// A monitor the spawner's process holds on the new one: (monitor, the process's
    /// serial), before `init`.
    pub(crate) monitor: Option<(u64, u64)>,
}

/// What became of a `Spawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SpawnResult {
    /// The process runs: its serial on the receiver.
    Started(u64),
    /// No behaviour of that name is registered.
    NotFound,
    /// The behaviour is registered, but local-only.
    LocalOnly,
    /// The arguments did not decode as the behaviour's `Args` (named).
    BadArgs {
        /// The type the arguments should have.
        args_type: String,
        /// The decoder's complaint.
        error: String,
    },
    /// `init` returned an error (its text).
    InitFailed(String),
    /// `init` panicked (the message).
    InitPanicked(String),
    /// `init` did not finish in time.
    InitTimeout,
    /// The name is registered to another process (of the receiver, or — for a global
    /// name — of any node).
    NameTaken(crate::Pid),
    /// The global name could not be settled in time.
    RegistrationTimeout,
    /// The process ended during `init` because of an exit signal.
    Exited(ExitReason),
    /// The receiver is shutting down.
    ShuttingDown,
    /// The receiver is a hidden node, which hosts no processes for other nodes.
    Hidden,
}

/// A signal between processes of two nodes. Processes are named by their serials: `from`,
/// `watcher` and `pid` are the sender's, `to` and `target` the receiver's (each node
/// builds the full pids from the connection's node id and incarnation, so a node can only
/// speak for its own processes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoteSignal {
    /// `from` links with `to`.
    Link {
        /// The linking process.
        from: u64,
        /// The process it links with.
        to: u64,
    },
    /// `from` removes its link with `to`.
    Unlink {
        /// The unlinking process.
        from: u64,
        /// The process it was linked with.
        to: u64,
    },
    /// An exit signal from `from` to `to`, through their link if `linked`.
    Exit {
        /// The process it comes from.
        from: u64,
        /// The process it is for.
        to: u64,
        /// Its reason.
        reason: ExitReason,
        /// `true` if it comes through a link (its sender ended).
        linked: bool,
    },
    /// An untrappable kill of `to`.
    Kill {
        /// The process to kill.
        to: u64,
    },
    /// `watcher` monitors `target`.
    Monitor {
        /// The monitor (the watcher's node numbers them).
        monitor: u64,
        /// The watching process.
        watcher: u64,
        /// The process watched.
        target: u64,
    },
    /// `watcher` no longer monitors `target`.
    Demonitor {
        /// The monitor.
        monitor: u64,
        /// The watching process.
        watcher: u64,
        /// The process it watched.
        target: u64,
    },
    /// The process `pid`, which `monitor` watched, ended with `reason`.
    Down {
        /// The monitor.
        monitor: u64,
        /// The process that ended.
        pid: u64,
        /// Why.
        reason: ExitReason,
    },
}

/// Handshake step 1, from the connecting node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The connecting node's protocol version.
    pub(crate) version: u16,
    /// Its node id, `name@host:port`.
    pub(crate) node: String,
    /// Its incarnation, drawn when it started (see `Node::incarnation`).
    pub(crate) incarnation: u64,
    /// A fresh random nonce the accepting node must prove it can sign.
    pub(crate) nonce: [u8; 32],
    /// A hidden node (an observer): left out of member lists, events and placement.
    pub(crate) hidden: bool,
    /// The largest message it takes reassembled from fragments, in bytes (its
    /// `max_message_size`).
    pub(crate) max_message: u64,
}

/// Handshake step 2, from the accepting node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Challenge {
    /// The accepting node's id.
    pub(crate) node: String,
    /// Its incarnation.
    pub(crate) incarnation: u64,
    /// A fresh random nonce the connecting node must prove it can sign.
    pub(crate) nonce: [u8; 32],
    /// HMAC-SHA256, keyed by the cluster secret, over the connecting node's nonce and both
    /// nodes' ids, incarnations, hidden flags and message limits (see `handshake::proof`).
    pub(crate) proof: [u8; 32],
    /// A hidden node (an observer): left out of member lists, events and placement.
    pub(crate) hidden: bool,
    /// The largest message it takes reassembled from fragments, in bytes (its
    /// `max_message_size`).
    pub(crate) max_message: u64,
}

/// A request to stop a process of the receiver gracefully.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stop {
    /// The request's id.
    pub(crate) id: u64,
    /// The process.
    pub(crate) to: Address,
    /// The stop reason.
    pub(crate) reason: ExitReason,
    /// How long `terminate` may take before a kill, in milliseconds; `None` waits.
    pub(crate) grace_ms: Option<u64>,
}

impl WireMessage {
    /// `true` for the kinds followed by a payload.
    pub(crate) fn has_payload(&self) -> bool {
        if let WireMessage::Trace(traced) = self {
            return traced.message.has_payload();
        }
        matches!(
            self,
            WireMessage::Call { .. }
                | WireMessage::Cast { .. }
                | WireMessage::Info { .. }
                | WireMessage::Fragment { .. }
                | WireMessage::Spawn(_)
                | WireMessage::Reply {
                    outcome: RemoteOutcome::Reply,
                    ..
                }
        )
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub(crate) enum Refusal {
    /// The nodes speak different protocol versions.
    #[error("protocol version mismatch: ours is {ours}, theirs is {theirs}")]
    Version {
        /// The refusing node's version.
        ours: u16,
        /// The other's.
        theirs: u16,
    },
    /// A proof did not verify: the nodes do not share the cluster secret.
    #[error("authentication failed (wrong cluster secret)")]
    Authentication,
    /// The connecting node claims the refusing node's own id.
    #[error("duplicate node id")]
    DuplicateNode,
    /// The nodes are already connected (or the other connection of a simultaneous
    /// connect wins). `node` is the refusing node's id, so that a dialler that knew only
    /// an address (a seed under another name than the node's id) knows whom it reached.
    #[error("already connected to {node:?}")]
    AlreadyConnected {
        /// The refusing node's id.
        node: String,
    },
    /// The message was not the expected handshake step.
    #[error("unexpected handshake message")]
    Protocol,
    /// The refusing node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The other node's TLS certificate is not valid for the host of the node id it claims
    /// (or for the refusing node's `TlsConfig::server_name`).
    #[error("the certificate is not valid for {expected:?} (it is for {presented:?})")]
    CertificateName {
        /// The name the certificate was checked against.
        expected: String,
        /// The names the certificate is valid for.
        presented: Vec<String>,
    },
    /// Another live incarnation of the connecting node's id is connected to the refusing
    /// node (two nodes claim one id), and the connecting one is an earlier one.
    #[error("another node with this id is connected")]
    IdInUse,
}

/// Which process of the receiving node a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Address {
    /// A pid of the receiving node. It belongs to the incarnation the connection was made
    /// with: a sender checks that before sending (a pid of an earlier incarnation is
    /// `NoProc` there), so the frame need not carry it.
    Pid {
        /// The pid's serial.
        serial: u64,
    },
    /// A name registered on the receiving node.
    Name(String),
}

/// What became of a remote call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoteOutcome {
    /// The reply: the frame's payload.
    Reply,
    /// No such process (or it ended before taking the request).
    NoProc,
    /// The process ended while handling the request.
    Exited(ExitReason),
    /// The process runs another behaviour than the caller expected.
    WrongBehavior {
        /// The behaviour it runs.
        found: String,
    },
    /// The request did not decode (the decoder's complaint).
    NotDecoded(String),
    /// The reply did not encode (the encoder's complaint).
    NotEncoded(String),
    /// The process's behaviour (named) is local-only: its messages cannot cross nodes.
    LocalOnly(String),
    /// A handler dropped the request's reply unanswered, the process running on.
    NoReply,
    /// The reply, encoded, is larger than the caller's node takes (its
    /// `max_message_size`): it was not sent.
    TooLarge {
        /// The reply's encoded size, in bytes.
        size: u64,
        /// The largest message the caller's node takes.
        limit: u64,
    },
}

/// Why a frame could not be read or decoded.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// The connection failed or closed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more bytes than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame did not decode as a message.
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
}

/// Decodes one frame's bytes (without the length prefix): the message and its payload.
/// Bytes after a message of a kind without payload are an error.
#[inline]
pub(crate) fn decode(bytes: &[u8]) -> Result<(WireMessage, &[u8]), WireError> {
    let (message, rest) = match header::decode(bytes) {
        Some(decoded) => decoded,
        None => postcard::take_from_bytes::<WireMessage>(bytes)?,
    };
    if rest.is_empty() || message.has_payload() {
        Ok((message, rest))
    } else {
        Err(WireError::Decode(postcard::Error::DeserializeBadEncoding))
    }
}

/// Reads one frame into `buffer` (replacing its contents). The length is checked against
/// `max` before anything is allocated.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buffer: &mut Vec<u8>,
) -> Result<(), WireError> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(WireError::Oversized { len, max });
    }
    buffer.clear();
    buffer.resize(len, 0);
    reader.read_exact(buffer).await?;
    Ok(())
}

/// Reads and decodes one frame of a kind without payload (the handshake's).
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buffer: &mut Vec<u8>,
) -> Result<WireMessage, WireError> {
    read_frame(reader, max, buffer).await?;
    match decode(buffer)? {
        (message, []) => Ok(message),
        _ => Err(WireError::Decode(postcard::Error::DeserializeBadEncoding)),
    }
}

mod encode;
mod trace;
pub(crate) use encode::{append, append_within, encode_frame, encode_frame_of, encode_frame_with};
pub(crate) use trace::Traced;

/// Arbitrary messages, for the property tests of this module and of `header`.
#[cfg(test)]
pub(crate) mod strategies;

#[cfg(test)]
mod tests;
