//! A node's members — the nodes its distributed supervisors count a majority of — and
//! forgetting those gone for good.

mod common;
use common::id;

use std::time::Duration;

use common::{
    cluster_config, eventually, isolate, run_blocking, shutdown_all, start_cluster, within,
};
use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{behavior, DistributedSupervisor, ForgetError, Node, NodeId};

#[behavior(name = "members-worker")]
pub struct Worker;

#[behavior]
impl Worker {
    #[init]
    fn init() -> Self {
        Worker
    }
}

fn workers_running(nodes: &[Node]) -> usize {
    let processes = nodes.iter().flat_map(|n| n.processes());
    processes.filter(|p| p.behavior.contains("Worker")).count()
}

/// Cuts `nodes[at]` off from the others and shuts it down: to them, it crashed (its
/// goodbye cannot reach them).
async fn crash(nodes: &[Node], at: usize) {
    isolate(nodes, at, true);
    common::wait_connected(&nodes[at], 0).await;
    nodes[at].shutdown();
}

#[test]
fn members_are_the_nodes_connected_since_start_but_those_that_left_or_were_forgotten() {
    run_blocking(async {
        let nodes = start_cluster(4).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        assert_eq!(nodes[0].members(), ids[1..].to_vec());
        assert_eq!(
            nodes[0].forget_node(&ids[1]),
            Err(ForgetError::Connected {
                node: ids[1].clone()
            })
        );
        // n3 leaves with a goodbye: no longer a member. n1 and n2 crash: still members,
        // and n0 dials them again.
        nodes[3].shutdown();
        eventually("n3 to leave", || nodes[0].members().len() == 2).await;
        crash(&nodes, 1).await;
        crash(&nodes, 2).await;
        eventually("n1 and n2 to be lost", || {
            nodes[0].connected_nodes().is_empty()
        })
        .await;
        assert_eq!(nodes[0].members(), ids[1..3].to_vec());
        assert_eq!(nodes[0].faults().dials(), 2);

        // Forgotten: no longer a member, no longer dialled; a second time, not a member.
        // Its reconnections stay counted.
        let reconnects = nodes[0].cluster_stats().reconnects;
        assert!(reconnects >= 2, "{reconnects}");
        assert_eq!(nodes[0].forget_node(&ids[1]), Ok(true));
        assert_eq!(nodes[0].cluster_stats().reconnects, reconnects);
        assert_eq!(nodes[0].members(), vec![ids[2].clone()]);
        assert_eq!(nodes[0].faults().dials(), 1);
        assert_eq!(nodes[0].forget_node(&ids[1]), Ok(false));
        assert_eq!(nodes[0].forget_node(&ids[3]), Ok(false));

        // A forgotten node that comes back under its id is a member again.
        nodes[0].faults().partition(&ids[1], false);
        let port = ids[1].port();
        let back = Node::start(
            cluster_config("n1")
                .bind(format!("127.0.0.1:{port}").parse().unwrap())
                .seed(ids[0].to_string()),
        )
        .await
        .unwrap();
        eventually("n1 to be back", || nodes[0].members().len() == 2).await;
        assert_eq!(nodes[0].members(), ids[1..3].to_vec());
        back.shutdown();
        shutdown_all(nodes);
    });
}

#[test]
fn a_supervisor_left_without_a_majority_by_crashed_members_moves_its_child_once_they_are_forgotten()
{
    run_blocking(async {
        let mut nodes = start_cluster(3).await;
        for node in &nodes {
            node.register_behaviors().unwrap();
        }
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        let spec = SupervisorSpec::distributed(
            Strategy::OneForOne,
            NodeSelector::Specific(ids[1].clone()),
        )
        .child(ChildSpec::worker::<Worker>("w", ()));
        let sup = within(
            "the supervisor to start",
            nodes[0].spawn::<DistributedSupervisor>(spec),
        )
        .await
        .unwrap();
        assert_eq!(workers_running(&nodes[1..2]), 1);
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();

        // n1 and n2 crash for good; n3 joins under an id of its own (a new machine, say).
        crash(&nodes, 1).await;
        crash(&nodes, 2).await;
        let n3 = Node::start(cluster_config("n3").seed(ids[0].to_string()))
            .await
            .unwrap();
        n3.register_behaviors().unwrap();
        common::wait_connected(&nodes[0], 1).await;
        nodes.push(n3);

        // n0 and n3 are 2 of n0's 4 members: no majority, the child waits.
        within("the child to wait for a majority", async {
            while sup.distribution().await.unwrap().waiting_for_majority != 1 {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        // Once n1 is forgotten, n0 and n3 are 2 of 3: the child moves.
        assert_eq!(nodes[0].forget_node(&ids[1]), Ok(true));
        eventually("the child to run again", || {
            workers_running(&[nodes[0].clone(), nodes[3].clone()]) == 1
        })
        .await;
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.waiting_for_majority, stats.migrations), (0, 1));
        shutdown_all(nodes);
    });
}
