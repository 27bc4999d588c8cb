//! Node configuration: addresses, limits, names and seeds refused or given a meaning.

use super::*;

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
