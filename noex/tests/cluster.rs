//! Clusters: membership, node events, remote calls and casts, location transparency.

mod common;

use std::time::Duration;

use common::{
    cluster_config, eventually, next_event, run_blocking, shutdown_all, start_cluster,
    wait_connected, within,
};
use noex::{
    behavior, CallError, ClusterConfig, ClusterEvent, ConfigError, Ctx, ExitReason, LookupError,
    Node, NodeDownReason, NodeId, ReplyTo, SendError, ServerRef, SpawnOptions, StartError,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    seq: u64,
    text: String,
}

/// A server that keeps what it is sent, in order.
#[behavior(name = "recorder")]
pub struct Recorder {
    notes: Vec<Note>,
    waiting: Option<ReplyTo<u64>>,
}

#[behavior]
impl Recorder {
    #[init]
    fn init() -> Self {
        Recorder {
            notes: Vec::new(),
            waiting: None,
        }
    }

    #[cast]
    fn record(&mut self, note: Note) {
        self.notes.push(note);
    }

    #[call]
    fn notes(&self) -> Vec<Note> {
        self.notes.clone()
    }

    #[call]
    fn count(&self) -> usize {
        self.notes.len()
    }

    #[call]
    fn echo(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    #[call]
    fn fail(&self, text: String) -> Result<u64, String> {
        Err(text)
    }

    /// Never answers (until the process ends).
    #[call]
    fn hang(&mut self, reply: ReplyTo<u64>) {
        self.waiting = Some(reply);
    }

    #[call]
    fn crash(&self) -> u64 {
        panic!("asked to crash")
    }

    #[call]
    fn node_name(&self, ctx: &mut Ctx<Self>) -> String {
        ctx.pid().node().to_owned()
    }
}

/// Another behaviour, to be addressed under the wrong type.
#[behavior(name = "other")]
pub struct Other;

#[behavior]
impl Other {
    #[init]
    fn init() -> Self {
        Other
    }

    #[call]
    fn ping(&self) -> u8 {
        1
    }
}

/// A local process that forwards notes to a recorder: a sender of its own, so the
/// connection keeps its messages in order among themselves only.
#[behavior]
pub struct Forwarder {
    to: ServerRef<Recorder>,
}

#[behavior(local)]
impl Forwarder {
    #[init]
    fn init(to: ServerRef<Recorder>) -> Self {
        Forwarder { to }
    }

    #[cast]
    fn forward(&self, note: Note) {
        self.to.record(note).unwrap();
    }
}

/// A server whose handler can be kept busy.
#[behavior(name = "napper")]
pub struct Napper;

#[behavior]
impl Napper {
    #[init]
    fn init() -> Self {
        Napper
    }

    #[call]
    async fn nap(&self, millis: u64) {
        smol::Timer::after(Duration::from_millis(millis)).await;
    }

    #[call]
    fn size(&self, bytes: Vec<u8>) -> usize {
        bytes.len()
    }
}

fn id(node: &Node) -> NodeId {
    node.local_node_id().unwrap().clone()
}

/// Two connected nodes whose heartbeats allow 20 s of silence: encoding a large message in
/// a debug build takes a while, and the tests that send one are not about timing.
async fn start_patient_pair() -> Vec<Node> {
    let config = |name: &str| {
        cluster_config(name).heartbeat(Duration::from_millis(200), Duration::from_secs(20))
    };
    let a = Node::start(config("a")).await.unwrap();
    let b = Node::start(config("b").seed(id(&a).to_string()))
        .await
        .unwrap();
    wait_connected(&a, 1).await;
    vec![a, b]
}

/// `count` recorders spawned on `b` from outside (so spread over its threads), as
/// references held on `a`.
async fn remote_recorders(a: &Node, b: &Node, count: usize) -> Vec<ServerRef<Recorder>> {
    let mut servers = Vec::new();
    for _ in 0..count {
        let server = b.spawn::<Recorder>(()).await.unwrap();
        servers.push(a.server_ref::<Recorder>(server.pid()).unwrap());
    }
    servers
}

#[test]
fn a_node_reports_its_real_address_when_bound_to_port_zero() {
    run_blocking(async {
        let node = Node::start(cluster_config("solo")).await.unwrap();
        let id = id(&node);
        assert_eq!(id.name(), "solo");
        assert_eq!(id.host(), "127.0.0.1");
        assert_ne!(id.port(), 0);
        assert!(node.connected_nodes().is_empty());
        node.shutdown();
    });
}

#[test]
fn nodes_on_ipv6_loopback_connect_by_their_bracketed_ids() {
    run_blocking(async {
        let v6 = |name: &str| cluster_config(name).bind("[::1]:0".parse().unwrap());
        let a = Node::start(v6("a")).await.unwrap();
        let (a_id, seed) = (id(&a), id(&a).to_string());
        assert!(seed.starts_with("a@[::1]:"), "{seed}");
        assert_eq!(a_id.host(), "::1");
        let b = Node::start(v6("b").seed(seed)).await.unwrap();
        wait_connected(&a, 1).await;
        wait_connected(&b, 1).await;
        // Connected once each way, and no dial left over (the peer's address is
        // recognised as that of a connected node).
        common::eventually("the dials to end", || {
            a.faults().dials() == 0 && b.faults().dials() == 0
        })
        .await;
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        assert_eq!(remote.count().await, Ok(0));
        shutdown_all(vec![a, b]);
    });
}

#[test]
fn degenerate_limits_are_refused_or_given_a_meaning() {
    run_blocking(async {
        // A zero connect timeout would fail every handshake: refused.
        let result = Node::start(cluster_config("zero").connect_timeout(Duration::ZERO)).await;
        assert!(
            matches!(
                result,
                Err(StartError::Config(ConfigError::ZeroConnectTimeout))
            ),
            "{result:?}"
        );
        // Frames smaller than a message sent whole would drop such messages, and the
        // connection with them: refused.
        let small = cluster_config("small").limits(noex::MIN_FRAME_SIZE - 1, 1 << 20);
        let result = Node::start(small).await;
        assert!(
            matches!(
                result,
                Err(StartError::Config(ConfigError::FrameSize { max_frame_size }))
                    if max_frame_size == noex::MIN_FRAME_SIZE - 1
            ),
            "{result:?}"
        );
        // A zero outbound queue is one byte (a zero one withheld every reply for good),
        // a zero first reconnect delay 1 ms: calls between such nodes are answered.
        let tiny = |name: &str| {
            cluster_config(name)
                .outbound_queue(0)
                .reconnect_backoff(Duration::ZERO, Duration::ZERO)
        };
        let a = Node::start(tiny("a")).await.unwrap();
        let b = Node::start(tiny("b").seed(id(&a).to_string()))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        assert_eq!(within("a call", remote.count()).await, Ok(0));
        shutdown_all(vec![a, b]);
    });
}

#[test]
fn binding_every_interface_requires_an_advertised_host() {
    run_blocking(async {
        let any = "0.0.0.0:0".parse().unwrap();
        let result = Node::start(cluster_config("any").bind(any)).await;
        assert!(
            matches!(
                result,
                Err(StartError::Config(ConfigError::NoAdvertisedHost { .. }))
            ),
            "{result:?}"
        );

        let node = Node::start(cluster_config("any").bind(any).advertise_host("10.1.2.3"))
            .await
            .unwrap();
        assert_eq!(
            id(&node).host(),
            "10.1.2.3",
            "it advertises what it was told, not 127.0.0.1"
        );
        node.shutdown();
    });
}

#[test]
fn an_invalid_name_or_seed_is_a_typed_error() {
    run_blocking(async {
        let bad_name = Node::start(ClusterConfig::new("not a name")).await;
        assert!(
            matches!(bad_name, Err(StartError::NodeId(_))),
            "{bad_name:?}"
        );
        let bad_seed = Node::start(cluster_config("ok").seed("nobody@:4000")).await;
        assert!(
            matches!(bad_seed, Err(StartError::NodeId(_))),
            "{bad_seed:?}"
        );
    });
}

#[test]
fn two_nodes_connect_and_report_node_up_with_peer_info() {
    run_blocking(async {
        let a = Node::start(cluster_config("a")).await.unwrap();
        let events = a.cluster_events();
        let b = Node::start(cluster_config("b").seed(id(&a).to_string()))
            .await
            .unwrap();
        match next_event(&events).await {
            ClusterEvent::NodeUp { node, incarnation } => {
                assert_eq!(node, id(&b));
                assert_eq!(incarnation, b.incarnation());
            }
            other => panic!("unexpected {other:?}"),
        }
        b.spawn::<Recorder>(()).await.unwrap();
        common::eventually("a heartbeat carrying b's process count", || {
            a.connected_nodes()
                .first()
                .is_some_and(|info| info.process_count == 1 && !info.uptime.is_zero())
        })
        .await;
        let info = &a.connected_nodes()[0];
        assert_eq!(info.id, id(&b));
        assert!(info.last_seen < Duration::from_secs(1));
        shutdown_all(vec![a, b]);
    });
}

#[test]
fn five_nodes_started_from_one_seed_all_see_each_other() {
    run_blocking(async {
        let nodes = start_cluster(5).await;
        for node in &nodes {
            let peers: Vec<_> = node.connected_nodes().into_iter().map(|i| i.id).collect();
            assert_eq!(peers.len(), 4);
            assert!(!peers.contains(&id(node)));
        }
        shutdown_all(nodes);
    });
}

#[test]
fn nodes_that_seed_each_other_end_with_one_connection_each() {
    run_blocking(async {
        // Reserve two ports, then start both nodes at once, each seeded with the other.
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let config = |name: &str, own: u16, other_name: &str, other: u16| {
            cluster_config(name)
                .bind(format!("127.0.0.1:{own}").parse().unwrap())
                .seed(format!("{other_name}@127.0.0.1:{other}"))
        };
        let (a, b) = futures_lite::future::zip(
            Node::start(config("a", ports[0], "b", ports[1])),
            Node::start(config("b", ports[1], "a", ports[0])),
        )
        .await;
        let (a, b) = (a.unwrap(), b.unwrap());
        let (a_events, b_events) = (a.cluster_events(), b.cluster_events());
        wait_connected(&a, 1).await;
        wait_connected(&b, 1).await;
        // Whatever raced, each side settled on one connection and saw the other come up
        // no more than once since subscribing.
        let ping = b
            .spawn_with::<Other>((), SpawnOptions::new().name("o"))
            .await
            .unwrap();
        let _ = ping;
        assert_eq!(a.named_on::<Other>("o", &id(&b)).ping().await, Ok(1));
        let ups = |events: &noex::ClusterEvents| {
            std::iter::from_fn(|| events.try_recv())
                .filter(|e| matches!(e, ClusterEvent::NodeUp { .. }))
                .count()
        };
        assert!(ups(&a_events) <= 1 && ups(&b_events) <= 1);
        assert_eq!(a.connected_nodes().len(), 1);
        shutdown_all(vec![a, b]);
    });
}

#[test]
fn a_seed_that_is_down_at_start_is_retried_until_it_answers() {
    run_blocking(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = Node::start(cluster_config("a").seed(format!("127.0.0.1:{port}")))
            .await
            .unwrap();
        let events = a.cluster_events();
        // Let a fail a few attempts against the closed port.
        smol::Timer::after(Duration::from_millis(100)).await;
        let b = Node::start(cluster_config("b").bind(format!("127.0.0.1:{port}").parse().unwrap()))
            .await
            .unwrap();
        assert!(
            matches!(next_event(&events).await, ClusterEvent::NodeUp { node, .. } if node == id(&b))
        );
        shutdown_all(vec![a, b]);
    });
}

#[test]
fn remote_calls_and_casts_work_like_local_ones() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let local = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(local.pid()).unwrap();
        assert!(!remote.is_local() && remote.is_alive());
        remote
            .record(Note {
                seq: 1,
                text: "hello".into(),
            })
            .unwrap();
        assert_eq!(remote.count().await, Ok(1));
        assert_eq!(remote.node_name().await, Ok(id(b).to_string()));
        assert_eq!(remote.fail("no".into()).await, Ok(Err("no".into())));
        assert_eq!(
            remote.count_with_timeout(Duration::from_secs(1)).await,
            Ok(1)
        );
        // The same process, reached locally, saw the same message.
        assert_eq!(local.count().await, Ok(1));
        shutdown_all(nodes);
    });
}

#[test]
fn calls_and_casts_by_name_on_a_given_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        b.spawn_with::<Recorder>((), SpawnOptions::new().name("log"))
            .await
            .unwrap();
        let log = a.named_on::<Recorder>("log", &id(b));
        log.record(Note {
            seq: 1,
            text: "by name".into(),
        })
        .unwrap();
        assert_eq!(log.count().await, Ok(1));
        assert_eq!(
            log.resolve().err(),
            Some(LookupError::OnAnotherNode("log".into()))
        );
        let nobody = a.named_on::<Recorder>("nobody", &id(b));
        assert_matches!(nobody.count().await, Err(CallError::NoProc { .. }));
        // The local id falls back to a local name.
        let here = a.named_on::<Recorder>("log", &id(a));
        assert_matches!(here.count().await, Err(CallError::NoProc { .. }));
        shutdown_all(nodes);
    });
}

#[test]
fn remote_call_errors_are_the_local_ones() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();

        assert_matches!(
            remote.hang_with_timeout(Duration::from_millis(50)).await,
            Err(CallError::Timeout { .. })
        );
        assert_eq!(
            remote.crash().await,
            Err(CallError::Exited(ExitReason::Panic(
                "asked to crash".into()
            )))
        );
        assert_matches!(remote.count().await, Err(CallError::NoProc { .. }));
        assert_eq!(
            remote.record(Note {
                seq: 0,
                text: String::new()
            }),
            Ok(()),
            "a cast to a dead remote process is not known to fail"
        );

        let other = b
            .spawn_with::<Other>((), SpawnOptions::new().name("x"))
            .await
            .unwrap();
        let wrong = a.named_on::<Recorder>("x", &id(b));
        assert!(matches!(
            wrong.count().await,
            Err(CallError::WrongBehavior { found, .. }) if found == "other"
        ));
        let _ = other;

        // A local-only behaviour on another node: neither a cast nor a call can reach it.
        let forwarder = b.spawn::<Forwarder>(server.clone()).await.unwrap();
        b.register_global("fwd", forwarder.pid()).await.unwrap();
        common::eventually("a to know the name", || a.whereis_global("fwd").is_some()).await;
        let local_only = a.named_global::<Forwarder>("fwd");
        let note = Note {
            seq: 1,
            text: String::new(),
        };
        assert_eq!(
            local_only.forward(note),
            Err(SendError::LocalOnly {
                behavior: std::any::type_name::<Forwarder>().to_owned()
            })
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_deferred_remote_call_fails_with_exited_when_the_server_dies() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let waiting = smol::spawn({
            let remote = remote.clone();
            async move { remote.hang().await }
        });
        common::eventually("the deferred call to be taken", || {
            b.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1)
        })
        .await;
        b.kill(server.pid());
        assert_eq!(
            within("the deferred call's failure", waiting).await,
            Err(CallError::Exited(ExitReason::Killed))
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_remote_process_is_stopped_with_its_reason() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let reason = ExitReason::Custom("retired".into());
        assert_eq!(remote.stop(reason.clone()).await, Ok(reason.clone()));
        assert_eq!(server.exited().await, reason);
        assert_matches!(
            remote.stop(ExitReason::Normal).await,
            Err(SendError::NoProc { .. })
        );
        shutdown_all(nodes);
    });
}

#[test]
fn messages_from_one_process_arrive_in_order() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let count = 5_000;
        for seq in 0..count {
            loop {
                match remote.record(Note {
                    seq,
                    text: String::new(),
                }) {
                    Ok(()) => break,
                    Err(SendError::Overloaded) => smol::future::yield_now().await,
                    Err(error) => panic!("{error}"),
                }
            }
        }
        let notes = remote.notes().await.unwrap();
        let seqs: Vec<u64> = notes.iter().map(|n| n.seq).collect();
        assert_eq!(seqs, (0..count).collect::<Vec<_>>());
        shutdown_all(nodes);
    });
}

#[test]
fn concurrent_callers_on_every_thread_each_get_their_own_replies() {
    // Callers on both of a's threads and servers on both of b's write their frames
    // straight to the socket when the connection is idle, and through the writer when it
    // is not: however they interleave, every frame must arrive whole and in place.
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let servers = remote_recorders(a, b, 3).await;
        let callers: Vec<_> = (0..8u8)
            .map(|caller| {
                let servers = servers.clone();
                a.spawn_task(async move {
                    for i in 0..150usize {
                        let server = &servers[(caller as usize + i) % servers.len()];
                        let len = [0, 90, 9_000, 60_000][i % 4];
                        let bytes: Vec<u8> = (0..len).map(|j| caller ^ (i + j) as u8).collect();
                        let seq = u64::from(caller) << 32 | i as u64;
                        server
                            .record(Note {
                                seq,
                                text: String::new(),
                            })
                            .unwrap();
                        let echoed = server
                            .echo_with_timeout(bytes.clone(), Duration::from_secs(20))
                            .await
                            .unwrap();
                        assert!(echoed == bytes, "caller {caller}, call {i}: wrong reply");
                    }
                })
            })
            .collect();
        for caller in callers {
            within("a caller's 150 calls", caller).await;
        }
        let mut recorded = 0;
        for server in &servers {
            recorded += server.count().await.unwrap();
        }
        assert_eq!(recorded, 8 * 150);
        shutdown_all(nodes);
    });
}

#[test]
fn calls_and_casts_go_on_while_the_readers_move_to_their_processes_threads() {
    // A connection's reader moves to the thread of the processes it feeds once its
    // deliveries settle there (after 64 in a row): on b towards the server, on a towards
    // the caller. Servers on both of b's threads, sent bursts and calls in turn, make each
    // reader move several times mid-stream.
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let servers = remote_recorders(a, b, 2).await;
        let caller = a.spawn_task(async move {
            let mut seq = 0;
            for round in 0..6 {
                let server = &servers[round % 2];
                // A burst, which b's reader reads many frames at a time: it moves with
                // frames still in its buffer...
                for _ in 0..300 {
                    let note = Note {
                        seq,
                        text: String::new(),
                    };
                    server.record(note).unwrap();
                    seq += 1;
                }
                // ...and calls one at a time.
                for i in 0..100u64 {
                    let bytes = i.to_le_bytes().to_vec();
                    assert_eq!(server.echo(bytes.clone()).await.unwrap(), bytes);
                }
            }
            let mut seqs = Vec::new();
            for server in &servers {
                seqs.extend(server.notes().await.unwrap().into_iter().map(|n| n.seq));
            }
            seqs.sort_unstable();
            let all: Vec<u64> = (0..1_800).collect();
            assert_eq!(seqs, all, "every cast arrived once");
        });
        within("the calls and casts", caller).await;
        shutdown_all(nodes);
    });
}

#[test]
fn casts_from_both_threads_keep_each_senders_order_while_the_writer_follows_them() {
    // A connection's writer moves to the thread whose tasks queue its frames, once they
    // settle there. Senders on both of a's threads casting bursts in turn make it move
    // back and forth mid-stream; each sender's casts still arrive once, in order.
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = remote_recorders(a, b, 1).await.remove(0);
        let senders: Vec<_> = (0..4u64)
            .map(|sender| {
                let server = server.clone();
                a.spawn_task(async move {
                    for i in 0..1_200u64 {
                        let note = Note {
                            seq: sender << 32 | i,
                            text: String::new(),
                        };
                        while let Err(error) = server.try_record(note.clone()) {
                            assert!(matches!(error.into_parts().0, SendError::Overloaded));
                            smol::future::yield_now().await;
                        }
                        if i % 200 == 199 {
                            smol::future::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            within("a sender's casts", sender).await;
        }
        let notes = within("the casts to arrive", async {
            loop {
                let notes = server.notes().await.unwrap();
                if notes.len() >= 4 * 1_200 {
                    return notes;
                }
                smol::future::yield_now().await;
            }
        })
        .await;
        for sender in 0..4u64 {
            let seqs: Vec<u64> = notes
                .iter()
                .filter(|note| note.seq >> 32 == sender)
                .map(|note| note.seq & 0xffff_ffff)
                .collect();
            let all: Vec<u64> = (0..1_200).collect();
            assert_eq!(seqs, all, "sender {sender}: each cast once, in order");
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_message_larger_than_a_frame_arrives_whole() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        // 20 MiB: more than the 16 MiB frame limit, so it must travel in fragments.
        let big: Vec<u8> = (0..20 << 20).map(|i| (i % 251) as u8).collect();
        let echoed = remote
            .echo_with_timeout(big.clone(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(echoed == big);
        assert_eq!(remote.count().await, Ok(0));
        shutdown_all(nodes);
    });
}

#[test]
fn small_calls_pass_a_large_message_in_flight() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let sink = b.spawn::<Recorder>(()).await.unwrap();
        let echo = b.spawn::<Recorder>(()).await.unwrap();
        let sink = a.server_ref::<Recorder>(sink.pid()).unwrap();
        let echo = a.server_ref::<Recorder>(echo.pid()).unwrap();
        let forwarder = a.spawn::<Forwarder>(sink.clone()).await.unwrap();
        let size = 48 << 20;
        let before = a.cluster_stats().bytes_sent;
        forwarder
            .forward(Note {
                seq: 0,
                text: "x".repeat(size),
            })
            .unwrap();
        // Once a few MiB of it are on their way, small calls go back and forth past the
        // rest: the large message is still not delivered when they return.
        eventually("the large message to be on its way", || {
            a.cluster_stats().bytes_sent - before > 4 << 20
        })
        .await;
        for _ in 0..10 {
            assert_eq!(echo.echo(vec![7]).await, Ok(vec![7]));
        }
        assert_eq!(sink.count().await, Ok(0), "the large message is in flight");
        let arrived = async {
            while sink.count().await != Ok(1) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        within("the large message to arrive", arrived).await;
        assert_eq!(sink.notes().await.unwrap()[0].text.len(), size);
        shutdown_all(nodes);
    });
}

#[test]
fn a_large_message_keeps_its_place_among_its_senders_messages() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let recorder = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(recorder.pid()).unwrap();
        let forwarder = a.spawn::<Forwarder>(remote.clone()).await.unwrap();
        // 3 MiB: fragmented on the way, and decoded apart from the scheduler threads on
        // arrival; the small notes around it must not overtake it.
        let note = |seq, len| Note {
            seq,
            text: "x".repeat(len),
        };
        forwarder.forward(note(0, 10)).unwrap();
        forwarder.forward(note(1, 3 << 20)).unwrap();
        forwarder.forward(note(2, 10)).unwrap();
        let arrived = async {
            while remote.count().await != Ok(3) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        within("the three notes", arrived).await;
        let notes = remote.notes().await.unwrap();
        let order: Vec<(u64, usize)> = notes.iter().map(|n| (n.seq, n.text.len())).collect();
        assert_eq!(order, vec![(0, 10), (1, 3 << 20), (2, 10)]);
        shutdown_all(nodes);
    });
}

#[test]
fn a_large_call_queued_at_a_process_that_dies_fails_with_noproc_at_once() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let napper = b.spawn::<Napper>(()).await.unwrap();
        let pid = napper.pid().clone();
        let remote = a.server_ref::<Napper>(&pid).unwrap();
        let busy = smol::spawn({
            let remote = remote.clone();
            async move {
                remote
                    .nap_with_timeout(60_000, Duration::from_secs(90))
                    .await
            }
        });
        common::eventually("the nap to start", || {
            b.process_info(&pid).is_some_and(|i| i.message_count == 1)
        })
        .await;
        // 2 MiB: queued still encoded, to be decoded when the process reaches it.
        let large = smol::spawn({
            let remote = remote.clone();
            async move {
                remote
                    .size_with_timeout(vec![0; 2 << 20], Duration::from_secs(60))
                    .await
            }
        });
        common::eventually("the large call to be queued", || {
            b.process_info(&pid).is_some_and(|i| i.mailbox_len == 1)
        })
        .await;
        assert!(b.kill(&pid));
        assert_matches!(
            within("the large call", large).await,
            Err(CallError::NoProc { .. })
        );
        assert!(matches!(
            within("the busy call", busy).await,
            Err(CallError::Exited(_))
        ));
        shutdown_all(nodes);
    });
}

#[test]
fn a_graceful_shutdown_is_reported_as_shutdown() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let events = a.cluster_events();
        b.shutdown();
        assert_eq!(
            next_event(&events).await,
            ClusterEvent::NodeDown {
                node: id(b),
                reason: NodeDownReason::Shutdown
            }
        );
        assert!(a.connected_nodes().is_empty());
        shutdown_all(nodes);
    });
}

#[test]
fn traffic_is_counted_per_peer_and_node_wide() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        for _ in 0..10 {
            remote.count().await.unwrap();
        }
        let _ = remote.hang_with_timeout(Duration::from_millis(20)).await;
        let stats = a.connected_nodes()[0].stats;
        assert!(stats.messages_sent >= 11, "{stats:?}");
        assert!(stats.messages_received >= 10, "{stats:?}");
        assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);
        assert_eq!(stats.calls_timed_out, 1);
        assert_eq!(stats.calls_pending, 0);
        assert_eq!(a.cluster_stats().calls_timed_out, 1);
        shutdown_all(nodes);
    });
}

/// A value whose 1 does not encode and whose 2 does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Flaky(u8);

impl Serialize for Flaky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 1 {
            return Err(serde::ser::Error::custom("1 does not encode"));
        }
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Flaky {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u8::deserialize(deserializer)? {
            2 => Err(serde::de::Error::custom("2 does not decode")),
            n => Ok(Flaky(n)),
        }
    }
}

#[behavior]
pub struct Mirror;

#[behavior]
impl Mirror {
    #[init]
    fn init() -> Self {
        Mirror
    }

    #[call]
    fn echo(&self, value: Flaky) -> Flaky {
        value
    }

    #[call]
    fn make(&self, n: u8) -> Flaky {
        Flaky(n)
    }
}

#[test]
fn a_message_that_does_not_encode_or_decode_says_which_and_where() {
    use noex::CodecStep;
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let mirror = b.spawn::<Mirror>(()).await.unwrap();
        let remote = a.server_ref::<Mirror>(mirror.pid()).unwrap();
        let step = |result: Result<Flaky, CallError>| match result {
            Err(CallError::Codec { step, .. }) => step,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(step(remote.echo(Flaky(1)).await), CodecStep::EncodeRequest);
        assert_eq!(step(remote.echo(Flaky(2)).await), CodecStep::DecodeRequest);
        assert_eq!(step(remote.make(1).await), CodecStep::EncodeReply);
        assert_eq!(step(remote.make(2).await), CodecStep::DecodeReply);
        assert_eq!(remote.echo(Flaky(3)).await, Ok(Flaky(3)));
        shutdown_all(nodes);
    });
}
