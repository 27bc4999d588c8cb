//! Runs of casts: the frames for one process that lie together in a connection's read
//! buffer are delivered together (see `dist::reader::run`). Whatever arrives together, each
//! process gets each of its messages once, in the order they were sent; a message for
//! another behaviour is dropped alone; and a process that has ended loses only its own.
//!
//! Each test writes all its frames at once, as a node's writer does, so that they reach
//! the node's reader together.

mod common;

use common::raw::{frame, Address, Raw, Wire};
use common::{cluster_config, eventually, run_blocking, within};
use noex::{Ctx, ExitReason, GenServer, Info, Node, Pid, ReplyTo, ServerRef};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Records the numbers cast to it, and those sent to it (as infos) negated.
struct Log(Vec<i64>);

#[noex::remote(name = "log")]
impl GenServer for Log {
    type Args = ();
    type Call = ();
    type Reply = Vec<i64>;
    type Cast = i64;
    type Info = i64;
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Log(Vec::new()))
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<Vec<i64>>, _: &mut Ctx<Self>) {
        reply.send(self.0.clone());
    }

    async fn handle_cast(&mut self, n: i64, _: &mut Ctx<Self>) {
        if n == HOLD {
            // Handled while the test holds the gate: the messages after it wait in the
            // mailbox meanwhile.
            let gate = GATE.lock().unwrap().take().expect("a gate to wait at");
            HELD.store(true, Ordering::Release);
            let _ = gate.recv().await;
        }
        self.0.push(n);
    }

    async fn handle_info(&mut self, info: Info<i64>, _: &mut Ctx<Self>) {
        if let Info::Message(n) = info {
            self.0.push(-n);
        }
    }
}

const LOG: u32 = noex::__private::tag("log", "");

/// A cast that makes `log` wait at [`GATE`] (one test uses it).
const HOLD: i64 = i64::MIN;
static GATE: Mutex<Option<async_channel::Receiver<()>>> = Mutex::new(None);
/// Set once `log` waits at the gate.
static HELD: AtomicBool = AtomicBool::new(false);

/// A frame casting `n` to `log` — or, with `info`, sending it — expecting behaviour
/// `behavior`.
fn to_log(log: &ServerRef<Log>, n: i64, info: bool, behavior: u32) -> Vec<u8> {
    let to = Address::Pid {
        serial: log.pid().serial(),
    };
    let message = if info {
        Wire::Info { to, behavior }
    } else {
        Wire::Cast { to, behavior }
    };
    frame(&message, &postcard::to_allocvec(&n).unwrap())
}

async fn logs(node: &Node, count: usize) -> Vec<ServerRef<Log>> {
    let mut logs = Vec::new();
    for _ in 0..count {
        logs.push(node.spawn::<Log>(()).await.unwrap());
    }
    logs
}

/// What `log` has recorded, once it has recorded `len` numbers.
async fn recorded(log: &ServerRef<Log>, len: usize) -> Vec<i64> {
    at_least(len, || log.call(())).await
}

/// What `ask` answers, once it answers at least `len` things (the process running on).
async fn at_least<T, F>(len: usize, ask: impl Fn() -> F) -> Vec<T>
where
    F: std::future::Future<Output = Result<Vec<T>, noex::CallError>>,
{
    within("the messages to be handled", async {
        loop {
            let answer = ask().await.expect("the process runs on");
            if answer.len() >= len {
                return answer;
            }
            smol::future::yield_now().await;
        }
    })
    .await
}

#[test]
fn a_run_of_casts_and_infos_for_one_process_arrives_in_order() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let [log] = <[_; 1]>::try_from(logs(&node, 1).await).ok().unwrap();
        let mut raw = Raw::join(&node).await;
        // More than a run holds, casts and infos mixed, and one message for another
        // behaviour in the middle.
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for n in 1..=300 {
            let info = n % 3 == 0;
            if n == 150 {
                bytes.extend(to_log(&log, n, info, LOG ^ 1));
                continue;
            }
            bytes.extend(to_log(&log, n, info, LOG));
            expected.push(if info { -n } else { n });
        }
        raw.send_bytes(&bytes).await;
        assert_eq!(recorded(&log, expected.len()).await, expected);
        assert_eq!(node.connected_nodes().len(), 1, "the connection stays up");
        node.shutdown();
    });
}

#[test]
fn interleaved_casts_for_several_processes_each_arrive_in_order() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let logs = logs(&node, 3).await;
        let mut raw = Raw::join(&node).await;
        // Runs of every length from 1 to 7, to one process after another.
        let mut bytes = Vec::new();
        let mut expected = vec![Vec::new(); logs.len()];
        let mut n = 0;
        for round in 0..60 {
            let which = (round * 7 + round / 3) % logs.len();
            for _ in 0..=(round % 7) {
                n += 1;
                bytes.extend(to_log(&logs[which], n, false, LOG));
                expected[which].push(n);
            }
        }
        raw.send_bytes(&bytes).await;
        for (log, expected) in logs.iter().zip(expected) {
            assert_eq!(recorded(log, expected.len()).await, expected);
        }
        node.shutdown();
    });
}

#[test]
fn casts_to_a_process_that_ended_are_dropped_and_the_others_delivered() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let logs = logs(&node, 2).await;
        let (ended, alive) = (&logs[0], &logs[1]);
        let mut raw = Raw::join(&node).await;
        // The connection has delivered to the process before it ends (the reader
        // remembers it).
        raw.send_bytes(&to_log(ended, 0, false, LOG)).await;
        recorded(ended, 1).await;
        ended.stop(ExitReason::Normal).await.unwrap();
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for n in 1..=40 {
            let to = if n % 10 < 4 { ended } else { alive };
            bytes.extend(to_log(to, n, false, LOG));
            if std::ptr::eq(to, alive) {
                expected.push(n);
            }
        }
        raw.send_bytes(&bytes).await;
        assert_eq!(recorded(alive, expected.len()).await, expected);
        assert_eq!(node.connected_nodes().len(), 1, "the connection stays up");
        node.shutdown();
    });
}

#[test]
fn casts_before_an_oversized_frame_are_delivered_before_the_connection_ends() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let [log] = <[_; 1]>::try_from(logs(&node, 1).await).ok().unwrap();
        let mut raw = Raw::join(&node).await;
        let mut bytes = Vec::new();
        for n in 1..=10 {
            bytes.extend(to_log(&log, n, false, LOG));
        }
        // A length prefix far past the node's maximum frame size: a protocol error.
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        raw.send_bytes(&bytes).await;
        raw.closed().await;
        assert_eq!(recorded(&log, 10).await, (1..=10).collect::<Vec<_>>());
        node.shutdown();
    });
}

/// A frame to `log` whose payload does not decode as its cast type (no bytes at all).
fn undecodable(log: &ServerRef<Log>) -> Vec<u8> {
    let to = Address::Pid {
        serial: log.pid().serial(),
    };
    frame(&Wire::Cast { to, behavior: LOG }, &[])
}

/// Once a run with undecodable messages is handled: every message the process took was
/// counted once, the dropped ones too (its mailbox reads empty), and the connection stayed
/// up.
async fn all_taken_and_connected(node: &Node, pid: &Pid) {
    eventually("the mailbox to read empty", || {
        node.process_info(pid)
            .is_some_and(|info| info.mailbox_len == 0)
    })
    .await;
    assert_eq!(node.connected_nodes().len(), 1, "the connection stays up");
}

/// Casts 1 to 40 to `log` in one run, the multiples of 13 undecodable.
fn run_of_forty(log: &ServerRef<Log>) -> Vec<u8> {
    (1..=40)
        .flat_map(|n| match n % 13 {
            0 => undecodable(log),
            _ => to_log(log, n, false, LOG),
        })
        .collect()
}

#[test]
fn an_undecodable_message_in_a_long_run_is_dropped_alone() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let [log] = <[_; 1]>::try_from(logs(&node, 1).await).ok().unwrap();
        let mut raw = Raw::join(&node).await;
        // Long runs are queued still encoded and decoded one by one as handled.
        let bytes = run_of_forty(&log);
        raw.send_bytes(&bytes).await;
        let expected: Vec<i64> = (1..=40).filter(|n| n % 13 != 0).collect();
        assert_eq!(recorded(&log, expected.len()).await, expected);
        all_taken_and_connected(&node, log.pid()).await;
        node.shutdown();
    });
}

#[test]
fn the_messages_of_a_run_waiting_in_a_mailbox_are_each_counted_in_its_length() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let [log] = <[_; 1]>::try_from(logs(&node, 1).await).ok().unwrap();
        let (release, gate) = async_channel::bounded(1);
        *GATE.lock().unwrap() = Some(gate);
        let mut raw = Raw::join(&node).await;
        raw.send_bytes(&to_log(&log, HOLD, false, LOG)).await;
        eventually("the log to wait at the gate", || {
            HELD.load(Ordering::Acquire)
        })
        .await;
        let mut bytes = Vec::new();
        for n in 1..=20 {
            bytes.extend(to_log(&log, n, false, LOG));
        }
        raw.send_bytes(&bytes).await;
        let pid = log.pid().clone();
        let len = || node.process_info(&pid).map(|info| info.mailbox_len);
        within("the run to be counted", async {
            while len() != Some(20) {
                assert!(len() < Some(20), "counted {:?} of 20", len());
                smol::Timer::after(std::time::Duration::from_millis(1)).await;
            }
        })
        .await;
        release.send(()).await.unwrap();
        let expected: Vec<i64> = std::iter::once(HOLD).chain(1..=20).collect();
        assert_eq!(recorded(&log, expected.len()).await, expected);
        assert_eq!(len(), Some(0));
        node.shutdown();
    });
}

/// `Log` as a `#[behavior]`: its casts are decoded by the generated (tagged) decoder, and
/// its cast handler is a plain `fn`, run as soon as each cast of a run is decoded.
#[noex::behavior(name = "tagged-log")]
struct TaggedLog(Vec<i64>);

#[noex::behavior]
impl TaggedLog {
    #[init]
    fn init() -> Self {
        TaggedLog(Vec::new())
    }

    #[cast]
    fn note(&mut self, n: i64) {
        self.0.push(n);
    }

    #[call]
    fn notes(&self) -> Vec<i64> {
        self.0.clone()
    }
}

#[test]
fn a_long_run_to_a_behavior_is_handled_in_order_and_an_undecodable_cast_dropped_alone() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let log = node.spawn::<TaggedLog>(()).await.unwrap();
        let mut raw = Raw::join(&node).await;
        let behavior = noex::__private::tag("tagged-log", "");
        let mut bytes = Vec::new();
        for n in 1..=40 {
            // No bytes at all: not a cast of the behaviour.
            let payload = match n % 13 {
                0 => Vec::new(),
                _ => postcard::to_allocvec(&__NoexTaggedLogCast::Note(n)).unwrap(),
            };
            let to = Address::Pid {
                serial: log.pid().serial(),
            };
            bytes.extend(frame(&Wire::Cast { to, behavior }, &payload));
        }
        raw.send_bytes(&bytes).await;
        let expected: Vec<i64> = (1..=40).filter(|n| n % 13 != 0).collect();
        let notes = at_least(expected.len(), || log.notes()).await;
        assert_eq!(notes, expected);
        all_taken_and_connected(&node, log.pid()).await;
        node.shutdown();
    });
}

#[test]
fn undecodable_casts_the_process_decodes_itself_are_counted_undelivered() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let [log] = <[_; 1]>::try_from(logs(&node, 1).await).ok().unwrap();
        let mut raw = Raw::join(&node).await;
        // A long run (queued encoded, decoded as handled) with three undecodable casts...
        let mut bytes = run_of_forty(&log);
        // ...and a large one (decoded on the blocking pool), in fragments: no number.
        let to = Address::Pid {
            serial: log.pid().serial(),
        };
        let mut body = postcard::to_allocvec(&Wire::Cast { to, behavior: LOG }).unwrap();
        body.resize(body.len() + (1 << 20), 0xff);
        const PIECE: usize = 64 * 1024;
        for (i, piece) in body.chunks(PIECE).enumerate() {
            let fragment = Wire::Fragment {
                id: 1,
                last: (i + 1) * PIECE >= body.len(),
                size: body.len() as u64,
            };
            bytes.extend(frame(&fragment, piece));
        }
        bytes.extend(to_log(&log, 41, false, LOG));
        raw.send_bytes(&bytes).await;
        let mut expected: Vec<i64> = (1..=40).filter(|n| n % 13 != 0).collect();
        expected.push(41);
        assert_eq!(recorded(&log, expected.len()).await, expected);
        eventually("the four undecodable casts to be counted", || {
            node.cluster_stats().messages_undelivered == 4
        })
        .await;
        node.shutdown();
    });
}

/// A number whose decoding panics on 13 (a `Deserialize` impl with an assertion, say).
#[derive(Debug, serde::Serialize)]
struct Brittle(u8);

impl<'de> serde::Deserialize<'de> for Brittle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let byte = u8::deserialize(deserializer)?;
        assert_ne!(byte, 13, "a byte this test's type refuses with a panic");
        Ok(Brittle(byte))
    }
}

#[noex::behavior(name = "brittle-log")]
struct BrittleLog(Vec<u8>);

#[noex::behavior]
impl BrittleLog {
    #[init]
    fn init() -> Self {
        BrittleLog(Vec::new())
    }

    #[cast]
    fn note(&mut self, n: Brittle) {
        self.0.push(n.0);
    }

    #[call]
    fn notes(&self) -> Vec<u8> {
        self.0.clone()
    }
}

#[test]
fn a_cast_whose_decoding_panics_in_a_long_run_is_dropped_alone() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let log = node.spawn::<BrittleLog>(()).await.unwrap();
        let mut raw = Raw::join(&node).await;
        let behavior = noex::__private::tag("brittle-log", "");
        let to = Address::Pid {
            serial: log.pid().serial(),
        };
        // 13 and 26 decode with a panic; the run is long enough to be queued encoded.
        let bytes: Vec<u8> = (1..=40u8)
            .flat_map(|n| {
                let brittle = Brittle(if n % 13 == 0 { 13 } else { n });
                let payload = postcard::to_allocvec(&__NoexBrittleLogCast::Note(brittle));
                frame(
                    &Wire::Cast {
                        to: to.clone(),
                        behavior,
                    },
                    &payload.unwrap(),
                )
            })
            .collect();
        raw.send_bytes(&bytes).await;
        let expected: Vec<u8> = (1..=40).filter(|n| n % 13 != 0).collect();
        let notes = at_least(expected.len(), || log.notes()).await;
        assert_eq!(notes, expected);
        all_taken_and_connected(&node, log.pid()).await;
        node.shutdown();
    });
}
