//! Membership: nodes finding each other, node events, graceful shutdowns.

use super::*;

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
