//! Large messages sent to other nodes: encoded off the sender's scheduler thread, in the
//! sender's order.

mod common;

use std::time::Duration;

use common::gate::{Gate, GATE_LIMIT};
use common::{cluster_config, run_blocking, wait_connected, within};
use noex::{behavior, CallError, CodecStep, Node, ServerRef};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The gates of [`Gated`] values: [`CAST`]'s and [`REPLY`]'s.
static GATES: [Gate; 3] = [Gate::new(), Gate::new(), Gate::new()];
/// The gate a gated cast's encoding waits for.
const CAST: usize = 0;
/// The gate a gated reply's encoding waits for.
const REPLY: usize = 1;
/// The gate a gated request's encoding waits for.
const CALL: usize = 2;

/// A large message whose encoding, once its bytes are written, waits for gate `G`: an
/// encoding that outgrows the sender's thread's budget stops before it reaches the gate
/// there, and only the encoding on the blocking thread pool waits.
#[derive(Debug)]
pub struct Gated<const G: usize>(Vec<u8>);

impl<const G: usize> Serialize for Gated<G> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.0)?;
        GATES[G].wait();
        tuple.serialize_element(&0u8)?;
        tuple.end()
    }
}

impl<'de, const G: usize> Deserialize<'de> for Gated<G> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (bytes, _): (Vec<u8>, u8) = Deserialize::deserialize(deserializer)?;
        Ok(Gated(bytes))
    }
}

/// A large message whose encoding panics once its bytes are written: on the blocking
/// thread pool only (on the sender's thread it outgrows the budget first).
#[derive(Debug)]
pub struct Exploding(Vec<u8>);

impl Serialize for Exploding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.0)?;
        panic!("a message that panics as it encodes (as this test wants)");
    }
}

impl<'de> Deserialize<'de> for Exploding {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (bytes, _): (Vec<u8>, u8) = Deserialize::deserialize(deserializer)?;
        Ok(Exploding(bytes))
    }
}

/// Keeps what it is sent, in order.
#[behavior(name = "cluster-large-recorder")]
pub struct Recorder {
    seen: Vec<String>,
}

#[behavior]
impl Recorder {
    #[init]
    fn init() -> Self {
        Recorder { seen: Vec::new() }
    }

    #[cast]
    fn large(&mut self, gated: Gated<CAST>) {
        self.seen.push(format!("large of {}", gated.0.len()));
    }

    #[cast]
    fn explode(&mut self, exploding: Exploding) {
        self.seen
            .push(format!("exploding of {}", exploding.0.len()));
    }

    #[cast]
    fn note(&mut self, seq: u64) {
        self.seen.push(format!("note {seq}"));
    }

    #[call]
    fn gated(&self, gated: Gated<CALL>) -> usize {
        gated.0.len()
    }

    #[call]
    fn seen(&self) -> Vec<String> {
        self.seen.clone()
    }
}

/// A local process that sends a gated large message and a note after it.
#[behavior]
pub struct Sender {
    to: ServerRef<Recorder>,
}

#[behavior(local)]
impl Sender {
    #[init]
    fn init(to: ServerRef<Recorder>) -> Self {
        Sender { to }
    }

    #[cast]
    fn send_three(&self, size: usize) {
        self.to.note(0).unwrap();
        self.to.large(Gated::<CAST>(vec![7; size])).unwrap();
        self.to.note(1).unwrap();
    }
}

/// Another local process, on the sender's thread.
#[behavior]
pub struct Pinger;

#[behavior(local)]
impl Pinger {
    #[init]
    fn init() -> Self {
        Pinger
    }

    #[call]
    fn ping(&self) -> u8 {
        1
    }
}

/// Two connected nodes of one scheduler thread each.
async fn one_thread_pair() -> (Node, Node) {
    let config = |name: &str| {
        cluster_config(name)
            .threads(1)
            .heartbeat(Duration::from_millis(200), Duration::from_secs(20))
    };
    let a = Node::start(config("a")).await.unwrap();
    let seed = a.local_node_id().unwrap().to_string();
    let b = Node::start(config("b").seed(seed)).await.unwrap();
    wait_connected(&a, 1).await;
    (a, b)
}

#[test]
fn a_large_message_is_encoded_off_its_senders_thread_and_keeps_its_place() {
    run_blocking(async {
        // One scheduler thread on `a`: the sender and the pinger share it.
        let (a, b) = one_thread_pair().await;
        let recorder = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(recorder.pid()).unwrap();
        let sender = a.spawn::<Sender>(remote.clone()).await.unwrap();
        let pinger = a.spawn::<Pinger>(()).await.unwrap();
        // 2 MiB: past what is encoded on the sender's thread.
        let size = 2 << 20;
        sender.send_three(size).unwrap();
        // The encoding waits at the gate; the sender's thread is not held up by it.
        let pinged = pinger.ping_with_timeout(Duration::from_secs(10)).await;
        GATES[CAST].open();
        assert_eq!(
            pinged,
            Ok(1),
            "the sender's thread ran while the message encoded"
        );
        let arrived = async {
            loop {
                let seen = remote.seen().await.unwrap();
                if seen.len() == 3 {
                    return seen;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        let seen = within("the three messages", arrived).await;
        let large = format!("large of {size}");
        assert_eq!(seen, ["note 0", large.as_str(), "note 1"]);
        a.shutdown();
        b.shutdown();
    });
}

/// Answers with large replies.
#[behavior(name = "cluster-large-replier")]
pub struct Replier;

#[behavior]
impl Replier {
    #[init]
    fn init() -> Self {
        Replier
    }

    #[call]
    fn large(&self, size: usize) -> Gated<REPLY> {
        Gated(vec![9; size])
    }

    #[call]
    fn explode(&self, size: usize) -> Exploding {
        Exploding(vec![9; size])
    }
}

#[test]
fn a_large_reply_is_encoded_off_its_servers_thread() {
    run_blocking(async {
        // One scheduler thread on `b`: the replier and the pinger share it.
        let (a, b) = one_thread_pair().await;
        let replier = b.spawn::<Replier>(()).await.unwrap();
        let pinger = b.spawn::<Pinger>(()).await.unwrap();
        let remote = a.server_ref::<Replier>(replier.pid()).unwrap();
        // 2 MiB: past what is encoded on the server's thread.
        let size = 2 << 20;
        let call = a.spawn_task(async move { remote.large_with_timeout(size, GATE_LIMIT).await });
        // The reply's encoding waits at the gate; the server's thread is not held up by it.
        common::eventually("the reply's encoding at the gate", || {
            GATES[REPLY].reached()
        })
        .await;
        let pinged = pinger.ping_with_timeout(Duration::from_secs(10)).await;
        GATES[REPLY].open();
        assert_eq!(
            pinged,
            Ok(1),
            "the server's thread ran while the reply encoded"
        );
        let reply = within("the large reply", call).await.unwrap();
        assert_eq!(reply.0.len(), size);
        assert!(reply.0.iter().all(|&byte| byte == 9));
        a.shutdown();
        b.shutdown();
    });
}

/// Takes byte buffers and counts them.
#[behavior(name = "cluster-large-sink")]
pub struct Sink {
    taken: usize,
}

#[behavior]
impl Sink {
    #[init]
    fn init() -> Self {
        Sink { taken: 0 }
    }

    #[cast]
    fn take(&mut self, bytes: Vec<u8>) {
        self.taken += usize::from(!bytes.is_empty());
    }

    #[call]
    fn taken(&self) -> usize {
        self.taken
    }
}

/// Two connected nodes, b with this test's behaviours registered.
async fn two_nodes() -> (Node, Node) {
    let mut nodes = common::start_cluster(2).await;
    let b = nodes.pop().unwrap();
    b.register_behaviors().unwrap();
    (nodes.pop().unwrap(), b)
}

#[test]
fn the_buffers_of_large_messages_are_kept_for_the_next_ones_then_released() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let sink = a
            .spawn_on::<Sink>(b.local_node_id().unwrap(), ())
            .await
            .unwrap();
        const SIZE: usize = 3 << 20;
        for round in 1..=3 {
            sink.take(vec![7; SIZE]).unwrap();
            within("the large message", async {
                while sink.taken().await.unwrap() < round {
                    smol::Timer::after(Duration::from_millis(5)).await;
                }
            })
            .await;
            // The sender's frame and the receiver's reassembly buffer are kept; the same
            // ones serve the next message (at most two a node).
            for node in [&a, &b] {
                common::eventually("the buffer to be kept", || {
                    let kept = node.faults().spare_bytes();
                    (SIZE..=2 * (SIZE + (1 << 20))).contains(&kept)
                })
                .await;
            }
        }
        for node in [&a, &b] {
            common::eventually("the buffers to be released", || {
                node.faults().spare_bytes() == 0
            })
            .await;
        }
        a.shutdown();
        b.shutdown();
    });
}

/// Keeps the last `Bytes` it was sent.
#[behavior(name = "cluster-large-keeper")]
pub struct Keeper {
    kept: Option<noex::Bytes>,
}

#[behavior]
impl Keeper {
    #[init]
    fn init() -> Self {
        Keeper { kept: None }
    }

    #[cast]
    fn keep(&mut self, bytes: noex::Bytes) {
        self.kept = Some(bytes);
    }

    /// The length and a checksum of what it keeps.
    #[call]
    fn kept(&self) -> Option<(usize, u64)> {
        let bytes = self.kept.as_ref()?;
        Some((bytes.len(), bytes.iter().map(|&b| u64::from(b)).sum()))
    }

    #[call]
    fn release(&mut self) {
        self.kept = None;
    }
}

#[test]
fn large_bytes_arrive_as_a_view_of_the_buffer_they_were_received_in() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let keeper = a
            .spawn_on::<Keeper>(b.local_node_id().unwrap(), ())
            .await
            .unwrap();
        const SIZE: usize = 3 << 20;
        let payload: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let sum = payload.iter().map(|&b| u64::from(b)).sum::<u64>();
        keeper.keep(noex::Bytes::from(payload)).unwrap();
        let kept = within("the bytes to arrive", async {
            loop {
                if let Some(kept) = keeper.kept().await.unwrap() {
                    break kept;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert_eq!(kept, (SIZE, sum));
        // The sender lent its `Bytes` to the frame instead of copying it there: no frame
        // of that size went to its spare buffers once sent (a call after the last
        // fragment has the writer put away what it sent).
        keeper.kept().await.unwrap();
        assert!(
            a.faults().spare_bytes() < SIZE,
            "the sender copied the bytes"
        );
        // The receiving node's reassembly buffer is the `Bytes` it handed over: it is not
        // back among the spare buffers while the process keeps it...
        assert_eq!(b.faults().spare_bytes(), 0);
        // ...and is, once the process lets it go.
        keeper.release().await.unwrap();
        common::eventually("the buffer to come back", || {
            b.faults().spare_bytes() >= SIZE
        })
        .await;
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_buffer_kept_for_the_next_large_message_is_released_with_no_connection_left() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let local = b.spawn::<Keeper>(()).await.unwrap();
        let keeper = a.server_ref::<Keeper>(local.pid()).unwrap();
        const SIZE: usize = 3 << 20;
        keeper.keep(noex::Bytes::from(vec![7; SIZE])).unwrap();
        within("the bytes to arrive", async {
            while local.kept().await.unwrap().is_none() {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        // b's last connection ends while its process holds the reassembly buffer...
        a.shutdown();
        wait_connected(&b, 0).await;
        // ...which, let go, is kept for a while for the next large message...
        local.release().await.unwrap();
        common::eventually("the buffer to come back", || {
            b.faults().spare_bytes() >= SIZE
        })
        .await;
        // ...and then released, though no connection is left to look after it.
        common::eventually("the buffer to be released", || {
            b.faults().spare_bytes() == 0
        })
        .await;
        b.shutdown();
    });
}

#[test]
fn a_large_message_counts_as_one_message_sent_and_one_received() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let local = b.spawn::<Sink>(()).await.unwrap();
        let sink = a.server_ref::<Sink>(local.pid()).unwrap();
        let sent = || a.connected_nodes()[0].stats.messages_sent;
        let received = || b.connected_nodes()[0].stats.messages_received;
        // A call first: b has a's earlier messages counted once it has answered.
        assert_eq!(sink.taken().await, Ok(0));
        common::eventually("a's call to be counted", || sent() == received()).await;
        let (sent_before, received_before) = (sent(), received());
        // One message of many fragments (and heartbeats meanwhile: not user messages),
        // then calls until it has arrived.
        sink.take(vec![7; 4 << 20]).unwrap();
        let mut calls = 0;
        within("the large message", async {
            loop {
                calls += 1;
                if sink.taken().await.unwrap() == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        common::eventually("b to count what it received", || {
            received() - received_before == 1 + calls
        })
        .await;
        common::eventually("a to count what it sent as b did", || {
            sent() - sent_before == 1 + calls
        })
        .await;
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_large_message_whose_encoding_panics_is_dropped_and_holds_nothing_up() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let recorder = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(recorder.pid()).unwrap();
        // Its place was kept in the queue: given up, the sender's next messages go on.
        remote.explode(Exploding(vec![7; 2 << 20])).unwrap();
        remote.note(1).unwrap();
        let seen = within("the note after it", remote.seen()).await;
        assert_eq!(seen, Ok(vec!["note 1".to_owned()]));
        assert_eq!(a.connected_nodes()[0].stats.casts_dropped, 1);
        // A reply that panics as it encodes is answered with the failure, at once.
        let replier = b.spawn::<Replier>(()).await.unwrap();
        let remote = a.server_ref::<Replier>(replier.pid()).unwrap();
        let answered = within("the failed reply", remote.explode(2 << 20)).await;
        assert!(
            matches!(
                answered,
                Err(CallError::Codec {
                    step: CodecStep::EncodeReply,
                    ..
                })
            ),
            "{answered:?}"
        );
        // Its place in b's queue was given up too: b's next large message goes.
        let local = a.spawn::<Sink>(()).await.unwrap();
        let sink = b.server_ref::<Sink>(local.pid()).unwrap();
        sink.take(vec![7; 3 << 20]).unwrap();
        within("b's next large message", async {
            while local.taken().await != Ok(1) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_call_whose_request_takes_long_to_encode_times_out_in_time() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let recorder = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(recorder.pid()).unwrap();
        // Its encoding, off the caller's thread, waits at the gate: the call's timeout
        // runs meanwhile.
        let timeout = Duration::from_millis(300);
        let call = remote.gated_with_timeout(Gated(vec![7; 2 << 20]), timeout);
        let answered = within("the call to time out", call).await;
        GATES[CALL].open();
        assert_eq!(answered, Err(noex::CallError::Timeout { timeout }));
        assert_eq!(a.connected_nodes()[0].stats.calls_timed_out, 1);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_reply_whose_encoding_panics_is_answered_with_the_failure_at_once() {
    run_blocking(async {
        let (a, b) = two_nodes().await;
        let replier = b.spawn::<Replier>(()).await.unwrap();
        let remote = a.server_ref::<Replier>(replier.pid()).unwrap();
        // A small reply, encoded on the server's thread.
        let call = remote.explode_with_timeout(10, Duration::from_secs(60));
        let answered = within("the failed reply", call).await;
        assert!(
            matches!(
                answered,
                Err(CallError::Codec {
                    step: CodecStep::EncodeReply,
                    ..
                })
            ),
            "{answered:?}"
        );
        a.shutdown();
        b.shutdown();
    });
}
