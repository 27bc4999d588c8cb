//! A raw client of the wire protocol, written independently of noex's implementation from
//! the protocol's description, to send what a well-behaved node never would.

use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hmac::{Hmac, KeyInit, Mac};
use noex::{ExitReason, Node, NodeId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::within;

/// The protocol version of this build.
pub const PROTOCOL_VERSION: u16 = 12;

/// The largest message this client says it takes, in its hello.
pub const MAX_MESSAGE: u64 = 256 << 20;

/// The index of the first message kind `Wire` does not model (signals, spawns, the global
/// registry): frames of those kinds are skipped by [`Raw::receive_with_payload`].
const UNMODELLED: u8 = 15;

/// The protocol's message enum, variant for variant (postcard encodes a variant as its
/// index, so the order is the protocol's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Wire {
    Hello {
        version: u16,
        node: String,
        incarnation: u64,
        nonce: [u8; 32],
        hidden: bool,
        max_message: u64,
    },
    Challenge {
        node: String,
        incarnation: u64,
        nonce: [u8; 32],
        proof: [u8; 32],
        hidden: bool,
        max_message: u64,
    },
    Proof {
        proof: [u8; 32],
    },
    Welcome,
    Refused {
        reason: Refusal,
    },
    Heartbeat {
        process_count: u64,
        uptime_ms: u64,
        stamp_us: u64,
        echo_us: u64,
        held_us: u64,
    },
    Members {
        nodes: Vec<String>,
    },
    Goodbye,
    /// Followed by the request, encoded by the behaviour's codec.
    Call {
        id: u64,
        to: Address,
        behavior: u32,
        timeout_ms: u64,
    },
    Reply {
        id: u64,
        outcome: Outcome,
    },
    Cast {
        to: Address,
        behavior: u32,
    },
    Info {
        to: Address,
        behavior: u32,
    },
    Stop {
        id: u64,
        to: Address,
        reason: ExitReason,
        grace_ms: Option<u64>,
    },
    /// Followed by the piece.
    Fragment {
        id: u64,
        last: bool,
        size: u64,
    },
    FragmentAck {
        bytes: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Refusal {
    Version {
        ours: u16,
        theirs: u16,
    },
    Authentication,
    DuplicateNode,
    AlreadyConnected {
        node: String,
    },
    Protocol,
    ShuttingDown,
    CertificateName {
        expected: String,
        presented: Vec<String>,
    },
    IdInUse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Address {
    Pid { serial: u64 },
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Reply,
    NoProc,
    Exited(ExitReason),
    WrongBehavior { found: String },
    Failed(String),
}

/// One frame: a message and the bytes after it (its payload, for the kinds with one).
pub fn frame(message: &Wire, payload: &[u8]) -> Vec<u8> {
    let mut body = postcard::to_allocvec(message).unwrap();
    body.extend_from_slice(payload);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

pub fn proof(secret: &[u8], label: &[u8], nonce: &[u8; 32], first: &str, second: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(b"noex/2 ");
    mac.update(label);
    mac.update(nonce);
    for id in [first, second] {
        mac.update(&(id.len() as u32).to_be_bytes());
        mac.update(id.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// What a proof binds of a node: its id, incarnation, whether it is hidden, and the largest
/// message it takes.
pub fn identity(id: &str, incarnation: u64, hidden: bool, max_message: u64) -> String {
    format!("{id} {incarnation} {} {max_message}", u8::from(hidden))
}

fn id(node: &Node) -> NodeId {
    node.local_node_id().unwrap().clone()
}

/// A connection to a node, speaking the protocol by hand.
pub struct Raw {
    pub stream: TcpStream,
    pub name: String,
}

impl Raw {
    pub async fn connect(node: &Node) -> Raw {
        let stream = TcpStream::connect(id(node).address()).await.unwrap();
        let port = stream.local_addr().unwrap().port();
        Raw {
            stream,
            name: format!("raw@127.0.0.1:{port}"),
        }
    }

    /// Connects and completes the handshake with the tests' secret.
    pub async fn join(node: &Node) -> Raw {
        let mut raw = Raw::connect(node).await;
        assert_eq!(
            raw.handshake(node, b"test secret").await,
            Some(Wire::Welcome)
        );
        raw
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The node may already have hung up; that is what some tests want.
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    pub async fn send(&mut self, message: &Wire) {
        self.send_bytes(&frame(message, &[])).await;
    }

    /// The next frame's message and payload; `None` if the connection ended or the frame
    /// does not decode.
    pub async fn receive_with_payload(&mut self) -> Option<(Wire, Vec<u8>)> {
        loop {
            let mut prefix = [0u8; 4];
            within("a frame", self.stream.read_exact(&mut prefix))
                .await
                .ok()?;
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            within("a frame", self.stream.read_exact(&mut body))
                .await
                .ok()?;
            // A kind this client does not model (the node's global table, sent at connect,
            // say): not what a test waits for.
            if body
                .first()
                .is_some_and(|&kind| (UNMODELLED..0x80).contains(&kind))
            {
                continue;
            }
            let (message, rest) = postcard::take_from_bytes::<Wire>(&body).ok()?;
            return Some((message, rest.to_vec()));
        }
    }

    pub async fn receive(&mut self) -> Option<Wire> {
        self.receive_with_payload()
            .await
            .map(|(message, _)| message)
    }

    /// Waits until the node closes the connection.
    pub async fn closed(&mut self) {
        let mut rest = Vec::new();
        within(
            "the connection to close",
            self.stream.read_to_end(&mut rest),
        )
        .await
        .ok();
    }

    pub fn hello(&self, version: u16) -> Wire {
        Wire::Hello {
            version,
            node: self.name.clone(),
            incarnation: 7,
            nonce: [1; 32],
            hidden: false,
            max_message: MAX_MESSAGE,
        }
    }

    /// Completes a handshake with `secret`; returns the node's answer to the proof.
    pub async fn handshake(&mut self, node: &Node, secret: &[u8]) -> Option<Wire> {
        self.handshake_sent(node, secret, self.hello(PROTOCOL_VERSION))
            .await
    }

    /// As [`handshake`](Self::handshake), sending `hello`: the proof binds what this
    /// client's own hello says, as if `hello` were it changed on the way.
    pub async fn handshake_sent(
        &mut self,
        node: &Node,
        secret: &[u8],
        hello: Wire,
    ) -> Option<Wire> {
        let changed = hello != self.hello(PROTOCOL_VERSION);
        self.send(&hello).await;
        let Some(Wire::Challenge {
            nonce,
            proof: theirs,
            incarnation,
            hidden,
            max_message,
            ..
        }) = self.receive().await
        else {
            panic!("expected a challenge");
        };
        // What a proof binds of each node: id, incarnation, hidden, largest message taken
        // (this client's hello says 7, not hidden, `MAX_MESSAGE`).
        let node_id = identity(&id(node).to_string(), incarnation, hidden, max_message);
        let me = identity(&self.name, 7, false, MAX_MESSAGE);
        if !changed {
            assert_eq!(
                theirs,
                proof(b"test secret", b"challenge", &[1; 32], &me, &node_id),
                "the node proves it knows the secret"
            );
        }
        let mine = proof(secret, b"proof", &nonce, &node_id, &me);
        self.send(&Wire::Proof { proof: mine }).await;
        self.receive().await
    }

    /// The accepting side, over a connection a node dialled: reads its hello and answers
    /// with a challenge under this client's name, proving `secret`; returns the node's
    /// answer (its proof, or a refusal).
    pub async fn challenge(&mut self, secret: &[u8]) -> Option<Wire> {
        let Some(Wire::Hello {
            node,
            incarnation,
            nonce,
            hidden,
            max_message,
            ..
        }) = self.receive().await
        else {
            panic!("expected a hello");
        };
        let dialler = identity(&node, incarnation, hidden, max_message);
        let me = identity(&self.name, 7, false, MAX_MESSAGE);
        self.send(&Wire::Challenge {
            node: self.name.clone(),
            incarnation: 7,
            nonce: [2; 32],
            proof: proof(secret, b"challenge", &nonce, &dialler, &me),
            hidden: false,
            max_message: MAX_MESSAGE,
        })
        .await;
        self.receive().await
    }
}
