//! Connections: a restarted node rejoins at once, crossing connects end with one
//! connection (and a lost duplicate is reported), what a node dials is bounded, and what
//! answers at an address before proving itself neither ends its dial nor keeps it up.

mod common;
use common::id;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_net::TcpListener;
use common::raw::{frame, Raw, Refusal, Wire};
use common::{cluster_config, eventually, next_event, run_blocking, wait_connected, within};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use noex::{
    behavior, CallError, ClusterEvent, Node, NodeDownReason, NodeId, RefusedReason, ReplyTo,
    SpawnOptions,
};

#[behavior(name = "holder")]
pub struct Holder {
    held: Vec<ReplyTo<()>>,
}

#[behavior]
impl Holder {
    #[init]
    fn init() -> Self {
        Holder { held: Vec::new() }
    }

    #[call]
    fn ping(&self) {}

    /// Never answered while the process lives.
    #[call]
    fn hold(&mut self, reply: ReplyTo<()>) {
        self.held.push(reply);
    }
}

/// Waits for the next `NodeUp` of `node` among `events`.
async fn node_up(events: &noex::ClusterEvents, node: &NodeId) {
    loop {
        if let ClusterEvent::NodeUp { node: up, .. } = next_event(events).await {
            if up == *node {
                return;
            }
        }
    }
}

/// A node named `restarted` crashes and comes back on its address; `survivor`, which
/// would wait 10 s before re-dialling it, sees it up again. Returns how long that took.
async fn rejoin(survivor: &str, restarted: &str) -> Duration {
    let slow = cluster_config(survivor)
        .reconnect_backoff(Duration::from_secs(10), Duration::from_secs(10));
    let s = Node::start(slow).await.unwrap();
    let seed = id(&s).to_string();
    let r = Node::start(cluster_config(restarted).seed(seed.clone()))
        .await
        .unwrap();
    wait_connected(&s, 1).await;
    wait_connected(&r, 1).await;
    let r_id = id(&r);

    // r crashes: no goodbye, and s's first re-dial is refused, so s waits out its backoff.
    let events = s.cluster_events();
    r.faults().refuse_connections(true);
    assert!(r.faults().disconnect(&id(&s)));
    assert!(matches!(
        next_event(&events).await,
        ClusterEvent::NodeDown { .. }
    ));
    r.shutdown();

    // r comes back on the same address and dials s.
    let bind = format!("127.0.0.1:{}", r_id.port()).parse().unwrap();
    let started = Instant::now();
    let r2 = Node::start(cluster_config(restarted).bind(bind).seed(seed))
        .await
        .unwrap();
    within("the restarted node to be up", node_up(&events, &r_id)).await;
    let took = started.elapsed();
    wait_connected(&r2, 1).await;
    s.shutdown();
    r2.shutdown();
    took
}

#[test]
fn a_restarted_node_rejoins_at_once_when_its_id_is_the_smaller() {
    run_blocking(async {
        // The survivor's id is the greater: it used to refuse the restarted node while
        // its own re-dial was only waiting for its next attempt.
        let took = rejoin("z-survivor", "a-restarted").await;
        eprintln!("rejoined in {took:?}");
        assert!(took < Duration::from_secs(3), "rejoined after {took:?}");
    });
}

#[test]
fn a_restarted_node_rejoins_at_once_when_its_id_is_the_greater() {
    run_blocking(async {
        let took = rejoin("a-survivor", "z-restarted").await;
        eprintln!("rejoined in {took:?}");
        assert!(took < Duration::from_secs(3), "rejoined after {took:?}");
    });
}

#[test]
fn a_second_connection_that_replaces_the_one_in_use_is_reported_as_a_loss() {
    run_blocking(async {
        // Two nodes that reach each other under another name for their address, so that
        // neither recognises the other's dial: both connections get through.
        let patient = |name| cluster_config(name).connect_timeout(Duration::from_secs(30));
        let a = Node::start(patient("a")).await.unwrap();
        let b = Node::start(patient("b")).await.unwrap();
        assert!(id(&b) > id(&a), "b's connection is the one kept");
        let (a_events, b_events) = (a.cluster_events(), b.cluster_events());

        // b dials a; a holds that handshake open.
        a.faults().hold_handshakes(true);
        b.faults().dial(&format!("localhost:{}", id(&a).port()));
        eventually("a to hold b's handshake", || {
            a.faults().handshakes_held() == 1
        })
        .await;
        // a dials b: that connection comes up, and a calls b over it.
        a.faults().dial(&format!("localhost:{}", id(&b).port()));
        node_up(&a_events, &id(&b)).await;
        node_up(&b_events, &id(&a)).await;
        let holder = b.spawn::<Holder>(()).await.unwrap();
        let remote = a.server_ref::<Holder>(holder.pid()).unwrap();
        let call = smol::spawn({
            let remote = remote.clone();
            async move { remote.hold_with_timeout(Duration::from_secs(60)).await }
        });
        eventually("the call to reach b", || {
            b.process_info(holder.pid())
                .is_some_and(|info| info.message_count == 1)
        })
        .await;

        // b's handshake goes on: its connection, dialled by the greater id, replaces the
        // one in use on both sides — and both say so.
        a.faults().hold_handshakes(false);
        assert_matches!(
            within("the call", call).await,
            Err(CallError::NoConnection { .. })
        );
        for (events, peer) in [(&a_events, id(&b)), (&b_events, id(&a))] {
            assert_eq!(
                next_event(events).await,
                ClusterEvent::NodeDown {
                    node: peer.clone(),
                    reason: NodeDownReason::ConnectionClosed
                }
            );
            assert!(matches!(
                next_event(events).await,
                ClusterEvent::NodeUp { node, .. } if node == peer
            ));
        }
        assert_eq!(remote.ping().await, Ok(()));
        assert_eq!(a.connected_nodes().len(), 1);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn crossing_connects_end_with_one_connection_and_no_loss() {
    run_blocking(async {
        for _ in 0..10 {
            let a = Node::start(cluster_config("a")).await.unwrap();
            let b = Node::start(cluster_config("b")).await.unwrap();
            let events = a.cluster_events();
            // Both dial before either answers.
            a.faults().hold_handshakes(true);
            b.faults().hold_handshakes(true);
            a.faults().dial(id(&b).address());
            b.faults().dial(id(&a).address());
            eventually("a handshake to be held", || {
                a.faults().handshakes_held() + b.faults().handshakes_held() > 0
            })
            .await;
            a.faults().hold_handshakes(false);
            b.faults().hold_handshakes(false);
            node_up(&events, &id(&b)).await;
            wait_connected(&b, 1).await;
            let holder = b
                .spawn_with::<Holder>((), SpawnOptions::new().name("holder"))
                .await
                .unwrap();
            assert_eq!(a.named_on::<Holder>("holder", &id(&b)).ping().await, Ok(()));
            drop(holder);
            assert_eq!(events.try_recv(), None, "no connection was lost");
            a.shutdown();
            b.shutdown();
        }
    });
}

#[test]
fn handshakes_that_never_finish_do_not_hold_a_dial_back_for_good() {
    run_blocking(async {
        let quick = |name| {
            cluster_config(name)
                .connect_timeout(Duration::from_millis(300))
                .heartbeat(Duration::from_millis(100), Duration::from_secs(30))
        };
        let a = Node::start(quick("a")).await.unwrap();
        let b = Node::start(quick("b")).await.unwrap();
        // Someone without the secret keeps opening handshakes with a in b's name, each of
        // which a holds until it times out.
        a.faults().hold_handshakes(true);
        let (a2, b_id) = (a.clone(), id(&b));
        let _impostor = smol::spawn(async move {
            let mut open = Vec::new();
            loop {
                let mut raw = Raw::connect(&a2).await;
                raw.name = b_id.to_string();
                raw.send(&raw.hello(common::raw::PROTOCOL_VERSION)).await;
                open.push(raw);
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        });
        eventually("an impostor's handshake to be under way", || {
            a.faults().handshakes_held() > 0
        })
        .await;
        // a's own dial to b waits for those handshakes no longer than one may take.
        let events = a.cluster_events();
        a.faults().dial(id(&b).address());
        node_up(&events, &id(&b)).await;
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn traffic_totals_never_go_backwards_when_a_peer_leaves() {
    run_blocking(async {
        let nodes = common::start_cluster(3).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let holder = b
            .spawn_with::<Holder>((), SpawnOptions::new().name("holder"))
            .await
            .unwrap();
        for _ in 0..20 {
            assert_eq!(a.named_on::<Holder>("holder", &id(b)).ping().await, Ok(()));
        }
        drop(holder);
        let before = a.cluster_stats();
        assert!(before.messages_sent >= 20);
        b.shutdown();
        wait_connected(a, 1).await;
        let after = a.cluster_stats();
        assert!(
            after.messages_sent >= before.messages_sent,
            "{after:?} after {before:?}"
        );
        assert!(after.bytes_received >= before.bytes_received);
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_peer_s_load_is_known_at_once_and_stays_fresh_on_a_busy_link() {
    run_blocking(async {
        // Heartbeats every 100 ms; the link is never quiet for that long.
        let nodes = common::start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let holder = b.spawn::<Holder>(()).await.unwrap();
        let remote = a.server_ref::<Holder>(holder.pid()).unwrap();
        let busy = smol::spawn(async move {
            loop {
                if remote.ping().await.is_err() {
                    return;
                }
            }
        });
        let load_of_b = || a.connected_nodes()[0].process_count;
        eventually("b's one process to be known", || load_of_b() == 1).await;
        let mut more = Vec::new();
        for _ in 0..5 {
            more.push(b.spawn::<Holder>(()).await.unwrap());
        }
        eventually("b's six processes to be known", || load_of_b() == 6).await;
        drop(busy);
        for node in nodes {
            node.shutdown();
        }
    });
}

/// A member list from a raw peer naming `nodes`.
fn members(nodes: Vec<String>) -> Vec<u8> {
    frame(&Wire::Members { nodes }, &[])
}

/// Addresses where nothing listens.
fn dead_addresses(n: usize) -> Vec<String> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .enumerate()
        .map(|(i, l)| format!("dead{i}@{}", l.local_addr().unwrap()))
        .collect()
}

#[test]
fn announced_addresses_are_dialled_by_a_bounded_number_of_loops_that_end() {
    run_blocking(async {
        let config = cluster_config("a")
            .heartbeat(Duration::from_millis(100), Duration::from_secs(30))
            .max_dials(16)
            .forget_unreachable_after(Duration::from_millis(500));
        let node = Node::start(config).await.unwrap();
        let mut raw = Raw::join(&node).await;
        // More than twice the loops: those not dialled at once wait for a loop to end.
        raw.send_bytes(&members(dead_addresses(40))).await;
        eventually("the node to dial", || node.faults().dials() > 0).await;
        let mut most = 0;
        within("the dial loops to end", async {
            loop {
                let dials = node.faults().dials();
                most = most.max(dials);
                assert!(dials <= 16, "{dials} dial loops");
                if dials == 0 {
                    return;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert_eq!(most, 16);
        node.shutdown();
    });
}

/// What a listener at a learnt address does with a connection a node makes to it.
enum Answer {
    /// Reads the hello and sends these bytes: anyone at the address can.
    Unproven(Vec<u8>),
    /// Proves the test secret as `name`, then refuses the node's proof so.
    Proven(String, Refusal),
    /// Passes the connection on to this address.
    Relay(std::net::SocketAddr),
}

/// Serves `listener`: its `n`th connection gets `answers[n]` (the last one, past them);
/// returns how many it accepted.
fn serve(listener: TcpListener, answers: Vec<Answer>) -> (Arc<AtomicUsize>, smol::Task<()>) {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = smol::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            match &answers[n.min(answers.len() - 1)] {
                Answer::Unproven(bytes) => {
                    let mut hello = [0u8; 256];
                    let _ = stream.read(&mut hello).await;
                    let _ = stream.write_all(bytes).await;
                }
                Answer::Proven(name, reason) => {
                    let name = name.clone();
                    let mut raw = Raw { stream, name };
                    if let Some(Wire::Proof { .. }) = raw.challenge(b"test secret").await {
                        let reason = reason.clone();
                        raw.send(&Wire::Refused { reason }).await;
                    }
                }
                Answer::Relay(to) => {
                    let Ok(onward) = async_net::TcpStream::connect(to).await else {
                        continue;
                    };
                    smol::spawn(futures_lite::io::copy(stream.clone(), onward.clone())).detach();
                    smol::spawn(futures_lite::io::copy(onward, stream)).detach();
                }
            }
        }
    });
    (connections, task)
}

/// A node that forgets what does not answer after `forget` (its raw peers, which send no
/// heartbeats, are not lost meanwhile), a raw peer of it, and its events from before.
async fn learner(forget: Duration) -> (Node, Raw, noex::ClusterEvents) {
    let config = cluster_config("a")
        .heartbeat(Duration::from_millis(100), Duration::from_secs(30))
        .forget_unreachable_after(forget);
    let node = Node::start(config).await.unwrap();
    let events = node.cluster_events();
    let raw = Raw::join(&node).await;
    (node, raw, events)
}

/// Waits for the first `Refused` event among `events`: (by_peer, reason).
async fn refused(events: &noex::ClusterEvents) -> (bool, RefusedReason) {
    loop {
        if let ClusterEvent::Refused {
            by_peer, reason, ..
        } = next_event(events).await
        {
            return (by_peer, reason);
        }
    }
}

#[test]
fn a_learnt_address_answered_by_an_impostor_is_dialled_on_until_forgotten() {
    run_blocking(async {
        // Whatever answers at a lost peer's address before proving itself — a refusal,
        // garbage, "already connected" — must neither stop the node from dialling it nor
        // keep it dialled for ever.
        for answer in ["a refusal", "garbage", "already connected"] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let x = format!("x@{}", listener.local_addr().unwrap());
            let refused = |reason| frame(&Wire::Refused { reason }, &[]);
            let bytes = match answer {
                "a refusal" => refused(Refusal::Authentication),
                "garbage" => b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
                _ => refused(Refusal::AlreadyConnected { node: x.clone() }),
            };
            let (connections, listening) = serve(listener, vec![Answer::Unproven(bytes)]);
            let (node, mut raw, _) = learner(Duration::from_millis(500)).await;
            raw.send_bytes(&members(vec![x.clone()])).await;
            eventually("the address to be dialled again", || {
                connections.load(Ordering::SeqCst) >= 2
            })
            .await;
            eventually("the address to be forgotten", || node.faults().dials() == 0).await;
            node.shutdown();
            listening.cancel().await;
        }
    });
}

#[test]
fn a_learnt_address_refused_by_its_node_after_it_proved_itself_is_dialled_once() {
    run_blocking(async {
        // The node at the address proves the secret, then refuses: its word holds.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let x = format!("x@{}", listener.local_addr().unwrap());
        let answer = Answer::Proven(x.clone(), Refusal::IdInUse);
        let (connections, _listening) = serve(listener, vec![answer]);
        // Not forgotten for its silence here: the dial ends for the refusal.
        let (node, mut raw, events) = learner(Duration::from_secs(300)).await;
        raw.send_bytes(&members(vec![x])).await;
        assert_eq!(refused(&events).await, (true, RefusedReason::IdInUse));
        eventually("the node to stop dialling", || node.faults().dials() == 0).await;
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        node.shutdown();
    });
}

#[test]
fn a_learnt_address_refused_by_an_impostor_is_joined_when_its_node_answers_there() {
    run_blocking(async {
        // x's address first leads to an impostor, which refuses the node; then to x (x
        // listens on 127.0.0.2 under the address's port, and says the address is its own).
        // x knows no one: only the node's dial can bring them together.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let behind = std::net::SocketAddr::from(([127, 0, 0, 2], port));
        let x = Node::start(cluster_config("x").bind(behind).advertise_host("127.0.0.1"))
            .await
            .unwrap();
        let refusal = frame(
            &Wire::Refused {
                reason: Refusal::Authentication,
            },
            &[],
        );
        let answers = vec![Answer::Unproven(refusal), Answer::Relay(behind)];
        let (_, _listening) = serve(listener, answers);
        let (node, mut raw, events) = learner(Duration::from_secs(1)).await;
        raw.send_bytes(&members(vec![id(&x).to_string()])).await;
        assert_eq!(refused(&events).await, (true, RefusedReason::Secret));
        node_up(&events, &id(&x)).await;
        node.shutdown();
        x.shutdown();
    });
}

/// A listener that counts the connections it accepts (and answers none).
async fn counting_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>, smol::Task<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let task = smol::spawn({
        let connections = connections.clone();
        async move {
            let mut kept = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::Relaxed);
                kept.push(stream);
            }
        }
    });
    (address, connections, task)
}

#[test]
fn a_member_list_too_long_or_naming_something_else_than_node_ids_is_a_protocol_error() {
    run_blocking(async {
        let config = cluster_config("a")
            .max_members(8)
            .forget_unreachable_after(Duration::ZERO);
        let node = Node::start(config).await.unwrap();
        let (address, connections, _listening) = counting_listener().await;
        for nodes in [
            (0..9).map(|i| format!("n{i}@{address}")).collect(),
            vec![format!("n0@{address}"), "not a node id".to_owned()],
        ] {
            let events = node.cluster_events();
            let mut raw = Raw::join(&node).await;
            raw.send_bytes(&members(nodes)).await;
            loop {
                match next_event(&events).await {
                    ClusterEvent::NodeDown {
                        reason: NodeDownReason::ProtocolError(_),
                        ..
                    } => break,
                    ClusterEvent::NodeUp { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            raw.closed().await;
        }
        // Every dial loop has ended (the raw peers' re-dials give up at once here), and
        // none of them was for the nodes those lists named.
        eventually("the dial loops to end", || node.faults().dials() == 0).await;
        assert_eq!(connections.load(Ordering::Relaxed), 0);
        node.shutdown();
    });
}
