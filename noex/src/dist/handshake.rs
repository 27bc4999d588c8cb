//! The handshake: protocol version, node identities, and mutual proof of the cluster secret.
//!
//! ```text
//! connector                                   acceptor
//!   Hello { version, node, incarnation, n_c, max_message } ──▶  checks version, identity,
//!                                                               admission
//!   ◀── Challenge { node, incarnation, n_a, proof_a = HMAC(secret, "challenge" n_c C A),
//!                   max_message }
//!   verifies proof_a
//!   Proof { proof_c = HMAC(secret, "proof" n_a A C) } ──▶  verifies proof_c
//!   ◀── Welcome
//! ```
//!
//! Each side proves it holds the secret over a nonce the *other* side chose just now, so a
//! recorded handshake cannot be replayed; proofs are compared in constant time. The secret
//! itself never crosses the wire. Any failure is answered with `Refused { reason }` (where
//! the peer can still be told) and the connection is closed. Handshake frames are limited
//! to [`HANDSHAKE_FRAME_LIMIT`] bytes, so an unauthenticated peer cannot make a node
//! allocate much.
//!
//! The connecting side's failure says whether the peer had proved the secret by then: a
//! refusal before that may come from anyone who answers at the address dialled (see
//! `dial_loop`).
//!
//! Each side also says the largest message it takes (`max_message`, its
//! `ClusterConfig::limits` max message size), bound into the proofs with its identity: the
//! other refuses to send it larger messages (see `Outbound::check_size`).

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

use super::node_id::{NodeId, NodeIdError};
use super::wire::{self, Challenge, Hello, Refusal, WireError, WireMessage, PROTOCOL_VERSION};

/// The largest frame accepted before the peer is authenticated.
pub(crate) const HANDSHAKE_FRAME_LIMIT: usize = 4096;

/// Who this node is, for the handshake.
pub(crate) struct Local<'a> {
    pub(crate) id: &'a NodeId,
    pub(crate) incarnation: u64,
    pub(crate) secret: &'a [u8],
    pub(crate) hidden: bool,
    /// The largest message this node takes reassembled (`max_message_size`).
    pub(crate) max_message: u64,
}

impl Local<'_> {
    /// What the proofs bind of this node (see [`identity`]).
    fn identity(&self) -> String {
        identity(
            self.id.as_str(),
            self.incarnation,
            self.hidden,
            self.max_message,
        )
    }
}

/// The peer a handshake established.
#[derive(Debug, Clone)]
pub(crate) struct Established {
    pub(crate) peer: NodeId,
    pub(crate) incarnation: u64,
    /// The peer is a hidden node.
    pub(crate) hidden: bool,
    /// The largest message the peer takes reassembled, in bytes.
    pub(crate) max_message: u64,
}

/// Why a handshake failed.
#[derive(Debug, Error)]
pub(crate) enum HandshakeError {
    /// The peer refused us.
    #[error("refused by the peer: {0}")]
    RefusedByPeer(Refusal),
    /// We refused the peer.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The peer announced an invalid node id.
    #[error("the peer's node id is invalid: {0}")]
    BadPeerId(#[from] NodeIdError),
    /// The peer is not the node we meant to connect to.
    #[error("expected {expected}, reached {found}")]
    WrongPeer {
        /// The node we dialled.
        expected: NodeId,
        /// The node that answered.
        found: NodeId,
    },
    /// The connection failed or sent garbage.
    #[error(transparent)]
    Wire(#[from] WireError),
}

type HmacSha256 = Hmac<Sha256>;

/// What a proof binds of a node: its id, incarnation, whether it is hidden and the
/// largest message it takes — so that no one on the path can change what a hello or
/// challenge says of its sender without the proofs failing.
fn identity(id: &str, incarnation: u64, hidden: bool, max_message: u64) -> String {
    format!("{id} {incarnation} {} {max_message}", u8::from(hidden))
}

/// HMAC-SHA256 keyed by the secret over `label`, the nonce and both nodes' identities.
fn proof(secret: &[u8], label: &[u8], nonce: &[u8; 32], first: &str, second: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"noex/2 ");
    mac.update(label);
    mac.update(nonce);
    // Length-prefixed, so that ids cannot be shifted between the two fields.
    for id in [first, second] {
        mac.update(&(id.len() as u32).to_be_bytes());
        mac.update(id.as_bytes());
    }
    mac
}

fn sign(secret: &[u8], label: &[u8], nonce: &[u8; 32], first: &str, second: &str) -> [u8; 32] {
    proof(secret, label, nonce, first, second)
        .finalize()
        .into_bytes()
        .into()
}

fn verify(
    secret: &[u8],
    label: &[u8],
    nonce: &[u8; 32],
    first: &str,
    second: &str,
    tag: &[u8; 32],
) -> bool {
    // `verify_slice` compares in constant time.
    proof(secret, label, nonce, first, second)
        .verify_slice(tag)
        .is_ok()
}

/// A fresh random nonce.
pub(crate) fn nonce() -> [u8; 32] {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).expect("the operating system's random source failed");
    nonce
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &WireMessage,
) -> Result<(), WireError> {
    let mut frame = Vec::new();
    wire::encode_frame(message, &mut frame).map_err(WireError::Decode)?;
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

/// Tells the peer why, best effort, and returns the error.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, reason: Refusal) -> HandshakeError {
    let _ = send(
        stream,
        &WireMessage::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    HandshakeError::Refused(reason)
}

/// A connecting handshake that failed.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) error: HandshakeError,
    /// The peer had proved, as the node dialled, that it holds the cluster secret (its
    /// challenge checked): what it said after that is that node's own word. Before, anyone
    /// who answers at the address can say anything.
    pub(crate) proven: bool,
}

/// Runs the connecting side, its hello carrying `my_nonce` (fresh: see [`nonce`]).
/// `expected` is the node we dialled, if we know its id; `check` decides, once the peer
/// has said who it is, whether it may claim that id (over TLS: whether its certificate
/// is valid for the id's host).
pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &Local<'_>,
    my_nonce: [u8; 32],
    expected: Option<&NodeId>,
    check: impl FnOnce(&NodeId) -> Result<(), Refusal>,
) -> Result<Established, ConnectError> {
    let mut buffer = Vec::new();
    let (established, proof) = challenged(stream, local, my_nonce, expected, check, &mut buffer)
        .await
        .map_err(|error| ConnectError {
            error,
            proven: false,
        })?;
    // From here on, the peer has proved itself.
    match welcomed(stream, proof, &mut buffer).await {
        Ok(()) => Ok(established),
        Err(error) => Err(ConnectError {
            error,
            proven: true,
        }),
    }
}

/// The connecting side until the peer has proved itself: the hello sent, the challenge
/// checked. Returns the peer and this node's proof to send.
async fn challenged<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &Local<'_>,
    my_nonce: [u8; 32],
    expected: Option<&NodeId>,
    check: impl FnOnce(&NodeId) -> Result<(), Refusal>,
    buffer: &mut Vec<u8>,
) -> Result<(Established, [u8; 32]), HandshakeError> {
    send(
        stream,
        &WireMessage::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            node: local.id.as_str().to_owned(),
            incarnation: local.incarnation,
            nonce: my_nonce,
            hidden: local.hidden,
            max_message: local.max_message,
        })),
    )
    .await?;
    let (peer, incarnation, their_nonce, their_proof, hidden, max_message) =
        match wire::read_message(stream, HANDSHAKE_FRAME_LIMIT, buffer).await? {
            WireMessage::Challenge(challenge) => {
                let Challenge {
                    node,
                    incarnation,
                    nonce,
                    proof,
                    hidden,
                    max_message,
                } = *challenge;
                let peer = node.parse::<NodeId>()?;
                (peer, incarnation, nonce, proof, hidden, max_message)
            }
            WireMessage::Refused { reason } => return Err(HandshakeError::RefusedByPeer(reason)),
            _ => return Err(refuse(stream, Refusal::Protocol).await),
        };
    if let Some(expected) = expected {
        if *expected != peer {
            return Err(HandshakeError::WrongPeer {
                expected: expected.clone(),
                found: peer,
            });
        }
    }
    if let Err(reason) = check(&peer) {
        return Err(refuse(stream, reason).await);
    }
    let me = local.identity();
    let them = identity(peer.as_str(), incarnation, hidden, max_message);
    if !verify(
        local.secret,
        b"challenge",
        &my_nonce,
        &me,
        &them,
        &their_proof,
    ) {
        return Err(refuse(stream, Refusal::Authentication).await);
    }
    let established = Established {
        peer,
        incarnation,
        hidden,
        max_message,
    };
    Ok((
        established,
        sign(local.secret, b"proof", &their_nonce, &them, &me),
    ))
}

/// Sends this node's proof, and takes the peer's answer: its welcome, or why not.
async fn welcomed<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proof: [u8; 32],
    buffer: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    send(stream, &WireMessage::Proof { proof }).await?;
    match wire::read_message(stream, HANDSHAKE_FRAME_LIMIT, buffer).await? {
        WireMessage::Welcome => Ok(()),
        WireMessage::Refused { reason } => Err(HandshakeError::RefusedByPeer(reason)),
        _ => Err(refuse(stream, Refusal::Protocol).await),
    }
}

/// Runs the accepting side. A hello that claims this node's id is refused; `own` is
/// given its nonce first (it may be this node's own, its dial having reached itself: see
/// `pending`). `admit` decides, once the peer has said who it is, whether this
/// connection may proceed (not a duplicate, not shutting down); `hold` is awaited once it
/// has (fault injection holds handshakes open there); `confirm` decides again once the
/// peer has proved it knows the secret, for what only a member may make this node
/// believe (that an incarnation is alive).
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &Local<'_>,
    own: impl FnOnce(&[u8; 32]),
    admit: impl FnOnce(&NodeId, u64) -> Result<(), Refusal>,
    hold: impl std::future::Future<Output = ()>,
    confirm: impl FnOnce(&NodeId, u64) -> Result<(), Refusal>,
) -> Result<Established, HandshakeError> {
    let mut buffer = Vec::new();
    let hello = match wire::read_message(stream, HANDSHAKE_FRAME_LIMIT, &mut buffer).await {
        // Not a frame: perhaps a TLS client (see `refused`). The refusal, not TLS, tells
        // it that this node does not speak TLS.
        Err(error @ WireError::Oversized { .. }) => {
            let _ = refuse(stream, Refusal::Protocol).await;
            return Err(error.into());
        }
        hello => hello?,
    };
    let (peer, incarnation, their_nonce, hidden, max_message) = match hello {
        WireMessage::Hello(hello) => {
            let Hello {
                version,
                node,
                incarnation,
                nonce,
                hidden,
                max_message,
            } = *hello;
            if version != PROTOCOL_VERSION {
                let reason = Refusal::Version {
                    ours: PROTOCOL_VERSION,
                    theirs: version,
                };
                return Err(refuse(stream, reason).await);
            }
            match node.parse::<NodeId>() {
                Ok(peer) => (peer, incarnation, nonce, hidden, max_message),
                Err(error) => {
                    let _ = refuse(stream, Refusal::Protocol).await;
                    return Err(error.into());
                }
            }
        }
        _ => return Err(refuse(stream, Refusal::Protocol).await),
    };
    if peer == *local.id {
        // Before the refusal is sent, so that a dial of this node's own knows it by then.
        own(&their_nonce);
        return Err(refuse(stream, Refusal::DuplicateNode).await);
    }
    if let Err(reason) = admit(&peer, incarnation) {
        return Err(refuse(stream, reason).await);
    }
    hold.await;
    let me = local.identity();
    let them = identity(peer.as_str(), incarnation, hidden, max_message);
    let my_nonce = nonce();
    send(
        stream,
        &WireMessage::Challenge(Box::new(Challenge {
            node: local.id.as_str().to_owned(),
            incarnation: local.incarnation,
            nonce: my_nonce,
            proof: sign(local.secret, b"challenge", &their_nonce, &them, &me),
            hidden: local.hidden,
            max_message: local.max_message,
        })),
    )
    .await?;
    match wire::read_message(stream, HANDSHAKE_FRAME_LIMIT, &mut buffer).await? {
        WireMessage::Proof { proof } => {
            if !verify(local.secret, b"proof", &my_nonce, &me, &them, &proof) {
                return Err(refuse(stream, Refusal::Authentication).await);
            }
        }
        WireMessage::Refused { reason } => return Err(HandshakeError::RefusedByPeer(reason)),
        _ => return Err(refuse(stream, Refusal::Protocol).await),
    }
    if let Err(reason) = confirm(&peer, incarnation) {
        return Err(refuse(stream, reason).await);
    }
    send(stream, &WireMessage::Welcome).await?;
    Ok(Established {
        peer,
        incarnation,
        hidden,
        max_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_only_with_the_same_secret_nonce_and_ids() {
        let nonce = [7u8; 32];
        let tag = sign(b"secret", b"proof", &nonce, "a@h:1", "b@h:2");
        assert!(verify(b"secret", b"proof", &nonce, "a@h:1", "b@h:2", &tag));
        assert!(!verify(b"other", b"proof", &nonce, "a@h:1", "b@h:2", &tag));
        assert!(!verify(
            b"secret", b"proof", &[8u8; 32], "a@h:1", "b@h:2", &tag
        ));
        assert!(!verify(b"secret", b"proof", &nonce, "b@h:2", "a@h:1", &tag));
        assert!(!verify(
            b"secret",
            b"challenge",
            &nonce,
            "a@h:1",
            "b@h:2",
            &tag
        ));
    }
}

/// Property tests: whatever a peer sends during the handshake, it ends in an error or an
/// established connection, never a panic.
#[cfg(test)]
mod fuzz {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_lite::{AsyncRead, AsyncWrite};
    use proptest::prelude::*;

    use super::*;

    /// A stream that reads from fixed bytes and swallows what is written.
    struct Scripted {
        input: Vec<u8>,
        at: usize,
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.input.len() - self.at);
            let at = self.at;
            buf[..n].copy_from_slice(&self.input[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn framed(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_either_side(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
            raw in any::<bool>(),
        ) {
            let id: NodeId = "me@127.0.0.1:1".parse().unwrap();
            let local = Local { id: &id, incarnation: 1, secret: b"secret", hidden: false, max_message: 1 << 20 };
            let input = if raw { chunks.concat() } else { framed(&chunks) };
            let mut stream = Scripted { input: input.clone(), at: 0 };
            let accepted = smol::block_on(accept(&mut stream, &local, |_| {}, |_, _| Ok(()), async {}, |_, _| Ok(())));
            // Random bytes cannot carry a valid proof of the secret.
            prop_assert!(accepted.is_err());
            let mut stream = Scripted { input, at: 0 };
            let connected = smol::block_on(connect(&mut stream, &local, nonce(), None, |_| Ok(())));
            prop_assert!(connected.is_err());
        }
    }
}
