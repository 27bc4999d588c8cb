//! Long names, small frames, hidden nodes.

use super::*;

#[test]
fn long_names_are_refused_and_large_tables_reach_a_node_with_small_frames() {
    run_blocking(async {
        // The smallest frames a node accepts: its table goes in several parts.
        let config = |name: &str| cluster_config(name).limits(noex::MIN_FRAME_SIZE, 1 << 20);
        let a = Node::start(config("a")).await.unwrap();
        let server = counter(&a, 0).await;
        let too_long = "y".repeat(noex::MAX_NAME_LEN + 1);
        assert_eq!(
            a.register_global(&too_long, server.pid()).await,
            Err(GlobalError::NameTooLong {
                len: noex::MAX_NAME_LEN + 1,
                max: noex::MAX_NAME_LEN
            })
        );
        let mut held = Vec::new();
        for i in 0..100 {
            let server = counter(&a, 0).await;
            let name = format!("{i:03}{}", "z".repeat(noex::MAX_NAME_LEN - 3));
            a.register_global(&name, server.pid()).await.unwrap();
            a.join_group(&name, server.pid()).await.unwrap();
            held.push((name, server.pid().clone()));
        }
        let seed = id(&a).to_string();
        let b = Node::start(config("b").seed(seed)).await.unwrap();
        wait_connected(&b, 1).await;
        eventually("b to learn every long name", || b.global_names() == held).await;
        // The groups come in the parts after the names'.
        eventually("b to learn every group", || b.groups().len() == 100).await;
        assert_eq!(b.cluster_stats().reconnects, 0);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_process_that_ends_in_more_groups_than_a_frame_holds_leaves_them_all_on_a_small_frames_peer() {
    run_blocking(async {
        let config = |name: &str| cluster_config(name).limits(noex::MIN_FRAME_SIZE, 1 << 20);
        let a = Node::start(config("a")).await.unwrap();
        let b = Node::start(config("b").seed(id(&a).to_string()))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        wait_connected(&b, 1).await;
        let events = b.cluster_events();
        // Their names alone are more than a frame.
        let server = counter(&a, 0).await;
        for g in 0..300 {
            let group = format!("{g:03}{}", "g".repeat(noex::MAX_NAME_LEN - 3));
            assert_eq!(a.join_group(&group, server.pid()).await, Ok(true));
        }
        eventually("b to see every group", || b.groups().len() == 300).await;
        server.stop(ExitReason::Normal).await.unwrap();
        eventually("b to see it leave them", || b.groups().is_empty()).await;
        // A join told after the leaves, over the same connection, is seen on it.
        let last = counter(&a, 0).await;
        a.join_group("last", last.pid()).await.unwrap();
        eventually("b to see the last join", || b.groups() == ["last"]).await;
        let lost = std::iter::from_fn(|| events.try_recv())
            .find(|event| matches!(event, noex::ClusterEvent::NodeDown { .. }));
        assert_eq!(lost, None);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_hidden_node_and_its_processes_are_refused_by_the_registry_and_groups() {
    run_blocking(async {
        let nodes = start_cluster(1).await;
        let a = &nodes[0];
        let hidden = Node::start(cluster_config("hidden").hidden().seed(id(a).to_string()))
            .await
            .unwrap();
        eventually("the hidden node to connect", || a.hidden_nodes().len() == 1).await;
        let refused = |node: &Node| GlobalError::HiddenNode {
            node: id(node).to_string(),
        };
        let on_hidden = counter(&hidden, 0).await;
        let on_a = counter(a, 0).await;

        // A member cannot register a hidden node's process, nor make it join a group.
        let hidden_pid = on_hidden.pid();
        assert_eq!(
            a.register_global("h", hidden_pid).await,
            Err(refused(&hidden))
        );
        assert_eq!(a.join_group("g", hidden_pid).await, Err(refused(&hidden)));
        assert_eq!(a.whereis_global("h"), None);
        assert!(a.group_members("g").is_empty());

        // A hidden node registers nothing, its own process or a member's.
        assert_eq!(
            hidden.register_global("h", hidden_pid).await,
            Err(refused(&hidden))
        );
        assert_eq!(
            hidden.register_global("m", on_a.pid()).await,
            Err(refused(&hidden))
        );
        assert_eq!(
            hidden.join_group("g", on_a.pid()).await,
            Err(refused(&hidden))
        );
        assert_eq!(a.whereis_global("m"), None);
        let named = SpawnOptions::new().global_name("spawned");
        match hidden.spawn_with::<Counter>(0, named).await {
            Err(SpawnError::GlobalName(error)) => assert_eq!(error, refused(&hidden)),
            other => panic!("unexpected {other:?}"),
        }
        hidden.shutdown();
        shutdown_all(nodes);
    });
}
