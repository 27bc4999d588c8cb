//! Order between one sending process and one receiving process on another node, in the
//! corners the other tests leave: answers the sending node gives on a process's behalf
//! (a call to a process that has ended, a stop) come after that process's last messages,
//! large ones included.
//!
//! A large message is held in its sender's queue deterministically by a [`Gated`] value,
//! whose encoding (on the blocking thread pool) waits until the test opens its gate.

mod common;

use std::time::Duration;

use common::gate::Gate;
use common::{cluster_config, eventually, run_blocking, wait_connected, within};
use noex::{behavior, Ctx, ExitReason, Info, MonitorRef, Node, Pid};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One gate per test (the tests of this file run in parallel).
static GATES: [Gate; 6] = [
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
const LARGE: usize = 2 << 20;

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

/// Two connected nodes whose heartbeats do not time out while a test holds a queue.
async fn pair() -> (Node, Node) {
    pair_limited(None).await
}

/// [`pair`], with a mailbox limit if one is given.
async fn pair_limited(limit: Option<usize>) -> (Node, Node) {
    let config = |name: &str| {
        let config =
            cluster_config(name).heartbeat(Duration::from_millis(100), Duration::from_secs(20));
        match limit {
            Some(limit) => config.mailbox_limit(limit),
            None => config,
        }
    };
    let a = Node::start(config("a")).await.unwrap();
    let seed = a.local_node_id().unwrap().to_string();
    let b = Node::start(config("b").seed(seed)).await.unwrap();
    wait_connected(&a, 1).await;
    wait_connected(&b, 1).await;
    (a, b)
}

/// A process of `a` stuck in a handler, past its mailbox limit (2) with `b`'s messages:
/// `a` holds back what `b` sends its processes.
async fn stuck_past_its_limit(a: &Node, b: &Node) -> noex::ServerRef<Caller> {
    let stuck = a.spawn::<Caller>(()).await.unwrap();
    stuck.pause(600_000).unwrap();
    let stuck_from_b = b.server_ref::<Caller>(stuck.pid()).unwrap();
    for _ in 0..3 {
        stuck_from_b.note("fill".into()).unwrap();
    }
    eventually("a to hold b's messages back", || {
        a.process_info(stuck.pid())
            .is_some_and(|info| info.mailbox_len >= 2)
    })
    .await;
    stuck
}

/// Messages `node` has received from its one peer.
fn received(node: &Node) -> u64 {
    node.connected_nodes()[0].stats.messages_received
}

/// The caller's record once it holds `count` entries.
async fn seen(caller: &noex::ServerRef<Caller>, count: usize) -> Vec<String> {
    within("the caller's record", async {
        loop {
            let seen = caller.seen().await.unwrap();
            if seen.len() >= count {
                return seen;
            }
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    })
    .await
}

#[test]
fn a_call_to_an_ended_process_fails_after_its_last_large_message() {
    run_blocking(async {
        const GATE: usize = 0;
        let (a, b) = pair().await;
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        // The talker's last message, large, keeps its place in b's queue (its encoding
        // waits at the gate), and the talker ends.
        talker.large_to(caller.pid().clone(), GATE, true).unwrap();
        eventually("the large message to be encoding", || GATES[GATE].reached()).await;
        within("the talker to end", talker.exited()).await;
        // The caller pings the ended talker: b answers NoProc on its behalf.
        let before = received(&b);
        let ping = smol::spawn({
            let (caller, talker) = (caller.clone(), talker.pid().clone());
            async move { caller.ping_then_note(talker).await }
        });
        eventually("b to take the ping", || received(&b) > before).await;
        GATES[GATE].open();
        let outcome = within("the ping's outcome", ping).await.unwrap();
        assert!(outcome.contains("Err"), "{outcome}");
        let seen = seen(&caller, 2).await;
        assert_eq!(seen, [format!("large of {LARGE}"), outcome]);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_remote_stop_returns_after_the_stopped_process_s_last_large_message() {
    run_blocking(async {
        const GATE: usize = 1;
        let (a, b) = pair().await;
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        talker.large_to(caller.pid().clone(), GATE, false).unwrap();
        eventually("the large message to be encoding", || GATES[GATE].reached()).await;
        // The caller stops the talker: b answers with its exit reason once it has ended.
        let stop = smol::spawn({
            let (caller, talker) = (caller.clone(), talker.pid().clone());
            async move { caller.stop_then_note(talker).await }
        });
        within("the talker to end", talker.exited()).await;
        // The answer is queued as the talker ends (on b's side, from a task of its own):
        // the gate opens once it is (b's queue held only the large message's place, of no
        // size yet), or once the stop has returned without it.
        eventually("b to queue the stop's answer", || {
            b.connected_nodes()[0].stats.queued_bytes > 0 || stop.is_finished()
        })
        .await;
        GATES[GATE].open();
        let outcome = within("the stop's outcome", stop).await.unwrap();
        assert!(outcome.contains("Shutdown"), "{outcome}");
        let seen = seen(&caller, 2).await;
        assert_eq!(seen, [format!("large of {LARGE}"), outcome]);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_reply_does_not_pass_its_servers_earlier_message_held_back_by_a_mailbox_limit() {
    run_blocking(async {
        const PAD: usize = 16 * 1024;
        let (a, b) = pair_limited(Some(2)).await;
        // A process of a stuck past its limit: a holds back what b sends its processes.
        let stuck = stuck_past_its_limit(&a, &b).await;
        // The caller, on a, calls a talker on b, which casts the caller a note and then
        // replies: both are read by a (their bytes counted), the note held back.
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        let before = a.connected_nodes()[0].stats.bytes_received;
        let call = smol::spawn({
            let (caller, talker) = (caller.clone(), talker.pid().clone());
            async move { caller.call_then_note(talker, PAD, PAD).await }
        });
        eventually("a to read the note and the reply", || {
            a.connected_nodes()[0].stats.bytes_received >= before + 2 * PAD as u64
        })
        .await;
        // The stuck process goes: what was held back is handed on.
        assert!(a.kill(stuck.pid()));
        let outcome = within("the call", call).await.unwrap();
        assert_eq!(outcome, format!("reply: Ok({PAD})"));
        let seen = seen(&caller, 2).await;
        let seen: Vec<String> = seen
            .into_iter()
            .map(|s| if s.starts_with('n') { "note".into() } else { s })
            .collect();
        assert_eq!(seen, ["note".to_owned(), outcome]);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_process_past_its_mailbox_limit_still_gets_the_reply_to_its_call() {
    run_blocking(async {
        const GATE: usize = 3;
        let (a, b) = pair_limited(Some(2)).await;
        let talker = b.spawn::<Talker>(()).await.unwrap();
        // A process of a, busy in a handler, gets past its mailbox limit with b's
        // messages (a holds back what follows them, for it among others)...
        let busy = a.spawn::<Caller>(()).await.unwrap();
        busy.ping_when_open(GATE, talker.pid().clone()).unwrap();
        let busy_from_b = b.server_ref::<Caller>(busy.pid()).unwrap();
        for _ in 0..4 {
            busy_from_b.note("fill".into()).unwrap();
        }
        eventually("a to hold b's messages back", || {
            a.process_info(busy.pid())
                .is_some_and(|info| info.mailbox_len >= 2)
        })
        .await;
        // ...then calls a process of b: the reply reaches it, the messages withheld for it
        // handed on first.
        GATES[GATE].open();
        let seen = seen(&busy, 5).await;
        assert_eq!(seen[0], "ping: Ok(())");
        assert_eq!(seen[1..], ["fill", "fill", "fill", "fill"]);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn messages_held_back_when_the_connection_is_lost_never_arrive_after_the_down() {
    run_blocking(async {
        const PAD: usize = 16 * 1024;
        let (a, b) = pair_limited(Some(2)).await;
        let b_id = b.local_node_id().unwrap().clone();
        // A process of a stuck past its limit: a holds back what b sends its processes.
        stuck_past_its_limit(&a, &b).await;
        // A watcher on a monitors a talker on b, which sends it a note: read by a and
        // held back.
        let watcher = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        watcher.monitor(talker.pid().clone()).await.unwrap();
        let before = a.connected_nodes()[0].stats.bytes_received;
        talker
            .note_to(watcher.pid().clone(), "n".repeat(PAD))
            .unwrap();
        eventually("a to read the note", || {
            a.connected_nodes()[0].stats.bytes_received >= before + PAD as u64
        })
        .await;
        // The connection is lost: the watcher's monitor fires NoConnection.
        assert!(a.faults().disconnect(&b_id));
        seen(&watcher, 1).await;
        // The nodes reconnect; a note sent over the new connection arrives.
        wait_connected(&a, 1).await;
        wait_connected(&b, 1).await;
        let after = within("a note over the new connection", async {
            loop {
                let seen = watcher.seen().await.unwrap();
                if seen.iter().any(|s| s == "after") {
                    return seen;
                }
                let _ = talker.note_to(watcher.pid().clone(), "after".into());
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        })
        .await;
        let seen: Vec<String> = after
            .into_iter()
            .filter(|s| s != "after")
            .map(|s| if s.starts_with('n') { "note".into() } else { s })
            .collect();
        // The note came before the Down, or not at all (lost with its connection).
        let down = "down: NoConnection".to_owned();
        assert!(
            seen == [down.clone()] || seen == ["note".to_owned(), down],
            "{seen:?}"
        );
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_reply_does_not_pass_a_large_message_held_back_before_it() {
    run_blocking(async {
        // Sent in three fragments, within the window of fragments in flight: all read.
        const LONG: usize = 150 * 1024;
        let (a, b) = pair_limited(Some(2)).await;
        // A process of a stuck past its limit: a holds back what b sends its processes.
        let stuck = stuck_past_its_limit(&a, &b).await;
        // The talker's long note to the caller is held back in pieces (whom it is for is
        // not known until it is whole); its reply must not pass it.
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        let outcome = within(
            "the call",
            caller.call_long_then_note(talker.pid().clone(), LONG),
        )
        .await
        .unwrap();
        assert_eq!(outcome, "reply: Ok(\"ok\")");
        let seen: Vec<String> = seen(&caller, 2)
            .await
            .into_iter()
            .map(|s| {
                if s.starts_with('n') {
                    format!("note of {}", s.len())
                } else {
                    s
                }
            })
            .collect();
        assert_eq!(seen, [format!("note of {LONG}"), outcome]);
        assert!(a.kill(stuck.pid()));
        a.shutdown();
        b.shutdown();
    });
}

/// 1 MiB: a reply sent in fragments, more than the window of fragments in flight.
const LARGE_REPLY: usize = 1 << 20;

#[test]
fn a_process_past_its_mailbox_limit_gets_a_large_reply_to_its_call() {
    run_blocking(async {
        const GATE: usize = 4;
        let (a, b) = pair_limited(Some(2)).await;
        let talker = b.spawn::<Talker>(()).await.unwrap();
        // A process of a, busy in a handler, gets past its mailbox limit with b's
        // messages (a holds back what follows them, for it among others)...
        let busy = a.spawn::<Caller>(()).await.unwrap();
        busy.fetch_when_open(GATE, talker.pid().clone(), LARGE_REPLY)
            .unwrap();
        let busy_from_b = b.server_ref::<Caller>(busy.pid()).unwrap();
        for _ in 0..4 {
            busy_from_b.note("fill".into()).unwrap();
        }
        eventually("a to hold b's messages back", || {
            a.process_info(busy.pid())
                .is_some_and(|info| info.mailbox_len >= 2)
        })
        .await;
        // ...then calls a process of b, which answers in fragments: the reply reaches it,
        // the messages withheld for it handed on first.
        GATES[GATE].open();
        let seen = seen(&busy, 5).await;
        assert_eq!(seen[0], format!("fetched: Ok({LARGE_REPLY})"));
        assert_eq!(seen[1..], ["fill", "fill", "fill", "fill"]);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_large_reply_does_not_pass_its_servers_earlier_message_held_back_by_a_mailbox_limit() {
    run_blocking(async {
        let (a, b) = pair_limited(Some(2)).await;
        // A process of a stuck past its limit: a holds back what b sends its processes.
        let stuck = stuck_past_its_limit(&a, &b).await;
        // The caller, on a, calls a talker on b, which casts the caller a short note (held
        // back) and then replies in fragments: the reply reaches the caller while the
        // stuck process still holds b's messages back, the note handed on before it.
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        let outcome = within(
            "the call",
            caller.call_then_note(talker.pid().clone(), 1, LARGE_REPLY),
        )
        .await
        .unwrap();
        assert_eq!(outcome, format!("reply: Ok({LARGE_REPLY})"));
        let seen = seen(&caller, 2).await;
        assert_eq!(seen, ["n".to_owned(), outcome]);
        assert!(a.kill(stuck.pid()));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_large_reply_begun_before_its_connection_is_held_back_still_arrives() {
    run_blocking(async {
        const GATE: usize = 5;
        let (a, b) = pair_limited(Some(2)).await;
        let b_id = b.local_node_id().unwrap().clone();
        // A process of a stuck in a handler, one message short of its limit.
        let stuck = a.spawn::<Caller>(()).await.unwrap();
        stuck.pause(600_000).unwrap();
        let stuck_from_b = b.server_ref::<Caller>(stuck.pid()).unwrap();
        stuck_from_b.note("fill".into()).unwrap();
        eventually("the stuck process to hold b's note", || {
            a.process_info(stuck.pid())
                .is_some_and(|info| info.mailbox_len >= 1)
        })
        .await;
        // A caller on a calls a talker on b, whose large reply waits at the gate; a stops
        // writing to b, so that b sends the reply's first fragments (one window's worth)
        // and no more: a reads them at once, holding nothing back yet.
        let caller = a.spawn::<Caller>(()).await.unwrap();
        let talker = b.spawn::<Talker>(()).await.unwrap();
        let call = smol::spawn({
            let (caller, talker) = (caller.clone(), talker.pid().clone());
            async move { caller.fetch_gated(talker, GATE).await }
        });
        eventually("the reply to be encoding", || GATES[GATE].reached()).await;
        assert!(a.faults().stall(&b_id, true));
        let before = a.connected_nodes()[0].stats.bytes_received;
        GATES[GATE].open();
        eventually("a to read the reply's first fragments", || {
            a.connected_nodes()[0].stats.bytes_received >= before + 128 * 1024
        })
        .await;
        // A second note takes the stuck process to its limit: a holds b's messages back,
        // and the rest of the reply comes once a writes again (its acknowledgements).
        stuck_from_b.note("fill".into()).unwrap();
        eventually("a to hold b's messages back", || {
            a.process_info(stuck.pid())
                .is_some_and(|info| info.mailbox_len >= 2)
        })
        .await;
        assert!(a.faults().stall(&b_id, false));
        let outcome = within("the call", call).await.unwrap();
        assert_eq!(outcome, format!("fetched: Ok({LARGE})"));
        assert!(a.kill(stuck.pid()));
        a.shutdown();
        b.shutdown();
    });
}
