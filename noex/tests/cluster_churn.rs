//! Membership under churn: two live nodes with one id, seeds lost for long, restarts.

mod common;
use common::id;

use std::time::Duration;

use common::{cluster_config, eventually, next_event, run_blocking, wait_connected, within, Seen};
use noex::{
    behavior, CallError, ClusterEvent, ExitReason, GlobalError, Node, NodeId, RefusedReason,
    SendError,
};

/// Waits for the first `Refused` event among `events`, returning (inbound, by_peer,
/// reason); other events are returned in `others`.
async fn refused(
    events: &noex::ClusterEvents,
    others: &mut Vec<ClusterEvent>,
) -> (bool, bool, RefusedReason) {
    loop {
        match next_event(events).await {
            ClusterEvent::Refused {
                inbound,
                by_peer,
                reason,
                ..
            } => return (inbound, by_peer, reason),
            other => others.push(other),
        }
    }
}

/// A node `x` (x1), joined through a seed `s`, and a second live node claiming x1's id
/// (x2: bound elsewhere, advertising x1's address); with the event streams of s and x1,
/// taken before x2 started.
async fn claimed_twice() -> (Node, Node, Node, noex::ClusterEvents, noex::ClusterEvents) {
    let s = Node::start(cluster_config("s")).await.unwrap();
    let seed = id(&s).to_string();
    let x1 = Node::start(cluster_config("x").seed(seed.clone()))
        .await
        .unwrap();
    wait_connected(&s, 1).await;
    let s_events = s.cluster_events();
    let x1_events = x1.cluster_events();
    let port = id(&x1).port();
    let bind = format!("127.0.0.2:{port}").parse().unwrap();
    let x2 = Node::start(
        cluster_config("x")
            .bind(bind)
            .advertise_host("127.0.0.1")
            .seed(seed),
    )
    .await
    .unwrap();
    assert_eq!(id(&x2), id(&x1));
    (s, x1, x2, s_events, x1_events)
}

/// Waits for the next event of `events`, which must be `node` leaving with a goodbye.
async fn left(events: &noex::ClusterEvents, node: &NodeId) {
    let expected = ClusterEvent::NodeDown {
        node: node.clone(),
        reason: noex::NodeDownReason::Shutdown,
    };
    assert_eq!(next_event(events).await, expected);
}

#[test]
fn a_second_live_node_with_the_same_id_is_refused_rather_than_flapping() {
    run_blocking(async {
        let (s, x1, x2, s_events, x1_events) = claimed_twice().await;
        // s takes x2 for x1 restarted; x1, still alive, comes back and is refused (it
        // used to replace x2, which came back and replaced it, and so on for ever).
        let mut seen = Vec::new();
        assert_eq!(
            within("s to refuse the clash", refused(&s_events, &mut seen)).await,
            (true, false, RefusedReason::IdInUse)
        );
        let ups = seen
            .iter()
            .filter(|e| matches!(e, ClusterEvent::NodeUp { .. }))
            .count();
        assert_eq!(ups, 1, "s saw {seen:?}");
        let mut x1_seen = Vec::new();
        assert_eq!(
            within("x1 to be told", refused(&x1_events, &mut x1_seen)).await,
            (false, true, RefusedReason::IdInUse)
        );
        let connected = s.connected_nodes();
        assert_eq!(connected.len(), 1);
        assert_eq!(connected[0].incarnation, x2.incarnation());
        s.shutdown();
        x1.shutdown();
        x2.shutdown();
    });
}

/// A server of another node to call.
#[behavior(name = "churn-echo")]
pub struct Echo;

#[behavior]
impl Echo {
    #[init]
    fn init() -> Self {
        Echo
    }

    #[call]
    fn ping(&self) -> u8 {
        1
    }
}

#[test]
fn the_processes_of_a_node_refused_for_its_id_are_unreachable_not_gone() {
    run_blocking(async {
        // A process of x1, known to s before x2 came.
        let (s, x1, x2, s_events, _) = claimed_twice().await;
        let echo = x1.spawn::<Echo>(()).await.unwrap();
        let pid = echo.pid().clone();
        within("s to refuse x1", refused(&s_events, &mut Vec::new())).await;

        // x1 is alive, only not connected to s: every way of reaching its processes from
        // s says so, none says they are gone.
        assert_eq!(s.exited(&pid).await, ExitReason::NoConnection);
        let remote = s.server_ref::<Echo>(&pid).unwrap();
        assert!(
            matches!(remote.ping().await, Err(CallError::NoConnection { .. })),
            "a call"
        );
        assert!(matches!(
            s.stop(&pid, ExitReason::Normal).await,
            Err(SendError::NoConnection { .. })
        ));
        assert!(matches!(
            s.register_global("on-x1", &pid).await,
            Err(GlobalError::NoConnection { .. })
        ));
        let watcher = common::probe(&s, true).await;
        watcher.link(&pid).await;
        assert_eq!(
            watcher.next_seen().await,
            Seen::Exit {
                from: pid.clone(),
                reason: ExitReason::NoConnection
            }
        );
        s.shutdown();
        x1.shutdown();
        x2.shutdown();
    });
}

#[test]
fn a_hello_without_the_secret_cannot_make_an_ended_incarnation_count_as_alive() {
    run_blocking(async {
        use common::raw::{Raw, Refusal, Wire, PROTOCOL_VERSION};
        // x restarts on its address: its first incarnation's processes are gone for s.
        let s = Node::start(cluster_config("s")).await.unwrap();
        let seed = id(&s).to_string();
        let x1 = Node::start(cluster_config("x").seed(seed.clone()))
            .await
            .unwrap();
        wait_connected(&s, 1).await;
        let pid = x1.spawn::<Echo>(()).await.unwrap().pid().clone();
        let x_id = id(&x1);
        x1.shutdown();
        let bind = format!("127.0.0.1:{}", x_id.port()).parse().unwrap();
        let x2 = Node::start(cluster_config("x").bind(bind).seed(seed))
            .await
            .unwrap();
        eventually("s to meet x again", || {
            s.connected_nodes()
                .iter()
                .any(|n| n.id == x_id && n.incarnation != pid.incarnation())
        })
        .await;
        assert_eq!(s.exited(&pid).await, ExitReason::NoProc);

        // Someone without the secret says hello as x's first incarnation.
        let mut raw = Raw::connect(&s).await;
        raw.send(&Wire::Hello {
            version: PROTOCOL_VERSION,
            node: x_id.to_string(),
            incarnation: pid.incarnation(),
            nonce: [3; 32],
            hidden: false,
            max_message: common::raw::MAX_MESSAGE,
        })
        .await;
        let answer = match raw.receive().await {
            Some(Wire::Challenge { .. }) => {
                raw.send(&Wire::Proof { proof: [0; 32] }).await;
                raw.receive().await
            }
            other => other,
        };
        assert_eq!(
            answer,
            Some(Wire::Refused {
                reason: Refusal::Authentication
            })
        );
        // Its processes are still gone, not "unreachable".
        assert_eq!(s.exited(&pid).await, ExitReason::NoProc);
        s.shutdown();
        x2.shutdown();
    });
}

#[test]
fn a_configured_seed_lost_for_longer_than_forget_unreachable_after_is_still_redialled() {
    run_blocking(async {
        // b gives up long before a does.
        let a_forgets = Duration::from_millis(500);
        let a = Node::start(cluster_config("a").forget_unreachable_after(a_forgets))
            .await
            .unwrap();
        let b = Node::start(
            cluster_config("b")
                .forget_unreachable_after(Duration::from_millis(50))
                .seed(id(&a).to_string()),
        )
        .await
        .unwrap();
        wait_connected(&a, 1).await;
        wait_connected(&b, 1).await;

        // The network between them fails, and stays down longer than either waits for
        // an address that does not answer: both give up re-dialling the other.
        b.faults().refuse_connections(true);
        assert!(b.faults().disconnect(&id(&a)));
        eventually("a to stop dialling b", || {
            a.connected_nodes().is_empty() && a.faults().dials() == 0
        })
        .await;

        // It heals: b's configured seed is still dialled, so the two meet again.
        b.faults().refuse_connections(false);
        wait_connected(&b, 1).await;
        wait_connected(&a, 1).await;
        a.shutdown();
        b.shutdown();
    });
}

/// `n` free loopback ports (bound once, then let go).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

#[test]
fn nodes_started_at_once_in_a_ring_of_seeds_form_one_mesh_without_losses() {
    run_blocking(async {
        const N: usize = 8;
        let ports = free_ports(N);
        let starts = (0..N).map(|i| {
            let bind = format!("127.0.0.1:{}", ports[i]).parse().unwrap();
            let seed = format!("r{}@127.0.0.1:{}", (i + 1) % N, ports[(i + 1) % N]);
            smol::spawn(Node::start(
                cluster_config(&format!("r{i}")).bind(bind).seed(seed),
            ))
        });
        let starts: Vec<_> = starts.collect();
        let mut nodes = Vec::new();
        let mut events = Vec::new();
        for start in starts {
            let node = start.await.unwrap();
            events.push(node.cluster_events());
            nodes.push(node);
        }
        for node in &nodes {
            wait_connected(node, N - 1).await;
        }
        eventually("every dial loop to end", || {
            nodes.iter().all(|n| n.faults().dials() == 0)
        })
        .await;
        for (node, events) in nodes.iter().zip(&events) {
            let mut ups = std::collections::HashMap::new();
            while let Some(event) = events.try_recv() {
                match event {
                    ClusterEvent::NodeUp { node, .. } => *ups.entry(node).or_insert(0) += 1,
                    other => panic!("{:?} saw {other:?}", id(node)),
                }
            }
            assert!(ups.values().all(|&n| n == 1), "{ups:?}");
            assert_eq!(node.faults().connections_held(), N - 1);
            assert_eq!(node.faults().handshakes_held(), 0);
        }
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_configured_seed_that_left_with_a_goodbye_is_joined_again_when_it_restarts() {
    run_blocking(async {
        // a is the cluster's first node: it has no seeds. b joins through it.
        let a = Node::start(cluster_config("a")).await.unwrap();
        let a_id = id(&a);
        let b = Node::start(cluster_config("b").seed(a_id.to_string()))
            .await
            .unwrap();
        wait_connected(&b, 1).await;
        let events = b.cluster_events();

        // A rolling restart: a leaves with a goodbye and comes back on its address.
        a.shutdown();
        left(&events, &a_id).await;
        let bind = format!("127.0.0.1:{}", a_id.port()).parse().unwrap();
        let a2 = Node::start(cluster_config("a").bind(bind)).await.unwrap();

        // a2 knows no one; b's seed is a, which it dials again.
        match next_event(&events).await {
            ClusterEvent::NodeUp { node, incarnation } => {
                assert_eq!(node, a_id);
                assert_eq!(incarnation, a2.incarnation());
            }
            other => panic!("unexpected {other:?}"),
        }
        wait_connected(&a2, 1).await;
        a2.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_node_crashing_and_restarting_on_its_address_is_down_once_and_up_once_each_time() {
    run_blocking(async {
        let survivors = common::start_cluster(3).await;
        let seed = id(&survivors[0]).to_string();
        let mut restarted = Node::start(cluster_config("x").seed(seed.clone()))
            .await
            .unwrap();
        let x = id(&restarted);
        for node in &survivors {
            wait_connected(node, 3).await;
        }
        let events: Vec<_> = survivors.iter().map(Node::cluster_events).collect();
        for round in 0..3 {
            // A crash: no goodbye; everyone re-dials x while it comes back and dials them.
            let old = restarted.incarnation();
            restarted.faults().refuse_connections(true);
            for node in &survivors {
                restarted.faults().disconnect(&id(node));
            }
            restarted.shutdown();
            let bind = format!("127.0.0.1:{}", x.port()).parse().unwrap();
            restarted = Node::start(cluster_config("x").bind(bind).seed(seed.clone()))
                .await
                .unwrap();
            wait_connected(&restarted, 3).await;
            for (node, events) in survivors.iter().zip(&events) {
                wait_connected(node, 3).await;
                let mut seen = Vec::new();
                loop {
                    let event = next_event(events).await;
                    let up = matches!(event, ClusterEvent::NodeUp { .. });
                    seen.push(event);
                    if up {
                        break;
                    }
                }
                assert_eq!(
                    seen,
                    [
                        ClusterEvent::NodeDown {
                            node: x.clone(),
                            reason: noex::NodeDownReason::ConnectionClosed
                        },
                        ClusterEvent::NodeUp {
                            node: x.clone(),
                            incarnation: restarted.incarnation()
                        }
                    ],
                    "round {round} on {:?} (old incarnation {old})",
                    id(node)
                );
            }
        }
        eventually("every dial loop to end", || {
            survivors.iter().all(|n| n.faults().dials() == 0)
        })
        .await;
        eventually("the lost connections to be let go", || {
            survivors.iter().all(|n| n.faults().connections_held() == 3)
        })
        .await;
        for (node, events) in survivors.iter().zip(&events) {
            assert_eq!(events.try_recv(), None, "{:?}", id(node));
        }
        restarted.shutdown();
        common::shutdown_all(survivors);
    });
}

#[test]
fn a_healed_partition_is_one_down_and_one_up_per_link_on_both_sides() {
    run_blocking(async {
        const N: usize = 5;
        let nodes = common::start_cluster(N).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        let events: Vec<_> = nodes.iter().map(Node::cluster_events).collect();
        common::isolate(&nodes, N - 1, true);
        for (i, node) in nodes.iter().enumerate() {
            wait_connected(node, if i == N - 1 { 0 } else { N - 2 }).await;
        }
        common::isolate(&nodes, N - 1, false);
        for node in &nodes {
            wait_connected(node, N - 1).await;
        }
        eventually("every dial loop to end", || {
            nodes.iter().all(|n| n.faults().dials() == 0)
        })
        .await;
        for (i, events) in events.iter().enumerate() {
            let others: Vec<&NodeId> = match i == N - 1 {
                true => ids[..N - 1].iter().collect(),
                false => vec![&ids[N - 1]],
            };
            let mut seen = Vec::new();
            while let Some(event) = events.try_recv() {
                seen.push(event);
            }
            for other in others {
                let about: Vec<_> =
                    seen.iter()
                        .filter(|e| match e {
                            ClusterEvent::NodeUp { node, .. }
                            | ClusterEvent::NodeDown { node, .. } => node == other,
                            _ => false,
                        })
                        .collect();
                assert!(
                    matches!(
                        about[..],
                        [
                            ClusterEvent::NodeDown {
                                reason: noex::NodeDownReason::ConnectionClosed,
                                ..
                            },
                            ClusterEvent::NodeUp { .. }
                        ]
                    ),
                    "{:?} about {other:?}: {about:?}",
                    ids[i]
                );
            }
            assert_eq!(seen.len(), if i == N - 1 { 2 * (N - 1) } else { 2 });
        }
        common::shutdown_all(nodes);
    });
}

#[test]
fn seeds_under_other_addresses_than_their_nodes_ids_are_not_dialled_once_connected() {
    run_blocking(async {
        // Every node listens on every interface and advertises 127.0.0.1; the shared seed
        // list names the others at 127.0.0.2 (as host names for IPs): a dial's address is
        // not its peer's id's.
        const N: usize = 6;
        let ports = free_ports(N);
        let starts: Vec<_> = (0..N)
            .map(|i| {
                let bind = format!("0.0.0.0:{}", ports[i]).parse().unwrap();
                let mut config = cluster_config(&format!("h{i}"))
                    .bind(bind)
                    .advertise_host("127.0.0.1");
                for (_, port) in ports.iter().enumerate().filter(|(j, _)| *j != i) {
                    config = config.seed(format!("127.0.0.2:{port}"));
                }
                smol::spawn(Node::start(config))
            })
            .collect();
        let mut nodes = Vec::new();
        for start in starts {
            nodes.push(start.await.unwrap());
        }
        for node in &nodes {
            wait_connected(node, N - 1).await;
        }
        // Connected through the others' dials, each still dialled every seed it had not
        // reached itself, for ever: refused as connected, but not known to be connected.
        eventually("every dial loop to end", || {
            nodes.iter().all(|n| n.faults().dials() == 0)
        })
        .await;
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_seed_reached_only_under_its_listed_address_is_redialled_there_when_it_restarts() {
    run_blocking(async {
        // b listens on 127.0.0.2 only and advertises 127.0.0.1 (as a pod behind a name
        // that is the only way in): nothing answers at its id's address. a's seed is the
        // address that works.
        let port = free_ports(1)[0];
        let b_config = || {
            let bind = format!("127.0.0.2:{port}").parse().unwrap();
            cluster_config("b").bind(bind).advertise_host("127.0.0.1")
        };
        let b = Node::start(b_config()).await.unwrap();
        let b_id = id(&b);
        assert_eq!(b_id.address(), format!("127.0.0.1:{port}"));
        let a = Node::start(cluster_config("a").seed(format!("127.0.0.2:{port}")))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        let events = a.cluster_events();

        // A rolling restart: b leaves and comes back where it listened, knowing no one.
        b.shutdown();
        left(&events, &b_id).await;
        let b2 = Node::start(b_config()).await.unwrap();
        assert_eq!(id(&b2), b_id);

        // a dials its seed as it was given, not the address in b's id.
        match next_event(&events).await {
            ClusterEvent::NodeUp { node, incarnation } => {
                assert_eq!(node, b_id);
                assert_eq!(incarnation, b2.incarnation());
            }
            other => panic!("unexpected {other:?}"),
        }
        wait_connected(&b2, 1).await;
        eventually("a to stop dialling", || a.faults().dials() == 0).await;
        a.shutdown();
        b2.shutdown();
    });
}
