//! Order between one sending process and one receiving process on another node, in the
//! corners the other tests leave: answers the sending node gives on a process's behalf
//! (a call to a process that has ended, a stop) come after that process's last messages,
//! large ones included.
//!
//! A large message is held in its sender's queue deterministically by a `Gated` value (see
//! [`actors`]), whose encoding (on the blocking thread pool) waits until the test opens
//! its gate.

#[path = "ordering/actors.rs"]
mod actors;
mod common;

use std::time::Duration;

use actors::{Caller, CallerApi, Talker, TalkerApi, GATES, LARGE};
use common::{cluster_config, eventually, run_blocking, wait_connected, within};
use noex::Node;

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
