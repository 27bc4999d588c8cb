//! How membership spreads as a cluster grows: a join costs member lists in proportion to the
//! members (counted, not timed), a full mesh forms however the nodes were seeded, and an
//! address learnt while a node may not dial more waits for its turn.

mod common;

use std::time::Duration;

use common::raw::{Raw, Wire};
use common::{cluster_config, run_blocking, wait_connected};
use noex::{ClusterConfig, MembershipCounts, Node};

/// The test settings, with one thread per node and a failure window wide enough that a
/// busy machine does not lose connections (which would send more lists).
fn config(name: &str) -> ClusterConfig {
    cluster_config(name)
        .threads(1)
        .heartbeat(Duration::from_millis(500), Duration::from_secs(20))
}

/// The member lists of all `nodes` together.
fn lists(nodes: &[Node]) -> MembershipCounts {
    nodes.iter().map(|node| node.faults().membership()).fold(
        MembershipCounts::default(),
        |mut total, m| {
            total.lists_sent += m.lists_sent;
            total.ids_sent += m.ids_sent;
            total.lists_received += m.lists_received;
            total.ids_received += m.ids_received;
            total
        },
    )
}

/// Starts nodes named `n{from}`.. `n{to - 1}`, each seeded with `seed`, back to back.
async fn start(from: usize, to: usize, seed: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in from..to {
        let config = config(&format!("n{i}")).seed(seed);
        nodes.push(Node::start(config).await.expect("node starts"));
    }
    nodes
}

/// Waits until every node sees all the others.
async fn full_mesh(nodes: &[Node]) {
    for node in nodes {
        wait_connected(node, nodes.len() - 1).await;
    }
}

/// Waits until every member list sent has been received.
async fn lists_arrived(nodes: &[Node]) {
    common::eventually("every member list sent to arrive", || {
        let total = lists(nodes);
        total.lists_sent == total.lists_received
    })
    .await;
}

#[test]
fn a_join_costs_member_lists_in_proportion_to_the_members() {
    run_blocking(async {
        const MEMBERS: usize = 23;
        let first = Node::start(config("n0")).await.unwrap();
        let seed = first.local_node_id().unwrap().to_string();
        let mut nodes = vec![first];
        nodes.extend(start(1, MEMBERS, &seed).await);
        full_mesh(&nodes).await;
        lists_arrived(&nodes).await;
        // Forming the mesh: one list each way per connection, n(n − 1) in all (announcing
        // every join to every member costs about n³ / 2: 6,348 here).
        let formed = lists(&nodes);
        let n = MEMBERS as u64;
        assert!(
            formed.lists_sent <= n * (n - 1),
            "{} member lists to form a mesh of {n}",
            formed.lists_sent
        );

        // One more node joins through the first.
        nodes.extend(start(MEMBERS, MEMBERS + 1, &seed).await);
        full_mesh(&nodes).await;
        lists_arrived(&nodes).await;
        let joined = lists(&nodes);
        let (sent, ids) = (
            joined.lists_sent - formed.lists_sent,
            joined.ids_sent - formed.ids_sent,
        );
        // A list each way on each of its connections: 2 × 23 (announcing it costs each
        // member a list to each of its members: 24 × 24 and more).
        assert!(sent <= 2 * n, "{sent} member lists for one join to {n}");
        // Each list names at most the members.
        assert!(ids <= 2 * n * n, "{ids} node ids for one join to {n}");
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_mesh_forms_from_a_chain_of_seeds() {
    run_blocking(async {
        // Each node knows only the one before it; all start at once.
        const NODES: usize = 12;
        let mut nodes = vec![Node::start(config("n0")).await.unwrap()];
        for i in 1..NODES {
            let seed = nodes[i - 1].local_node_id().unwrap().to_string();
            let node = Node::start(config(&format!("n{i}")).seed(seed)).await;
            nodes.push(node.unwrap());
        }
        full_mesh(&nodes).await;
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn learnt_addresses_beyond_max_dials_wait_for_a_dial_loop() {
    run_blocking(async {
        let a = config("a")
            .max_dials(2)
            .forget_unreachable_after(Duration::from_millis(300));
        let a = Node::start(a).await.unwrap();
        let b = Node::start(config("b")).await.unwrap();
        // Two addresses where nothing listens take a's two loops for learnt addresses;
        // b must wait for one of them to give up. No list names b again.
        let dead: Vec<_> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut nodes: Vec<String> = dead
            .iter()
            .enumerate()
            .map(|(i, l)| format!("dead{i}@{}", l.local_addr().unwrap()))
            .collect();
        drop(dead);
        nodes.push(b.local_node_id().unwrap().to_string());
        let mut raw = Raw::join(&a).await;
        raw.send(&Wire::Members { nodes }).await;
        common::eventually("a to connect to b", || {
            a.connected_nodes()
                .iter()
                .any(|n| Some(&n.id) == b.local_node_id())
        })
        .await;
        // The raw peer's list, and b's, which names no one (b has no other peer). (b's
        // may be read just after the connection is up.)
        common::eventually("b's member list", || {
            a.faults().membership().lists_received >= 2
        })
        .await;
        let heard = a.faults().membership();
        assert_eq!((heard.lists_received, heard.ids_received), (2, 3));
        a.shutdown();
        b.shutdown();
    });
}
