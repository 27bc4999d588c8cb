//! Clusters: membership, node events, remote calls and casts, location transparency.

mod calls;
#[path = "../common/mod.rs"]
mod common;
use common::id;
mod config;
mod membership;
mod payloads;

use std::time::Duration;

use common::{
    cluster_config, eventually, next_event, run_blocking, shutdown_all, start_cluster,
    wait_connected, within,
};
use noex::{
    behavior, CallError, ClusterConfig, ClusterEvent, ConfigError, Ctx, ExitReason, LookupError,
    Node, NodeDownReason, ReplyTo, SendError, ServerRef, SpawnOptions, StartError,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    seq: u64,
    text: String,
}

/// A server that keeps what it is sent, in order.
#[behavior(name = "recorder")]
pub struct Recorder {
    notes: Vec<Note>,
    waiting: Option<ReplyTo<u64>>,
}

#[behavior]
impl Recorder {
    #[init]
    fn init() -> Self {
        Recorder {
            notes: Vec::new(),
            waiting: None,
        }
    }

    #[cast]
    fn record(&mut self, note: Note) {
        self.notes.push(note);
    }

    #[call]
    fn notes(&self) -> Vec<Note> {
        self.notes.clone()
    }

    #[call]
    fn count(&self) -> usize {
        self.notes.len()
    }

    #[call]
    fn echo(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    #[call]
    fn fail(&self, text: String) -> Result<u64, String> {
        Err(text)
    }

    /// Never answers (until the process ends).
    #[call]
    fn hang(&mut self, reply: ReplyTo<u64>) {
        self.waiting = Some(reply);
    }

    #[call]
    fn crash(&self) -> u64 {
        panic!("asked to crash")
    }

    #[call]
    fn node_name(&self, ctx: &mut Ctx<Self>) -> String {
        ctx.pid().node().to_owned()
    }
}

/// Another behaviour, to be addressed under the wrong type.
#[behavior(name = "other")]
pub struct Other;

#[behavior]
impl Other {
    #[init]
    fn init() -> Self {
        Other
    }

    #[call]
    fn ping(&self) -> u8 {
        1
    }
}

/// A local process that forwards notes to a recorder: a sender of its own, so the
/// connection keeps its messages in order among themselves only.
#[behavior]
pub struct Forwarder {
    to: ServerRef<Recorder>,
}

#[behavior(local)]
impl Forwarder {
    #[init]
    fn init(to: ServerRef<Recorder>) -> Self {
        Forwarder { to }
    }

    #[cast]
    fn forward(&self, note: Note) {
        self.to.record(note).unwrap();
    }
}

/// A server whose handler can be kept busy.
#[behavior(name = "napper")]
pub struct Napper;

#[behavior]
impl Napper {
    #[init]
    fn init() -> Self {
        Napper
    }

    #[call]
    async fn nap(&self, millis: u64) {
        smol::Timer::after(Duration::from_millis(millis)).await;
    }

    #[call]
    fn size(&self, bytes: Vec<u8>) -> usize {
        bytes.len()
    }
}

/// Two connected nodes whose heartbeats allow 20 s of silence: encoding a large message in
/// a debug build takes a while, and the tests that send one are not about timing.
async fn start_patient_pair() -> Vec<Node> {
    let config = |name: &str| {
        cluster_config(name).heartbeat(Duration::from_millis(200), Duration::from_secs(20))
    };
    let a = Node::start(config("a")).await.unwrap();
    let b = Node::start(config("b").seed(id(&a).to_string()))
        .await
        .unwrap();
    wait_connected(&a, 1).await;
    vec![a, b]
}

/// `count` recorders spawned on `b` from outside (so spread over its threads), as
/// references held on `a`.
async fn remote_recorders(a: &Node, b: &Node, count: usize) -> Vec<ServerRef<Recorder>> {
    let mut servers = Vec::new();
    for _ in 0..count {
        let server = b.spawn::<Recorder>(()).await.unwrap();
        servers.push(a.server_ref::<Recorder>(server.pid()).unwrap());
    }
    servers
}
