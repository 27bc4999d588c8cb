//! The processes of the ordering tests: a [`Caller`] that records what it is sent, and a
//! [`Talker`] that sends it large messages, some held in their sender's queue by a
//! [`Gated`] value.

use std::time::Duration;

use noex::{behavior, Ctx, ExitReason, Info, MonitorRef, Pid};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::gate::Gate;

/// One gate per test (the tests of `ordering.rs` run in parallel).
pub static GATES: [Gate; 6] = [
    Gate::new(),
    Gate::new(),
    Gate::new(),
    Gate::new(),
    Gate::new(),
    Gate::new(),
];

/// A large message whose encoding, once its bytes are written, waits for the gate named
/// by its second field: it keeps a place in its sender's queue until the gate opens.
#[derive(Debug)]
pub struct Gated(Vec<u8>, usize);

impl Serialize for Gated {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.0)?;
        // Only past the sender thread's budget, on the blocking pool (the attempt on the
        // sender's thread stops before, its buffer full).
        GATES[self.1].wait();
        tuple.serialize_element(&self.1)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Gated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (bytes, gate): (Vec<u8>, usize) = Deserialize::deserialize(deserializer)?;
        Ok(Gated(bytes, gate))
    }
}

/// 2 MiB: encoded apart from the sender's thread, and sent in fragments.
pub const LARGE: usize = 2 << 20;

/// Records, in order, what it is sent and what its calls to others came back with.
#[behavior(name = "ordering-caller")]
pub struct Caller {
    seen: Vec<String>,
}

#[behavior]
impl Caller {
    #[init]
    fn init() -> Self {
        Caller { seen: Vec::new() }
    }

    #[cast]
    fn large(&mut self, gated: Gated) {
        self.seen.push(format!("large of {}", gated.0.len()));
    }

    #[cast]
    fn note(&mut self, note: String) {
        self.seen.push(note);
    }

    #[call]
    fn seen(&self) -> Vec<String> {
        self.seen.clone()
    }

    /// Pings `target` and then casts itself a note of the outcome: the note comes after
    /// whatever the target sent this process before the answer.
    #[call]
    async fn ping_then_note(&mut self, target: Pid, ctx: &mut Ctx<Self>) -> String {
        let me = ctx.server_ref();
        let target = ctx.node().server_ref::<Talker>(&target).unwrap();
        let outcome = format!("ping: {:?}", target.ping().await.map_err(|e| e.to_string()));
        me.note(outcome.clone()).unwrap();
        outcome
    }

    /// Calls `target`, which casts this process a long note before it replies, and then
    /// casts itself a note of the reply.
    #[call]
    async fn call_long_then_note(
        &mut self,
        target: Pid,
        len: usize,
        ctx: &mut Ctx<Self>,
    ) -> String {
        let me = ctx.server_ref();
        let talker = ctx.node().server_ref::<Talker>(&target).unwrap();
        let reply = talker.long_note_then_reply(me.pid().clone(), len).await;
        let outcome = format!("reply: {reply:?}");
        me.note(outcome.clone()).unwrap();
        outcome
    }

    /// Calls `target`, which casts this process a note of `note` bytes before it replies
    /// with `reply` bytes, and then casts itself a note of the reply's length.
    #[call]
    async fn call_then_note(
        &mut self,
        target: Pid,
        note: usize,
        reply: usize,
        ctx: &mut Ctx<Self>,
    ) -> String {
        let me = ctx.server_ref();
        let talker = ctx.node().server_ref::<Talker>(&target).unwrap();
        let reply = talker.note_then_reply(me.pid().clone(), note, reply).await;
        let outcome = format!("reply: {:?}", reply.map(|text| text.len()));
        me.note(outcome.clone()).unwrap();
        outcome
    }

    /// Waits (in its handler) until gate `gate` opens, then pings `target` and notes the
    /// outcome.
    #[cast]
    async fn ping_when_open(&mut self, gate: usize, target: Pid, ctx: &mut Ctx<Self>) {
        let target = ctx.node().server_ref::<Talker>(&target).unwrap();
        until_open(gate).await;
        let pinged = target.ping_with_timeout(Duration::from_secs(3)).await;
        self.seen.push(format!("ping: {pinged:?}"));
    }

    /// Waits (in its handler) until gate `gate` opens, then calls `target` for a reply of
    /// `len` bytes and notes its length.
    #[cast]
    async fn fetch_when_open(&mut self, gate: usize, target: Pid, len: usize, ctx: &mut Ctx<Self>) {
        let target = ctx.node().server_ref::<Talker>(&target).unwrap();
        until_open(gate).await;
        let fetched = target
            .reply_of_with_timeout(len, Duration::from_secs(3))
            .await;
        self.seen
            .push(format!("fetched: {:?}", fetched.map(|reply| reply.len())));
    }

    /// Calls `target` for a large reply whose encoding waits for gate `gate`, and answers
    /// with its length.
    #[call]
    async fn fetch_gated(&mut self, target: Pid, gate: usize, ctx: &mut Ctx<Self>) -> String {
        let target = ctx.node().server_ref::<Talker>(&target).unwrap();
        let fetched = target
            .gated_reply_with_timeout(gate, Duration::from_secs(4))
            .await;
        format!("fetched: {:?}", fetched.map(|reply| reply.0.len()))
    }

    #[call]
    fn monitor(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.monitor(&pid)
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Down { reason, .. } = info {
            self.seen.push(format!("down: {reason:?}"));
        }
    }

    /// Handles nothing for `ms` milliseconds.
    #[cast]
    async fn pause(&mut self, ms: u64) {
        smol::Timer::after(Duration::from_millis(ms)).await;
    }

    /// Stops `target` and then casts itself a note of the outcome.
    #[call]
    async fn stop_then_note(&mut self, target: Pid, ctx: &mut Ctx<Self>) -> String {
        let me = ctx.server_ref();
        let outcome = ctx.node().stop(&target, ExitReason::Shutdown).await;
        let outcome = format!("stop: {outcome:?}");
        me.note(outcome.clone()).unwrap();
        outcome
    }
}

/// Waits (at most 10 s) until gate `gate` opens.
async fn until_open(gate: usize) {
    for _ in 0..10_000 {
        if GATES[gate].is_open() {
            break;
        }
        smol::Timer::after(Duration::from_millis(1)).await;
    }
}

/// Sends large messages to a [`Caller`] on another node.
#[behavior(name = "ordering-talker")]
pub struct Talker;

#[behavior]
impl Talker {
    #[init]
    fn init() -> Self {
        Talker
    }

    #[call]
    fn ping(&self) {}

    /// A reply of `len` bytes (sent in fragments if large).
    #[call]
    fn reply_of(&self, len: usize) -> String {
        "r".repeat(len)
    }

    /// A reply of [`LARGE`] bytes, whose encoding waits for gate `gate`.
    #[call]
    fn gated_reply(&self, gate: usize) -> Gated {
        Gated(vec![5; LARGE], gate)
    }

    /// Casts `to` a note (if its node is connected).
    #[cast]
    fn note_to(&mut self, to: Pid, note: String, ctx: &mut Ctx<Self>) {
        if let Ok(to) = ctx.node().server_ref::<Caller>(&to) {
            let _ = to.note(note);
        }
    }

    /// Casts `to` a note of `len` bytes (sent in fragments if large), then replies with
    /// a short text.
    #[call]
    fn long_note_then_reply(&mut self, to: Pid, len: usize, ctx: &mut Ctx<Self>) -> String {
        let to = ctx.node().server_ref::<Caller>(&to).unwrap();
        to.note("n".repeat(len)).unwrap();
        "ok".into()
    }

    /// Casts `to` a note of `note` bytes, then replies with `reply` bytes.
    #[call]
    fn note_then_reply(
        &mut self,
        to: Pid,
        note: usize,
        reply: usize,
        ctx: &mut Ctx<Self>,
    ) -> String {
        let to = ctx.node().server_ref::<Caller>(&to).unwrap();
        to.note("n".repeat(note)).unwrap();
        "r".repeat(reply)
    }

    /// Sends `to` a large message gated by `gate`; with `stop`, then stops normally.
    #[cast]
    fn large_to(&mut self, to: Pid, gate: usize, stop: bool, ctx: &mut Ctx<Self>) {
        let to = ctx.node().server_ref::<Caller>(&to).unwrap();
        to.large(Gated(vec![5; LARGE], gate)).unwrap();
        if stop {
            ctx.stop(ExitReason::Normal);
        }
    }
}
