//! Nothing waits forever: what is awaited on a node ends when that node, its peer or the
//! process it concerns goes away, however it goes.

mod common;
use common::id;

use std::time::Duration;

use common::{run_blocking, start_cluster, watch_end, within};
use noex::{behavior, CallError, ClusterEvent, ExitReason, NodeDownReason, ReplyTo};

#[behavior(name = "no_hang_sink")]
pub struct Sink {
    held: Vec<ReplyTo<u64>>,
    count: u64,
}

#[behavior]
impl Sink {
    #[init]
    fn init() -> Self {
        Sink {
            held: Vec::new(),
            count: 0,
        }
    }

    #[call]
    fn ping(&self) -> u64 {
        1
    }

    #[cast]
    fn take(&mut self, bytes: Vec<u8>) {
        self.count += bytes.len() as u64;
    }

    #[call]
    fn count(&self) -> u64 {
        self.count
    }

    /// Never answers while the process lives.
    #[call]
    fn hold(&mut self, reply: ReplyTo<u64>) {
        self.held.push(reply);
    }
}

/// `node.shutdown()` called from one of the node's own threads (a process or a task of
/// the node) still says goodbye and closes the connections: what waits on this node for
/// an answer of a peer, outside the node's threads, ends at once, and the peer hears the
/// goodbye.
#[test]
fn a_node_shut_down_from_its_own_thread_ends_what_waits_on_its_peers() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let b_events = b.cluster_events();
        let sink = b.spawn::<Sink>(()).await.unwrap();
        let remote = a.server_ref::<Sink>(sink.pid()).unwrap();
        assert_eq!(within("a first call", remote.ping()).await, Ok(1));
        // On the test's own executor, not a's threads.
        let watched = watch_end(a, sink.pid()).await;
        let call = smol::spawn({
            let remote = remote.clone();
            async move { remote.hold_with_timeout(Duration::from_secs(60)).await }
        });
        common::eventually("the call to reach b", || {
            b.process_info(sink.pid())
                .is_some_and(|i| i.message_count == 2)
        })
        .await;
        let shutdown = a.spawn_task({
            let a = a.clone();
            async move { a.shutdown() }
        });
        within("the shutdown call to return", shutdown).await;
        assert_eq!(
            within("a's watch of b's process to end", watched).await,
            ExitReason::NoConnection
        );
        assert_matches!(
            within("a's pending call to b to fail", call).await,
            Err(CallError::NoConnection { .. })
        );
        // b heard a's goodbye (not a silence found by heartbeats).
        let down = within("b to see a down", async {
            loop {
                match b_events.recv().await {
                    Some(ClusterEvent::NodeDown { node, reason }) if node == id(a) => break reason,
                    Some(_) => continue,
                    None => panic!("b is gone"),
                }
            }
        })
        .await;
        assert_eq!(down, NodeDownReason::Shutdown);
        common::shutdown_all(nodes);
    });
}

/// A node that leaves with a goodbye lets what it sent before go first: the peer handles
/// the messages queued before the goodbye (the goodbye overtook them, and the peer,
/// closing on it, dropped them unreported).
#[test]
fn messages_queued_before_a_goodbye_are_delivered() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let sink = a.spawn::<Sink>(()).await.unwrap();
        let remote = b.server_ref::<Sink>(sink.pid()).unwrap();
        const LARGE: usize = 8 << 20;
        remote.take(vec![7; LARGE]).unwrap();
        remote.take(vec![1]).unwrap();
        b.shutdown();
        let expected = LARGE as u64 + 1;
        within("the messages b sent before its goodbye", async {
            while sink.count().await != Ok(expected) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        common::shutdown_all(nodes);
    });
}

/// A clustered node's cluster events end once it has shut down: the `NodeDown`s of its
/// peers come first, then `None`.
#[test]
fn cluster_events_end_after_the_shutdown() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let events = a.cluster_events();
        a.shutdown();
        let mut downs = Vec::new();
        while let Some(event) = within("the subscription to end", events.recv()).await {
            downs.push(event);
        }
        assert!(
            downs.contains(&ClusterEvent::NodeDown {
                node: id(b),
                reason: NodeDownReason::Shutdown,
            }),
            "{downs:?}"
        );
        assert!(within("a late one", a.cluster_events().recv())
            .await
            .is_none());
        common::shutdown_all(nodes);
    });
}
