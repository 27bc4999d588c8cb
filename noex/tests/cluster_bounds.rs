//! Bounds: what a node keeps for its peers — parked answers, pending calls, queued replies,
//! unfinished messages — stays bounded whatever a peer does, and goes when it is no longer
//! needed.

mod common;
use common::id;

use std::time::Duration;

use common::raw::{frame, Address, Raw, Wire};
use common::{
    cluster_config, eventually, next_event, run_blocking, start_cluster, wait_connected, within,
};
use futures_lite::future::poll_once;
use futures_lite::AsyncWriteExt;
use noex::{behavior, CallError, ClusterEvent, GenServer, Node, NodeId, ReplyTo, SpawnOptions};

#[behavior(name = "bounds")]
pub struct Bounds {
    held: Vec<ReplyTo<()>>,
}

#[behavior]
impl Bounds {
    #[init]
    fn init() -> Self {
        Bounds { held: Vec::new() }
    }

    /// `len` bytes.
    #[call]
    fn blob(&self, len: u32) -> Vec<u8> {
        vec![7; len as usize]
    }

    /// Never answered while the process lives.
    #[call]
    fn hold(&mut self, reply: ReplyTo<()>) {
        self.held.push(reply);
    }

    /// Never answered: the reply is dropped on another thread, outside the process (its
    /// node then answers the caller once the process ends), and the process lives on.
    #[call]
    fn discard(&mut self, reply: ReplyTo<()>) {
        std::thread::spawn(move || drop(reply)).join().unwrap();
    }
}

type Request = <Bounds as GenServer>::Call;

/// Drops `a`'s connection to `b` and waits until it is made again.
async fn reconnect(a: &Node, b: &Node) {
    let events = a.cluster_events();
    assert!(a.faults().disconnect(&id(b)));
    loop {
        if let ClusterEvent::NodeUp { .. } = next_event(&events).await {
            break;
        }
    }
}

async fn spawn_named(node: &Node) -> noex::ServerRef<Bounds> {
    node.spawn_with::<Bounds>((), SpawnOptions::new().name("bounds"))
        .await
        .unwrap()
}

#[test]
fn an_unanswered_remote_call_holds_no_connection_once_its_caller_stops_waiting() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = spawn_named(b).await;
        let remote = a.server_ref::<Bounds>(server.pid()).unwrap();
        for _ in 0..5 {
            // The server's reply is dropped outside it, and the server lives on: the
            // caller is left to its timeout.
            assert_matches!(
                remote
                    .discard_with_timeout(Duration::from_millis(100))
                    .await,
                Err(CallError::Timeout { .. })
            );
            // Then the connection is lost and made again.
            reconnect(a, b).await;
        }
        wait_connected(b, 1).await;
        // Nothing b parked for those calls keeps a closed connection (and its socket).
        eventually("b to hold only its one live connection", || {
            b.faults().connections_held() == 1
        })
        .await;
        assert!(server.is_alive());
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_remote_call_dropped_by_its_caller_leaves_no_pending_entry() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = spawn_named(b).await;
        let remote = a.server_ref::<Bounds>(server.pid()).unwrap();
        for round in 0..200 {
            let mut call = Box::pin(remote.hold_with_timeout(Duration::from_secs(60)));
            assert_eq!(poll_once(&mut call).await, None, "the call waits for b");
            if round == 0 {
                assert_eq!(a.cluster_stats().calls_pending, 1);
            }
            // The caller gives up: a `select`, a killed process.
            drop(call);
        }
        assert_eq!(a.cluster_stats().calls_pending, 0);
        for node in nodes {
            node.shutdown();
        }
    });
}

/// A frame holding a call from a raw client to the process named "bounds".
fn call_frame(id: u64, request: &Request) -> Vec<u8> {
    let call = Wire::Call {
        id,
        to: Address::Name("bounds".into()),
        behavior: noex::__private::tag("bounds", ""),
        timeout_ms: 60_000,
    };
    frame(&call, &postcard::to_allocvec(request).unwrap())
}

/// A node whose outbound bound is `limit`, running `bounds`; the raw peer's stats on it.
async fn bounded_node(limit: usize) -> Node {
    let config = cluster_config("a")
        .outbound_queue(limit)
        .heartbeat(Duration::from_millis(100), Duration::from_secs(3));
    let a = Node::start(config).await.unwrap();
    spawn_named(&a).await;
    a
}

fn stats_of(node: &Node, peer: &NodeId) -> Option<noex::TrafficStats> {
    node.connected_nodes()
        .into_iter()
        .find(|n| n.id == *peer)
        .map(|n| n.stats)
}

#[test]
fn a_peer_that_calls_without_reading_its_replies_is_held_up_in_its_own_socket() {
    run_blocking(async {
        let limit = 256 * 1024;
        let a = bounded_node(limit).await;
        let b = Node::start(cluster_config("b").seed(id(&a).to_string()))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        let events = a.cluster_events();
        let raw = Raw::join(&a).await;
        let raw_id: NodeId = raw.name.parse().unwrap();

        // The client sends 8 MiB of calls for 4 KiB each — about 1 GiB of replies — and
        // reads none of them.
        let mut batch = Vec::new();
        for id in 0..1000 {
            batch.extend(call_frame(id, &Request::Blob(4 * 1024)));
        }
        let mut stream = raw.stream.clone();
        let _sending = smol::spawn(async move {
            let mut sent = 0;
            while sent < 8 << 20 && stream.write_all(&batch).await.is_ok() {
                sent += batch.len();
            }
        });

        // a queues at most its bound of replies plus the answers to the calls its
        // processes had not yet taken (1,024 at most: on a busy machine the reader can
        // get well ahead of the handler before the client's socket fills), withholds at
        // most its bound of the client's messages and then reads nothing more from it;
        // other peers are served meanwhile; and the client, which neither reads nor lets a
        // read, is dropped.
        let (most_queued, most_read) = (limit as u64 + 1024 * 5 * 1024, 2 << 20);
        let (mut peak_queued, mut peak_read) = (0, 0);
        let mut served = false;
        within("the client to be dropped for not reading", async {
            loop {
                if let Some(stats) = stats_of(&a, &raw_id) {
                    peak_queued = peak_queued.max(stats.queued_bytes);
                    peak_read = peak_read.max(stats.bytes_received);
                    assert!(
                        stats.queued_bytes <= most_queued,
                        "{} bytes of replies queued for a peer that reads none",
                        stats.queued_bytes
                    );
                    assert!(
                        stats.bytes_received <= most_read,
                        "{} bytes read from a peer whose replies are held up",
                        stats.bytes_received
                    );
                    if stats.queued_bytes >= limit as u64 && !served {
                        let other = b.named_on::<Bounds>("bounds", &id(&a)).blob(8).await;
                        assert_eq!(other, Ok(vec![7; 8]), "another peer is served");
                        served = true;
                    }
                }
                if let Some(ClusterEvent::NodeDown { node, .. }) = events.try_recv() {
                    if node == raw_id {
                        return;
                    }
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            served,
            "the replies reached the bound while the client was connected"
        );
        eprintln!("peak queued {peak_queued} B, peak read {peak_read} B");
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_peer_that_reads_its_replies_late_has_every_call_answered() {
    run_blocking(async {
        let limit = 64 * 1024;
        let a = bounded_node(limit).await;
        let mut raw = Raw::join(&a).await;
        let raw_id: NodeId = raw.name.parse().unwrap();
        // 1,024 calls for 16 KiB each: far more replies than the bound.
        let mut calls = Vec::new();
        for id in 0..1024 {
            calls.extend(call_frame(id, &Request::Blob(16 * 1024)));
        }
        raw.send_bytes(&calls).await;
        eventually("a to hold the client back", || {
            stats_of(&a, &raw_id).is_some_and(|s| s.queued_bytes >= limit as u64)
        })
        .await;
        // The client reads its replies now, and sends nothing more: every call withheld
        // is taken up as the replies drain.
        let mut answered = 0;
        while answered < 1024 {
            match raw.receive().await {
                Some(Wire::Reply { .. }) => answered += 1,
                Some(_) => {}
                None => panic!("the connection ended after {answered} replies"),
            }
        }
        a.shutdown();
    });
}

#[test]
fn a_goodbye_behind_withheld_messages_is_still_a_goodbye() {
    run_blocking(async {
        let limit = 64 * 1024;
        let a = bounded_node(limit).await;
        let events = a.cluster_events();
        let mut raw = Raw::join(&a).await;
        let raw_id: NodeId = raw.name.parse().unwrap();
        let mut calls = Vec::new();
        for id in 0..1024 {
            calls.extend(call_frame(id, &Request::Blob(16 * 1024)));
        }
        raw.send_bytes(&calls).await;
        eventually("a to hold the client back", || {
            stats_of(&a, &raw_id).is_some_and(|s| s.queued_bytes >= limit as u64)
        })
        .await;
        // The client leaves: its goodbye waits with its calls, and then it hangs up.
        raw.send(&Wire::Goodbye).await;
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        loop {
            match next_event(&events).await {
                ClusterEvent::NodeDown { node, reason } if node == raw_id => {
                    assert_eq!(reason, noex::NodeDownReason::Shutdown);
                    break;
                }
                _ => {}
            }
        }
        a.shutdown();
    });
}

#[test]
fn replies_larger_than_the_bound_drain_while_their_callers_node_keeps_calling() {
    run_blocking(async {
        let b = Node::start(cluster_config("b").outbound_queue(64 * 1024))
            .await
            .unwrap();
        spawn_named(&b).await;
        let a = Node::start(cluster_config("a").seed(id(&b).to_string()))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        let remote = a.named_on::<Bounds>("bounds", &id(&b));
        // Replies of 1 MiB each — sixteen times b's bound, so b withholds a's messages
        // while they drain — and small calls all along.
        let large: Vec<_> = (0..16)
            .map(|_| {
                let remote = remote.clone();
                smol::spawn(async move { remote.blob(1 << 20).await.map(|r| r.len()) })
            })
            .collect();
        eventually("b to queue more replies than its bound", || {
            b.cluster_stats().queued_bytes > 64 * 1024
        })
        .await;
        for _ in 0..100 {
            assert_eq!(within("a small call", remote.blob(1)).await, Ok(vec![7]));
        }
        for reply in large {
            assert_eq!(within("a large reply", reply).await, Ok(1 << 20));
        }
        a.shutdown();
        b.shutdown();
    });
}

/// Waits for the next `FragmentAck` on `raw`, passing over other frames.
async fn next_ack(raw: &mut Raw) -> u32 {
    loop {
        match raw.receive().await {
            Some(Wire::FragmentAck { bytes }) => return bytes,
            Some(_) => {}
            None => panic!("the connection ended"),
        }
    }
}

/// A node that takes messages of at most `size` bytes and holds at most two unfinished
/// at once; its peers may stay silent for ten minutes (raw peers send nothing while they
/// wait, and a peer dropped for silence would give its room to another).
async fn reassembling_node(size: usize) -> Node {
    let config = cluster_config("a")
        .heartbeat(Duration::from_millis(100), Duration::from_secs(600))
        .limits(1 << 20, size)
        .reassembly_limit(2 * size);
    Node::start(config).await.unwrap()
}

/// The body of a cast to nobody, padded to `size` bytes.
fn padded_cast(size: usize) -> Vec<u8> {
    let cast = Wire::Cast {
        to: Address::Name("nobody".into()),
        behavior: 0,
    };
    let mut body = postcard::to_allocvec(&cast).unwrap();
    body.resize(size, 0);
    body
}

#[test]
fn unfinished_messages_from_all_peers_stay_within_the_nodes_reassembly_limit() {
    run_blocking(async {
        const SIZE: usize = 512 * 1024;
        const PIECE: usize = 64 * 1024;
        let node = reassembling_node(SIZE).await;
        // A message of SIZE bytes: a cast to nobody, padded.
        let body = padded_cast(SIZE);
        let piece = |i: usize| {
            let fragment = Wire::Fragment {
                id: 1,
                last: (i + 1) * PIECE == SIZE,
                size: SIZE as u64,
            };
            frame(&fragment, &body[i * PIECE..(i + 1) * PIECE])
        };

        // Three peers each begin a message: two fit the limit, the third waits unread.
        // One after the other (each connection has its own reader: begun together, any
        // two of them could be the ones to fit).
        let mut peers = Vec::new();
        for i in 0..3 {
            let mut raw = Raw::join(&node).await;
            raw.send_bytes(&piece(0)).await;
            if i < 2 {
                assert_eq!(next_ack(&mut raw).await, PIECE as u32);
            }
            peers.push(raw);
        }
        let (acks, acked) = async_channel::unbounded();
        let mut third = peers.pop().unwrap();
        let _reading = smol::spawn(async move {
            while let Some(frame) = third.receive().await {
                if let Wire::FragmentAck { bytes } = frame {
                    let _ = acks.send(bytes).await;
                }
            }
        });
        smol::Timer::after(Duration::from_millis(500)).await;
        assert!(acked.is_empty(), "the third message waits for room");

        // The first message completes: its room goes to the third.
        for i in 1..SIZE / PIECE {
            peers[0].send_bytes(&piece(i)).await;
        }
        assert_eq!(
            within("the third's ack", acked.recv()).await,
            Ok(PIECE as u32)
        );
        assert_eq!(node.connected_nodes().len(), 3, "nobody was dropped");
        node.shutdown();
    });
}

#[test]
fn a_connection_closed_while_it_waits_for_reassembly_room_is_let_go() {
    run_blocking(async {
        const SIZE: usize = 512 * 1024;
        const PIECE: usize = 64 * 1024;
        let node = reassembling_node(SIZE).await;
        let body = padded_cast(SIZE);
        let first = frame(
            &Wire::Fragment {
                id: 1,
                last: false,
                size: SIZE as u64,
            },
            &body[..PIECE],
        );
        // Two peers hold all the room with messages they never finish.
        let mut holders = Vec::new();
        for _ in 0..2 {
            let mut raw = Raw::join(&node).await;
            raw.send_bytes(&first).await;
            assert_eq!(next_ack(&mut raw).await, PIECE as u32);
            holders.push(raw);
        }
        // A third begins one too: its reader waits for room.
        let mut third = Raw::join(&node).await;
        third.send_bytes(&first).await;
        wait_connected(&node, 3).await;
        let third_id: NodeId = third.name.parse().unwrap();
        assert!(node.faults().disconnect(&third_id));
        wait_connected(&node, 2).await;
        // Closed, the connection is let go at once: not when room frees up (never here).
        eventually("the closed connection to be let go", || {
            node.faults().connections_held() == 2
        })
        .await;
        drop(third);
        drop(holders);
        node.shutdown();
    });
}

#[test]
fn messages_read_together_with_a_goodbye_are_counted() {
    run_blocking(async {
        let node = Node::start(cluster_config("a")).await.unwrap();
        let mut raw = Raw::join(&node).await;
        wait_connected(&node, 1).await;
        // Ten casts to a process that does not run, and a goodbye: one read for the node.
        let cast = Wire::Cast {
            to: Address::Pid { serial: u64::MAX },
            behavior: 0,
        };
        let mut bytes: Vec<u8> = (0..10).flat_map(|_| frame(&cast, &[])).collect();
        bytes.extend(frame(&Wire::Goodbye, &[]));
        raw.send_bytes(&bytes).await;
        wait_connected(&node, 0).await;
        let stats = node.cluster_stats();
        assert_eq!(stats.messages_undelivered, 10, "{stats:?}");
        assert_eq!(stats.messages_received, 10, "{stats:?}");
        let casts = 10 * frame(&cast, &[]).len() as u64;
        assert!(stats.bytes_received >= casts, "{stats:?}");
        node.shutdown();
    });
}

#[test]
fn a_scheduler_thread_lets_go_of_a_closed_connection_it_sent_on() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = spawn_named(b).await;
        let remote = a.server_ref::<Bounds>(server.pid()).unwrap();
        // Calls from a task on a's threads: the thread keeps the connection for its next.
        let call = |remote: noex::ServerRef<Bounds>| {
            a.spawn_task(async move { remote.blob(3).await.map(|blob| blob.len()) })
        };
        assert_eq!(call(remote.clone()).await, Ok(3));
        reconnect(a, b).await;
        // Nothing sent since: the thread lets go of the closed connection once idle.
        eventually("a to hold only its one live connection", || {
            a.faults().connections_held() == 1
        })
        .await;
        assert_eq!(call(remote).await, Ok(3), "sent on the new connection");
        for node in nodes {
            node.shutdown();
        }
    });
}
