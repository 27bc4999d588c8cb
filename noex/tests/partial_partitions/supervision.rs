//! A distributed supervisor's child across a cut link.

use super::*;

/// How many `Worker` processes run on `nodes`.
fn workers_running(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .flat_map(|n| n.processes())
        .filter(|p| p.behavior.contains("Worker") || p.behavior == "partial-worker")
        .count()
}

/// A distributed supervisor on a, its child on c; the a–c link falls silent (each end
/// finds out by its heartbeats) and stays down, b still reaching both. a sees a and b of
/// three members, a majority, so it moves the child; c's child ends as its link to the
/// supervisor breaks. At no moment do two run; after the heal exactly one does.
#[test]
fn a_child_cut_off_from_its_supervisor_on_one_link_moves_and_never_runs_twice() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        for node in &nodes {
            node.register_behaviors().unwrap();
        }
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let spec = SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::Specific(id(c)))
            .intensity(10, Duration::from_secs(60))
            .child(ChildSpec::worker::<Worker>("w", ()).global_name("w"));
        let sup = within(
            "the supervisor to start",
            a.spawn::<DistributedSupervisor>(spec),
        )
        .await
        .unwrap();
        assert_eq!(workers_running(&nodes[2..]), 1);
        assert_eq!(workers_running(&nodes), 1);
        let old = sup.which_children().await.unwrap()[0].pid.clone().unwrap();
        assert_eq!(old.node(), c.name());
        eventually("every node to see the child's name", || {
            nodes
                .iter()
                .all(|n| n.whereis_global("w").as_ref() == Some(&old))
        })
        .await;
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();

        // The a–c link falls silent both ways, and c takes no new connection: the cut
        // lasts once each end has noticed it. b–c and a–b stay up.
        c.faults().refuse_connections(true);
        a.faults().silence(&id(c), true);
        c.faults().silence(&id(a), true);
        let mut most = 0;
        within("the child to move", async {
            loop {
                let running = workers_running(&nodes);
                most = most.max(running);
                if workers_running(&nodes[2..]) == 0 && running == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(most, 1, "the child ran twice at some moment");
        assert_eq!(a.connected_nodes().len(), 1, "a–c is still cut");
        assert_eq!(b.connected_nodes().len(), 2, "b reaches both");
        // (The new child may show on its node a moment before its supervisor has
        // recorded it.)
        let mut stats = sup.distribution().await.unwrap();
        let first = stats.clone();
        let recorded = async {
            while stats.migrations == 0 {
                smol::Timer::after(Duration::from_millis(2)).await;
                stats = sup.distribution().await.unwrap();
            }
        };
        within("the move to be recorded", recorded).await;
        assert_eq!(stats.migrations, 1, "first seen: {first:?}");
        assert_eq!(stats.restarts, 1, "one start did it: {stats:?}");
        let new = sup.which_children().await.unwrap()[0].pid.clone().unwrap();
        assert_ne!(new.node(), c.name());
        assert_ne!(new, old);
        // The name followed the child: a and b see it; c does if the child went to b,
        // which c reaches, and sees nobody if it went to a, which c does not reach.
        let on_c = (new.node() == b.name()).then_some(&new);
        holders(&nodes, "w", [Some(&new), Some(&new), on_c]).await;

        c.faults().refuse_connections(false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        // Settled: the supervisor has handled whatever the heal brought.
        let stats = sup.distribution().await.unwrap();
        assert_eq!(stats.migrations, 1);
        assert_eq!(workers_running(&nodes), 1);
        let after = sup.which_children().await.unwrap()[0].pid.clone().unwrap();
        assert_eq!(after, new);
        holders(&nodes, "w", [Some(&new); 3]).await;
        let child: ServerRef<Worker> = a.server_ref(&new).unwrap_or_else(|_| {
            panic!("the child {new} is reachable from a");
        });
        within("a call to the child", child.ping()).await.unwrap();
        shutdown_all(nodes);
    });
}
