//! A message larger than the node it is for takes (that node's max message size, which it
//! says in the handshake) fails its own send with a typed error: the connection, and
//! everything else on it, stays up.

mod common;
use common::id;

use std::time::Duration;

use common::raw::{Raw, Refusal, Wire, PROTOCOL_VERSION};
use common::{cluster_config, eventually, run_blocking, wait_connected, within};
use noex::{
    behavior, CallError, ClusterEvent, ClusterEvents, Info, Node, RemoteSpawnError, SendError,
    TrafficStats, MIN_FRAME_SIZE,
};

/// The largest message `small` takes.
const LIMIT: usize = 256 << 10;
/// Larger than that, yet encoded on its sender's thread (under 1 MiB).
const OVER: usize = 512 << 10;
/// Large enough to be encoded off its sender's thread.
const APART: usize = 2 << 20;

/// Holds the length of the last bytes it was given.
#[behavior(name = "cluster-limits-store")]
pub struct Store {
    held: usize,
}

#[behavior]
impl Store {
    #[init]
    fn init(bytes: Vec<u8>) -> Self {
        Store { held: bytes.len() }
    }

    #[cast]
    fn put(&mut self, bytes: Vec<u8>) {
        self.held = bytes.len();
    }

    #[info]
    fn given(&mut self, info: Info<Vec<u8>>) {
        if let Info::Message(bytes) = info {
            self.held = bytes.len();
        }
    }

    /// Holds `bytes`; answers with the length held before.
    #[call]
    fn swap(&mut self, bytes: Vec<u8>) -> usize {
        std::mem::replace(&mut self.held, bytes.len())
    }

    #[call]
    fn fetch(&self, size: usize) -> Vec<u8> {
        vec![5; size]
    }

    #[call]
    fn held(&self) -> usize {
        self.held
    }
}

/// `big`, with the default limits, and `small`, which takes messages of at most
/// [`LIMIT`] bytes; connected, both with `Store` registered; and their cluster events
/// from then on.
async fn two_nodes() -> (Node, Node, ClusterEvents, ClusterEvents) {
    let config = |name: &str| {
        cluster_config(name).heartbeat(Duration::from_millis(200), Duration::from_secs(20))
    };
    let big = Node::start(config("big")).await.unwrap();
    let seed = big.local_node_id().unwrap().to_string();
    let small_config = config("small").limits(MIN_FRAME_SIZE, LIMIT).seed(seed);
    let small = Node::start(small_config).await.unwrap();
    wait_connected(&big, 1).await;
    wait_connected(&small, 1).await;
    big.register_behaviors().unwrap();
    small.register_behaviors().unwrap();
    let events = (big.cluster_events(), small.cluster_events());
    (big, small, events.0, events.1)
}

/// The traffic counters of `node`'s connection (its only one, which must be up).
fn stats(node: &Node) -> TrafficStats {
    let connected = node.connected_nodes();
    connected.first().expect("the connection is up").stats
}

/// The size of the message `error` refuses as too large for `small`.
fn refused_size(error: &SendError) -> usize {
    match error {
        SendError::TooLarge { size, limit } => {
            assert_eq!(*limit, LIMIT, "the limit is the one `small` said");
            *size
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// Neither node saw its connection go down.
fn assert_no_node_down(events: [&ClusterEvents; 2]) {
    for events in events {
        while let Some(event) = events.try_recv() {
            assert!(
                !matches!(event, ClusterEvent::NodeDown { .. }),
                "the connection went down: {event:?}"
            );
        }
    }
}

#[test]
fn the_handshake_says_the_largest_message_a_node_takes() {
    run_blocking(async {
        let config = cluster_config("n").limits(MIN_FRAME_SIZE, LIMIT);
        let node = Node::start(config).await.unwrap();
        let mut raw = Raw::connect(&node).await;
        raw.send(&raw.hello(PROTOCOL_VERSION)).await;
        match raw.receive().await {
            Some(Wire::Challenge { max_message, .. }) => assert_eq!(max_message, LIMIT as u64),
            other => panic!("expected a challenge, got {other:?}"),
        }
        node.shutdown();
    });
}

#[test]
fn a_limit_changed_on_the_way_fails_the_proofs() {
    run_blocking(async {
        let node = Node::start(cluster_config("n")).await.unwrap();
        // The hello says 1 KiB; the client proves who it is as it said it (`MAX_MESSAGE`),
        // as if something on the path had lowered the limit: the node refuses.
        let mut raw = Raw::connect(&node).await;
        let mut hello = raw.hello(PROTOCOL_VERSION);
        if let Wire::Hello { max_message, .. } = &mut hello {
            *max_message = 1024;
        }
        let answer = raw.handshake_sent(&node, b"test secret", hello).await;
        let refused = Wire::Refused {
            reason: Refusal::Authentication,
        };
        assert_eq!(answer, Some(refused));
        node.shutdown();
    });
}

#[test]
fn casts_and_sends_too_large_for_their_node_fail_and_the_connection_stays_up() {
    run_blocking(async {
        let (big, small, big_events, small_events) = two_nodes().await;
        let store = small.spawn::<Store>(vec![1]).await.unwrap();
        let remote = big.server_ref::<Store>(store.pid()).unwrap();

        let size = refused_size(&remote.put(vec![7; OVER]).unwrap_err());
        assert!(size > OVER, "the size is the message's, encoded: {size}");
        let refused = remote.try_put(vec![7; OVER]).unwrap_err();
        refused_size(refused.error());
        assert_eq!(
            refused.into_inner().len(),
            OVER,
            "the message is handed back"
        );
        let refused = within("an awaited cast", remote.put_wait(vec![7; OVER])).await;
        refused_size(refused.unwrap_err().error());
        refused_size(&remote.send(vec![7; OVER]).unwrap_err());
        // A message that fits, just under the limit, goes.
        remote.put(vec![7; LIMIT - 64]).unwrap();
        assert_eq!(within("a small call", remote.held()).await, Ok(LIMIT - 64));

        // One encoded off the sender's thread is measured there, after its cast returned:
        // dropped, and counted.
        remote.put(vec![7; APART]).unwrap();
        eventually("the large cast counted as dropped", || {
            stats(&big).casts_dropped == 5
        })
        .await;
        assert_eq!(within("a small call", remote.held()).await, Ok(LIMIT - 64));

        let counted = stats(&big);
        assert_eq!((counted.casts_dropped, counted.calls_timed_out), (5, 0));
        assert_eq!(stats(&small).messages_undelivered, 0);
        assert_no_node_down([&big_events, &small_events]);
        big.shutdown();
        small.shutdown();
    });
}

#[test]
fn a_call_too_large_for_its_node_fails_and_the_connection_stays_up() {
    run_blocking(async {
        let (big, small, big_events, small_events) = two_nodes().await;
        let store = small.spawn::<Store>(vec![1]).await.unwrap();
        let remote = big.server_ref::<Store>(store.pid()).unwrap();

        for size in [OVER, APART] {
            let called = within("a call too large", remote.swap(vec![7; size])).await;
            match called {
                Err(CallError::TooLarge {
                    size: refused,
                    limit,
                }) => {
                    assert!(refused > size);
                    assert_eq!(limit, LIMIT);
                }
                other => panic!("expected TooLarge, got {other:?}"),
            }
        }
        // Not handled: the store holds what it held.
        assert_eq!(
            within("a small call", remote.swap(vec![7; 10])).await,
            Ok(1)
        );

        let counted = stats(&big);
        assert_eq!((counted.calls_pending, counted.calls_timed_out), (0, 0));
        assert_no_node_down([&big_events, &small_events]);
        big.shutdown();
        small.shutdown();
    });
}

#[test]
fn a_reply_too_large_for_the_callers_node_answers_the_caller() {
    run_blocking(async {
        let (big, small, big_events, small_events) = two_nodes().await;
        // The server on `big`, the caller on `small`, which takes less than it replies.
        let store = big.spawn::<Store>(vec![1]).await.unwrap();
        let remote = small.server_ref::<Store>(store.pid()).unwrap();

        for size in [OVER, APART] {
            let fetched = within("a reply too large", remote.fetch(size)).await;
            match fetched {
                Err(CallError::ReplyTooLarge {
                    size: refused,
                    limit,
                }) => {
                    assert!(refused > size);
                    assert_eq!(limit, LIMIT);
                }
                other => panic!("expected ReplyTooLarge, got {:?}", other.map(|r| r.len())),
            }
        }
        assert_eq!(
            within("a reply that fits", remote.fetch(1000)).await,
            Ok(vec![5; 1000])
        );

        let counted = stats(&small);
        assert_eq!((counted.calls_pending, counted.calls_timed_out), (0, 0));
        assert_no_node_down([&big_events, &small_events]);
        big.shutdown();
        small.shutdown();
    });
}

#[test]
fn a_spawn_whose_arguments_are_too_large_for_its_node_fails_and_the_connection_stays_up() {
    run_blocking(async {
        let (big, small, big_events, small_events) = two_nodes().await;

        let spawned = within(
            "a spawn too large",
            big.spawn_on::<Store>(&id(&small), vec![7; OVER]),
        )
        .await;
        match spawned {
            Err(RemoteSpawnError::TooLarge {
                behavior,
                node,
                size,
                limit,
            }) => {
                assert_eq!(behavior, "cluster-limits-store");
                assert_eq!(node, id(&small));
                assert!(size > OVER);
                assert_eq!(limit, LIMIT);
            }
            other => panic!(
                "expected TooLarge, got {:?}",
                other.map(|s| s.pid().clone())
            ),
        }
        assert_eq!(small.process_count(), 0, "no process was started");
        // Arguments that fit.
        let store = within("a spawn", big.spawn_on::<Store>(&id(&small), vec![7; 1000]))
            .await
            .unwrap();
        assert_eq!(within("a small call", store.held()).await, Ok(1000));

        let spawns = big.remote_stats().spawns;
        assert_eq!(
            (
                spawns.started,
                spawns.succeeded,
                spawns.refused,
                spawns.pending
            ),
            (2, 1, 1, 0)
        );
        assert_no_node_down([&big_events, &small_events]);
        big.shutdown();
        small.shutdown();
    });
}
