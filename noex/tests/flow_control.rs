//! Flow control of casts: a cast that cannot be queued hands its message back
//! (`try_cast`), an awaited cast waits for room in the connection's queue (`cast_wait`)
//! and keeps its place in line, and a slow process holds back the nodes that send to it,
//! so that a flood of casts reaches it whole, in order, with bounded memory on both nodes.

mod common;
use common::id;

use std::time::Duration;

use common::{cluster_config, eventually, run, run_blocking, wait_connected, within};
use futures_lite::future::poll_once;
use noex::{
    behavior, ClusterEvent, ClusterEvents, ExitReason, Node, RemoteSpawnError, SendError,
    ServerRef, SpawnOptions,
};

/// Takes numbers, counting them and those that came out of order. Slow: each number ends
/// its turn on the thread (as a handler that awaits I/O would), while a connection's
/// reader hands it up to 128 messages per turn.
#[behavior]
pub struct Tally {
    next: u64,
    received: u64,
    out_of_order: u64,
}

#[behavior]
impl Tally {
    #[init]
    fn init() -> Self {
        Tally {
            next: 0,
            received: 0,
            out_of_order: 0,
        }
    }

    #[cast]
    async fn push(&mut self, n: u64) {
        if n != self.next {
            self.out_of_order += 1;
        }
        self.next = n + 1;
        self.received += 1;
        smol::future::yield_now().await;
    }

    /// Handles nothing for `ms` milliseconds: a consumer that stops for a while.
    #[cast]
    async fn pause(&mut self, ms: u64) {
        smol::Timer::after(Duration::from_millis(ms)).await;
    }

    /// (numbers received, of which out of order)
    #[call]
    fn received(&self) -> (u64, u64) {
        (self.received, self.out_of_order)
    }
}

/// Node `a` (outbound queue `queue` bytes) and `b` (mailbox limit `mailbox`), connected,
/// with a `Tally` on `b` and `a`'s reference to it.
async fn pair(queue: usize, mailbox: usize) -> (Node, Node, ServerRef<Tally>) {
    let a = Node::start(cluster_config("a").outbound_queue(queue))
        .await
        .unwrap();
    let b = Node::start(
        cluster_config("b")
            .outbound_queue(queue)
            .mailbox_limit(mailbox)
            .seed(id(&a).to_string()),
    )
    .await
    .unwrap();
    wait_connected(&a, 1).await;
    let tally = b.spawn::<Tally>(()).await.unwrap();
    let remote = a.server_ref::<Tally>(tally.pid()).unwrap();
    (a, b, remote)
}

/// With `a`'s writer stalled, casts numbers from `from` on until the queue is full;
/// returns the number refused (handed back).
fn fill(remote: &ServerRef<Tally>, from: u64) -> u64 {
    for n in from.. {
        if let Err(refused) = remote.try_push(n) {
            assert!(refused.is_overloaded(), "{refused}");
            return refused.into_inner();
        }
        assert!(n - from < 1 << 20, "the queue never filled");
    }
    unreachable!()
}

#[test]
fn a_cast_refused_by_a_full_queue_hands_its_message_back() {
    run_blocking(async {
        let (a, b, remote) = pair(4 * 1024, 1 << 16).await;
        assert!(a.faults().stall(&id(&b), true));

        let refused = fill(&remote, 0);
        assert!(refused > 0);
        // Every form refuses while the queue is full: the generated `try_push` above, and
        // the reference's own `try_cast`, which hands back the message enum.
        let again = remote.try_push(refused).unwrap_err();
        assert_eq!(again.error(), &SendError::Overloaded);
        assert_eq!(again.into_inner(), refused);
        assert_eq!(remote.push(refused), Err(SendError::Overloaded));

        // The message handed back is sent later, and nothing is lost.
        a.faults().stall(&id(&b), false);
        within("room", remote.push_wait(refused)).await.unwrap();
        assert_eq!(remote.received().await, Ok((refused + 1, 0)));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_cast_to_a_process_that_is_not_running_hands_its_message_back() {
    run(|node| async move {
        let tally = node.spawn::<Tally>(()).await.unwrap();
        tally.stop(ExitReason::Normal).await.unwrap();
        let refused = tally.try_push(7).unwrap_err();
        assert!(matches!(refused.error(), SendError::NoProc { .. }));
        assert_eq!(refused.into_inner(), 7);
        let refused = tally.push_wait(8).await.unwrap_err();
        assert_eq!(refused.into_inner(), 8);
        let nobody = node.named::<Tally>("nobody").try_pause(9).unwrap_err();
        assert!(matches!(nobody.error(), SendError::NoProc { .. }));
        assert_eq!(nobody.into_inner(), 9);
    });
}

#[test]
fn an_awaited_cast_to_a_local_process_completes_at_once() {
    run(|node| async move {
        let tally = node.spawn::<Tally>(()).await.unwrap();
        for n in 0..1000 {
            assert_eq!(poll_once(tally.push_wait(n)).await, Some(Ok(())));
        }
        assert_eq!(tally.received().await, Ok((1000, 0)));
    });
}

#[test]
fn an_awaited_cast_waits_for_room_and_keeps_its_place_before_a_later_try_cast() {
    run_blocking(async {
        let (a, b, remote) = pair(4 * 1024, 1 << 16).await;
        assert!(a.faults().stall(&id(&b), true));
        let first = fill(&remote, 0);
        let mut waiting = Box::pin(remote.push_wait(first));
        assert!(poll_once(&mut waiting).await.is_none(), "the queue is full");

        // The queue empties, but the waiting cast has not been polled since: the same
        // sender's later `try_push` must not take the room before it.
        a.faults().stall(&id(&b), false);
        eventually("a's queue to empty", || a.cluster_stats().queued_bytes == 0).await;
        let later = remote.try_push(first + 1).unwrap_err();
        assert!(later.is_overloaded());
        within("the waiting cast", waiting).await.unwrap();
        remote.try_push(later.into_inner()).unwrap();

        assert_eq!(remote.received().await, Ok((first + 2, 0)));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn an_awaited_cast_fails_with_its_message_when_the_connection_is_lost() {
    run_blocking(async {
        let (a, b, remote) = pair(4 * 1024, 1 << 16).await;
        assert!(a.faults().stall(&id(&b), true));
        let refused = fill(&remote, 0);
        let mut waiting = Box::pin(remote.push_wait(refused));
        assert!(poll_once(&mut waiting).await.is_none(), "the queue is full");

        assert!(a.faults().disconnect(&id(&b)));
        let lost = within("the waiting cast to fail", waiting)
            .await
            .unwrap_err();
        assert!(matches!(lost.error(), SendError::NoConnection { .. }));
        assert_eq!(lost.into_inner(), refused);
        a.shutdown();
        b.shutdown();
    });
}

/// No `NodeDown` (or refused connection) came on `events` so far. A `NodeUp` may: the
/// node that was dialled can report the connection up after its peer did, so after the
/// subscription.
fn no_node_down(events: &ClusterEvents) {
    while let Some(event) = events.try_recv() {
        assert!(
            matches!(event, ClusterEvent::NodeUp { .. }),
            "unexpected {event:?}"
        );
    }
}

#[test]
fn a_stopped_consumer_holds_its_remote_sender_back_without_losing_the_connection() {
    run_blocking(async {
        const MAILBOX: usize = 100;
        const CASTS: u64 = 20_000;
        let (a, b, remote) = pair(4 * 1024, MAILBOX).await;
        let (a_events, b_events) = (a.cluster_events(), b.cluster_events());
        // Longer than the failure detection window (800 ms): b reads nothing from a
        // meanwhile, heartbeats included.
        remote.pause(2_000).unwrap();

        let sender = smol::spawn({
            let remote = remote.clone();
            async move {
                for n in 0..CASTS {
                    remote.push_wait(n).await.unwrap();
                }
            }
        });
        // The tally's mailbox stays within its limit while it is stopped and after: b
        // stops reading from a instead (what it does not read waits in the sockets and
        // in a's queue, and the sender waits).
        let mut most_waiting = 0;
        within_long(async {
            loop {
                let tally = b.process_info(remote.pid()).unwrap();
                most_waiting = most_waiting.max(tally.mailbox_len);
                if tally.message_count == CASTS + 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        sender.await;
        assert!(
            most_waiting <= MAILBOX + 1,
            "{most_waiting} messages waiting"
        );
        assert_eq!(remote.received().await, Ok((CASTS, 0)));
        no_node_down(&a_events);
        no_node_down(&b_events);
        a.shutdown();
        b.shutdown();
    });
}

/// A tally on `b` stuck in a handler, with messages from `a` held back behind it.
async fn stuck_behind_its_messages() -> (Node, Node, ServerRef<Tally>) {
    let (a, b, remote) = pair(64 * 1024, 2).await;
    remote.pause(600_000).unwrap();
    for n in 0..4 {
        remote.push(n).unwrap();
    }
    eventually("b to hold a's messages back", || {
        b.process_info(remote.pid())
            .is_some_and(|tally| tally.mailbox_len >= 2)
    })
    .await;
    (a, b, remote)
}

#[test]
fn a_process_holding_its_senders_back_can_still_be_killed_from_their_node() {
    run_blocking(async {
        let (a, b, remote) = stuck_behind_its_messages().await;
        // The monitor `exited` sets and the kill both pass the messages held back.
        let exited = common::watch_end(&a, remote.pid()).await;
        within("the monitor to reach b", async {
            loop {
                let detail = b.observer().process(remote.pid()).await.unwrap();
                if detail.is_some_and(|d| !d.monitored_by.is_empty()) {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(a.kill(remote.pid()));
        assert_eq!(within("the kill", exited).await, ExitReason::Killed);
        // Then the connection goes on: the messages held back were for a process that
        // has ended, and a new one is reached.
        let fresh = b.spawn::<Tally>(()).await.unwrap();
        let fresh = a.server_ref::<Tally>(fresh.pid()).unwrap();
        assert_eq!(within("a call", fresh.received()).await, Ok((0, 0)));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_process_holding_its_senders_back_can_still_be_stopped_from_their_node() {
    run_blocking(async {
        let (a, b, remote) = stuck_behind_its_messages().await;
        let grace = Some(Duration::from_millis(50));
        let stopped = a.stop_with_grace(remote.pid(), ExitReason::Shutdown, grace);
        // Stuck in its handler past the grace period: killed.
        assert_eq!(within("the stop", stopped).await, Ok(ExitReason::Killed));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_node_held_back_still_gets_the_replies_to_its_calls() {
    run_blocking(async {
        let (a, b, remote) = stuck_behind_its_messages().await;
        // A process of b calls one of a: its reply comes on the connection b holds back.
        let on_a = a.spawn::<Tally>(()).await.unwrap();
        let from_b = b.server_ref::<Tally>(on_a.pid()).unwrap();
        assert_eq!(within("the reply", from_b.received()).await, Ok((0, 0)));
        assert!(b.kill(remote.pid()));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_remote_spawn_waiting_for_room_gives_up_at_its_spawn_timeout() {
    run_blocking(async {
        let (a, b, remote) = pair(4 * 1024, 1 << 16).await;
        b.register_behaviors().unwrap();
        assert!(a.faults().stall(&id(&b), true));
        fill(&remote, 0);
        let timeout = Duration::from_millis(200);
        let options = SpawnOptions::new().spawn_timeout(timeout);
        let b_id = id(&b);
        let spawned = a.spawn_on_with::<Tally>(&b_id, (), options);
        // Never queued: the node was not asked.
        match within("the spawn to give up", spawned).await {
            Err(RemoteSpawnError::NotSent { timeout: t, .. }) => assert_eq!(t, timeout),
            other => panic!("unexpected {other:?}"),
        }
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_stop_is_queued_whatever_the_queue_holds_as_a_kill_is() {
    run_blocking(async {
        let (a, b, remote) = pair(4 * 1024, 1 << 16).await;
        assert!(a.faults().stall(&id(&b), true));
        fill(&remote, 0);
        let queued = || a.connected_nodes()[0].stats.queued_bytes;
        let before = queued();
        // Long enough for the push it is handling to end on a busy machine.
        let grace = Some(Duration::from_secs(2));
        let mut stopping = Box::pin(a.stop_with_grace(remote.pid(), ExitReason::Shutdown, grace));
        assert!(poll_once(&mut stopping).await.is_none());
        assert!(
            queued() > before,
            "the stop is queued, not waiting for room"
        );
        assert!(a.faults().stall(&id(&b), false));
        assert_eq!(within("the stop", stopping).await, Ok(ExitReason::Shutdown));
        a.shutdown();
        b.shutdown();
    });
}

/// Awaits `future` for at most 30 s.
async fn within_long<T>(future: impl std::future::Future<Output = T>) -> T {
    use futures_lite::FutureExt;
    async { Some(future.await) }
        .or(async {
            smol::Timer::after(Duration::from_secs(30)).await;
            None
        })
        .await
        .expect("timed out after 30 s")
}

/// Casts `count` numbers from `a` to a slow `Tally` on `b` — `try_push`, and `push_wait`
/// when refused — with a small outbound queue, so that it is full most of the time; checks
/// that all arrive, in order, while `a`'s queue stays within its bound and the tally's
/// mailbox within its limit.
async fn flood(count: u64) {
    const QUEUE: usize = 4 * 1024;
    const MAILBOX: usize = 1000;
    let (a, b, remote) = pair(QUEUE, MAILBOX).await;
    let (mut waited, mut most_queued, mut most_waiting) = (0u64, 0u64, 0usize);
    for n in 0..count {
        if let Err(refused) = remote.try_push(n) {
            assert!(refused.is_overloaded(), "{refused}");
            waited += 1;
            remote.push_wait(refused.into_inner()).await.unwrap();
        }
        if n % 512 == 0 {
            most_queued = most_queued.max(a.cluster_stats().queued_bytes);
            let tally = b.process_info(remote.pid()).unwrap();
            most_waiting = most_waiting.max(tally.mailbox_len);
        }
    }
    assert_eq!(remote.received().await, Ok((count, 0)));
    // A frame of `push` is under 32 bytes; the queue takes one more while under its bound.
    assert!(
        most_queued < (QUEUE + 32) as u64,
        "{most_queued} bytes queued"
    );
    // (+1: the handled count, written on the tally's thread, may lag a message here.)
    assert!(
        most_waiting <= MAILBOX + 1,
        "{most_waiting} messages waiting"
    );
    assert!(waited > 0, "the queue was never full");
    a.shutdown();
    b.shutdown();
}

#[test]
fn two_hundred_thousand_casts_to_a_slow_consumer_arrive_in_order_with_bounded_memory() {
    run_blocking(flood(200_000));
}

/// Takes about 2 minutes in a debug build: run it with `--release -- --ignored`.
#[test]
#[ignore = "ten million casts: run in release with --ignored"]
fn ten_million_casts_to_a_slow_consumer_arrive_in_order_with_bounded_memory() {
    run_blocking(flood(10_000_000));
}

/// Takes bytes and numbers.
#[behavior]
pub struct Bulk;

#[behavior]
impl Bulk {
    #[init]
    fn init() -> Self {
        Bulk
    }

    #[cast]
    fn take(&mut self, bytes: Vec<u8>) {
        drop(bytes);
    }

    #[cast]
    fn note(&mut self, n: u64) {
        let _ = n;
    }
}

/// A local process that sends to a `Bulk` of another node two messages at once.
#[behavior]
pub struct Juggler {
    to: ServerRef<Bulk>,
}

#[behavior(local)]
impl Juggler {
    #[init]
    fn init(to: ServerRef<Bulk>) -> Self {
        Juggler { to }
    }

    /// Begins an awaited cast of `len` bytes and one of a number after it, gives the first
    /// up while both wait, and says whether the second is then queued.
    #[call]
    async fn give_up_first(&self, len: usize) -> bool {
        let mut large = Box::pin(self.to.take_wait(vec![7; len]));
        assert!(
            poll_once(&mut large).await.is_none(),
            "the large lane is full"
        );
        let mut small = Box::pin(self.to.note_wait(1));
        assert!(
            poll_once(&mut small).await.is_none(),
            "behind its sender's large one"
        );
        drop(large);
        let queued = async { small.await.is_ok() };
        let deadline = async {
            smol::Timer::after(Duration::from_secs(3)).await;
            false
        };
        futures_lite::FutureExt::or(queued, deadline).await
    }
}

#[test]
fn an_awaited_cast_behind_its_senders_message_given_up_goes_on_at_once() {
    run_blocking(async {
        const LARGE: usize = 100 * 1024;
        // A stalled writer sends no heartbeats: b must not take a for lost meanwhile.
        let config = |name: &str| {
            cluster_config(name)
                .outbound_queue(64 * 1024)
                .heartbeat(Duration::from_millis(100), Duration::from_secs(60))
        };
        let a = Node::start(config("a")).await.unwrap();
        let b = Node::start(config("b").seed(id(&a).to_string()))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        let bulk = b.spawn::<Bulk>(()).await.unwrap();
        let remote = a.server_ref::<Bulk>(bulk.pid()).unwrap();
        assert!(a.faults().stall(&id(&b), true));
        // The large lane full, and another sender first in line for room there.
        remote.take(vec![7; LARGE]).unwrap();
        let mut first_in_line = Box::pin(remote.take_wait(vec![7; LARGE]));
        assert!(poll_once(&mut first_in_line).await.is_none());
        // A process's large message waits behind it, its small one behind its large one:
        // once the large one is given up, the small one (with room in its lane) is queued.
        let juggler = a.spawn::<Juggler>(remote.clone()).await.unwrap();
        assert_eq!(juggler.give_up_first(LARGE).await, Ok(true));
        drop(first_in_line);
        a.shutdown();
        b.shutdown();
    });
}
